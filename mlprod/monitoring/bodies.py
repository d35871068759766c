"""Decode captured request and response bodies back into columns.

The server captures each body as text (CONTRACTS §11). Requests: V2 JSON (``{"inputs": [tensors]}``),
``/invocations`` JSON (a list of records or rows, ``dataframe_split``, ``dataframe_records``,
``instances``, ``inputs``) or CSV with or without a header line. Responses: V2 JSON (``outputs``
``label`` and ``probabilities``), ``/invocations`` JSON (``{"predictions": [{"label",
"probabilities"}]}``) or CSV lines ``label,Adelie,Chinstrap,Gentoo`` (a header line only when
the client asked for ``header=present``).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import Sequence
from typing import Any

__all__ = ["BodyError", "body_text", "read_input", "read_output"]

JSON_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class BodyError(ValueError):
    """A captured body that cannot be read; the message says what was found and expected."""


def body_text(part: object, where: str) -> tuple[str, str]:
    """Return ``(text, kind)`` of a capture's ``endpointInput``/``endpointOutput``; kind json/csv.

    The kind comes from ``observedContentType``, else from ``encoding``, else from the text
    itself (``{`` or ``[`` first: JSON; CSV when no type was observed). ``encoding: BASE64``
    means ``data`` holds the body's bytes in base 64.
    """
    if not isinstance(part, dict) or not isinstance(part.get("data"), str):
        raise BodyError(f"{where} must be an object with a 'data' string; got "
                        f"{_short(part)}.")
    text = part["data"]
    encoding = str(part.get("encoding") or "").upper()
    if encoding == "BASE64":
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise BodyError(f"{where}.data is not base-64 UTF-8 text ({exc}).") from None
    ctype = str(part.get("observedContentType") or "").lower()
    if "csv" in ctype:
        return text, "csv"
    if "json" in ctype:
        return text, "json"
    if not ctype and encoding in ("CSV", "JSON"):
        return text, encoding.lower()
    if text.lstrip()[:1] in ("{", "["):  # V2 reads JSON whatever the type (tritonclient sends none)
        return text, "json"
    if not ctype:
        return text, "csv"
    raise BodyError(f"{where}.observedContentType is {part.get('observedContentType')!r}; "
                    f"only JSON and CSV bodies can be read back.")


def read_input(text: str, kind: str, names: Sequence[str]) -> dict[str, list]:
    """Decode a request body into ``{column: values}``, one value per row.

    Parameters
    ----------
    text : str
        The body.
    kind : {"json", "csv"}
    names : list of str
        The model's features in input order: the order of CSV fields and of row lists.

    Raises
    ------
    BodyError
        Naming the shape found and the shapes read.
    """
    if kind == "csv":
        return _csv_input(text, list(names))
    payload = _json(text)
    if isinstance(payload, dict) and _is_v2(payload.get("inputs")):
        return _columns({t["name"]: _flat(t["data"]) for t in payload["inputs"]})
    if isinstance(payload, dict):
        keys = [k for k in JSON_KEYS if k in payload]
        if len(keys) != 1:
            raise BodyError(f"a JSON request must hold exactly one of {list(JSON_KEYS)} or be a "
                            f"list; got keys {sorted(payload)[:10]}.")
        value = payload[keys[0]]
        if keys[0] == "dataframe_split":
            if not isinstance(value, dict) or not isinstance(value.get("data"), list):
                raise BodyError(f"dataframe_split must hold 'data' rows; got {_short(value)}.")
            return _rows(value["data"], list(value.get("columns") or names))
        if isinstance(value, dict):
            if all(isinstance(v, list) for v in value.values()):
                return _columns(value)
            return {k: [v] for k, v in value.items()}  # one record
        return _rows(value, list(names))
    return _rows(payload, list(names))


def read_output(text: str, kind: str, classes: Sequence[str]) -> tuple[list, dict[str, list]]:
    """Decode a response body into ``(labels, {class: probabilities})``, one value per row.

    ``classes`` names the probability columns when the body does not (V2, header-less CSV).
    Raises BodyError as :func:`read_input` does.
    """
    if kind == "csv":
        return _csv_output(text, list(classes))
    payload = _json(text)
    if isinstance(payload, dict) and isinstance(payload.get("outputs"), list):
        return _v2_output(payload["outputs"], list(classes))
    if isinstance(payload, dict) and isinstance(payload.get("predictions"), list):
        labels, rows = [], []
        for i, item in enumerate(payload["predictions"]):
            if not isinstance(item, dict) or "label" not in item:
                raise BodyError(f"predictions[{i}] is {_short(item)}; expected "
                                f'{{"label", "probabilities"}}.')
            labels.append(item["label"])
            p = item.get("probabilities") or {}
            rows.append(dict(zip(classes, p, strict=False)) if isinstance(p, list) else p)
        names = list(dict.fromkeys(k for row in rows for k in row))
        return labels, {n: [row.get(n) for row in rows] for n in names}
    raise BodyError(f"a JSON response must hold 'outputs' (V2) or 'predictions' "
                    f"(/invocations); got {_short(payload)}.")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodyError(f"the JSON body cannot be parsed ({exc}).") from None


def _is_v2(value: object) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(t, dict) and "name" in t and "data" in t for t in value))


def _flat(data: object) -> list:
    if not isinstance(data, list):
        return [data]
    out: list = []
    for item in data:
        out.extend(_flat(item) if isinstance(item, list) else [item])
    return out


def _columns(columns: dict[str, list]) -> dict[str, list]:
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise BodyError(f"the request's columns differ in length: {lengths}.")
    return columns


def _rows(rows: object, names: list[str]) -> dict[str, list]:
    if not isinstance(rows, list) or not rows:
        raise BodyError(f"expected a non-empty list of records or rows; got {_short(rows)}.")
    if all(isinstance(r, dict) for r in rows):
        keys = list(dict.fromkeys(k for r in rows for k in r))
        return {k: [r.get(k) for r in rows] for k in keys}
    if all(isinstance(r, list) and len(r) == len(names) for r in rows):
        return {n: [r[j] for r in rows] for j, n in enumerate(names)}
    bad = next(r for r in rows if not isinstance(r, list) or len(r) != len(names))
    raise BodyError(f"row {_short(bad)} is neither a record nor a list of {len(names)} values "
                    f"in the order {names}.")


def _csv_lines(text: str) -> list[list[str]]:
    try:
        return [row for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) if row]
    except csv.Error as exc:
        raise BodyError(f"the CSV body cannot be parsed ({exc}).") from None


def _csv_input(text: str, names: list[str]) -> dict[str, list]:
    rows = _csv_lines(text)
    if rows and any(field.strip() in names for field in rows[0]):  # the server's header rule
        header, rows = [field.strip() for field in rows[0]], rows[1:]
    else:
        header = names
    if not rows:
        raise BodyError("the CSV request holds no data row.")
    bad = next((i for i, r in enumerate(rows) if len(r) != len(header)), None)
    if bad is not None:
        raise BodyError(f"CSV row {bad + 1} has {len(rows[bad])} fields; expected "
                        f"{len(header)}: {','.join(header)}.")
    return {n: [r[j] for r in rows] for j, n in enumerate(header)}


def _csv_output(text: str, classes: list[str]) -> tuple[list, dict[str, list]]:
    rows = _csv_lines(text)
    header = ["label", *classes]
    if rows and rows[0][0] == "label":  # 'Accept: text/csv; header=present'
        header, rows = rows[0], rows[1:]
    bad = next((i for i, r in enumerate(rows) if len(r) != len(header)), None)
    if bad is not None or not rows:
        found = "no line" if not rows else f"line {bad + 1} with {len(rows[bad])} fields"
        raise BodyError(f"the CSV response has {found}; expected lines of "
                        f"{','.join(header)}.")
    return [r[0] for r in rows], {n: [r[j + 1] for r in rows]
                                  for j, n in enumerate(header[1:])}


def _v2_output(outputs: list, classes: list[str]) -> tuple[list, dict[str, list]]:
    tensors = {t.get("name"): t for t in outputs if isinstance(t, dict)}
    if "label" not in tensors or tensors["label"].get("data") is None:
        raise BodyError(f"the V2 response has no 'label' output with data; outputs: "
                        f"{sorted(map(str, tensors))}.")
    labels = _flat(tensors["label"]["data"])
    probs: dict[str, list] = {}
    tensor = tensors.get("probabilities")
    if tensor is not None and tensor.get("data") is not None:
        flat = _flat(tensor["data"])
        shape = tensor.get("shape") or []
        width = shape[1] if len(shape) == 2 else len(classes)
        if width != len(classes) or len(flat) != width * len(labels):
            raise BodyError(f"the V2 'probabilities' output has shape {shape} for "
                            f"{len(labels)} labels and classes {classes}.")
        probs = {c: flat[j::width] for j, c in enumerate(classes)}
    return labels, probs


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
