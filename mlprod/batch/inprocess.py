"""The in-process back end, and the ordered, bounded map the parallel back ends share."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from mlprod.batch.answers import Rendered
from mlprod.batch.lines import Chunk
from mlprod.batch.scoring import CHUNK_BYTES, ModelFile, score_and_render


def ordered_map(submit: Callable[[Any], Any], items: Iterable[Any], window: int) -> Iterator[Any]:
    """Submit items as futures, at most ``window`` in flight, and yield their results in order.

    ``submit`` returns anything with ``result()`` and ``cancel()`` (a ``concurrent.futures`` or a
    ``distributed`` future). Futures still pending when the consumer stops are cancelled.
    """
    pending: deque = deque()
    try:
        for item in items:
            pending.append(submit(item))
            while len(pending) >= max(1, window):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


class ModelBackend:
    """What every back end scoring a model file says of it: its features and classes."""

    model: ModelFile

    @property
    def features(self) -> list[dict[str, str]]:
        return self.model.features

    @property
    def classes(self) -> list[str]:
        return self.model.classes


class InProcess(ModelBackend):
    """Score every chunk with ONNX Runtime in this process (one session, built once).

    Parameters
    ----------
    model : ModelFile
        The model, from :func:`mlprod.batch.scoring.load_model`.
    batch_strategy : {"MultiRecord", "SingleRecord"}
        Rows per ONNX Runtime call: up to :data:`~mlprod.batch.scoring.ROWS_PER_CALL`, or one.
    """

    description = "in-process ONNX Runtime"

    def __init__(self, model: ModelFile, batch_strategy: str = "MultiRecord"):
        self.model = model
        self.single = batch_strategy == "SingleRecord"

    def open(self) -> InProcess:
        """Nothing to start: the session is built with the first chunk."""
        return self

    def chunk_bytes(self, max_payload_bytes: int) -> int:
        """The size of the chunks to read: one payload, at most CHUNK_BYTES."""
        return min(max_payload_bytes, CHUNK_BYTES)

    def map(self, path: Path, chunks: Iterable[Chunk], json_lines: bool, join_source: bool
            ) -> Iterator[Rendered]:
        """Yield each chunk's answer lines, in order.

        One thread: a second one scoring the next chunk made a 1,000,000-line job slower on
        2 cores (most of the work holds the GIL: formatting, building the feed).
        """
        for chunk in chunks:
            yield score_and_render(chunk, self.model, json_lines, join_source, self.single)

    def close(self) -> None:
        """Nothing to stop."""
