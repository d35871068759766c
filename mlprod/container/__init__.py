"""Write a container build context for the reference server and one model, then build and run it.

``build_context(repository, out_dir)`` writes everything an image builder needs — ``Dockerfile``,
``.dockerignore``, ``requirements.txt`` (the server's lock, ``requirements-server.lock``, which
``make lock`` has uv write), ``server/``, ``model/`` and, when asked, ``wheels/`` — plus the
scale-out manifests in ``k8s/`` and a ``docker-compose.yml``. ``engine()`` says which container
engine this machine has (a Docker engine, podman, or none); ``build_image``, ``running`` and
``prove`` build the image, run it, and call it over HTTP.

``python -m mlprod.container --repository build/models --out build/context`` is what
``make context`` runs; ``--wheels auto`` (the default) adds the wheelhouse when wheels made here
fit the image, ``--image TAG`` builds the image and keeps it, and ``--prove`` also runs it, calls
it and writes ``build/proof/container.json`` (``make image`` passes both).

One idea a module: ``defaults`` (paths, base images, port), ``requirements`` (the image's
packages), ``model`` (the model copied in), ``templates``, ``context``, ``wheels``, ``checks``
(hadolint, Kubernetes schemas), ``engines`` (Docker or podman), ``image`` (build and run),
``proof`` and ``cli``.
"""

from mlprod.container.checks import hadolint, validate_manifests
from mlprod.container.cli import NO_BASE_IMAGE, NO_ENGINE, main
from mlprod.container.context import build_context
from mlprod.container.defaults import (
    DEFAULT_BASE_IMAGE,
    IMAGE_GLIBC_MINOR,
    IMAGE_PYTHON,
    LOCAL_BASE_IMAGE,
    LOCK,
    PORT,
    ROOT,
    SERVER,
    SERVER_LOCK,
    SERVER_REQUIREMENTS,
)
from mlprod.container.engines import PODMAN, Engine, engine, engine_works, podman_env
from mlprod.container.image import Running, build_command, build_image, run_command, running
from mlprod.container.model import choose_model, served_version
from mlprod.container.proof import call_server, onnx_answers, prove, sample_rows, summary, v2_request
from mlprod.container.requirements import (
    Pin,
    canonical,
    installed_megabytes,
    installed_sizes,
    read_lock,
    server_dependencies,
    server_requirements,
)
from mlprod.container.templates import k8s_name, render
from mlprod.container.wheels import wheelhouse, wheels_misfit

__all__ = [
    "DEFAULT_BASE_IMAGE", "IMAGE_GLIBC_MINOR", "IMAGE_PYTHON", "LOCAL_BASE_IMAGE", "LOCK",
    "NO_BASE_IMAGE", "NO_ENGINE", "PODMAN", "PORT", "ROOT", "SERVER", "SERVER_LOCK",
    "SERVER_REQUIREMENTS", "Engine", "Pin", "Running", "build_command", "build_context",
    "build_image", "call_server", "canonical", "choose_model", "engine", "engine_works",
    "hadolint", "installed_megabytes", "installed_sizes", "k8s_name", "main", "onnx_answers",
    "podman_env", "prove", "read_lock", "render", "run_command", "running", "sample_rows",
    "served_version", "server_dependencies", "server_requirements", "summary", "v2_request",
    "validate_manifests", "wheelhouse", "wheels_misfit",
]
