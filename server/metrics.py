"""Prometheus metrics for ``GET /metrics``, made with prometheus-client.

The names (CONTRACTS §11): ``mlprod_requests_total{model,version,variant,route,code}``,
``mlprod_request_duration_seconds{model,version,variant}`` (a histogram),
``mlprod_predictions_total{model,version,variant,label}``, ``mlprod_rows_total{model,version,
variant}``, ``mlprod_model_info{model,version,sha256}`` (1 per version served) and
``mlprod_capture_errors_total``. Label values come only from served models, versions and
variants: a request naming an unknown model counts under ``model="_unknown"``, so no request can
grow the number of series without bound.

With several workers, prometheus-client's multiprocess mode sums them: ``python -m server`` sets
``PROMETHEUS_MULTIPROC_DIR`` to a folder it makes (and removes) before any worker starts.

The request path only adds to plain counts kept here (about 0.6 µs a request, against 2.6 µs
for prometheus-client's own increments, measured in-process); :meth:`Metrics.flush` moves them
into prometheus-client's values in one step per series. A scrape flushes the process it reaches
first, and the server flushes every second and at a stop, so with several workers a scrape
sees every other worker's requests of more than a second ago. The latency histogram's buckets
are filled through :func:`add_observations`, the one place that reaches into prometheus-client's
histogram (its ``_sum``, ``_buckets`` and ``_upper_bounds``), checked by
:func:`check_prometheus_client` against the installed version.
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from server.repository import ModelVersion, Repository

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNKNOWN = "_unknown"
ALL_TRAFFIC = "AllTraffic"
# Latency buckets from 100 µs (one row in-process) to 10 s (a 6 MB batch on a slow machine).
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
           1.0, 2.5, 10.0)
#: Seconds between two flushes of the counts into prometheus-client's values.
FLUSH_SECS = 1.0
#: The prometheus-client version :func:`add_observations` was written for.
TESTED_WITH = "0.26.0"


class Metrics:
    """The server's metrics, one set per process (summed across workers at scrape time).

    Parameters
    ----------
    repository : Repository
        What ``mlprod_model_info`` reports (read at scrape time, so it follows every swap).
    """

    def __init__(self, repository: Repository):
        self.repository = repository
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["model", "version", "variant"]
        self.requests = Counter("mlprod_requests_total", "Inference requests answered, by code",
                                [*labels, "route", "code"], registry=self.registry)
        self.duration = Histogram("mlprod_request_duration_seconds",
                                  "Time to answer an inference request", labels,
                                  buckets=BUCKETS, registry=self.registry)
        self.predictions = Counter("mlprod_predictions_total", "Rows predicted, by label",
                                   [*labels, "label"], registry=self.registry)
        self.rows = Counter("mlprod_rows_total", "Rows scored", labels, registry=self.registry)
        self.capture_errors = Counter("mlprod_capture_errors_total",
                                      "Data-capture records that could not be written",
                                      registry=self.registry)
        if not self.multiprocess:
            self.registry.register(_ModelInfo(repository))
        self._children: dict[tuple, tuple] = {}
        self._labels: dict[tuple, object] = {}  # (model, version, variant, label) -> child
        # Not yet flushed: key -> [requests, rows, latency sum, count per bucket (+Inf last)],
        # and (model, version, variant, label) -> predictions.
        self._pending: dict[tuple, list] = {}
        self._pending_labels: dict[tuple, int] = {}

    def record(self, route: str, model: ModelVersion | None, variant: str | None, status: int,
               seconds: float, labels=None) -> None:
        """Count one answered request (and its rows and labels when it was scored)."""
        key = (route, None, 0, variant, status) if model is None else (
            route, model.name, model.version, variant, status)
        counts = self._pending.get(key)
        if counts is None:
            counts = self._pending[key] = [0, 0, 0.0, [0] * (len(BUCKETS) + 1)]
        counts[0] += 1
        if model is None:
            return
        counts[2] += seconds
        counts[3][bisect_left(BUCKETS, seconds)] += 1  # the first bucket with seconds <= le
        if labels is not None:
            counts[1] += len(labels)
            self.count_labels(model, variant, labels)

    def count_labels(self, model: ModelVersion, variant: str | None, labels) -> None:
        """Add predicted ``labels`` (a numpy array) to ``mlprod_predictions_total``."""
        pending = self._pending_labels
        counts = {labels[0]: 1} if len(labels) == 1 else Tally(labels.ravel().tolist())
        for label, count in counts.items():
            # A label is one of the model's classes: the series stay bounded.
            key = (model.name, model.version, variant, label)
            pending[key] = pending.get(key, 0) + count

    def flush(self) -> None:
        """Move the counts recorded since the last flush into prometheus-client's values."""
        pending, self._pending = self._pending, {}
        labels, self._pending_labels = self._pending_labels, {}
        for key, (count, rows, seconds, buckets) in pending.items():
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = self._make(key)
            requests, duration, rows_child = children
            requests.inc(count)
            if duration is not None:
                add_observations(duration, buckets, seconds)
            if rows:
                rows_child.inc(rows)
        for (name, version, variant, label), count in labels.items():
            child = self._labels.get((name, version, variant, label))
            if child is None:
                child = self._labels[name, version, variant, label] = self.predictions.labels(
                    name, str(version), variant or ALL_TRAFFIC, str(label))
            child.inc(count)

    async def run(self) -> None:
        """Flush every :data:`FLUSH_SECS` until cancelled (a task of the server's lifespan)."""
        while True:
            await asyncio.sleep(FLUSH_SECS)
            self.flush()

    def _make(self, key: tuple) -> tuple:
        route, name, version, variant, status = key
        if name is None:
            return (self.requests.labels(UNKNOWN, "", "", route, str(status)), None, None)
        names = (name, str(version), variant or ALL_TRAFFIC)
        return (self.requests.labels(*names, route, str(status)),
                self.duration.labels(*names), self.rows.labels(*names))

    def exposition(self) -> bytes:
        """Return the Prometheus text format for a scrape (every worker's sum when several)."""
        self.flush()
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_ModelInfo(self.repository))
        return generate_latest(registry)


