"""Model quality once the true labels arrive: join them to the capture by ``inferenceId``.

Labels come late (a penguin is identified in the lab a week after its photo was scored), so
quality is computed after the fact, on the captured answers whose request carried an
``X-Amzn-SageMaker-Inference-Id`` the labels can be matched with, as in Model Monitor's model
quality jobs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["join_ground_truth", "model_quality"]


def join_ground_truth(capture: pd.DataFrame,
                      truth: Mapping[str, str | Sequence[str]] | pd.Series) -> pd.DataFrame:
    """Add ``truth`` and ``correct`` columns to a capture frame, matching on ``inference_id``.

    Parameters
    ----------
    capture : DataFrame
        From :func:`~mlprod.monitoring.read_capture` (``inference_id``, ``row``, ``label``).
    truth : dict or Series
        Inference id → the true class; for a request of several rows, a list with one class
        per row, in row order.

    Returns
    -------
    DataFrame
        A copy with ``truth`` (None where no label arrived) and ``correct`` (bool, or None
        without a label).
    """
    items = truth.items()
    per_row = {}
    for key, value in items:
        if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
            per_row |= {(str(key), i): v for i, v in enumerate(list(value))}
        else:
            per_row[(str(key), 0)] = value
    out = capture.copy()
    keys = zip(out["inference_id"].astype(str), out["row"], strict=True)
    out["truth"] = [per_row.get(k) for k in keys]
    known = out["truth"].notna()
    out["correct"] = pd.Series(out["label"] == out["truth"], dtype=object).where(known, None)
    return out


def model_quality(joined: pd.DataFrame, freq: str = "h", by: str | None = "variant",
                  z: float = 1.96) -> pd.DataFrame:
    """Return accuracy per period (and per variant), with a Wilson confidence interval.

    Parameters
    ----------
    joined : DataFrame
        From :func:`join_ground_truth`; rows without a label are left out.
    freq : str
        The period, a pandas frequency: ``"h"`` (hour), ``"D"``, ``"min"``...
    by : str or None
        A column to split by as well (``"variant"``); None for the whole traffic.
    z : float
        Normal quantile of the interval (1.96: 95 %).

    Returns
    -------
    DataFrame
        ``time`` (the period's start, UTC), ``by``'s column, ``n`` (labelled rows),
        ``accuracy``, ``low`` and ``high`` (the interval), sorted by time.
    """
    labelled = joined[joined["truth"].notna()].copy()
    labelled["time"] = pd.to_datetime(labelled["time"], utc=True).dt.floor(freq)
    labelled["correct"] = labelled["correct"].astype(bool)
    keys = ["time"] + ([by] if by else [])
    grouped = labelled.groupby(keys, sort=True)["correct"].agg(["size", "mean"]).reset_index()
    grouped = grouped.rename(columns={"size": "n", "mean": "accuracy"})
    n, p = grouped["n"].to_numpy(dtype=float), grouped["accuracy"].to_numpy(dtype=float)
    # Wilson's interval: sound at 0 %/100 % and on a handful of rows, where p ± z·se is not
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    grouped["low"], grouped["high"] = centre - half, centre + half
    return grouped
