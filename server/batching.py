"""Dynamic batching (Triton's term): concurrent requests to one version scored in one call.

``--max-batch-delay-ms D``: the first request for a model version waits up to D ms for others;
then all those gathered are concatenated row-wise, scored in one ONNX Runtime call, and each
caller gets its own rows back. If the combined call fails, each request is scored alone, so one
bad request gets its error while its neighbours get their answers. Only tabular models (every
input ``[-1, 1]``) are gathered; others are scored at once.

It trades a little latency (at most D ms) for fewer, larger calls when many small requests
arrive together — the middle ground between on-demand and batch scoring.
"""

from __future__ import annotations

import asyncio

import numpy as np

from server.repository import ModelVersion


class Batcher:
    """Gather requests per model version for ``delay`` seconds and score them together.

    Parameters
    ----------
    delay : float
        Seconds the first request of a batch waits for others.
    max_rows : int
        A batch this large is scored at once, without waiting longer.
    """

    def __init__(self, delay: float, max_rows: int = 4096):
        self.delay = delay
        self.max_rows = max_rows
        self._waiting: dict[int, _Batch] = {}  # id(version) → the batch being gathered

    async def run(self, model: ModelVersion, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Score ``feed`` with ``model``, in a batch with the requests that arrive meanwhile.

        Raises whatever ``model.run`` raises for this request's rows alone.
        """
        if not model.tabular:
            return model.run(feed)
        loop = asyncio.get_running_loop()
        batch = self._waiting.get(id(model))
        if batch is None:
            batch = self._waiting[id(model)] = _Batch(model)
            batch.timer = loop.call_later(self.delay, self._flush, id(model))
        future = loop.create_future()
        batch.add(feed, future)
        if batch.rows >= self.max_rows:
            batch.timer.cancel()
            self._flush(id(model))
        return await future

    def _flush(self, key: int) -> None:
        batch = self._waiting.pop(key, None)
        if batch is not None:
            batch.score()


class _Batch:
    """The requests gathered for one model version."""

    def __init__(self, model: ModelVersion):
        self.model = model
        self.feeds: list[dict[str, np.ndarray]] = []
        self.futures: list[asyncio.Future] = []
        self.rows = 0
        self.timer: asyncio.TimerHandle | None = None

    def add(self, feed: dict[str, np.ndarray], future: asyncio.Future) -> None:
        self.feeds.append(feed)
        self.futures.append(future)
        self.rows += len(next(iter(feed.values())))

    def score(self) -> None:
        """Run once for all; on failure, run each alone so errors stay with their request."""
        model, feeds, futures = self.model, self.feeds, self.futures
        if len(feeds) > 1:
            try:
                joined = {name: np.concatenate([f[name] for f in feeds]) for name in feeds[0]}
                outputs = model.run(joined)
            except Exception:  # noqa: BLE001 - one request's rows broke the call: split below
                outputs = None
            if outputs is not None:
                start = 0
                for feed, future in zip(feeds, futures, strict=True):
                    end = start + len(next(iter(feed.values())))
                    if not future.done():
                        future.set_result([value[start:end] for value in outputs])
                    start = end
                return
        for feed, future in zip(feeds, futures, strict=True):
            try:
                result = model.run(feed)
            except Exception as exc:  # noqa: BLE001 - handed to that request's caller
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
