"""Measure on-demand scoring beside batch jobs: latency per concurrency, request sizes, a killed job.

Lesson 07's measuring tools. :func:`latency` sends real single-row requests at several
concurrencies (:func:`mlprod.traffic.send`) and gives p50, p99 and requests per second;
:func:`sweep` grows the rows per ``/invocations`` request (SageMaker CSV) and :func:`plot_sweep`
draws latency against throughput; :func:`kill_after_first_file` SIGKILLs a batch job once it
has finished one file; :func:`progress` follows Dask futures with a bar that needs no dashboard.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import requests

__all__ = ["latency", "sweep", "plot_sweep", "kill_after_first_file", "progress", "rounded", "SIZES"]

#: Rows per request in :func:`sweep`: one row (on demand) to 10,000 (a batch in one call).
SIZES = (1, 10, 100, 1_000, 10_000)


def rounded(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Round every float of ``frame`` to ``digits`` significant digits (integers stay as they are).

    Float columns become ``object`` columns, so each value prints as itself (``1230.0``, ``0.0123``)
    rather than padded to the longest one's decimals.
    """
    def one(value: Any) -> Any:
        if not isinstance(value, float) or value == 0 or not np.isfinite(value):
            return value
        return round(value, digits - 1 - int(np.floor(np.log10(abs(value)))))

    floats = frame.select_dtypes("float").columns
    return frame.map(one).astype({c: object for c in floats})


def _summary(latencies_ms: np.ndarray, seconds: float, rows_per_request: int) -> dict:
    return {"p50_ms": float(np.percentile(latencies_ms, 50)),
            "p99_ms": float(np.percentile(latencies_ms, 99)),
            "req_per_s": len(latencies_ms) / seconds,
            "rows_per_s": len(latencies_ms) * rows_per_request / seconds}


def latency(url: str, model: str, rows: pd.DataFrame, n: int,
            concurrencies: Sequence[int] = (1, 4, 16)) -> pd.DataFrame:
    """Send ``n`` single-row V2 requests at each concurrency; one row of figures per concurrency.

    Parameters
    ----------
    url, model : str
        The server (``LocalServer.url``) and the model to call.
    rows : DataFrame
        Feature rows, sent in turn (:func:`mlprod.traffic.send`).
    n : int
        Requests per concurrency.
    concurrencies : sequence of int
        Requests in flight at once (one client thread and connection each).

    Returns
    -------
    DataFrame
        Indexed by ``concurrency``: ``requests``, ``errors`` (answers other than 200), ``p50_ms``,
        ``p99_ms``, ``req_per_s`` and ``rows_per_s`` (the same here: one row per request). Wall
        time is from the first request sent to the last answer read, client threads included.
    """
    from mlprod import traffic

    table = {}
    for concurrency in concurrencies:
        start = time.perf_counter()
        answers = traffic.send(url, model, rows, n, concurrency=concurrency)
        seconds = time.perf_counter() - start
        table[concurrency] = {"requests": n, "errors": int((answers["status"] != 200).sum()),
                              **_summary(answers["latency_ms"].to_numpy(), seconds, 1)}
    return pd.DataFrame.from_dict(table, orient="index").rename_axis("concurrency")


