"""Read input files as chunks of whole lines, and parse a chunk into a model's feed, line by line.

A chunk carries its first line number, so every back end can name a bad line and put each answer
on the line of its input. Parsing checks each line the way the server does (field count, numbers
Python's ``float`` reads, finite and within float32's range, no ``_``), so a line that passes here
is never refused by ``/invocations``, and a bad line costs only its own answer.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_BOM = b"\xef\xbb\xbf"
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
#: SageMaker's ContentType values for batch transform input.
CONTENT_TYPES = ("text/csv", "application/jsonlines")


@dataclass(frozen=True)
class Chunk:
    """Whole lines of one input file and the 1-based number of the first one.

    ``data`` holds complete lines, each ending in ``\\n`` except possibly the file's last one;
    ``offset`` is where they start in the file (in bytes).
    """

    first_line: int
    data: bytes
    offset: int = 0

    @property
    def n_lines(self) -> int:
        """How many lines the chunk holds (a last line without ``\\n`` counts)."""
        count = self.data.count(b"\n")
        return count + (1 if self.data and not self.data.endswith(b"\n") else 0)

    def lines(self) -> list[bytes]:
        """The lines without their ends (``\\n``, and a ``\\r`` before it)."""
        lines = self.data.split(b"\n")
        if self.data.endswith(b"\n") or not self.data:
            lines.pop()
        if b"\r" in self.data:
            lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        return lines


@dataclass
class Rows:
    """A parsed chunk: the feed of its good lines, and the reasons its bad lines were refused.

    Attributes
    ----------
    first_line, n_lines : int
        The chunk's first line number (1-based) and its number of lines.
    good : ndarray of int, shape (n_good,)
        Offsets in the chunk (0-based) of the lines that parsed, ascending.
    feed : dict of str to ndarray
        One ``[n_good, 1]`` array per feature: float32 numerics (NaN missing), str categoricals.
    errors : list of (int, str)
        ``(line number, reason)`` for each bad line, ascending.
    records : list of dict, optional
        JSON Lines only: the good records, features only, for sending on as JSON.
    """

    first_line: int
    n_lines: int
    good: np.ndarray
    feed: dict[str, np.ndarray]
    errors: list[tuple[int, str]] = field(default_factory=list)
    records: list[dict] | None = None


def is_json_lines(path: str | os.PathLike, content_type: str | None = None) -> bool:
    """Tell JSON Lines from CSV: by ``content_type`` when given, else by the file's suffix.

    ``.jsonl``, ``.ndjson`` and ``.json`` are JSON Lines; any other name is CSV.
    """
    if content_type is not None:
        if content_type not in CONTENT_TYPES:
            raise ValueError(f"content_type={content_type!r}; use one of {list(CONTENT_TYPES)}.")
        return content_type == "application/jsonlines"
    return Path(path).suffix.lower() in JSON_SUFFIXES


def read_chunks(path: str | os.PathLike, chunk_bytes: int) -> Iterator[Chunk]:
    """Yield the file as chunks of whole lines, each about ``chunk_bytes`` long (a longer line whole).

    A UTF-8 byte order mark at the start of the file is dropped.
    """
    chunk_bytes = max(1, int(chunk_bytes))
    first = 1
    rest = b""
    with open(path, "rb") as fh:
        block = fh.read(chunk_bytes)
        offset = len(_BOM) if block.startswith(_BOM) else 0
        block = block[offset:]
        while block:
            data = rest + block
            end = data.rfind(b"\n") + 1
            if end:  # else no line ends yet: a line longer than a chunk, keep reading
                chunk = Chunk(first, data[:end], offset)
                rest = data[end:]
                first += chunk.n_lines
                offset += end
                yield chunk
            else:
                rest = data
            block = fh.read(chunk_bytes)
    if rest:
        yield Chunk(first, rest, offset)


def read_range(path: str | os.PathLike, offset: int, size: int, first_line: int) -> Chunk:
    """Read the chunk of ``size`` bytes at ``offset`` (whole lines, from :func:`read_chunks`)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(size)
    if len(data) != size:
        raise OSError(f"{path} is shorter than expected ({offset + len(data)} bytes; lines from "
                      f"{first_line} end at byte {offset + size}): did it change during the job?")
    return Chunk(first_line, data, offset)


