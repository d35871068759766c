"""Write files atomically: a reader sees the old file or the complete new one, never a half-written one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", perms: int = 0o644,
                **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it over ``path``, else remove it.

    Parameters
    ----------
    path : path-like
        The final file. Its folder must exist.
    mode : {"w", "wb"}
        Text or binary writing; ``kwargs`` go to :func:`open` (``encoding``, ``newline``).
    perms : int
        Permission bits of the final file (temporary files start private, 0600).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r}: atomic_open writes whole files; use 'w' or 'wb'.")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())  # the data is on disk before the name points at it
        os.chmod(tmp, perms)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, content: str | bytes, perms: int = 0o644) -> Path:
    """Write ``content`` (text as UTF-8, or bytes) to ``path`` atomically; return the path."""
    binary = isinstance(content, bytes)
    kwargs = {} if binary else {"encoding": "utf-8"}
    with atomic_open(path, "wb" if binary else "w", perms=perms, **kwargs) as fh:
        fh.write(content)
    return Path(path)
