"""A real Prometheus for the tests: Debian's binary as a plain process, and its query API.

Tests that need it skip with a message when it is missing, except under ``CI=true`` (where
.ci/run installs it), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlprod.monitoring.prometheus import PROMTOOL_INSTALL
from mlprod.serving import free_port


def need(tool: str) -> str:
    """Return the tool's path; skip (fail under CI=true) when it is not installed."""
    path = shutil.which(tool)
    if path is None:
        message = (f"{tool} is not installed; it comes with Debian's prometheus package: "
                   f"{PROMTOOL_INSTALL}")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (.ci/run must install it)")
        pytest.skip(message)
    return path


def poll(check, timeout: float, what: str, log: Path | None = None):
    """Call ``check`` until it returns something true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except (requests.ConnectionError, KeyError, IndexError):
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"Prometheus: no {what} within {timeout} s. Its log:\n"
                        f"{log.read_text()[-3000:] if log and log.exists() else ''}")
        time.sleep(0.2)  # polling a condition with a deadline, not waiting blind


@contextlib.contextmanager
def running(config: Path, work: Path) -> Iterator[tuple[str, Path]]:
    """Run Prometheus on ``config/prometheus.yml``, storage in ``work``; yield (API URL, log)."""
    exe = need("prometheus")
    port = free_port()
    log = work / "prometheus.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [exe, f"--config.file={config / 'prometheus.yml'}",
             f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{port}"
    try:
        poll(lambda: requests.get(f"{api}/-/ready", timeout=2).ok, 20, "readiness", log)
        yield api, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def query(api: str, expr: str, at: float | None = None) -> list:
    """Ask Prometheus' query API (at time ``at``, default now); return its result list."""
    params = {"query": expr} | ({"time": f"{at:.3f}"} if at else {})
    answer = requests.get(f"{api}/api/v1/query", params=params, timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]