def parse(chunk: Chunk, features: list[dict[str, str]], json_lines: bool = False) -> Rows:
    """Parse a chunk of CSV (or JSON Lines) into the feed of its good lines and the bad lines' reasons.

    Parameters
    ----------
    chunk : Chunk
        Header-less CSV lines in feature order, or one JSON record (or list) per line.
    features : list of dict
        The model's ``features`` metadata, ``[{"name", "kind": "numeric"|"categorical"}]``.
    json_lines : bool
        Parse JSON Lines instead of CSV.
    """
    if json_lines:
        return _parse_json(chunk, features)
    data = chunk.data
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return _parse_slow(chunk, features)
    if b'"' in data:  # quoted fields: the csv module reads them
        return _parse_slow(chunk, features)
    width = len(features)
    counts, empty = _commas_per_line(data)
    ok = (counts == width - 1) & ~empty
    n_lines = len(counts)
    good = np.flatnonzero(ok)
    errors = {int(i): _width_reason(0 if empty[i] else int(counts[i]) + 1, width)
              for i in np.flatnonzero(~ok)}
    if len(good) == 0:
        return _rows(chunk, n_lines, good, {}, features, errors)
    if len(good) == n_lines:
        text = data
    else:
        lines = chunk.lines()
        text = b"\n".join([lines[i] for i in good])
    names = [f["name"] for f in features]
    numeric = [f["name"] for f in features if f["kind"] == "numeric"]
    try:
        frame = pd.read_csv(io.BytesIO(text), header=None, names=names, engine="c",
                            keep_default_na=False, na_values={c: [""] for c in numeric},
                            dtype={f["name"]: object for f in features if f["kind"] != "numeric"},
                            skip_blank_lines=False, low_memory=False)
    except (ValueError, pd.errors.ParserError):  # e.g. a lone "\r" inside a line
        return _parse_slow(chunk, features)
    if len(frame) != len(good):  # pandas saw the lines differently: let the careful path decide
        return _parse_slow(chunk, features)
    columns = {name: frame[name] for name in names}
    return _rows(chunk, n_lines, good, columns, features, errors)


def _commas_per_line(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Count the commas of each line, and tell empty lines (``""`` or ``"\\r"``), with numpy."""
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw == 10)
    if len(raw) and raw[-1] != 10:
        ends = np.append(ends, len(raw))
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    commas = np.flatnonzero(raw == 44)  # sorted positions: count them between starts and ends
    counts = np.searchsorted(commas, ends) - np.searchsorted(commas, starts)
    length = ends - starts
    empty = (length == 0) | ((length == 1) & (raw[np.minimum(starts, len(raw) - 1)] == 13))
    return counts, empty


def _width_reason(got: int, width: int) -> str:
    if got == 0:
        return f"an empty line; expected {width} fields (header-less CSV in feature order)"
    return f"{got} field{'s' if got != 1 else ''}; expected {width} (header-less CSV in feature order)"


def _parse_slow(chunk: Chunk, features: list[dict[str, str]]) -> Rows:
    """Parse line by line with the csv module: quotes, invalid UTF-8, anything unusual."""
    lines = chunk.lines()
    width = len(features)
    errors: dict[int, str] = {}
    good, rows = [], []
    for i, raw in enumerate(lines):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors[i] = f"not UTF-8 ({exc.reason} at byte {exc.start})"
            continue
        try:
            fields = next(csv.reader([line]), [])
        except csv.Error as exc:
            errors[i] = f"not CSV ({exc})"
            continue
        if len(fields) != width or not line.strip("\r"):
            errors[i] = _width_reason(len(fields) if line.strip("\r") else 0, width)
            continue
        good.append(i)
        rows.append(fields)
    columns = {f["name"]: pd.Series([row[j] for row in rows], dtype=object)
               for j, f in enumerate(features)}
    for name, column in columns.items():  # "" is missing for numerics, as pandas reads it
        kind = next(f["kind"] for f in features if f["name"] == name)
        if kind == "numeric":
            columns[name] = column.where(column != "", np.nan)
    return _rows(chunk, len(lines), np.asarray(good, dtype=np.int64), columns, features, errors)


def _rows(chunk: Chunk, n_lines: int, good: np.ndarray, columns: dict[str, pd.Series],
          features: list[dict[str, str]], errors: dict[int, str],
          records: list[dict] | None = None) -> Rows:
    """Check the numbers of the good lines, drop the lines that fail, and build the feed."""
    keep = np.ones(len(good), dtype=bool)
    values: dict[str, np.ndarray] = {}
    for position, f in enumerate(features):
        if len(good) == 0:
            break
        column = columns[f["name"]]
        if f["kind"] == "numeric":
            numbers, bad = _numbers(column)
            for j, why in bad.items():
                line = int(good[j])
                reason = f"field {position + 1} ({f['name']}): {_show(column.iloc[j])} {why}"
                errors[line] = f"{errors[line]}; {reason}" if line in errors else reason
                keep[j] = False
            values[f["name"]] = numbers
        else:
            values[f["name"]] = _texts(column)
    if not keep.all():
        good = good[keep]
        values = {k: v[keep] for k, v in values.items()}
        if records is not None:
            records = [r for r, k in zip(records, keep, strict=True) if k]
    feed = {k: v.reshape(-1, 1) for k, v in values.items()}
    ordered = [(chunk.first_line + i, reason) for i, reason in sorted(errors.items())]
    return Rows(chunk.first_line, n_lines, good, feed, ordered, records)


def _numbers(column: pd.Series) -> tuple[np.ndarray, dict[int, str]]:
    """Return float32 values and, for each refused value's position, why."""
    bad: dict[int, str] = {}
    if column.dtype.kind in "fiu":
        numbers = column.to_numpy(dtype=np.float64)
    else:  # some text pandas could not read as a number: decide those as the server does
        values = column.to_numpy(dtype=object)
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, copy=True)
        # to_numeric refuses all that float() refuses (and "1_0", "١"); it reads True as 1.
        doubtful = np.isnan(numbers) | np.fromiter((type(v) is bool for v in values), dtype=bool,
                                                   count=len(values))
        for j in np.flatnonzero(doubtful).tolist():
            numbers[j], reason = _number(values[j])
            if reason:
                bad[j] = reason
    with np.errstate(invalid="ignore"):
        beyond = ~np.isnan(numbers) & ~(np.abs(numbers) <= _FLOAT32_MAX)
    for j in np.flatnonzero(beyond).tolist():
        bad.setdefault(j, "is not finite or beyond float32's range")
        numbers[j] = np.nan
    return numbers.astype(np.float32), bad


