"""Turn decoded JSON or CSV values into the numpy arrays ONNX Runtime takes, checking each value.

The fast path hands the whole list to numpy; only when that fails or yields the wrong kind does a
slow pass look for the first bad value to name it in the error.
"""

from __future__ import annotations

import numpy as np

from server.errors import ApiError, shorten

_MISSING_TEXT = frozenset({"", "nan", "NaN", "NA", "null"})


def numeric(values: list, dtype: np.dtype, where: str) -> np.ndarray:
    """Convert JSON numbers (``null`` = missing for float types) to an array of ``dtype``.

    Parameters
    ----------
    values : list
        Numbers, possibly nested lists of numbers.
    dtype : numpy dtype
        The model's element type (float32 for the penguins model).
    where : str
        Names the tensor or column in error messages, e.g. ``"input 'body_mass_g'"``.

    Raises
    ------
    ApiError
        400 naming the first value that is not a number, or a value out of the type's range.
    """
    try:
        arr = np.array(values)
    except ValueError as exc:  # ragged nesting
        raise ApiError(400, f"{where}: data is not a regular array ({exc}). Send a flat list "
                            f"or equally long nested lists.") from None
    kind = arr.dtype.kind
    if kind == "O" and dtype.kind == "f":
        arr = _objects_to_float(arr, dtype, where)
    elif kind not in "iuf" or (kind == "f" and dtype.kind in "iu"):
        _raise_first_bad(arr, dtype, where)
    try:
        with np.errstate(over="raise", invalid="ignore"):
            out = arr.astype(dtype, copy=False)
    except (FloatingPointError, OverflowError):
        out = None
    if out is None or (dtype.kind == "f" and np.isinf(out).any()):
        raise ApiError(400, f"{where}: a value is out of range for {dtype.name} "
                            f"(e.g. {shorten(_first_out_of_range(arr, dtype))}). "
                            f"Send finite numbers within the type's range.")
    if dtype.kind in "iu" and not np.array_equal(out, arr):
        raise ApiError(400, f"{where}: values do not fit {dtype.name}. "
                            f"Send integers within the type's range.")
    return out


def strings(values: list, where: str) -> np.ndarray:
    """Convert JSON strings (``null`` = missing, sent as ``""``) to an object array.

    Raises
    ------
    ApiError
        400 naming the first value that is not a string.
    """
    flat = values
    if values and type(values[0]) is list:
        try:
            arr = np.array(values, dtype=object)
        except ValueError as exc:
            raise ApiError(400, f"{where}: data is not a regular array ({exc}). Send a flat "
                                f"list or equally long nested lists.") from None
        shape = arr.shape
        flat = arr.ravel().tolist()
    else:
        shape = (len(values),)
    if not all(type(v) is str for v in flat):
        flat = list(flat)
        for i, v in enumerate(flat):
            if v is None:
                flat[i] = ""
            elif type(v) is not str:
                raise ApiError(400, f"{where}: value {shorten(v)} at position {i} is not a "
                                    f"string. Send text (\"Dream\"), or null or \"\" for missing.")
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(shape)


def numeric_text(values: list[str], dtype: np.dtype, where: str) -> np.ndarray:
    """Parse CSV fields as numbers; an empty field (or NaN, NA) is missing.

    Raises
    ------
    ApiError
        400 naming the first field that is not a number, or an infinite one.
    """
    if any(v in _MISSING_TEXT for v in values):
        values = ["nan" if v in _MISSING_TEXT else v for v in values]
    try:
        out = np.array(values, dtype=np.float64).astype(dtype)
    except ValueError:
        for i, v in enumerate(values):
            try:
                float(v)
            except ValueError:
                raise ApiError(400, f"{where}: value {shorten(v)} in row {i + 1} is not a "
                                    f"number. Send a number, or leave the field empty for "
                                    f"missing.") from None
        raise
    if np.isinf(out).any():
        i = int(np.flatnonzero(np.isinf(out))[0])
        raise ApiError(400, f"{where}: value {shorten(values[i])} in row {i + 1} is not finite "
                            f"(or out of {np.dtype(dtype).name} range). Send a finite number, "
                            f"or leave the field empty for missing.")
    return out


def _objects_to_float(arr: np.ndarray, dtype: np.dtype, where: str) -> np.ndarray:
    flat = arr.ravel()
    for i, v in enumerate(flat):
        if v is None:
            continue
        if type(v) not in (int, float):
            _raise_bad(v, i, dtype, where)
    return np.array(flat.tolist(), dtype=np.float64).reshape(arr.shape)


def _raise_first_bad(arr: np.ndarray, dtype: np.dtype, where: str) -> None:
    flat = arr.ravel().tolist()
    for i, v in enumerate(flat):
        if v is None and dtype.kind in "iu":
            raise ApiError(400, f"{where}: null at position {i} is not allowed for "
                                f"{dtype.name}. Send an integer.")
        if type(v) is not int and not (type(v) is float and dtype.kind == "f"):
            _raise_bad(v, i, dtype, where)
    raise ApiError(400, f"{where}: expected numbers of type {dtype.name}; got "
                        f"{shorten(flat[:5])}. Send numbers.")


def _raise_bad(value: object, position: int, dtype: np.dtype, where: str) -> None:
    kind = "a number" if dtype.kind == "f" else "an integer"
    missing = ", or null for missing" if dtype.kind == "f" else ""
    raise ApiError(400, f"{where}: value {shorten(value)} at position {position} is not {kind}. "
                        f"Send {kind} ({dtype.name}){missing}.")


def _first_out_of_range(arr: np.ndarray, dtype: np.dtype) -> object:
    flat = arr.ravel()
    if dtype.kind == "f":
        limit = np.finfo(dtype).max
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(np.abs(flat.astype(np.float64)) > limit)
    else:
        info = np.iinfo(dtype)
        bad = np.flatnonzero((flat < info.min) | (flat > info.max))
    return flat[bad[0]].item() if len(bad) else flat[:5].tolist()
