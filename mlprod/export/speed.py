"""Measure how fast each path scores: one row (latency) and a batch (rows per second).

Each figure is the median over repeats; a repeat runs the call enough times to last a few
milliseconds, so timer resolution does not matter, and the engines take turns, so a change in the
machine's load does not favour one of them. Inputs are prepared before timing (a
DataFrame for scikit-learn, the arrays for ONNX Runtime, parsed rows inside the C executable):
what is timed is the model, not the parsing of a request.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from mlprod import data

__all__ = ["median_seconds", "speed_table", "plot_speed"]


def _loop_length(call: Callable[[], Any], min_seconds: float) -> int:
    """Return how many calls make one timed loop last at least ``min_seconds``."""
    call()  # warm up: first-call costs (allocations, lazy set-up) are not the steady state
    number = 1
    while number < 1_000_000:
        start = time.perf_counter()
        for _ in range(number):
            call()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
        number *= 10 if elapsed < min_seconds / 10 else 2
    return number


def median_seconds(calls: Callable[[], Any] | dict[Any, Callable[[], Any]], repeats: int = 7,
                   min_seconds: float = 0.002) -> float | dict[Any, float]:
    """Return the median time of one call, over ``repeats`` timed loops.

    Parameters
    ----------
    calls : callable or dict of callables
        With several, the loops take turns (a loop of each, then again), so a change in the
        machine's load affects them all alike and their ratios stay fair.
    repeats : int
        Timed loops per call; the median is returned.
    min_seconds : float
        Each loop repeats the call enough times to last at least this long.

    Returns
    -------
    seconds : float, or dict of float (for a dict of calls)
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats!r} must be at least 1, e.g. 7.")
    named = calls if isinstance(calls, dict) else {"call": calls}
    numbers = {name: _loop_length(call, min_seconds) for name, call in named.items()}
    times: dict[Any, list[float]] = {name: [] for name in named}
    for _ in range(repeats):
        for name, call in named.items():
            start = time.perf_counter()
            for _ in range(numbers[name]):
                call()
            times[name].append((time.perf_counter() - start) / numbers[name])
    medians = {name: statistics.median(values) for name, values in times.items()}
    return medians if isinstance(calls, dict) else medians["call"]


def speed_table(pipeline: Any, X: pd.DataFrame, onnx_model: Any = None, c_model: Any = None,
                batch_rows: int = 1000, repeats: int = 7) -> pd.DataFrame:
    """Time scikit-learn, ONNX Runtime and generated C on one row and on a batch, side by side.

    Parameters
    ----------
    pipeline : fitted Pipeline
        The scikit-learn reference (``predict_proba``).
    X : DataFrame
        Rows to draw from: the batch is ``batch_rows`` rows sampled from it (seeded).
    onnx_model : ONNXModel, optional
        Timed with ``session.run`` on prepared arrays; left out when None.
    c_model : CModel, optional
        Timed inside its executable (``bench``); left out when None or a string (the reason
        :func:`mlprod.export.build_paths` gives for skipping it).
    batch_rows : int
        Rows in the batch.
    repeats : int
        Repeats per figure; the median is reported.

    Returns
    -------
    table : DataFrame
        Index: the engine. Columns ``one_row_us`` (µs per single-row call), ``batch_rows_per_s``,
        ``one_row_speedup`` and ``batch_speedup`` (scikit-learn's time over the engine's).
    """
    from mlprod.export.onnx import onnx_inputs

    batch = X.sample(batch_rows, replace=True, random_state=data.SEED)
    one = batch.iloc[:1]
    calls = {("scikit-learn", "one"): lambda: pipeline.predict_proba(one),
             ("scikit-learn", "batch"): lambda: pipeline.predict_proba(batch)}
    if onnx_model is not None:
        run, names = onnx_model.session.run, ["label", "probabilities"]
        feed_one = onnx_inputs(one, onnx_model.features)
        feed_batch = onnx_inputs(batch, onnx_model.features)
        calls[("ONNX Runtime", "one")] = lambda: run(names, feed_one)
        calls[("ONNX Runtime", "batch")] = lambda: run(names, feed_batch)
    seconds = median_seconds(calls, repeats)
    timings = {engine: (seconds[(engine, "one")], seconds[(engine, "batch")])
               for engine, _ in seconds}
    if c_model is not None and not isinstance(c_model, str):
        bench = c_model.bench(batch, repeats)
        timings["generated C"] = (bench["single_seconds"], bench["batch_seconds"])
    ref_one, ref_batch = timings["scikit-learn"]
    rows = [{"engine": name, "one_row_us": t1 * 1e6, "batch_rows_per_s": batch_rows / tb,
             "one_row_speedup": ref_one / t1, "batch_speedup": ref_batch / tb}
            for name, (t1, tb) in timings.items()]
    table = pd.DataFrame(rows).set_index("engine")
    table.attrs["batch_rows"] = f"{batch_rows:,}"
    return table


def plot_speed(table: pd.DataFrame, ax: Any = None) -> Any:
    """Plot a :func:`speed_table` as two log-scale bar charts; return the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(10, 3.2), constrained_layout=True)
    colors = ["#8c8c8c", "#1f77b4", "#2ca02c", "#d62728"][: len(table)]
    ax[0].barh(table.index, table["one_row_us"], color=colors)
    ax[0].set(xscale="log", xlabel="µs per call (lower is faster)", title="One row")
    ax[1].barh(table.index, table["batch_rows_per_s"], color=colors)
    ax[1].set(xscale="log", xlabel="rows per second (higher is faster)",
              title=f"Batch of {_batch_label(table)} rows")
    for a in ax:
        a.invert_yaxis()
    return ax


def _batch_label(table: pd.DataFrame) -> str:
    return str(table.attrs.get("batch_rows", "1,000"))
