"""A wheelhouse for the image: every pinned package as a wheel for its Python and platform.

With ``wheels/`` in the context the image builds with ``--no-index``: no network, seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mlprod.container.defaults import (
    DEFAULT_BASE_IMAGE,
    IMAGE_GLIBC_MINOR,
    IMAGE_PYTHON,
    LOCAL_BASE_IMAGE,
    PYTHON_311_BASE,
)


def wheels_misfit(base_image: str = DEFAULT_BASE_IMAGE,
                  host: tuple[str, str, str, tuple[int, int]] | None = None) -> str | None:
    """Return why a wheelhouse made on this machine would not fit the image; None if it fits.

    The wheels are fetched for CPython 3.11 on Linux x86_64 (glibc 2.36), but pip evaluates the
    requirements' markers here, and the image takes this machine's architecture: so it fits
    when this machine is Linux x86_64 with CPython 3.11, and the base image is one known to
    hold CPython 3.11 (``DEFAULT_BASE_IMAGE``, ``LOCAL_BASE_IMAGE``, another ``python:3.11``).

    Parameters
    ----------
    base_image : str
        The image the build starts from.
    host : (sys.platform, machine, implementation, (major, minor)), optional
        Default: this interpreter's.
    """
    import platform

    host = host or (sys.platform, platform.machine(), sys.implementation.name,
                    sys.version_info[:2])
    wanted = ("linux", "x86_64", "cpython", IMAGE_PYTHON)
    if (host[0], host[1].lower(), host[2], tuple(host[3])) != wanted:
        python = ".".join(map(str, host[3]))
        return (f"this machine is {host[0]} {host[1]} with {host[2]} {python}, the image Linux "
                f"x86_64 with CPython {'.'.join(map(str, IMAGE_PYTHON))}")
    if base_image != LOCAL_BASE_IMAGE and not PYTHON_311_BASE.fullmatch(base_image):
        return (f"base image {base_image!r} is not one known to hold CPython 3.11 "
                f"({DEFAULT_BASE_IMAGE}, {LOCAL_BASE_IMAGE})")
    return None


def _pip() -> list[str]:
    """Return a pip command running on CPython 3.11, whose marker evaluation fits the image.

    Tried in turn: this interpreter's pip, then ``pip3.11``, ``pip3`` and ``pip`` on PATH.

    Raises
    ------
    FileNotFoundError
        If none of them runs on Python 3.11, naming what was found and the fix.
    """
    import importlib.util

    candidates = []
    if importlib.util.find_spec("pip") is not None:
        candidates.append([sys.executable, "-m", "pip"])
    candidates += [[found] for name in ("pip3.11", "pip3", "pip") if (found := shutil.which(name))]
    version = "(python {}.{})".format(*IMAGE_PYTHON)
    seen = []
    for command in candidates:
        done = subprocess.run([*command, "--version"], capture_output=True, text=True)
        if done.returncode == 0 and version in done.stdout:
            return command
        seen.append(done.stdout.strip() or " ".join(command))
    raise FileNotFoundError(f"No pip running on Python 3.11 to fetch the wheelhouse (found: "
                            f"{seen or 'none'}): install one (`python3.11 -m ensurepip`), or "
                            "build the context with wheels=False (--wheels no).")


def _platforms() -> list[str]:
    """Return ``--platform`` arguments for every manylinux tag the image's glibc accepts."""
    tags = [f"manylinux_2_{minor}_x86_64" for minor in range(IMAGE_GLIBC_MINOR, 4, -1)]
    tags += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    return [arg for tag in tags for arg in ("--platform", tag)]


def wheelhouse(requirements: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Fill ``dest`` with a wheel for every line of ``requirements`` (cached between calls).

    The wheels are binary ones for the image (CPython 3.11, manylinux up to glibc 2.36,
    x86_64), whatever this machine's glibc: the first call for a given requirements file runs
    ``pip download --only-binary=:all: --platform ... --python-version 3.11`` (it needs the
    package index); later calls copy the cached wheels from ``build/cache/wheels/<key>/``.
    """
    from mlprod.quickstart import cache_dir

    text = Path(requirements).read_text()
    python = "{}{}".format(*IMAGE_PYTHON)
    target = f"cp{python}-manylinux_2_{IMAGE_GLIBC_MINOR}_x86_64"
    key = hashlib.sha256((target + "\n" + text).encode()).hexdigest()[:16]
    cached = cache_dir() / "wheels" / key
    if not cached.is_dir():
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cached.parent, prefix=f".{key}."))
        try:
            subprocess.run([*_pip(), "download", "--quiet", "--no-deps", "--only-binary=:all:",
                            *_platforms(), "--python-version", ".".join(map(str, IMAGE_PYTHON)),
                            "--implementation", "cp", "--abi", f"cp{python}",
                            "-r", str(requirements), "-d", str(tmp)], check=True)
            try:
                os.rename(tmp, cached)
            except OSError:
                if not cached.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(cached, dest, copy_function=shutil.copyfile)
    return Path(dest)