def sweep(url: str, rows: pd.DataFrame, sizes: Sequence[int] = SIZES, rows_per_size: int = 2_000,
          min_requests: int = 8, concurrency: int = 4, model: str | None = None) -> pd.DataFrame:
    """Time ``/invocations`` with CSV requests of growing size; one row of figures per size.

    Each size sends ``max(min_requests, rows_per_size // size)`` requests of the first ``size``
    rows (header-less CSV in feature order, SageMaker's format) from ``concurrency`` threads, and
    checks each answer has one line per row.

    Returns
    -------
    DataFrame
        Indexed by ``rows_per_request``: ``requests``, ``p50_ms``, ``p99_ms``, ``req_per_s`` and
        ``rows_per_s``.

    Raises
    ------
    ValueError
        If ``rows`` is shorter than the largest size, or an answer is not 200 with one line per
        row (the status and the start of the body say why).
    """
    if len(rows) < max(sizes):
        raise ValueError(f"rows has {len(rows):,} rows; the largest request needs {max(sizes):,}. "
                         f"Pass more rows or smaller sizes.")
    headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
    if model is not None:
        headers["X-Amzn-SageMaker-Target-Model"] = model
    local = threading.local()
    table = {}
    for size in sizes:
        body = rows.head(size).to_csv(index=False, header=False, lineterminator="\n").encode()

        def one(_: int, body: bytes = body, size: int = size) -> float:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            start = time.perf_counter()
            answer = local.session.post(f"{url.rstrip('/')}/invocations", data=body,
                                        headers=headers, timeout=60)
            took = (time.perf_counter() - start) * 1000
            if answer.status_code != 200 or answer.text.count("\n") != size:
                raise ValueError(f"/invocations with {size} rows answered {answer.status_code}: "
                                 f"{answer.text[:200]!r}")
            return took

        n = max(min_requests, rows_per_size // size)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            took = np.array(list(pool.map(one, range(n))))
        table[size] = {"requests": n, **_summary(took, time.perf_counter() - start, size)}
    return pd.DataFrame.from_dict(table, orient="index").rename_axis("rows_per_request")


def plot_sweep(table: pd.DataFrame, batch: Mapping[str, float] | None = None, ax: Any = None):
    """Draw p50 and p99 latency against rows/s, one labelled point per request size.

    Parameters
    ----------
    table : DataFrame
        From :func:`sweep`.
    batch : dict, optional
        A batch job's name → its rows/s, drawn as vertical lines: throughput with no latency to
        speak of per row (a job's answers arrive when the file is done).
    ax : matplotlib Axes, optional
        Where to draw; default a new figure's.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        ax = plt.subplots(figsize=(7, 4.2))[1]
    ax.plot(table["rows_per_s"], table["p50_ms"], "o-", label="p50 latency of a request")
    ax.plot(table["rows_per_s"], table["p99_ms"], "s--", label="p99")
    for size, row in table.iterrows():
        ax.annotate(f"{size:,} row{'' if size == 1 else 's'}", (row["rows_per_s"], row["p50_ms"]),
                    textcoords="offset points", xytext=(7, -3), fontsize=8)
    for (name, rate), color in zip((batch or {}).items(), ("#6a9f58", "#c0504d", "#8064a2"),
                                   strict=False):
        ax.axvline(rate, color=color, linestyle=":", label=f"batch job: {name}")
    ax.set(xscale="log", yscale="log", xlabel="throughput (rows/s)",
           ylabel="latency per request (ms)",
           title="Bigger requests: more rows/s, each answer later")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def kill_after_first_file(command: Sequence[str], output: str | os.PathLike,
                          timeout: float = 120.0) -> dict[str, Any]:
    """Run a batch job and SIGKILL it as soon as its first ``.out`` file appears.

    SIGKILL cannot be caught: the job gets no chance to clean up, as when a machine dies.

    Returns
    -------
    dict
        ``returncode`` (``-9`` when killed), ``finished`` (the ``.out`` files present), and
        ``temporary`` (files left half-written, their random part shown as ``<random>``).

    Raises
    ------
    RuntimeError
        If the job ends, or writes no file within ``timeout`` seconds, before it could be killed.
    """
    output = Path(output)
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if output.is_dir() and any(output.glob("*.out")):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)  # a polling interval, not a wait for an event
    else:
        process.kill()
        out, err = process.communicate()
        raise RuntimeError(f"The job ended (status {process.returncode}) or wrote nothing within "
                           f"{timeout} s before it could be killed; it said: {(out + err)[-500:]!r}. "
                           f"Give it more or bigger files.")
    process.wait()
    names = sorted(p.name for p in output.iterdir())
    return {"returncode": process.returncode,
            "finished": [n for n in names if n.endswith(".out")],
            "temporary": [re.sub(r"\.[^.]+\.tmp$", ".<random>.tmp", n)
                          for n in names if n.endswith(".tmp")]}


def progress(futures: Iterable[Any], label: str = "Dask partitions") -> None:
    """Show a progress bar while Dask futures finish, then print the final count.

    It counts futures as they complete in this process (``distributed.as_completed``), so it needs
    no dashboard. In a notebook the bar is a widget shown with a plain sentence for viewers
    without widgets (GitHub, the HTML tour); the printed final count (``Dask partitions: 12/12
    done``) reads the same everywhere. Elsewhere it is tqdm's text bar on standard error.

    Parameters
    ----------
    futures : iterable of distributed.Future, or a persisted Dask collection
        What to follow (``client.persist(frame)`` gives a collection backed by futures).
    label : str
        What is counted.
    """
    from distributed import as_completed, futures_of
    from tqdm.auto import tqdm

    futures = futures_of(futures) if not isinstance(futures, list) else futures
    widget = _is_widget(tqdm)
    bar = tqdm(total=len(futures), desc=label, unit="part", display=False) if widget else \
        tqdm(total=len(futures), desc=label, unit="part", file=sys.stderr)
    if widget:
        from IPython.display import display

        view = {"version_major": 2, "version_minor": 0, "model_id": bar.container.model_id}
        display({"application/vnd.jupyter.widget-view+json": view,
                 "text/plain": f"{label}: a progress bar (live in JupyterLab)"}, raw=True)
    done = 0
    for _ in as_completed(futures):
        done += 1
        bar.update(1)
    bar.close()
    print(f"{label}: {done}/{len(futures)} done")


def _is_widget(tqdm_class: type) -> bool:
    try:
        from tqdm.notebook import tqdm_notebook
    except ImportError:  # pragma: no cover - tqdm always ships it
        return False
    return issubclass(tqdm_class, tqdm_notebook)
