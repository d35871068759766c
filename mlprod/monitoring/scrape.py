"""Read a model server's ``/metrics`` as Prometheus does: snapshots, windows, quantiles, drift flags.

The arithmetic behind the live dashboard (mlprod.widgets.dashboard), in plain functions tested
without a browser: :func:`read_snapshot` parses one scrape, :func:`window` compares two as
``rate()`` does, :func:`histogram_quantile` interpolates inside a bucket exactly as Prometheus'
function of that name, and :func:`drift_flags` reads a drift report or a drift exporter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
import requests

__all__ = ["Snapshot", "Window", "read_snapshot", "histogram_quantile", "window", "drift_flags"]

REQUESTS = "mlprod_requests_total"
DURATION = "mlprod_request_duration_seconds"
PREDICTIONS = "mlprod_predictions_total"
DRIFT = "mlprod_drift_violations"
DRIFT_CHECK = "baseline_drift_check"


@dataclass(frozen=True)
class Snapshot:
    """One scrape of ``/metrics``, summed over the series of one model (or all).

    Attributes
    ----------
    at : float
        When it was read, ``time.monotonic()`` seconds.
    requests : dict
        Status code (``"200"``, ``"400"``...) → requests answered with it, since the server started.
    buckets : tuple of (float, float)
        The latency histogram: (upper bound in seconds, cumulative count), sorted, ``inf`` last.
    predictions : dict
        Predicted label → rows, since the server started.
    """

    at: float
    requests: dict[str, float] = field(default_factory=dict)
    buckets: tuple[tuple[float, float], ...] = ()
    predictions: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """Requests answered, every code."""
        return sum(self.requests.values())


@dataclass(frozen=True)
class Window:
    """What happened between two snapshots.

    Attributes
    ----------
    seconds : float
        The window's length (NaN for the first poll, which has no window).
    requests, errors : float
        Requests answered in the window; those answered 4xx or 5xx.
    rate : float
        Requests per second (NaN without a window).
    p50, p99 : float
        Latency quantiles in seconds from the histogram's growth (NaN when no request came).
    total : float
        Requests answered since the server started.
    mix : dict
        Label → rows predicted since the server started.
    """

    seconds: float
    requests: float
    errors: float
    rate: float
    p50: float
    p99: float
    total: float
    mix: dict[str, float]

    @property
    def error_share(self) -> float:
        """Errors / requests in the window (NaN when no request came)."""
        return self.errors / self.requests if self.requests else math.nan


def read_snapshot(text: str, at: float | None = None, model: str | None = None) -> Snapshot:
    """Parse one ``/metrics`` text into a :class:`Snapshot` (only ``model``'s series, if given).

    Series are summed over version, variant and route; the histogram's buckets are summed by
    upper bound (every series of the server shares the same bounds).
    """
    from prometheus_client.parser import text_string_to_metric_families

    codes: dict[str, float] = {}
    buckets: dict[float, float] = {}
    labels: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if model is not None and sample.labels.get("model") != model:
                continue
            if sample.name == REQUESTS:
                code = sample.labels.get("code", "")
                codes[code] = codes.get(code, 0.0) + sample.value
            elif sample.name == f"{DURATION}_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
            elif sample.name == PREDICTIONS:
                label = sample.labels.get("label", "")
                labels[label] = labels.get(label, 0.0) + sample.value
    return Snapshot(time.monotonic() if at is None else at, codes,
                    tuple(sorted(buckets.items())), labels)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Return the ``q`` quantile of a cumulative histogram, as Prometheus' ``histogram_quantile``.

    The quantile's rank (``q`` × the count) falls in one bucket; the value is interpolated
    linearly inside it, from the bucket below's upper bound (0 for the first bucket) to its own.
    A rank in the ``+Inf`` bucket gives the highest finite bound.

    Parameters
    ----------
    q : float
        Between 0 and 1 (0.99 for p99).
    buckets : sequence of (upper bound, cumulative count)
        Sorted by bound; the last bound must be ``inf`` (the ``+Inf`` bucket).

    Returns
    -------
    float
        NaN when the histogram is empty; -inf / +inf for ``q`` below 0 / above 1 (as Prometheus).
    """
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return math.nan
    # Cumulative counts never fall; where scrapes raced they may, so level them as Prometheus does.
    buckets = [(bound, max(count for _, count in buckets[:i + 1]))
               for i, (bound, _) in enumerate(buckets)]
    total = buckets[-1][1]
    if total <= 0:
        return math.nan
    rank = q * total
    below_bound, below_count = 0.0, 0.0
    for i, (bound, count) in enumerate(buckets):
        if count >= rank:
            if math.isinf(bound):
                return buckets[-2][0]
            if i == 0 and bound <= 0:
                return bound
            inside = count - below_count
            if inside <= 0:
                return bound
            return below_bound + (bound - below_bound) * (rank - below_count) / inside
        below_bound, below_count = bound, count
    return buckets[-2][0]


def window(before: Snapshot | None, after: Snapshot) -> Window:
    """Compare two snapshots: the rate, errors and latency quantiles in between, and the totals.

    A counter that went down means the server restarted; the window then counts from zero, as
    Prometheus' ``rate()`` does on a counter reset.
    """
    if before is not None and after.total < before.total:
        before = Snapshot(before.at)  # a reset: the server started again
    if before is None:
        seconds, grown, old = math.nan, dict(after.requests), {}
        bucket_growth: tuple = ()
    else:
        seconds = after.at - before.at
        grown = {c: n - before.requests.get(c, 0.0) for c, n in after.requests.items()}
        old = dict(before.buckets)
        bucket_growth = tuple((b, n - old.get(b, 0.0)) for b, n in after.buckets)
    count = sum(grown.values())
    errors = sum(n for c, n in grown.items() if c[:1] in ("4", "5"))
    return Window(
        seconds=seconds, requests=count, errors=errors,
        rate=count / seconds if before is not None and seconds > 0 else math.nan,
        p50=histogram_quantile(0.5, bucket_growth), p99=histogram_quantile(0.99, bucket_growth),
        total=after.total, mix=dict(sorted(after.predictions.items())))


def drift_flags(source: object, model: str | None = None,
                timeout: float = 2.0) -> dict[str, list[str]]:
    """Return each feature's violated checks (an empty list: no violation) from ``source``.

    Parameters
    ----------
    source : DataFrame, dict, DriftExporter or callable
        A report of :func:`~mlprod.monitoring.drift_report`; a ready dict ``{feature: [checks]}``;
        anything with a ``url`` serving ``mlprod_drift_violations`` (a started
        :class:`~mlprod.monitoring.DriftExporter`), read as Prometheus would; or a callable
        returning one of these (called at every poll, so it can compute a fresh report).
    model : str, optional
        Only this model's gauges (exporter only).

    Raises
    ------
    TypeError
        If ``source`` is none of these.
    """
    if callable(source) and not isinstance(source, (pd.DataFrame, Mapping)):
        source = source()
    if isinstance(source, pd.DataFrame):
        flags: dict[str, list[str]] = {}
        for row in source.itertuples():
            checks = flags.setdefault(row.feature, [])
            if row.violated and row.check not in checks:
                checks.append(row.check)
        return flags
    if isinstance(source, Mapping):
        return {str(k): list(v) for k, v in source.items()}
    if hasattr(source, "url"):
        from prometheus_client.parser import text_string_to_metric_families

        text = requests.get(source.url, timeout=timeout).text
        flags = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == DRIFT and (model is None or s.labels.get("model") == model):
                    checks = flags.setdefault(s.labels["feature"], [])
                    if s.value > 0:
                        checks.append(s.labels["check"])
        return flags
    raise TypeError(f"drift={source!r} is not a drift source: pass a drift_report(...) DataFrame, "
                    f"a started DriftExporter, a {{feature: [checks]}} dict or a callable "
                    f"returning one of them.")