def _number(value: object) -> tuple[float, str]:
    if value is None or (isinstance(value, float) and value != value):
        return np.nan, ""
    if type(value) is bool:
        return np.nan, "is not a number"
    if isinstance(value, (int, float)):
        return float(value), ""
    text = str(value)
    if text == "":
        return np.nan, ""
    if "_" in text:  # float() reads "3_9.1" as 39.1; a number in a file has no "_"
        return np.nan, "is not a number"
    try:
        return float(text), ""
    except ValueError:
        return np.nan, "is not a number"


def _texts(column: pd.Series) -> np.ndarray:
    values = column.to_numpy(dtype=object)
    if len(values) and pd.api.types.infer_dtype(values, skipna=False) != "string":
        values = np.array(["" if v is None or v != v else str(v) for v in values], dtype=object)
    return values


def _show(value: object, limit: int = 40) -> str:
    text = repr(value) if isinstance(value, str) else repr(str(value))
    return text if len(text) <= limit else text[:limit - 4] + "...'"


def _parse_json(chunk: Chunk, features: list[dict[str, str]]) -> Rows:
    """Parse JSON Lines: a record ``{feature: value}`` (or a list in feature order) per line."""
    names = [f["name"] for f in features]
    kinds = {f["name"]: f["kind"] for f in features}
    lines = chunk.lines()
    errors: dict[int, str] = {}
    good: list[int] = []
    records: list[dict] = []
    for i, line in enumerate(lines):
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            errors[i] = f"not JSON ({str(exc).split(':')[0]})"
            continue
        if type(value) is list and len(value) == len(names):
            value = dict(zip(names, value, strict=True))
        if type(value) is not dict:
            errors[i] = (f"not a JSON record: expected {{column: value}} with {names}, or a list "
                         f"of {len(names)} values in that order")
            continue
        missing = [n for n in names if n not in value]
        if missing:
            errors[i] = f"missing {missing}; a record needs {names}"
            continue
        reason = next((_json_reason(n, kinds[n], value[n]) for n in names
                       if _json_reason(n, kinds[n], value[n])), None)
        if reason:
            errors[i] = reason
            continue
        good.append(i)
        records.append({n: value[n] for n in names})
    columns = {n: pd.Series([r[n] for r in records], dtype=object) for n in names}
    return _rows(chunk, len(lines), np.asarray(good, dtype=np.int64), columns, features, errors,
                 records)


def _json_reason(name: str, kind: str, value: object) -> str:
    """Why a JSON value does not fit its field, as the server judges it ("" when it fits)."""
    if value is None:
        return ""
    if kind == "numeric":  # JSON numbers or null: a string is no number, even "3.5"
        return "" if type(value) in (int, float) else f"{name}: {_show(value)} is not a number"
    return "" if type(value) is str else f"{name}: {_show(value)} is not a string"
