"""Test helpers: the tests' server launcher, a writable repository copy, reference answers, bodies,
and the container engine the container tests build with (or their skip).

``ServerProcess`` is :class:`mlprod.serving.LocalServer` (the kit's one launcher: free port,
retried when taken; readiness polled; always stopped, with ``--parent-pid`` in case pytest itself
is killed) with the tests' habits: a 60 s readiness budget and ``command`` as the arguments of
``python -m server``.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mlprod import data, export, quickstart
from mlprod.client import encode_v2
from mlprod.serving import LocalServer, server_command

READY_TIMEOUT = 60.0
#: How to enable the container tests, said when they skip.
ENABLE = ("To run it: `bash .ci/container-setup.sh` (podman, runc and a local base image made "
          "with debootstrap; needs root and Debian's packages), or start a Docker engine; "
          "CI=true makes it required.")

with warnings.catch_warnings():  # starlette's TestClient (in-process app) warns it prefers httpx2
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: F401 - re-exported for the tests


class ServerProcess(LocalServer):
    """:class:`~mlprod.serving.LocalServer` whose ``command`` holds the arguments of ``python -m server``.

    ``command=["serve", "--port", "{port}"]`` runs the SageMaker mode; ``{port}`` (also in ``env``
    values) is the port picked at start.
    """

    def __init__(self, repository: str | os.PathLike | None, args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None, command: Sequence[str] | None = None,
                 port: int | None = None):
        super().__init__(repository, port=port, args=args, env=env, ready_timeout=READY_TIMEOUT,
                         command=None if command is None else server_command(*command))


def copy_repository(destination: Path) -> Path:
    """Copy the course's cached repository (penguins v1, v2) to ``destination``, writable."""
    shutil.copytree(quickstart.model_repository(), destination)
    return destination


def reference(repository: Path, frame: pd.DataFrame, version: int = 1):
    """Run the version's ONNX file in-process: return (labels, probabilities, classes)."""
    path = repository / "penguins" / str(version) / "model.onnx"
    session = export.session(path.read_bytes())
    labels, probabilities = export.onnx_predict(session, frame)
    classes = json.loads(session.get_modelmeta().custom_metadata_map["classes"])
    # ONNX Runtime computes float32; onnx_predict widens it exactly, this narrows it back.
    return list(labels), probabilities.astype(np.float32), classes


def feed(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The ONNX feed for a frame of features: float32 numerics, str categoricals, [N, 1]."""
    return export.onnx_inputs(frame, data.schema())


def v2_body(frame: pd.DataFrame) -> dict:
    """The V2 inference request :class:`mlprod.client.Client` sends for a frame of the features."""
    return encode_v2(frame, data.schema())


def records(frame: pd.DataFrame) -> list[dict]:
    """The frame as JSON records, NaN as null."""
    rows = frame[data.FEATURES].astype(object).where(frame[data.FEATURES].notna(), None)
    return rows.to_dict(orient="records")


def engine_or_skip() -> tuple[str, str | None]:
    """Return the engine and base image to use; skip (or, under CI, fail) when there is none."""
    import pytest

    from mlprod import container

    ci = os.environ.get("CI") == "true"
    found = container.engine()
    if found == "none":
        message = f"No working container engine (podman info / docker info failed). {ENABLE}"
        if ci:
            pytest.fail(message)
        pytest.skip(message)
    if found == "docker":
        return found, None
    exists = container.Engine.detect("podman").run("image", "exists", container.LOCAL_BASE_IMAGE,
                                                   check=False)
    if exists.returncode != 0:
        message = f"podman has no base image {container.LOCAL_BASE_IMAGE}. {ENABLE}"
        if ci:
            pytest.fail(message)
        pytest.skip(message)
    return found, container.LOCAL_BASE_IMAGE
