"""Tables in and predictions out for ``/invocations``: CSV and the MLflow/SageMaker JSON shapes.

In: CSV with or without a header row (columns in the model's feature order), or JSON as a list
of records, ``instances``, ``inputs``, ``dataframe_split`` or ``dataframe_records``.
Out: ``{"predictions": [{"label", "probabilities": {class: p}}]}``, or CSV with exactly one line
per input row (a header line only when asked for).
"""

from __future__ import annotations

import csv
import io

import numpy as np
import orjson

from server import tensors
from server.errors import ApiError, shorten
from server.repository import ModelVersion
from server.v2 import parse_json

JSON_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def read_csv(body: bytes, model: ModelVersion) -> dict[str, np.ndarray]:
    """Decode CSV rows into the model's feed; a first row naming the features is a header.

    Raises
    ------
    ApiError
        400 naming the row, the column, the value and the fix.
    """
    if body.startswith(b"\xef\xbb\xbf"):  # the byte order mark spreadsheets write
        body = body[3:]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"The CSV body is not UTF-8 ({exc}). Save the file as UTF-8.") from None
    names = [f.name for f in model.features]
    first = text[:text.find("\n")] if "\n" in text else text
    header = None
    if any(field.strip().strip('"') in names for field in first.split(",")):
        try:
            header = next(csv.reader([first]))
        except csv.Error as exc:  # e.g. a lone carriage return inside the line
            raise ApiError(400, f"The CSV header line cannot be parsed: {exc}. Send "
                                f"comma-separated names, one line, ending in \\n.") from None
        header = [field.strip() for field in header]
        _check_names(header, names, "CSV header")
    order = header or names
    columns = _plain_columns(body, text, len(order), skip=header is not None)
    if columns is None:
        columns = _parsed_columns(text, order, skip=header is not None)
    return _feed(model, dict(zip(order, columns, strict=True)), text=True)


def _plain_columns(body: bytes, text: str, width: int, skip: bool) -> list[list[str]] | None:
    """Split unquoted CSV into columns with a few whole-body calls.

    Returns None, for the careful parser to handle, when the body has quotes, carriage
    returns, blank lines or a line with the wrong number of fields.
    """
    if width < 2 or '"' in text or "\r" in text or not text.strip("\n"):
        return None
    if len(body) < 2048:  # a few rows: splitting line by line costs less than numpy's setup
        rows = text.strip("\n").split("\n")[1 if skip else 0:]
        if not rows or "" in rows:
            return None
        split = [row.split(",") for row in rows]
        if set(map(len, split)) != {width}:
            return None
        return list(zip(*split, strict=True))
    if text.endswith("\n"):
        text, body = text[:-1], body[:-1]
    raw = np.frombuffer(body, dtype=np.uint8)
    ends = np.append(np.flatnonzero(raw == 10), len(raw))  # each line's end
    commas = np.concatenate(([0], np.cumsum(raw == 44)))  # commas before each position
    if not (np.diff(commas[ends], prepend=0) == width - 1).all():
        return None
    fields = text.replace("\n", ",").split(",")
    start = width if skip else 0
    if len(fields) <= start:
        raise ApiError(400, "The CSV body holds no data rows: the batch is empty. Send at least "
                            "one row after the header.")
    return [fields[start + j::width] for j in range(width)]


def _parsed_columns(text: str, order: list[str], skip: bool) -> list:
    """Parse CSV with the csv module (quotes, blank lines); name the first bad row."""
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as exc:
        raise ApiError(400, f"The CSV body cannot be parsed: {exc}. Send comma-separated "
                            f"rows, one per line.") from None
    if skip:
        rows = rows[1:]
    if not rows:
        raise ApiError(400, f"The CSV body holds no data rows: the batch is empty. Send at "
                            f"least one row of {len(order)} values: {','.join(order)}.")
    width = len(order)
    if set(map(len, rows)) != {width}:
        i = next(i for i, row in enumerate(rows) if len(row) != width)
        raise ApiError(400, f"CSV row {i + 1} has {len(rows[i])} values "
                            f"({shorten(','.join(rows[i]))}); expected {width}: "
                            f"{','.join(order)}. Send one value per column, empty for missing.")
    return list(zip(*rows, strict=True))


