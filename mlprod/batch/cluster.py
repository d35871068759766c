"""The Dask back end: line-range partitions scored by ONNX Runtime in the workers.

This process reads each file as chunks of whole lines, each carrying its first line number (a
byte-split ``read_csv`` partition does not know where it starts), and submits one task per chunk,
a bounded number in flight. A worker parses its chunk, scores it with the session it built the
first time it met the model (:func:`mlprod.batch.scoring.session_for`, keyed by the model's
SHA-256) and writes the answer lines with the one writer; this process appends them in order.
The model's bytes travel to each worker once (``scatter(..., broadcast=True)``), not per task.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from mlprod.batch.answers import Rendered
from mlprod.batch.inprocess import ordered_map
from mlprod.batch.lines import Chunk
from mlprod.batch.scoring import CHUNK_BYTES, BatchError, ModelFile, score_and_render


class DaskCluster:
    """Score chunks on a Dask cluster: a new ``LocalCluster``, a scheduler address, or a client.

    Parameters
    ----------
    model : ModelFile
        The model, read by this process and shipped to the workers.
    dask : str or distributed.Client or cluster
        ``"local"`` starts a ``LocalCluster`` (stopped with the job); ``"tcp://host:8786"``
        connects to that scheduler; a ``Client`` or a cluster object is used as it is.
    n_workers : int, optional
        Workers of a new ``LocalCluster`` (one thread each); default one per core.
    batch_strategy : {"MultiRecord", "SingleRecord"}
        Rows per ONNX Runtime call, as in-process.
    timeout : float
        Seconds to wait for a scheduler given by its address.
    """

    def __init__(self, model: ModelFile, dask: Any = "local", n_workers: int | None = None,
                 batch_strategy: str = "MultiRecord", timeout: float = 10.0):
        self.model = model
        self.single = batch_strategy == "SingleRecord"
        self.timeout = timeout
        self.dask = dask
        self.n_workers = n_workers
        self.description = "Dask"
        self._client = None
        self._own: list = []  # what this object started, and stops
        self._model_future = None
        self._threads = 1

    @property
    def features(self) -> list[dict[str, str]]:
        return self.model.features

    @property
    def classes(self) -> list[str]:
        return self.model.classes

    def open(self) -> DaskCluster:
        """Start or connect to the cluster and send the model to every worker.

        Raises
        ------
        BatchError
            If the scheduler cannot be reached.
        """
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise BatchError("The Dask back end needs dask.distributed: pip install "
                             "'dask[distributed]' (it is in mlprod's dependencies).") from None
        dask = self.dask
        if isinstance(dask, Client):
            client = dask
        elif isinstance(dask, str) and dask == "local":
            cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                   dashboard_address=None)
            self._own.append(cluster)
            client = Client(cluster)
            self._own.insert(0, client)
        elif isinstance(dask, str):
            try:
                client = Client(dask, timeout=self.timeout)
            except (OSError, TimeoutError) as exc:
                raise BatchError(f"Cannot reach the Dask scheduler at {dask!r} ({exc}). Start one "
                                 f"(dask scheduler; dask worker {dask}) or pass --dask local."
                                 ) from None
            self._own.append(client)
        else:  # a cluster object (LocalCluster, ...)
            client = Client(dask)
            self._own.append(client)
        self._client = client
        workers = client.scheduler_info().get("workers", {})
        self._threads = max(1, sum(w.get("nthreads", 1) for w in workers.values()))
        where = "LocalCluster" if self._own and dask == "local" else client.scheduler.address
        self.description = f"Dask ({where}, {len(workers)} workers)"
        self._model_future = client.scatter(self.model, broadcast=True)
        return self

    def chunk_bytes(self, max_payload_bytes: int) -> int:
        """The size of a partition: one payload, at most CHUNK_BYTES."""
        return min(max_payload_bytes, CHUNK_BYTES)

    def map(self, chunks: Iterable[Chunk], json_lines: bool, join_source: bool
            ) -> Iterator[Rendered]:
        """Yield each partition's answer lines in order, two per worker thread in flight."""
        def submit(chunk: Chunk):
            return self._client.submit(score_and_render, chunk, self._model_future, json_lines,
                                       join_source, self.single, pure=False)

        yield from ordered_map(submit, chunks, 2 * self._threads)

    def close(self) -> None:
        """Stop what this object started (client, cluster); leave a given client running."""
        while self._own:
            self._own.pop(0).close()
