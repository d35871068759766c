"""Score chunks with ONNX Runtime in this process or in a Dask worker: one session per model and process.

A :class:`ModelFile` is what travels to workers: the ONNX bytes with their SHA-256, the features
and the classes. :func:`session_for` builds a session the first time a process meets a digest
and reuses it for every later chunk, so a worker pays for the session once, not per partition.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlprod.batch.answers import Answers, Rendered, render
from mlprod.batch.lines import Chunk, parse

_SESSIONS: dict[str, Any] = {}
_LOCK = threading.Lock()
#: Rows per ONNX Runtime call. ONNX Runtime 1.32's answer for a row can change in the last
#: float32 bit with the number of rows in the call: one row takes another kernel, and so do calls
#: of more than about 5,000 rows (measured on the penguins model). Every back end therefore scores
#: in calls of 2 to ROWS_PER_CALL rows (the endpoint's requests too), so their answers are the
#: same bytes; a lone row is scored beside a copy of itself. SingleRecord scores one row per call
#: everywhere, so its answers agree across back ends too.
ROWS_PER_CALL = 1000
#: Largest chunk (partition) scored in-process or on Dask: smaller than the 6 MiB payload, as
#: 1 MiB chunks ran faster here (they stay in the CPU's caches), and give Dask more tasks to share.
CHUNK_BYTES = 1_048_576
#: Sessions this process has built (the tests check that a worker builds one per model).
SESSIONS_BUILT = 0


class BatchError(Exception):
    """A job cannot go on (no input, no model, no endpoint): the message says what to do."""


@dataclass(frozen=True)
class ModelFile:
    """An ONNX model as the batch job ships it: bytes, digest, features, classes, description."""

    data: bytes
    sha256: str
    features: list[dict[str, str]]
    classes: list[str]
    name: str

    def __repr__(self) -> str:
        return f"ModelFile({self.name!r}, sha256={self.sha256[:12]}…, {len(self.data)} bytes)"


def load_model(repository: str | os.PathLike, model: str, version: int | str | None = None
               ) -> ModelFile:
    """Read and verify one version of a model from a repository.

    The default version is the one the server serves: the ``production`` alias, else the latest.

    Raises
    ------
    BatchError
        If the repository, model or version is missing, or the file fails its checksum or is not
        an ONNX model with ``features`` and ``classes`` in its metadata.
    """
    from server import layout  # the repository format's one reader (stdlib only)

    root = Path(repository)
    if not root.is_dir():
        raise BatchError(f"No model repository at {str(root)!r}. Pass the folder holding "
                         f"<model>/<version>/model.onnx, e.g. --model-repository build/models "
                         f"(make models writes it).")
    folder = root / model
    versions = (layout.version_folders(folder)
                if layout.is_name(model) and folder.is_dir() else [])
    if not versions:
        available = sorted(p.name for p in root.iterdir() if p.is_dir() and layout.is_name(p.name)
                           and layout.version_folders(p))
        raise BatchError(f"No model {model!r} in repository {str(root)!r}; available: "
                         f"{available}. Pass one of them with --model.")
    try:
        aliases = layout.read_aliases(folder, versions)
        ref = "production" if version is None and "production" in aliases else version
        if ref is None or ref == "latest":
            number = versions[-1]
        elif str(ref).isdigit() and int(ref) in versions:
            number = int(ref)
        elif str(ref) in aliases:
            number = aliases[str(ref)]
        else:
            raise BatchError(f"Model {model!r} has no version or alias {str(ref)!r}; versions "
                             f"{versions}, aliases {aliases}. Pass one of them with --version.")
        data, sha256 = layout.read_verified(folder / str(number))
    except (layout.FormatError, OSError) as exc:
        raise BatchError(f"Cannot read model {model!r} from {str(root)!r}: {exc}") from None
    name = f"{model}/{number}"
    session = _build(data, name)
    meta = session.get_modelmeta().custom_metadata_map
    try:
        features, classes = json.loads(meta["features"]), json.loads(meta["classes"])
    except (KeyError, json.JSONDecodeError):
        raise BatchError(f"Model {name} in {str(root)!r} has no readable 'features' and "
                         f"'classes' in its metadata; export it with mlprod.export.to_onnx."
                         ) from None
    with _LOCK:
        _SESSIONS.setdefault(sha256, session)
    return ModelFile(data, sha256, features, [str(c) for c in classes], name)


def _build(data: bytes, name: str):
    """Open a single-threaded ONNX Runtime session, as the server and mlprod.export do."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own error types
        raise BatchError(f"ONNX Runtime cannot load model {name}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. "
                         f"Register it again.") from None
    global SESSIONS_BUILT
    SESSIONS_BUILT += 1
    return session


def session_for(model: ModelFile):
    """Return this process's ONNX Runtime session for ``model``, building it on first use."""
    found = _SESSIONS.get(model.sha256)
    if found is not None:
        return found
    with _LOCK:
        found = _SESSIONS.get(model.sha256)
        if found is None:
            found = _SESSIONS[model.sha256] = _build(model.data, model.name)
    return found


def calls(n_rows: int, single: bool = False) -> list[tuple[int, int]]:
    """Split ``n_rows`` rows into the ``(start, stop)`` ranges scored in one call (or request)."""
    size = 1 if single else ROWS_PER_CALL
    return [(start, min(start + size, n_rows)) for start in range(0, n_rows, size)]


def run_model(session: Any, feed: dict[str, np.ndarray], n_rows: int, single: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """Score the rows of ``feed`` in calls of :data:`ROWS_PER_CALL` (or one row each, ``single``)."""
    labels = [np.empty(0, dtype=object)]
    probabilities = [np.empty((0, 0), dtype=np.float32)]
    for start, stop in calls(n_rows, single):
        if stop - start == 1 and not single:  # pair a lone row with a copy: same kernel as the rest
            part = {k: np.repeat(v[start:stop], 2, axis=0) for k, v in feed.items()}
        else:
            part = {k: v[start:stop] for k, v in feed.items()}
        got_labels, got_probabilities = session.run(["label", "probabilities"], part)
        labels.append(np.asarray(got_labels, dtype=object)[:stop - start])
        probabilities.append(np.asarray(got_probabilities, dtype=np.float32)[:stop - start])
    probabilities[0] = probabilities[0].reshape(0, probabilities[-1].shape[1])
    return np.concatenate(labels), np.concatenate(probabilities)


def score(chunk: Chunk, model: ModelFile, json_lines: bool = False, single: bool = False
          ) -> Answers:
    """Parse a chunk and score its good lines with ONNX Runtime."""
    rows = parse(chunk, model.features, json_lines)
    if len(rows.good):
        labels, probabilities = run_model(session_for(model), rows.feed, len(rows.good), single)
    else:
        labels = np.empty(0, dtype=object)
        probabilities = np.empty((0, len(model.classes)), dtype=np.float32)
    return Answers(rows.first_line, rows.n_lines, rows.good, labels, probabilities, rows.errors,
                   len(chunk.data))


def score_and_render(chunk: Chunk, model: ModelFile, json_lines: bool = False,
                     join_source: bool = False, single: bool = False) -> Rendered:
    """Score a chunk and write its answer lines: the unit of work of in-process and Dask jobs."""
    return render(score(chunk, model, json_lines, single), chunk, join_source)
