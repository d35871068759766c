"""Write a container build context: the model, the server, its locked requirements, the recipes."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import mlprod.container.wheels as _wheels
import mlprod.platforms.files as _platforms
from mlprod.container.defaults import DEFAULT_BASE_IMAGE, SERVER, SERVER_LOCK
from mlprod.container.model import choose_model, copy_model, served_version
from mlprod.container.requirements import read_lock
from mlprod.container.templates import CONTEXT_TEMPLATES, k8s_name, render, template
from mlprod.files import replace_dir


def build_context(repository: str | os.PathLike, out_dir: str | os.PathLike,
                  model: str | None = None, *, base_image: str = DEFAULT_BASE_IMAGE,
                  image: str | None = None, wheels: bool | str = False,
                  storage_uri: str | None = None, replicas: int = 2, max_replicas: int = 5,
                  lock: str | os.PathLike = SERVER_LOCK,
                  server: str | os.PathLike = SERVER) -> Path:
    """Write a container build context for ``model`` of ``repository`` into ``out_dir``.

    The context is written to a temporary folder beside ``out_dir`` and renamed into place, so
    ``out_dir`` is never half written.

    Parameters
    ----------
    repository : path
        A model repository (Triton layout): ``<model>/config.pbtxt``, ``<model>/<n>/model.onnx``.
    out_dir : path
        Where the context goes; replaced if it exists.
    model : str, optional
        The model to package; default the repository's only model.
    base_image : str
        Default of the Dockerfile's ``BASE_IMAGE`` argument.
    image : str, optional
        Image name for the manifests; default ``mlprod-<model>:<served version>``.
    wheels : bool or "auto"
        Add ``wheels/`` (every pin as a wheel for the image's Python and platform, cached under
        build/cache/wheels), so the image builds with no network; fetching it the first time
        needs the package index. ``"auto"`` adds it when ``wheels_misfit(base_image)`` finds
        none and the fetch succeeds, and otherwise leaves it out with a warning.
    storage_uri : str, optional
        Where KServe finds a copy of ``model/``; default ``pvc://mlprod-models/``.
    replicas, max_replicas : int
        Pods of the Deployment, and the autoscalers' ceiling.
    lock : path
        The server's lock (``requirements-server.lock``, written by ``make lock``), copied as
        the context's ``requirements.txt``.
    server : path
        The server package copied into the image.

    Returns
    -------
    Path
        ``out_dir``.
    """
    repository, out_dir, server = Path(repository), Path(out_dir), Path(server)
    if not (server / "__main__.py").is_file():
        raise FileNotFoundError(f"No server package at {server} (no __main__.py): pass "
                                "server=PATH to a package runnable as `python -m server`.")
    if replicas < 1 or max_replicas < replicas:
        raise ValueError(f"replicas={replicas}, max_replicas={max_replicas}: need "
                         "1 <= replicas <= max_replicas.")
    model = choose_model(repository, model)
    read_lock(lock)  # a missing lock fails here, before anything is copied
    if wheels not in (True, False, "auto"):
        raise ValueError(f"wheels={wheels!r}: use True, False or 'auto'.")
    misfit = _wheels.wheels_misfit(base_image) if wheels else None
    if wheels is True and misfit:
        raise ValueError(f"A wheelhouse made here would not fit the image: {misfit}. Use "
                         "wheels='auto' or False (--wheels auto/no): pip then downloads inside "
                         "the build.")
    if wheels == "auto" and misfit:
        warnings.warn(f"No wheelhouse: {misfit}; pip downloads inside the build.", stacklevel=2)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        ctx = tmp / "context"
        ctx.mkdir()
        versions = copy_model(repository, model, ctx / "model")
        version = served_version(ctx / "model" / model)
        shutil.copytree(server, ctx / "server", copy_function=shutil.copyfile,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
        shutil.copyfile(lock, ctx / "requirements.txt")
        if wheels is True:
            _wheels.wheelhouse(ctx / "requirements.txt", ctx / "wheels")
        elif wheels == "auto" and not misfit:
            try:
                _wheels.wheelhouse(ctx / "requirements.txt", ctx / "wheels")
            except (OSError, subprocess.CalledProcessError) as err:
                warnings.warn(f"No wheelhouse: fetching it failed ({err}); pip downloads inside "
                              "the build.", stacklevel=2)
        wheels = (ctx / "wheels").is_dir()
        values = {
            "model": model, "version": version, "versions": ",".join(map(str, versions)),
            "image": image or f"mlprod-{k8s_name(model).removesuffix('-server')}:{version}",
            "name": k8s_name(model), "base_image": base_image, "replicas": replicas,
            "max_replicas": max_replicas, "storage_uri": storage_uri or "pvc://mlprod-models/",
            "copy_wheels": ("# The wheelhouse: every pinned package as a wheel, so the install "
                            "needs no network.\nCOPY wheels/ ./wheels/") if wheels else
                           "# (No wheelhouse in this context: pip downloads from the index.)",
            "pip_source": "--no-index --find-links wheels " if wheels else "",
        }
        write_templates(ctx, CONTEXT_TEMPLATES, values)
        _platforms.write_platform_files(ctx, values)  # platforms/<name>/: lesson 09
        _readable(ctx)
        replace_dir(ctx, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def write_templates(ctx: Path, names: Iterable[str], values: dict[str, object]) -> None:
    """Render each template of ``names`` into ``ctx`` under its own path (``.dockerignore``)."""
    for name in names:
        target = ctx / (".dockerignore" if name == "dockerignore" else name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(template(name), values))


def _readable(root: Path) -> None:
    """Make every file 0644 and folder 0755: the image copies modes, and runs as another user."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
