"""Turn decoded JSON or CSV values into the numpy arrays ONNX Runtime takes, checking each value.

The fast path hands the whole list to numpy; only when that fails or yields the wrong kind does a
slow pass look for the first bad value to name it in the error.
"""

from __future__ import annotations

import numpy as np

from server.errors import ApiError, shorten

_FLOAT_ITEMS = frozenset({float, int, type(None)})
_SMALL = 32  # below this many values, checks in Python beat numpy's per-call cost
_LIMITS: dict[np.dtype, float] = {}  # largest finite value of each float type


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
    if dtype.kind != "f":
        return _integers(values, dtype, where)
    if len(values) <= _SMALL:  # one pass in Python: types and range together
        limit = _limit(dtype)
        for v in values:
            kind = type(v)
            if kind is float or kind is int:
                if not -limit <= v <= limit and v == v:  # v == v: not NaN
                    _raise_out_of_range(v, dtype, where)
            elif v is not None:
                break  # not a number: the checks below name it, or flatten nested lists
        else:
            return np.array(values, dtype=dtype)
    types = set(map(type, values))
    if not types <= _FLOAT_ITEMS:
        if list not in types:
            _raise_first_bad(values, dtype, where)
        nested = _regular(values, where)  # nested lists: check the flattened values
        flat = nested.ravel().tolist()
        if not set(map(type, flat)) <= _FLOAT_ITEMS:
            _raise_first_bad(flat, dtype, where)
        return numeric(flat, dtype, where).reshape(nested.shape)
    wide = np.array(values, dtype=np.float64)
    beyond = _beyond(wide, dtype)  # the same rule as the small path: |v| <= the type's max
    if beyond is not None:
        _raise_out_of_range(values[beyond], dtype, where)
    return wide.astype(dtype)


def _limit(dtype: np.dtype) -> float:
    """The largest finite value of a float type (looked up once per type)."""
    return _LIMITS.get(dtype) or _LIMITS.setdefault(dtype, float(np.finfo(dtype).max))


def _beyond(wide: np.ndarray, dtype: np.dtype) -> int | None:
    """Return the position of the first value beyond ``dtype``'s finite range, or None."""
    limit = _limit(dtype)
    with np.errstate(invalid="ignore"):
        outside = np.abs(wide) > limit  # NaN compares False: a missing value is in range
    return int(np.flatnonzero(outside)[0]) if outside.any() else None


def _integers(values: list, dtype: np.dtype, where: str) -> np.ndarray:
    arr = _regular(values, where)
    if arr.dtype.kind not in "iu":
        _raise_first_bad(arr.ravel().tolist(), dtype, where)
    out = arr.astype(dtype)
    if not np.array_equal(out, arr):
        info = np.iinfo(dtype)
        flat = arr.ravel()
        first = flat[np.flatnonzero((flat < info.min) | (flat > info.max))[0]].item()
        _raise_out_of_range(first, dtype, where)
    return out


def _regular(values: list, where: str) -> np.ndarray:
    try:
        return np.array(values)
    except ValueError as exc:  # ragged nesting
        raise _not_regular(where, f" ({exc})") from None


def _not_regular(where: str, detail: str) -> ApiError:
    return ApiError(400, f"{where}: data is not a regular array{detail}. Send a flat list or "
                         f"equally long nested lists.")


def _raise_out_of_range(value: object, dtype: np.dtype, where: str) -> None:
    raise ApiError(400, f"{where}: value {shorten(value)} is out of range for {dtype.name}. "
                        f"Send finite numbers within the type's range"
                        f"{', or null for missing' if dtype.kind == 'f' else ''}.")


