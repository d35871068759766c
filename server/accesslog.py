"""A cheap access log: lines are buffered and written in batches, never per request."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import TextIO


class AccessLog:
    """Collect one line per request and write them at most every ``interval`` seconds.

    Formatting a line costs about a microsecond; writing through ``logging`` handlers per
    request costs far more, so lines wait in a list until a timer (or a full buffer) flushes.

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
        self._lines: list[str] = []
        self._second = -1
        self._stamp = ""
        self._timer: asyncio.TimerHandle | None = None

    def write(self, request_id: str, client: str, method: str, path: str, status: int,
              seconds: float) -> None:
        """Record one request: id, client address, method, path, status and latency."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        self._lines.append(
            f'{self._stamp}.{int((now - second) * 1000):03d}Z access {request_id} {client} '
            f'"{method} {path}" {status} {seconds * 1000:.3f}ms\n')
        if len(self._lines) >= self.capacity:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self.interval, self.flush)

    def flush(self) -> None:
        """Write the buffered lines now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        text = "".join(self._lines)
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
