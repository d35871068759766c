"""Write files and replace folders atomically: a reader sees the old or the complete new one."""

from __future__ import annotations

import errno
import os
import shutil
import sys
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


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically, making its folder; return the path."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, json.dumps(obj, indent=2) + "\n")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported.

    Raises
    ------
    OSError
        If the system supports the swap and it fails.
    """
    if sys.platform != "linux":
        return False
    import ctypes

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # file system or kernel without it
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_dir(new: Path, target: Path) -> None:
    """Put folder ``new`` in the place of ``target``, then remove the old content.

    Where the system can swap two paths in one step, ``target`` is never missing; elsewhere the
    old ``target`` is renamed aside first, and renamed back if the second rename fails. On
    failure ``target`` keeps its old content and ``new`` stays where it was.

    Parameters
    ----------
    new : Path
        The complete new folder, on the same file system as ``target`` (best: beside it).
    target : Path
        The folder to replace; it need not exist, its parent must.
    """
    new, target = Path(new), Path(target)
    if not target.exists():
        os.rename(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the previous content
        return
    aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        os.rename(target, aside / "old")
        try:
            os.rename(new, target)
        except BaseException:
            os.rename(aside / "old", target)
            raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)
