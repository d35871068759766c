"""The one adapter over uvicorn's HTTP protocol class: stalled requests closed, a JSON 503 when full.

uvicorn (0.54) has no timeout for a request whose head or body stops arriving — a client can hold
a connection open forever by sending half a request — and its ``limit_concurrency`` answers 503
with a plain-text body. :class:`BoundedHttpTools` adds both on top of uvicorn's httptools
protocol, and everything here that reaches into uvicorn's classes is named in :data:`RELIES_ON`,
which a test checks against the installed uvicorn (naming its version when something moved).

- ``--read-timeout-secs``: a connection whose request (head or body) is incomplete and has sent no
  byte for that long is closed. A sweep every half period checks the open connections, so the
  request path only stores a timestamp.
- ``--limit-concurrency``: beyond that many connections or requests at once, 503 with
  ``{"error": ...}`` and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import os
import time

import orjson
import uvicorn
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Set by ``python -m server`` before uvicorn starts (inherited by every worker process).
READ_TIMEOUT_ENV = "MODEL_SERVER_READ_TIMEOUT_SECS"
#: What this module uses of uvicorn's: (object, attribute) pairs, checked by a test.
RELIES_ON = [(HttpToolsProtocol, name) for name in (
    "connection_made", "data_received", "on_message_begin", "on_message_complete",
    "_start_asgi_task", "connections", "transport", "loop")] + [(httptools_impl, "service_unavailable")]
TESTED_WITH = "0.54"

_BUSY = orjson.dumps({"error": "The server is at its limit of concurrent connections and "
                               "requests (--limit-concurrency). Retry in a moment."})


async def busy(scope, receive, send) -> None:
    """Answer 503 in the server's JSON error shape, with ``Retry-After``."""
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BUSY)),
        (b"retry-after", b"1"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": _BUSY})


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing stalled requests and answering 503 as JSON."""

    _sweeps: dict[int, asyncio.Task] = {}  # one sweeper per event loop (per worker)

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._incomplete = True  # nothing received yet: a stalled head as well
        self._last_data = time.monotonic()
        loop = self.loop
        if id(loop) not in self._sweeps:
            self._sweeps[id(loop)] = loop.create_task(_sweep(self.connections, read_timeout()))

    def data_received(self, data: bytes) -> None:
        self._last_data = time.monotonic()
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._incomplete = True
        super().on_message_begin()

    def on_message_complete(self) -> None:
        self._incomplete = False
        super().on_message_complete()

    def _start_asgi_task(self, cycle, app) -> None:
        if app is httptools_impl.service_unavailable:
            app = busy
        super()._start_asgi_task(cycle, app)


def read_timeout() -> float:
    """The ``--read-timeout-secs`` of this server (5 by default)."""
    return float(os.environ.get(READ_TIMEOUT_ENV, "5"))


async def _sweep(connections: set, timeout: float) -> None:
    """Close every connection whose request has been incomplete and silent for ``timeout``."""
    while True:
        await asyncio.sleep(timeout / 2)
        now = time.monotonic()
        for protocol in list(connections):
            if (getattr(protocol, "_incomplete", False)
                    and now - protocol._last_data > timeout
                    and not protocol.transport.is_closing()):
                protocol.transport.close()


def check_uvicorn() -> list[str]:
    """Return what this adapter relies on that the installed uvicorn lacks (empty: all there)."""
    return [f"uvicorn {uvicorn.__version__}: {getattr(owner, '__name__', owner)}.{name} is gone "
            f"(server/httpproto.py was written for uvicorn {TESTED_WITH})"
            for owner, name in RELIES_ON if not _has(owner, name)]


def _has(owner, name: str) -> bool:
    if hasattr(owner, name):
        return True
    # Instance attributes set in __init__ (connections, transport) show in its source.
    init = getattr(owner, "__init__", None)
    code = getattr(init, "__code__", None)
    return code is not None and name in code.co_names