def read_json(body: bytes, model: ModelVersion) -> dict[str, np.ndarray]:
    """Decode a JSON table (records, instances, inputs, dataframe_split, dataframe_records).

    Raises
    ------
    ApiError
        400 naming the shape received and the shapes accepted.
    """
    payload = parse_json(body)
    if type(payload) is dict:
        keys = [k for k in JSON_KEYS if k in payload]
        if len(keys) != 1:
            raise ApiError(400, f"A JSON body must hold exactly one of {list(JSON_KEYS)} (or be "
                                f"a list of records); got keys {sorted(payload)[:10]}. Example: "
                                f'{{"dataframe_split": {{"columns": [...], "data": [[...]]}}}}.')
        key = keys[0]
        value = payload[key]
        if key == "dataframe_split":
            columns = _split(value, model)
        elif type(value) is dict:  # inputs/instances as columns, or one record
            columns = _columns(value, model, key)
        else:
            columns = _rows(value, model, key)
    else:
        columns = _rows(payload, model, "body")
    return _feed(model, columns, text=False)


def write_json(model: ModelVersion, results: list[np.ndarray]) -> bytes:
    """Encode ``{"predictions": [...]}``, one object per row, probabilities keyed by class."""
    columns = []
    for value in results:
        if value.dtype == object:
            column = value.tolist()
        else:  # orjson writes float32 at its shortest exact form; read back, floats stay tidy
            column = orjson.loads(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY))
            if value.ndim == 2 and value.shape[1] == len(model.classes):
                classes = model.classes
                column = [dict(zip(classes, row, strict=True)) for row in column]
        columns.append(column)
    keys = model.output_names
    return orjson.dumps({"predictions": [dict(zip(keys, row, strict=True))
                                         for row in zip(*columns, strict=True)]})


def write_csv(model: ModelVersion, results: list[np.ndarray], header: bool = False) -> bytes:
    """Encode CSV, one line per row; with ``header``, a first line ``label,Adelie,...``."""
    names: list[str] = []
    parts: list[list[bytes]] = []
    for name, value in zip(model.output_names, results, strict=True):
        flat = value.reshape(len(value), -1)
        width = flat.shape[1]
        if value.ndim == 1:
            names.append(name)
        elif len(model.classes) == width:
            names.extend(model.classes)
        else:
            names.extend(f"{name}_{j}" for j in range(width))
        if value.dtype != object:
            parts.append(_number_lines(flat))
        elif width == 1:
            items = value.ravel().tolist()
            fields = {v: _csv_field(str(v)) for v in set(items)}  # labels repeat: encode once
            parts.append([fields[v] for v in items])
        else:
            parts.append([b",".join(_csv_field(str(v)) for v in row) for row in flat.tolist()])
    lines = [b",".join(_csv_field(h) for h in names)] if header else []
    lines.extend(map(b",".join, zip(*parts, strict=True)))
    lines.append(b"")
    return b"\n".join(lines)


def _number_lines(value: np.ndarray) -> list[bytes]:
    text = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    return text[2:-2].split(b"],[")


def _csv_field(text: str) -> bytes:
    if any(c in text for c in ',"\n\r'):
        text = '"' + text.replace('"', '""') + '"'
    return text.encode()


def _check_names(given: list, names: list[str], where: str) -> None:
    unknown = [c for c in given if c not in names]
    missing = [c for c in names if c not in given]
    if unknown or missing or len(given) != len(names):
        parts = []
        if unknown:
            parts.append(f"unknown columns {shorten(unknown, 200)}")
        if missing:
            parts.append(f"missing columns {missing}")
        if not parts:
            parts.append(f"repeated columns in {shorten(given, 200)}")
        raise ApiError(400, f"{where}: {'; '.join(parts)}. The model takes exactly {names}: "
                            f"rename, add or drop columns to match.")