def add_observations(child, buckets: list[int], total: float) -> None:
    """Add to a histogram's child ``buckets[i]`` observations in bucket ``i``, summing ``total``.

    The same values as that many ``child.observe(...)`` calls; prometheus-client has no public
    call that adds more than one observation at once.
    """
    child._sum.inc(total)
    for value, count in zip(child._buckets, buckets, strict=True):
        if count:
            value.inc(count)


def check_prometheus_client() -> list[str]:
    """Return what :func:`add_observations` relies on that the installed prometheus-client lacks."""
    child = Histogram("mlprod_check_seconds", "check", registry=None, buckets=BUCKETS)
    missing = [name for name in ("_sum", "_buckets", "_upper_bounds") if not hasattr(child, name)]
    if not missing and list(child._upper_bounds) != [*BUCKETS, float("inf")]:
        missing.append("_upper_bounds as BUCKETS then +Inf")
    return [f"prometheus-client {prometheus_client_version()}: Histogram.{name} is gone "
            f"(server/metrics.py was written for prometheus-client {TESTED_WITH})"
            for name in missing]


def prometheus_client_version() -> str:
    """The installed prometheus-client's version."""
    from importlib.metadata import version

    return version("prometheus-client")


class _ModelInfo:
    """``mlprod_model_info``: 1 per version this process serves, read from the repository."""

    def __init__(self, repository: Repository):
        self.repository = repository

    def collect(self):
        family = GaugeMetricFamily("mlprod_model_info", "A model version served (value 1)",
                                   labels=["model", "version", "sha256"])
        for model in list(self.repository.models.values()):
            for version in model.versions.values():
                family.add_metric([model.name, str(version.version), version.sha256], 1)
        yield family
