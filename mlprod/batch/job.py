"""Run a batch transform over files: X → X.out and X.errors, atomically, resumable, with a summary.

Each output file is written under a temporary name (``.X.out.<random>.tmp``, never ending in
``.out``) and renamed when complete; ``X.errors`` (empty when every line was good) is renamed
before ``X.out``, so a finished ``X.out`` always has its errors beside it. A rerun skips every
``X.out`` that exists and redoes the rest; a job killed at any point loses only the file it was
writing.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlprod.batch.lines import is_json_lines, read_chunks
from mlprod.batch.scoring import BatchError
from mlprod.files import atomic_open


@dataclass
class Summary:
    """What a job did: files written and skipped, rows, bad lines, time."""

    backend: str = ""
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unfinished: str | None = None
    rows: int = 0
    errors: int = 0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """One line: rows, rows/s, bad lines, files, back end."""
        skipped = f", {len(self.skipped)} skipped (finished before)" if self.skipped else ""
        files = f"{len(self.written)} file{'' if len(self.written) == 1 else 's'}"
        return (f"{self.rows:,} rows in {self.seconds:.2f} s ({self.rows_per_second:,.0f} rows/s), "
                f"{self.errors:,} bad lines, {files} written{skipped}; {self.backend}")


class Stopped(Exception):
    """The job was interrupted (Ctrl-C, SIGTERM); ``summary`` says what finished."""

    def __init__(self, summary: Summary, signal_name: str = "SIGINT"):
        self.summary = summary
        self.signal_name = signal_name
        done = ", ".join(summary.written + summary.skipped) or "none"
        redo = (f"; {summary.unfinished} was not finished and will be redone by a rerun"
                if summary.unfinished else "")
        super().__init__(f"Stopped by {signal_name}: finished files: {done}{redo}. "
                         f"Rerun the same command to go on.")


def list_inputs(path: str | os.PathLike, output: str | os.PathLike) -> list[Path]:
    """Return the input files: the file itself, or the visible files of a folder, sorted.

    Raises
    ------
    BatchError
        If the path does not exist or the folder holds no file.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise BatchError(f"No input at {str(path)!r}: pass a file, or a folder of files, of "
                         f"header-less CSV lines (or JSON Lines).")
    same = Path(output).resolve() == path.resolve()
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                   and not (same and p.suffix in (".out", ".errors")))
    if not files:
        raise BatchError(f"The input folder {str(path)!r} holds no file to score.")
    return files


class StopRequest:
    """A stop asked for by a signal handler, acted on between chunks (a safe point).

    Raising from a signal handler could land anywhere (inside a library, a ``finally``, a
    destructor, where Python only prints "Exception ignored"); setting this instead lets the
    job stop where it knows what is finished.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def set(self, signal_name: str) -> None:
        self.signal_name = signal_name

    def check(self) -> None:
        """Raise KeyboardInterrupt (naming the signal) if a stop was asked for."""
        if self.signal_name is not None:
            exc = KeyboardInterrupt()
            exc.signal_name = self.signal_name  # type: ignore[attr-defined]
            raise exc


def run(backend: Any, inputs: list[Path], output: str | os.PathLike, max_payload_bytes: int,
        join_source: bool = False, progress: bool | None = None,
        stop: StopRequest | None = None, content_type: str | None = None) -> Summary:
    """Score every input file with ``backend``; return the summary.

    Parameters
    ----------
    backend : InProcess, Endpoint or DaskCluster
        Opened here and closed at the end.
    inputs : list of Path
        From :func:`list_inputs`.
    output : path
        The folder for ``X.out`` and ``X.errors`` (created if missing).
    max_payload_bytes : int
        The size of a request or partition.
    join_source : bool
        Prefix each answer with its input line.
    progress : bool, optional
        Show a progress bar; default only when standard error is a terminal.
    stop : StopRequest, optional
        Checked between chunks and files (the command line's SIGINT and SIGTERM handlers set it).
    content_type : {"text/csv", "application/jsonlines"}, optional
        The inputs' format; default by each file's suffix (``.jsonl``, ``.ndjson``, ``.json``).

    Raises
    ------
    Stopped
        On KeyboardInterrupt (or SIGTERM turned into one): the unfinished file left no output.
    """
    output = Path(output)
    summary = Summary()
    start = time.perf_counter()
    todo = []
    for path in inputs:
        if (output / f"{path.name}.out").exists():
            summary.skipped.append(path.name)
        else:
            todo.append(path)
    if not todo:
        summary.backend = "nothing to do"
        return summary
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"Cannot create the output folder {str(output)!r}: {exc}.") from None
    show = sys.stderr.isatty() if progress is None else progress
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(p.stat().st_size for p in todo), unit="B", unit_scale=True,
                   desc="batch", file=sys.stderr)
    try:
        stop = stop or StopRequest()
        backend.open()
        summary.backend = backend.description
        for path in todo:
            stop.check()
            summary.unfinished = path.name
            _one_file(backend, path, output, max_payload_bytes, join_source, summary, bar, stop,
                      is_json_lines(path, content_type))
            summary.written.append(path.name)
            summary.unfinished = None
    except KeyboardInterrupt as exc:
        summary.seconds = time.perf_counter() - start
        raise Stopped(summary, getattr(exc, "signal_name", "SIGINT")) from None
    finally:
        if bar is not None:
            bar.close()
        backend.close()
    summary.seconds = time.perf_counter() - start
    return summary


def _one_file(backend: Any, path: Path, output: Path, max_payload_bytes: int, join_source: bool,
              summary: Summary, bar: Any, stop: StopRequest, json_lines: bool) -> None:
    out = output / f"{path.name}.out"
    errors = output / f"{path.name}.errors"
    for name in (out.name, errors.name):  # temporary files a killed run left behind
        for stale in output.glob(f".{glob.escape(name)}.*.tmp"):
            stale.unlink(missing_ok=True)

    chunks = read_chunks(path, backend.chunk_bytes(max_payload_bytes))
    try:
        with atomic_open(out, "wb") as answers_file, \
                atomic_open(errors, "w", encoding="utf-8") as errors_file:
            for rendered in backend.map(path, chunks, json_lines, join_source):
                stop.check()
                answers_file.write(rendered.text)
                errors_file.writelines(f"{line}: {reason}\n" for line, reason in rendered.errors)
                summary.rows += rendered.n_lines
                summary.errors += len(rendered.errors)
                if bar is not None:
                    bar.set_postfix(rows=f"{summary.rows:,}", errors=summary.errors, refresh=False)
                    bar.update(rendered.n_bytes)
    except OSError as exc:
        raise BatchError(f"Cannot read {str(path)!r} or write its output in {str(output)!r}: "
                         f"{exc}.") from None