def strings(values: list, where: str) -> np.ndarray:
    """Convert JSON strings (``null`` = missing, sent as ``""``) to an object array.

    Raises
    ------
    ApiError
        400 naming the first value that is not a string.
    """
    types = set(map(type, values))
    if types == {str}:
        return text(values)
    if list in types:  # nested lists: check the flattened values
        try:
            nested = np.array(values, dtype=object)
        except ValueError as exc:
            raise _not_regular(where, f" ({exc})") from None
        flat = nested.ravel().tolist()
        if any(type(v) is list for v in flat):  # ragged: numpy kept the uneven lists as items
            raise _not_regular(where, f": nested lists of uneven lengths in {shorten(values)}")
        return strings(flat, where).reshape(nested.shape)
    flat = list(values)
    for i, v in enumerate(flat):
        if v is None:
            flat[i] = ""
        elif type(v) is not str:
            raise ApiError(400, f"{where}: value {shorten(v)} at position {i} is not a "
                                f"string. Send text (\"Dream\"), or null or \"\" for missing.")
    return text(flat)


def text(values: list[str]) -> np.ndarray:
    """Wrap a list of Python strings as the 1-D object array ONNX Runtime reads as strings."""
    return np.array(values, dtype=object)  # str items: numpy never nests them


def numeric_text(values: list[str], dtype: np.dtype, where: str) -> np.ndarray:
    """Parse CSV fields as numbers; an empty field (or ``nan``) is missing.

    Raises
    ------
    ApiError
        400 naming the first field that is not a number, or an infinite one.
    """
    if "_" in "".join(values):  # float() reads "3_9.1" as 39.1; a CSV number has no "_"
        _raise_not_a_number(values, where)
    if len(values) <= _SMALL:
        try:
            numbers = [float(v) if v else None for v in values]
        except ValueError:
            _raise_not_a_number(values, where)
        limit = _limit(dtype)
        for i, v in enumerate(numbers):
            if v is not None and v == v and not -limit <= v <= limit:
                _raise_not_finite(values, i, dtype, where)
        return np.array(numbers, dtype=dtype)
    if "" in values:  # missing values are few: find them with C-level scans
        values = list(values)
        i = values.index("")
        try:
            while True:
                values[i] = "nan"
                i = values.index("", i + 1)
        except ValueError:
            pass
    try:
        wide = np.array(values, dtype=np.float64)
    except ValueError:
        _raise_not_a_number(values, where)
    beyond = _beyond(wide, dtype)
    if beyond is not None:
        _raise_not_finite(values, beyond, dtype, where)
    return wide.astype(dtype)


def _raise_not_a_number(values: list[str], where: str) -> None:
    for i, v in enumerate(values):
        try:
            if "_" in v:
                raise ValueError(v)
            float(v or "nan")
        except ValueError:
            raise ApiError(400, f"{where}: value {shorten(v)} in row {i + 1} is not a number. "
                                f"Send a number, or leave the field empty for missing.") from None
    raise ApiError(400, f"{where}: the values are not numbers. Send numbers, or leave a field "
                        f"empty for missing.")


def _raise_not_finite(values: list[str], i: int, dtype: np.dtype, where: str) -> None:
    raise ApiError(400, f"{where}: value {shorten(values[i])} in row {i + 1} is not finite (or "
                        f"out of {np.dtype(dtype).name} range). Send a finite number, or leave "
                        f"the field empty for missing.")


def _raise_first_bad(flat: list, dtype: np.dtype, where: str) -> None:
    for i, v in enumerate(flat):
        if v is None and dtype.kind in "iu":
            raise ApiError(400, f"{where}: null at position {i} is not allowed for "
                                f"{dtype.name}. Send an integer.")
        if v is not None and type(v) is not int and not (type(v) is float and dtype.kind == "f"):
            kind = "a number" if dtype.kind == "f" else "an integer"
            missing = ", or null for missing" if dtype.kind == "f" else ""
            raise ApiError(400, f"{where}: value {shorten(v)} at position {i} is not {kind}. "
                                f"Send {kind} ({dtype.name}){missing}.")
    raise ApiError(400, f"{where}: expected numbers of type {dtype.name}; got "
                        f"{shorten(flat[:5])}. Send numbers.")
