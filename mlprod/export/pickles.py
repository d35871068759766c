"""Show why a pickle is no format to deploy a model with: loading one runs code.

``pickle`` (and ``joblib``, which uses it) stores an object as a small program for a stack
machine; its ``GLOBAL``/``STACK_GLOBAL``/``INST`` and ``REDUCE`` instructions import any callable
and call it while loading. A model file from someone else is then a program from someone else. An ONNX
file is data: a protobuf message whose operators come from a fixed, documented set, which the
runtime interprets; loading it calls nothing the file names.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
from pathlib import Path

__all__ = ["malicious_pickle", "pickle_imports"]


class _RunsOnLoad:
    """Pickles as "call exec(code)": whatever unpickles it runs ``code``."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def malicious_pickle(marker: str | os.PathLike) -> bytes:
    """Return a pickle whose loading writes the file ``marker`` (a harmless stand-in for any code).

    Parameters
    ----------
    marker : path
        The file that appears when the bytes are unpickled.
    """
    code = (f"open({str(Path(marker))!r}, 'w').write("
            "'written by pickle.load: this could have been any command')")
    return pickle.dumps(_RunsOnLoad(code), protocol=pickle.HIGHEST_PROTOCOL)


def pickle_imports(data: bytes) -> list[str]:
    """List the callables a pickle imports when loaded (``module.name``), without loading it.

    It reads the opcodes with :mod:`pickletools`, as pickle scanners do; every name listed is
    imported and may be called during ``pickle.load``.
    """
    found: set[str] = set()
    memo: dict[int, str | None] = {}
    pushed: list[str | None] = []  # the values pushed so far: a string, or None for anything else
    for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
        name = opcode.name
        if name in ("PROTO", "FRAME", "STOP"):
            continue
        if name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = pushed[-1] if pushed else None
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            pushed.append(memo.get(int(arg)))
        elif name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "STRING",
                      "BINSTRING", "SHORT_BINSTRING"):
            pushed.append(str(arg))
        elif name in ("GLOBAL", "INST"):  # INST imports like GLOBAL, then calls it
            found.add(str(arg).replace(" ", "."))
            pushed.append(None)
        elif name == "STACK_GLOBAL":
            module, attr = (pushed[-2], pushed[-1]) if len(pushed) >= 2 else (None, None)
            found.add(f"{module}.{attr}" if module and attr else "<unknown>")
            pushed.append(None)
        else:
            pushed.append(None)
    return sorted(found)
