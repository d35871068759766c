"""The Dask back end: a ``dask.dataframe`` whose partitions are line ranges, scored in the workers.

Each partition is a range of whole lines that carries its byte offset and its first line number
(a byte-split ``dd.read_csv`` partition does not know on which line it starts, so it could not put
an answer on the line of its input). A worker reads its range from the file, parses it, scores it
with the ONNX Runtime session it built the first time it met the model
(:func:`mlprod.batch.scoring.session_for`, keyed by the model's SHA-256: once per worker process,
not per partition) and returns a pandas frame indexed by line number: ``label``, one float32
column per class, ``error``. This process computes the partitions in order, a bounded number at a
time, and writes them with the one answer writer.

The workers read the input file themselves, so its path must be visible to them: the same
machine (``--dask local``, or ``dask scheduler`` and ``dask worker`` started here) or a shared
file system.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlprod.batch.answers import Answers, Rendered, render
from mlprod.batch.inprocess import ModelBackend, ordered_map
from mlprod.batch.lines import Chunk, is_json_lines, read_chunks, read_range
from mlprod.batch.scoring import CHUNK_BYTES, BatchError, ModelFile, score


@dataclass(frozen=True)
class LineRange:
    """A partition: ``size`` bytes of whole lines at ``offset`` in ``path``, from ``first_line``."""

    path: str
    offset: int
    size: int
    first_line: int
    n_lines: int

    def read(self) -> Chunk:
        """Read the lines from the file."""
        return read_range(self.path, self.offset, self.size, self.first_line)


def line_ranges(path: str | os.PathLike, chunks: Iterable[Chunk] | None = None,
                chunk_bytes: int = CHUNK_BYTES) -> list[LineRange]:
    """Split a file into line ranges (reading it once), or describe chunks already read from it."""
    chunks = read_chunks(path, chunk_bytes) if chunks is None else chunks
    return [LineRange(str(path), c.offset, len(c.data), c.first_line, c.n_lines) for c in chunks]


def _meta(classes: list[str]) -> pd.DataFrame:
    columns = {"label": pd.Series(pd.Categorical([], categories=classes))}
    columns |= {c: pd.Series(dtype=np.float32) for c in classes}
    columns["error"] = pd.Series(dtype=object)
    return pd.DataFrame(columns, index=pd.Index([], dtype=np.int64, name="line"))


def _predict_range(part: LineRange, model: ModelFile, json_lines: bool, single: bool
                   ) -> pd.DataFrame:
    """Score one partition in a worker: one row per line, indexed by line number.

    ``label`` is categorical (the model's classes; missing for a bad line) and ``error`` is None
    for a good line: both travel back as a few bytes per line, not a string each.
    """
    answers = score(part.read(), model, json_lines, single)
    n = answers.n_lines
    codes = np.full(n, -1, dtype=np.int16)
    index = {c: i for i, c in enumerate(model.classes)}
    try:
        codes[answers.good] = [index[label] for label in answers.labels.tolist()]
    except KeyError as exc:
        raise ValueError(f"Model {model.name} answered label {exc} that is not among its "
                         f"classes {model.classes}.") from None
    probabilities = np.full((n, len(model.classes)), np.nan, dtype=np.float32)
    probabilities[answers.good] = answers.probabilities
    errors = np.full(n, None, dtype=object)
    for line, reason in answers.errors:
        errors[line - part.first_line] = reason
    frame = pd.DataFrame(
        {"label": pd.Categorical.from_codes(codes, categories=model.classes)},
        index=pd.RangeIndex(part.first_line, part.first_line + n, name="line"))
    for j, name in enumerate(model.classes):
        frame[name] = probabilities[:, j]
    frame["error"] = errors
    return frame


def predictions(path: str | os.PathLike, model: ModelFile, batch_strategy: str = "MultiRecord",
                chunk_bytes: int = CHUNK_BYTES, ranges: list[LineRange] | None = None,
                json_lines: bool | None = None):
    """Return a lazy ``dask.dataframe`` of a file's predictions, one row per input line.

    Index ``line`` (1-based, sorted, known divisions); columns ``label`` (categorical), one float32
    column per class, and ``error`` (None for a good line; a bad line has no label and NaNs).
    ``json_lines`` defaults to the file's suffix (:func:`~mlprod.batch.lines.is_json_lines`).

    Examples
    --------
    >>> frame = predictions("rows.csv", load_model("build/models", "penguins"))  # doctest: +SKIP
    >>> frame.label.value_counts().compute()                                    # doctest: +SKIP
    """
    import dask.dataframe as dd

    ranges = line_ranges(path, chunk_bytes=chunk_bytes) if ranges is None else ranges
    if not ranges:
        raise ValueError(f"{path} holds no line: there is nothing to partition.")
    divisions = [r.first_line for r in ranges] + [ranges[-1].first_line + ranges[-1].n_lines - 1]
    return dd.from_map(_predict_range, ranges, model=model,
                       json_lines=is_json_lines(path) if json_lines is None else json_lines,
                       single=batch_strategy == "SingleRecord", meta=_meta(model.classes),
                       divisions=divisions, label="mlprod-batch", enforce_metadata=False)


def _answers(frame: pd.DataFrame, part: LineRange, classes: list[str]) -> Answers:
    """Turn a partition's frame back into what the answer writer takes."""
    codes = frame["label"].cat.codes.to_numpy()
    good = np.flatnonzero(codes >= 0)
    errors = frame["error"]
    bad = np.flatnonzero(errors.notna().to_numpy())
    return Answers(part.first_line, part.n_lines, good,
                   np.asarray(classes, dtype=object)[codes[good]],
                   frame[classes].to_numpy(dtype=np.float32)[good],
                   [(part.first_line + int(i), str(errors.iloc[i])) for i in bad], part.size)


class DaskCluster(ModelBackend):
    """Score chunks on a Dask cluster: a new ``LocalCluster``, a scheduler address, or a client.

    Parameters
    ----------
    model : ModelFile
        The model, read by this process and shipped to the workers.
    dask : str or distributed.Client or cluster
        ``"local"`` starts a ``LocalCluster`` (stopped with the job); ``"tcp://host:8786"``
        connects to that scheduler; a ``Client`` or a cluster object is used as it is.
    n_workers : int, optional
        Workers of a new ``LocalCluster`` (one thread each); default one per core.
    batch_strategy : {"MultiRecord", "SingleRecord"}
        Rows per ONNX Runtime call, as in-process.
    timeout : float
        Seconds to wait for a scheduler given by its address.
    """

    def __init__(self, model: ModelFile, dask: Any = "local", n_workers: int | None = None,
                 batch_strategy: str = "MultiRecord", timeout: float = 10.0):
        self.model = model
        self.single = batch_strategy == "SingleRecord"
        self.timeout = timeout
        self.dask = dask
        self.n_workers = n_workers
        self.description = "Dask"
        self._client = None
        self._own: list = []  # what this object started, and stops
        self._threads = 1

    def open(self) -> DaskCluster:
        """Start or connect to the cluster (the model travels with each partition's task).

        Raises
        ------
        BatchError
            If the scheduler cannot be reached.
        """
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise BatchError("The Dask back end needs dask.distributed: pip install "
                             "'dask[distributed]' (it is in mlprod's dependencies).") from None
        dask = self.dask
        if isinstance(dask, Client):
            client = dask
        elif isinstance(dask, str) and dask == "local":
            cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                   dashboard_address=None)
            self._own.append(cluster)
            client = Client(cluster)
            self._own.insert(0, client)
        elif isinstance(dask, str):
            try:
                client = Client(dask, timeout=self.timeout)
            except (OSError, TimeoutError) as exc:
                raise BatchError(f"Cannot reach the Dask scheduler at {dask!r} ({exc}). Start one "
                                 f"(dask scheduler; dask worker {dask}) or pass --dask local."
                                 ) from None
            self._own.append(client)
        else:  # a cluster object (LocalCluster, ...)
            client = Client(dask)
            self._own.append(client)
        self._client = client
        workers = client.scheduler_info().get("workers", {})
        self._threads = max(1, sum(w.get("nthreads", 1) for w in workers.values()))
        where = "LocalCluster" if self._own and dask == "local" else client.scheduler.address
        self.description = f"Dask ({where}, {len(workers)} workers)"
        return self

    def chunk_bytes(self, max_payload_bytes: int) -> int:
        """The size of a partition: one payload, at most CHUNK_BYTES."""
        return min(max_payload_bytes, CHUNK_BYTES)

    def map(self, path: Path, chunks: Iterable[Chunk], json_lines: bool, join_source: bool
            ) -> Iterator[Rendered]:
        """Yield each partition's answer lines in order, two per worker thread in flight."""
        ranges = line_ranges(path, chunks)
        if not ranges:
            return
        frame = predictions(path, self.model, "SingleRecord" if self.single else "MultiRecord",
                            ranges=ranges, json_lines=json_lines)
        parts = frame.to_delayed()
        results = ordered_map(self._client.compute, parts, 2 * self._threads)
        for part, result in zip(ranges, results, strict=True):
            chunk = part.read() if join_source else None
            yield render(_answers(result, part, self.model.classes), chunk, join_source)

    def close(self) -> None:
        """Stop what this object started (client, cluster); leave a given client running."""
        while self._own:
            self._own.pop(0).close()
