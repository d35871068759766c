"""Check the environment the course runs in and say how to fix what is missing."""

from __future__ import annotations

import platform
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# distribution name → what it is for in the course
PACKAGES = {
    "scikit-learn": "models and pipelines (lessons 01–03)",
    "pandas": "tables",
    "skl2onnx": "ONNX export (lesson 03)",
    "onnxruntime": "ONNX inference (lessons 03–04)",
    "sklearn2pmml": "PMML export (lesson 03)",
    "jpmml-evaluator": "PMML scoring (lesson 03)",
    "starlette": "the reference server (lesson 04)",
    "uvicorn": "the reference server (lesson 04)",
    "requests": "calling the server (lesson 04)",
    "ipywidgets": "live widgets",
    "jupyterlab": "the notebooks",
    "dask": "tuning on a cluster (lesson 02)",
}

# command → (what it is for, how to install it on Debian/Ubuntu)
TOOLS = {
    "java": ("PMML export and scoring (lesson 03)", "apt-get install -y default-jre-headless"),
    "gcc": ("compiling the re-coded model (lesson 03)", "apt-get install -y gcc"),
    "javac": ("the Java re-code demo (lesson 03)", "apt-get install -y default-jdk-headless"),
    "podman": ("building the image without Docker (lesson 05)", "apt-get install -y podman runc"),
    "docker": ("building the image (lesson 05)", "install Docker Engine or Docker Desktop"),
    "chromium": ("the browser test of the widgets", "apt-get install -y chromium"),
}


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, whether it is there, and the fix if not."""

    name: str
    found: bool
    version: str
    needed_for: str
    fix: str


def _package(name: str, needed_for: str) -> Check:
    try:
        return Check(name, True, metadata.version(name), needed_for, "")
    except metadata.PackageNotFoundError:
        return Check(name, False, "", needed_for, "run `make lab` (or `pip install -e .`)")


def _engine_works(command: str) -> bool:
    """Tell whether a container engine answers (``info`` needs a running engine; ``--version`` does not).

    podman is asked with the kit's settings (its containers.conf and storage driver), exactly as
    :mod:`mlprod.container` calls it, so the report agrees with what lesson 05 will find.
    """
    from mlprod.container.engines import engine_works  # on use: `import mlprod` stays cheap

    return engine_works(command, timeout=20)


def _tool(command: str, needed_for: str, fix: str) -> Check:
    path = shutil.which(command)
    if path is None:
        return Check(command, False, "", needed_for, fix)
    if command in ("docker", "podman") and not _engine_works(command):
        return Check(command, False, "client only, no engine", needed_for,
                     f"`{command} info` fails: start the engine, or use the recorded result")
    return Check(command, True, path, needed_for, "")


def checks(tools: bool = True) -> list[Check]:
    """Run every check: Python, the course's packages and (optionally) the system tools."""
    py = platform.python_version()
    ok = sys.version_info >= (3, 11)
    result = [Check("python", ok, py, "everything", "" if ok else "install Python 3.11 or newer")]
    result += [_package(name, why) for name, why in PACKAGES.items()]
    if tools:
        result += [_tool(cmd, why, fix) for cmd, (why, fix) in TOOLS.items()]
    return result


def doctor(tools: bool = True) -> pd.DataFrame:
    """Report what the course needs, what is installed, and how to fix what is missing.

    Parameters
    ----------
    tools : bool
        Also look for system tools (Java, gcc, a container engine, Chromium).

    Returns
    -------
    report : DataFrame
        One row per check with columns ``name``, ``found``, ``version``, ``needed_for``, ``fix``.
    """
    import pandas as pd  # imported here so that `import mlprod` stays cheap

    return pd.DataFrame([c.__dict__ for c in checks(tools)])
