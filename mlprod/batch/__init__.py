"""Batch transform: score files of rows in one job, in-process, through an endpoint, or on Dask.

SageMaker Batch Transform's semantics: each input file ``X`` of header-less CSV lines in feature
order (or JSON Lines of records) gives ``X.out`` with exactly one answer line per input line, in
order, ``label,Adelie,Chinstrap,Gentoo`` (the model's classes, no header); a bad line's answer
line is empty and its number and reason go to ``X.errors`` (``<line>: <reason>``). Every back end
writes answers with one writer (:mod:`mlprod.batch.answers`), so their outputs are byte-identical.

>>> summary = transform("rows.csv", "out/", model_repository="build/models",   # doctest: +SKIP
...                     model="penguins")
>>> print(summary.line())                                                       # doctest: +SKIP

From a shell: ``python -m mlprod.batch --input rows.csv --output out/ --model-repository
build/models --model penguins`` (``--endpoint URL`` or ``--dask local`` for the other back ends).
"""

from __future__ import annotations

import os
from typing import Any

from mlprod.batch.answers import Answers, Rendered, render
from mlprod.batch.cluster import DaskCluster, predictions
from mlprod.batch.endpoint import Endpoint
from mlprod.batch.inprocess import InProcess
from mlprod.batch.job import Stopped, StopRequest, Summary, list_inputs, run
from mlprod.batch.lines import CONTENT_TYPES, Chunk, parse, read_chunks
from mlprod.batch.scoring import BatchError, ModelFile, load_model

__all__ = ["transform", "run", "list_inputs", "BatchError", "Stopped", "StopRequest", "Summary", "InProcess",
           "Endpoint", "DaskCluster", "predictions", "ModelFile", "load_model", "Chunk",
           "read_chunks", "parse", "Answers", "Rendered", "render"]

MB = 1_048_576


def transform(input: str | os.PathLike, output: str | os.PathLike, *,
              model_repository: str | os.PathLike | None = None, model: str | None = None,
              version: int | str | None = None, endpoint: str | None = None, dask: Any = None,
              dask_workers: int | None = None, max_payload_mb: float = 6,
              batch_strategy: str = "MultiRecord", join_source: str | None = None,
              progress: bool | None = None, stop: StopRequest | None = None,
              content_type: str | None = None, **endpoint_options: Any) -> Summary:
    """Score a file, or a folder of files, into ``output``; return what was done.

    Parameters
    ----------
    input : path
        A file, or a folder whose visible files are all inputs.
    output : path
        The folder for ``X.out`` and ``X.errors``; files whose ``X.out`` exists are skipped.
    model_repository, model, version : optional
        Score in this process (or on Dask) with ONNX Runtime; ``version`` is a number or an
        alias, default the ``production`` alias, else the latest.
    endpoint : str, optional
        Instead, call this server's ``/invocations`` (``model``/``version`` pick the target).
    dask : "local", an address, a ``distributed.Client`` or a cluster, optional
        Score the partitions on Dask workers (with ``model_repository``).
    dask_workers : int, optional
        Workers of a ``LocalCluster`` started by ``dask="local"``.
    max_payload_mb : float
        Size of a request (endpoint) or partition (in-process, Dask), in MiB.
    batch_strategy : {"MultiRecord", "SingleRecord"}
        Many lines per request or ONNX Runtime call (up to the payload and
        :data:`~mlprod.batch.scoring.ROWS_PER_CALL` rows), or one.
    join_source : {None, "input"}
        ``"input"`` prefixes each answer with its input line and a comma.
    progress : bool, optional
        A progress bar; default when standard error is a terminal.
    stop : StopRequest, optional
        Set by signal handlers to stop the job between chunks (see ``python -m mlprod.batch``).
    content_type : {"text/csv", "application/jsonlines"}, optional
        SageMaker's ContentType: the inputs' format; default by each file's suffix (``.jsonl``,
        ``.ndjson`` and ``.json`` are JSON Lines, anything else CSV).
    **endpoint_options
        ``concurrency``, ``retries``, ``backoff``, ``timeout``, ``token`` for :class:`Endpoint`.

    Raises
    ------
    BatchError
        A missing input, an unreadable model, an unreachable endpoint or scheduler.
    Stopped
        When interrupted; finished files are kept, the unfinished one left no output.
    """
    if batch_strategy not in ("MultiRecord", "SingleRecord"):
        raise BatchError(f"batch_strategy={batch_strategy!r}; use 'MultiRecord' or 'SingleRecord'.")
    if content_type not in (None, *CONTENT_TYPES):
        raise BatchError(f"content_type={content_type!r}; use one of {list(CONTENT_TYPES)}, or "
                         f"leave it out to go by each file's suffix.")
    if join_source not in (None, "none", "input"):
        raise BatchError(f"join_source={join_source!r}; use 'input' or leave it out.")
    if not max_payload_mb > 0:
        raise BatchError(f"max_payload_mb={max_payload_mb!r} must be positive, e.g. 6.")
    inputs = list_inputs(input, output)
    if (endpoint is None) == (model_repository is None):
        raise BatchError("Give either an endpoint (--endpoint URL) or a model repository "
                         "(--model-repository PATH --model NAME), not both or neither.")
    if endpoint is not None:
        if dask is not None:
            raise BatchError("--dask scores with ONNX Runtime in the workers: use it with "
                             "--model-repository, not --endpoint.")
        backend: Any = Endpoint(endpoint, model, None if version is None else str(version),
                                batch_strategy=batch_strategy, **endpoint_options)
    else:
        if model is None:
            raise BatchError("--model-repository needs --model NAME (e.g. --model penguins).")
        loaded = load_model(model_repository, model, version)
        backend = (InProcess(loaded, batch_strategy) if dask is None
                   else DaskCluster(loaded, dask, dask_workers, batch_strategy))
    return run(backend, inputs, output, int(max_payload_mb * MB), join_source == "input",
               progress, stop, content_type)
