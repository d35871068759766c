"""A cheap access log: lines are buffered and written in batches, never per request."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import TextIO


class AccessLog:
    """Collect one line per request and write them at most every ``interval`` seconds.

    Writing through ``logging`` handlers per request costs several microseconds; here a request
    only appends a tuple, and a timer (or a full buffer) formats and writes the lines in a batch.

    Parameters
    ----------
    stream : text stream, optional
        Where lines go; default ``sys.stderr``.
    interval : float
        Seconds between flushes.
    capacity : int
        A buffer this full is flushed at once.
    """

    def __init__(self, stream: TextIO | None = None, interval: float = 0.5, capacity: int = 512):
        self.stream = stream
        self.interval = interval
        self.capacity = capacity
        self._lines: list[tuple] = []
        self._second = -1
        self._stamp = ""
        self._timer: asyncio.TimerHandle | None = None

    def write(self, request_id: bytes, client: tuple | None, method: str, path: str,
              status: int, seconds: float) -> None:
        """Record one request: id, client address, method, path, status and latency.

        Only a tuple is kept here; lines are formatted when flushed, off the request's path.
        """
        self._lines.append((time.time(), request_id, client, method, path, status, seconds))
        self._schedule()

    def _schedule(self) -> None:
        if len(self._lines) >= self.capacity:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self.interval, self.flush)

    def event(self, kind: str, text: str) -> None:
        """Record a line that is not a request (``kind`` then ``text``), written with the rest."""
        self._lines.append((time.time(), None, kind, text))
        self._schedule()

    def flush(self) -> None:
        """Write the buffered lines now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        text = "".join(map(self._format, self._lines))
        self._lines.clear()
        stream = self.stream or sys.stderr
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # a closed stream must not break serving
            try:
                os.write(2, text.encode())
            except OSError:
                pass

    def _format(self, entry: tuple) -> str:
        now = entry[0]
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        if entry[1] is None:  # an event
            return f"{self._stamp}.{int((now - second) * 1000):03d}Z {entry[2]} {entry[3]}\n"
        _, request_id, client, method, path, status, seconds = entry
        return (f'{self._stamp}.{int((now - second) * 1000):03d}Z access '
                f'{request_id.decode("latin-1")} {client[0] if client else "-"} '
                f'"{method} {path}" {status} {seconds * 1000:.3f}ms\n')
