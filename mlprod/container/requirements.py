"""The image's packages: the server's direct requirements, uv's lock of them, and their size.

``requirements-server.in`` names what the server imports (and the event loop and HTTP parser it
asks uvicorn for); ``make lock`` has uv compile it, constrained by the course's lock, into
``requirements-server.lock``, which ``build_context`` copies into the image as
``requirements.txt``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlprod.container.defaults import SERVER_LOCK, SERVER_REQUIREMENTS


@dataclass(frozen=True)
class Pin:
    """One pinned line of a lock: the package, the line as written, and who needs it."""

    name: str
    line: str
    via: frozenset[str]


def canonical(name: str) -> str:
    """Return a package name in PEP 503 form (``Typing_Extensions`` → ``typing-extensions``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(lock: str | os.PathLike = SERVER_LOCK) -> list[Pin]:
    """Parse a uv/pip-compile lock: each ``name==version ; marker`` line and its ``# via`` names.

    ``-r FILE`` and ``-c FILE`` entries of a ``# via`` list name files, not packages: left out.

    Raises
    ------
    FileNotFoundError
        If the lock is missing, naming it and the command that writes it.
    """
    path = Path(lock)
    if not path.is_file():
        raise FileNotFoundError(f"No lock at {path}: write it with `make lock`, or pass "
                                "lock=PATH.")
    pins: list[Pin] = []
    name, line, via = None, "", set()
    for raw in path.read_text().splitlines() + [""]:
        text = raw.strip()
        if raw and not raw.startswith((" ", "#")) and "==" in raw:
            if name:
                pins.append(Pin(name, line, frozenset(via)))
            name, line, via = canonical(raw.split("==")[0].split("[")[0].strip()), text, set()
        elif text.startswith("#") and name:
            words = text.lstrip("#").strip()
            if words.startswith("via "):
                words = words[4:]
            if words and words != "via" and not words.startswith("-"):
                via.add(canonical(words.split(" (")[0].strip()))
    if name:
        pins.append(Pin(name, line, frozenset(via)))
    return pins


def server_dependencies(path: str | os.PathLike = SERVER_REQUIREMENTS) -> list[str]:
    """Return the server's direct requirements, as written in ``requirements-server.in``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No server requirements at {path}: it lists what server/ "
                                "imports, one name a line.")
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def server_requirements(lock: str | os.PathLike = SERVER_LOCK) -> list[str]:
    """Return the server lock's pinned lines (environment markers kept), sorted by name.

    Raises
    ------
    FileNotFoundError
        If the lock is missing, naming the command that writes it.
    """
    return sorted((p.line for p in read_lock(lock)), key=str.lower)


def installed_sizes(names: Sequence[str] | None = None) -> dict[str, float]:
    """Return the disk space of each installed distribution in ``names`` (default: all), in MB."""
    from importlib import metadata

    wanted = None if names is None else {canonical(n.split("[")[0]) for n in names}
    sizes: dict[str, float] = {}
    for dist in metadata.distributions():
        name = canonical(dist.metadata["Name"])
        if wanted is not None and name not in wanted:
            continue
        total = 0
        for file in dist.files or ():
            with contextlib.suppress(OSError):
                total += Path(dist.locate_file(file)).stat().st_size
        sizes[name] = sizes.get(name, 0.0) + total / 1e6
    return sizes


def installed_megabytes(names: Sequence[str] | None = None) -> float:
    """Return the disk space of the installed distributions ``names`` (default: all), in MB."""
    return sum(installed_sizes(names).values())
