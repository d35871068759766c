"""Read a data-capture folder back into a DataFrame, one row per scored input row.

The server writes SageMaker Model Monitor's format (CONTRACTS §11): JSON Lines under
``DIR/<model>/<variant>/YYYY/MM/DD/HH/<file>.jsonl``, one record per request::

    {"captureData": {"endpointInput": {"observedContentType", "mode": "INPUT", "data", "encoding"},
                     "endpointOutput": {..., "mode": "OUTPUT", ...}},
     "eventMetadata": {"eventId", "inferenceId", "inferenceTime"}, "eventVersion": "0"}

A record that cannot be read (a corrupt line, a body of the wrong shape, more answers than
inputs) is skipped and reported with its file and line: one :class:`CaptureWarning` lists them,
and the returned frame's ``attrs["problems"]`` keeps them, a tuple of :class:`CaptureProblem`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mlprod.monitoring.bodies import BodyError, body_text, read_input, read_output

__all__ = ["read_capture", "wait_for_capture", "CaptureProblem", "CaptureProblems", "CaptureWarning",
           "META_COLUMNS"]

#: Columns every capture frame has besides the features, the label and the class probabilities.
META_COLUMNS = ["model", "variant", "time", "inference_id", "event_id", "row"]
LAYOUT = "<model>/<variant>/YYYY/MM/DD/HH/<file>.jsonl"


class CaptureWarning(UserWarning):
    """Some capture records could not be read and were skipped; the message lists them."""


@dataclass(frozen=True)
class CaptureProblem:
    """One skipped capture record (or file): where it is and why it was skipped."""

    file: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class CaptureProblems(tuple):
    """The records :func:`read_capture` skipped: an immutable tuple of :class:`CaptureProblem`.

    pandas deep-copies ``DataFrame.attrs`` on every operation; being immutable, this tuple is
    shared instead, so a capture with thousands of bad lines does not slow each step down.
    """

    def __deepcopy__(self, memo: dict) -> CaptureProblems:
        return self


def read_capture(folder: str | os.PathLike, model: str | None = None, *,
                 variant: str | None = None, schema: Sequence[Mapping[str, str]] | None = None,
                 classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Read every capture record under ``folder`` into one row per input row.

    Parameters
    ----------
    folder : path-like
        The server's ``--capture-dir``.
    model, variant : str, optional
        Read only this model's (variant's) records.
    schema : list of {"name", "kind"}, optional
        The model's features in input order (the order of header-less CSV fields); numeric
        ones become float64 (missing: NaN), categorical ones str (missing: ``""``).
        Default: ``mlprod.data.schema()``.
    classes : list of str, optional
        Names of the probability columns where the answer does not name them (V2 JSON,
        header-less CSV). Default: ``mlprod.data.CLASSES``.

    Returns
    -------
    DataFrame of shape (n_rows, 6 + n_features + 1 + n_classes)
        In file and line order: ``model``, ``variant``, ``time`` (UTC), ``inference_id``,
        ``event_id``, ``row`` (its position in the request), the features, ``label`` (the
        predicted class) and one column per class. ``attrs["problems"]`` holds the records
        skipped (a tuple of :class:`CaptureProblem`, empty when none was); a
        :class:`CaptureWarning` names them too.

    Raises
    ------
    FileNotFoundError
        If ``folder`` (or the model's folder in it) does not exist.
    """
    from mlprod import data

    schema = [dict(f) for f in (data.schema() if schema is None else schema)]
    classes = list(data.CLASSES if classes is None else classes)
    names = [f["name"] for f in schema]
    root = Path(folder)
    start = root if model is None else root / model
    if not start.is_dir():
        raise FileNotFoundError(f"No capture folder {start}; start the server with "
                                f"--capture-dir {root} --capture-percent 100 and send requests.")
    rows: dict[str, list] = {c: [] for c in META_COLUMNS + names + ["label"] + classes}
    problems: list[CaptureProblem] = []
    for path in sorted(start.rglob("*.jsonl")):
        if path.name.startswith("."):
            continue  # a writer's temporary file
        parts = path.relative_to(root).parts
        if len(parts) != 7 or not all(p.isdigit() for p in parts[2:6]):
            problems.append(CaptureProblem(path, 0, f"not in the layout {LAYOUT} under {root}; "
                                                    f"skipped (pass the server's --capture-dir)"))
            continue
        if variant is None or parts[1] == variant:
            _read_file(path, parts[0], parts[1], names, classes, rows, problems)
    frame = pd.DataFrame(rows)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["row"] = frame["row"].astype("int64")
    for feature in schema:
        frame[feature["name"]] = _typed(frame[feature["name"]], feature["kind"])
    for name in classes:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    frame["label"] = frame["label"].astype(object).where(frame["label"].notna(), "").astype(str)
    frame.attrs["problems"] = CaptureProblems(problems)
    if problems:
        shown = "\n".join(map(str, problems[:20]))
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        warnings.warn(f"{len(problems)} capture record(s) skipped:\n{shown}{more}\n"
                      f"The frame's attrs['problems'] lists them all.", CaptureWarning,
                      stacklevel=2)
    return frame


