"""Start the reference server as a real process on a free port, and always stop it.

Used by tests/test_server*.py and tests/test_protocol.py. A server is ready when
``/v2/health/ready`` answers 200 (polled); it is stopped (SIGTERM, then SIGKILL) however the
test ends, and ``--parent-pid`` makes it exit even if pytest itself is killed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from mlprod import data, export, quickstart
from mlprod.serving import free_port

READY_TIMEOUT = 60.0

with warnings.catch_warnings():  # starlette's TestClient (in-process app) warns it prefers httpx2
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: F401 - re-exported for the tests


class ServerProcess:
    """``python -m server`` in a child process; a context manager that waits for readiness.

    Parameters
    ----------
    repository : path
        The model repository to serve.
    args : sequence of str
        Extra command-line arguments.
    env : dict, optional
        Extra environment variables (``MODEL_SERVER_TOKEN``...).
    command : sequence of str, optional
        Replaces ``--model-repository <repo> --port <port>`` (e.g. ``["serve", ...]``).
    """

    def __init__(self, repository: str | os.PathLike | None, args: Sequence[str] = (),
                 env: dict[str, str] | None = None, command: Sequence[str] | None = None,
                 port: int | None = None):
        self.repository = repository
        self.port = port or free_port()
        self.args = list(args)
        self.env = dict(env or {})
        self.command = command
        self.process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False)

    @property
    def url(self) -> str:
        """The base URL on 127.0.0.1."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> ServerProcess:
        """Start the process; with ``wait``, return once ``/v2/health/ready`` answers 200."""
        command = list(self.command) if self.command is not None else [
            "--model-repository", str(self.repository), "--port", str(self.port)]
        env = {k: v for k, v in os.environ.items() if k != "MODEL_SERVER_TOKEN"} | self.env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server", *command, "--parent-pid", str(os.getpid()),
             *self.args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> float:
        """Poll readiness; return the seconds waited. Raise with the log if the server died."""
        start = time.perf_counter()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"The server exited with {self.process.returncode}:\n"
                                   f"{self.log()}")
            try:
                if requests.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return time.perf_counter() - start
            except requests.ConnectionError:
                pass
            if time.perf_counter() - start > timeout:
                self.stop()
                raise RuntimeError(f"The server was not ready after {timeout} s:\n{self.log()}")
            time.sleep(0.02)  # polling interval, not a wait for readiness

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop gracefully (SIGTERM), kill after ``timeout``; return the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return Path(self._log.name).read_text(errors="replace")

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


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
    """A V2 inference request for ``frame``: NaN as null, one [N, 1] tensor per column."""
    inputs = []
    for c in data.FEATURES:
        numeric = c in data.NUMERIC
        values = [None if (numeric and np.isnan(v)) else (float(v) if numeric else v)
                  for v in frame[c]]
        inputs.append({"name": c, "shape": [len(frame), 1],
                       "datatype": "FP32" if numeric else "BYTES", "data": values})
    return {"inputs": inputs}


def records(frame: pd.DataFrame) -> list[dict]:
    """The frame as JSON records, NaN as null."""
    rows = frame[data.FEATURES].astype(object).where(frame[data.FEATURES].notna(), None)
    return rows.to_dict(orient="records")
