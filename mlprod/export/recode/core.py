"""What the C and Java paths share: their harness templates and running a compiler or a program."""

from __future__ import annotations

import subprocess
from importlib import resources


def harness(name: str) -> str:
    """Return a harness's source, shipped in ``mlprod/templates/recode/`` (``main.c``, ``Main.java``)."""
    return (resources.files("mlprod") / "templates" / "recode" / name).read_text()


def run(cmd: list[str], stdin: str = "", what: str = "") -> str:
    """Run a command, returning stdout; raise RuntimeError with its stderr when it fails."""
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what or cmd[0]} failed (exit {result.returncode}): "
                           f"{result.stderr.strip()[:2000]}")
    return result.stdout
