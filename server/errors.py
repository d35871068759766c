"""Errors the server answers with: one exception type and one JSON shape, ``{"error": "..."}``."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.responses import Response


class ApiError(Exception):
    """A client-facing error: an HTTP status and a message naming the problem, the value and the fix.

    Parameters
    ----------
    status : int
        One of 400, 401, 404, 405, 413, 415 or 503.
    message : str
        What is wrong, with the offending value, and what to do instead.
    headers : mapping, optional
        Extra response headers (``WWW-Authenticate``, ``Allow``, ``X-Model-Name``...).
    """

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Build the JSON error response ``{"error": message}`` with ``status``."""
    return Response(
        orjson.dumps({"error": message}), status_code=status, headers=headers,
        media_type="application/json",
    )


def header_count(value: str | bytes | None) -> int | None:
    """Return a numeric header's value (``Content-Length`` and the like), or None if it is not one.

    One rule for every number read from a header: 1 to 18 ASCII digits. ``str.isdigit`` also
    accepts superscripts and other scripts' digits, which ``int`` refuses, and ``int`` refuses
    more than 4,300 digits: both would otherwise be a 500.
    """
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not 0 < len(text) <= 18 or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def shorten(value: object, limit: int = 80) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters, so an error quotes input without flooding."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