def _split(value: object, model: ModelVersion) -> dict[str, list]:
    names = [f.name for f in model.features]
    if type(value) is not dict or type(value.get("data")) is not list:
        raise ApiError(400, f"'dataframe_split' must be an object with 'columns' and 'data' "
                            f"(a list of rows); got {shorten(value)}.")
    columns = value.get("columns", names)
    if type(columns) is not list:
        raise ApiError(400, f"'dataframe_split.columns' must be a list of names; got "
                            f"{shorten(columns)}. Send {names}.")
    _check_names(columns, names, "dataframe_split.columns")
    return _transpose(value["data"], columns, "dataframe_split.data")


def _columns(value: dict, model: ModelVersion, where: str) -> dict[str, list]:
    names = [f.name for f in model.features]
    _check_names(list(value), names, where)
    if all(type(v) is not list for v in value.values()):  # a single record
        return {k: [v] for k, v in value.items()}
    lengths = {k: len(v) if type(v) is list else None for k, v in value.items()}
    if len(set(lengths.values())) != 1:
        raise ApiError(400, f"{where}: columns must be lists of the same length; got lengths "
                            f"{lengths}. Send one value per row in every column.")
    return value


def _rows(value: object, model: ModelVersion, where: str) -> dict[str, list]:
    names = [f.name for f in model.features]
    if type(value) is not list:
        raise ApiError(400, f"{where} must be a list of records ({{column: value}}) or of rows "
                            f"in the order {names}; got {shorten(value)}.")
    if not value:
        raise ApiError(400, f"{where} is an empty list: the batch is empty. Send at least one "
                            f"row.")
    first = type(value[0])
    if first is dict:
        return _records(value, names, where)
    if first is list:
        return _transpose(value, names, where)
    raise ApiError(400, f"{where} must hold records ({{column: value}}) or rows (lists in the "
                        f"order {names}); its first item is {shorten(value[0])}.")


def _records(rows: list, names: list[str], where: str) -> dict[str, list]:
    try:
        columns = {n: [r[n] for r in rows] for n in names}
    except (KeyError, TypeError):
        columns = None
    width = len(names)
    if columns is None or any(len(r) != width for r in rows):
        for i, r in enumerate(rows):
            if type(r) is not dict:
                raise ApiError(400, f"{where}[{i}] is {shorten(r)}, not a record. Send every "
                                    f"row as {{column: value}}.")
            _check_names(list(r), names, f"{where}[{i}]")
    return columns  # type: ignore[return-value]


def _transpose(rows: object, names: list[str], where: str) -> dict[str, list]:
    if type(rows) is not list or not rows:
        raise ApiError(400, f"{where} must be a non-empty list of rows; got {shorten(rows)}. "
                            f"Send at least one row.")
    width = len(names)
    if not all(type(r) is list and len(r) == width for r in rows):
        i, r = next((i, r) for i, r in enumerate(rows) if type(r) is not list or len(r) != width)
        raise ApiError(400, f"{where}[{i}] is {shorten(r)}; every row must be a list of "
                            f"{width} values in the order {names}.")
    return dict(zip(names, (list(c) for c in zip(*rows, strict=True)), strict=True))


def _feed(model: ModelVersion, columns: dict[str, list], text: bool) -> dict[str, np.ndarray]:
    if not model.tabular:
        raise ApiError(400, f"Model '{model.name}' takes tensors "
                            f"{[s.metadata() for s in model.inputs]}, not table columns. Call "
                            f"POST /v2/models/{model.name}/infer instead.")
    specs = model.input_specs
    feed = {}
    for feature in model.features:
        spec = specs[feature.name]
        values = columns[feature.name]
        where = f"column '{feature.name}'"
        if not values:
            raise ApiError(400, f"{where} is empty: the batch is empty. Send at least one row.")
        if spec.datatype == "BYTES":
            arr = tensors.text(values) if text else tensors.strings(values, where)
        elif text:
            arr = tensors.numeric_text(values, spec.dtype, where)
        else:
            arr = tensors.numeric(values, spec.dtype, where)
        if arr.ndim != 1:
            raise ApiError(400, f"{where} must hold one value per row; got nested lists "
                                f"{shorten(values)}.")
        feed[feature.name] = arr.reshape(-1, 1)
    return feed