def _read_file(path: Path, model: str, variant: str, names: list[str], classes: list[str],
               rows: dict[str, list], problems: list[CaptureProblem]) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = _record(line, names, classes)
        except BodyError as exc:
            reason = str(exc)
            if number == len(lines) and not text.endswith("\n"):
                reason += " (the last line has no newline: the writer may still be appending)"
            problems.append(CaptureProblem(path, number, reason))
            continue
        meta, columns, labels, probs = record
        n = len(labels)
        for key in ("time", "inference_id", "event_id"):
            rows[key].extend([meta[key]] * n)
        rows["model"].extend([model] * n)
        rows["variant"].extend([variant] * n)
        rows["row"].extend(range(n))
        for name in names:
            rows[name].extend(columns.get(name, [None] * n))
        rows["label"].extend(labels)
        for name in classes:
            rows[name].extend(probs.get(name, [None] * n))


def _record(line: str, names: list[str], classes: list[str]) -> tuple:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BodyError(f"not a JSON record ({exc})") from None
    capture = record.get("captureData") if isinstance(record, dict) else None
    meta = record.get("eventMetadata") if isinstance(record, dict) else None
    if not isinstance(capture, dict) or not isinstance(meta, dict):
        raise BodyError("not a capture record: it needs 'captureData' and 'eventMetadata' "
                        "objects")
    time = meta.get("inferenceTime")
    try:
        datetime.fromisoformat(str(time))
    except ValueError:
        raise BodyError(f"eventMetadata.inferenceTime {time!r} is not an ISO 8601 time") from None
    where = "captureData.endpointInput"
    try:
        columns = read_input(*body_text(capture.get("endpointInput"), where), names)
        where = "captureData.endpointOutput"
        labels, probs = read_output(*body_text(capture.get("endpointOutput"), where), classes)
    except BodyError as exc:
        raise BodyError(f"{where}: {exc}") from None
    unknown = sorted(set(columns) - set(names))
    missing = [n for n in names if n not in columns]
    if unknown or missing:
        raise BodyError(f"the request's columns {sorted(columns)} are not the features "
                        f"{names} (unknown {unknown}, missing {missing})")
    n_in = len(next(iter(columns.values())))
    if n_in != len(labels):
        raise BodyError(f"the request has {n_in} rows but the response {len(labels)} answers")
    return ({"time": time, "inference_id": meta.get("inferenceId"),
             "event_id": meta.get("eventId")}, columns, labels, probs)


def _typed(column: pd.Series, kind: str) -> pd.Series:
    if kind == "numeric":
        values = column.where(column.notna() & (column != ""), np.nan)
        try:
            return values.astype("float64")
        except (TypeError, ValueError):
            return values  # text in a numeric column: kept, so the data-type check can see it
    return column.astype(object).where(column.notna(), "").astype(str)


def wait_for_capture(folder: str | os.PathLike, model: str, rows: int, timeout: float = 10.0,
                     **options) -> pd.DataFrame:
    """Read the capture until it holds ``rows`` rows (the writer flushes every second).

    The folder may not exist yet when the first records are still in the server's buffer.
    Returns what is there after ``timeout`` seconds, even if fewer (check its length).
    """
    import time

    deadline = time.monotonic() + timeout
    seen = pd.DataFrame()
    while time.monotonic() < deadline:
        try:
            seen = read_capture(folder, model, **options)
        except FileNotFoundError:  # nothing written yet
            pass
        if len(seen) >= rows:
            break
        time.sleep(0.2)
    return seen
