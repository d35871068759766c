"""One HTTP request and its response, exactly as they travelled, and their text for a lesson.

:class:`Exchange` is what :class:`mlprod.client.Client` keeps of every call (``Client.last``):
bytes and headers, shown as HTTP/1.1 text with tokens masked, volatile headers optional and
probabilities rounded so a notebook's output is the same on every machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

#: Headers whose values change between calls, machines or installations (dates, request ids, the
#: library's version and the compressions it can read); :meth:`Exchange.format` can leave them out.
VOLATILE_HEADERS = frozenset({"date", "x-request-id", "x-amzn-requestid", "x-amzn-trace-id",
                              "user-agent", "accept-encoding"})
_FRACTION = re.compile(r"(?<![\w.])-?\d+\.\d+(?:[eE][-+]?\d+)?(?![\w.])")


@dataclass(frozen=True)
class Exchange:
    """One HTTP request and its response, as bytes and headers, exactly as they travelled.

    ``Host`` is added by the HTTP connection itself, so it is rebuilt from the URL; the rest of
    the request is what :mod:`requests` sent.
    """

    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: bytes
    status: int
    reason: str
    response_headers: tuple[tuple[str, str], ...]
    response_body: bytes
    elapsed: float

    @classmethod
    def from_response(cls, response: requests.Response) -> Exchange:
        """Build an exchange from a :class:`requests.Response` and the request that made it."""
        sent = response.request
        body = sent.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        host = urlsplit(sent.url).netloc
        return cls(
            method=sent.method,
            url=sent.url,
            request_headers=(("Host", host), *sent.headers.items()),
            request_body=body,
            status=response.status_code,
            reason=response.reason or "",
            response_headers=tuple(response.headers.items()),
            response_body=response.content,
            elapsed=response.elapsed.total_seconds(),
        )

    def response_header(self, name: str, default: str | None = None) -> str | None:
        """Return a response header's value, the name matched in any case."""
        for key, value in self.response_headers:
            if key.lower() == name.lower():
                return value
        return default

    @property
    def path(self) -> str:
        """The path and query of the URL, as on the request line."""
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def request_text(self, volatile: bool = True, max_body: int = 1000) -> str:
        """Return the request as HTTP/1.1 text: request line, headers, blank line, body.

        Parameters
        ----------
        volatile : bool
            Include headers that change between calls (:data:`VOLATILE_HEADERS`).
        max_body : int
            Characters of the body to show; the rest is counted, not shown.
        """
        head = f"{self.method} {self.path} HTTP/1.1"
        return _message(head, self.request_headers, self.request_body, volatile, max_body)

    def response_text(self, volatile: bool = True, max_body: int = 1000,
                      digits: int | None = None) -> str:
        """Return the response as HTTP/1.1 text: status line, headers, blank line, body.

        Parameters
        ----------
        volatile, max_body
            As for :meth:`request_text`.
        digits : int, optional
            Show the body's decimal numbers (probabilities) rounded to this many significant
            digits, so the text is the same on every CPU; None shows the body as received.
        """
        head = f"HTTP/1.1 {self.status} {self.reason}"
        body = self.response_body
        if digits is not None:
            text = body.decode("utf-8", errors="replace")
            body = _FRACTION.sub(lambda m: f"{float(m.group()):.{digits}g}", text).encode()
        return _message(head, self.response_headers, body, volatile, max_body)

    def format(self, volatile: bool = True, max_body: int = 1000,
               digits: int | None = None) -> str:
        """Return the request and the response as text, one after the other."""
        return (f"{self.request_text(volatile, max_body)}\n\n"
                f"{self.response_text(volatile, max_body, digits)}")

    def __str__(self) -> str:
        return self.format()


def _message(head: str, headers: Iterable[tuple[str, str]], body: bytes, volatile: bool,
             max_body: int) -> str:
    """Render one HTTP message; a bearer token is masked so it never lands in a notebook."""
    lines = [head]
    for name, value in headers:
        if not volatile and name.lower() in VOLATILE_HEADERS:
            continue
        if name.lower() == "authorization":
            value = value.split(" ", 1)[0] + " ***"
        lines.append(f"{name}: {value}")
    text = body.decode("utf-8", errors="replace")
    if len(text) > max_body:
        text = f"{text[:max_body]}… ({len(text) - max_body} more characters)"
    return "\n".join(lines) + "\n\n" + text
