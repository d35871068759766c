"""Prometheus metrics for ``GET /metrics``, made with prometheus-client.

The names (CONTRACTS §11): ``mlprod_requests_total{model,version,variant,route,code}``,
``mlprod_request_duration_seconds{model,version,variant}`` (a histogram),
``mlprod_predictions_total{model,version,variant,label}``, ``mlprod_rows_total{model,version,
variant}``, ``mlprod_model_info{model,version,sha256}`` (1 per version served) and
``mlprod_capture_errors_total``. Label values come only from served models, versions and
variants: a request naming an unknown model counts under ``model="_unknown"``, so no request can
grow the number of series without bound.

With several workers, prometheus-client's multiprocess mode sums them: ``python -m server`` sets
``PROMETHEUS_MULTIPROC_DIR`` to a folder it makes (and removes) before any worker starts. The hot
path only increments cached label children: about 2 µs a request, measured in-process.
"""

from __future__ import annotations

import os
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

    def record(self, route: str, model: ModelVersion | None, variant: str | None, status: int,
               seconds: float, labels=None) -> None:
        """Count one answered request (and its rows and labels when it was scored)."""
        key = (route, None, 0, variant, status) if model is None else (
            route, model.name, model.version, variant, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = self._make(key)
        requests, duration, rows = children
        requests.inc()
        if duration is not None:
            duration.observe(seconds)
        if labels is not None:
            rows.inc(len(labels))
            self.count_labels(model, variant, labels)

    def count_labels(self, model: ModelVersion, variant: str | None, labels) -> None:
        """Add predicted ``labels`` (a numpy array) to ``mlprod_predictions_total``."""
        counts = {labels[0]: len(labels)} if len(labels) == 1 else Tally(labels.ravel().tolist())
        for label, count in counts.items():
            # A label is one of the model's classes: the series stay bounded.
            key = (model.name, model.version, variant, label)
            child = self._labels.get(key)
            if child is None:
                child = self._labels[key] = self.predictions.labels(
                    model.name, str(model.version), variant or ALL_TRAFFIC, str(label))
            child.inc(count)

    def _make(self, key: tuple) -> tuple:
        route, name, version, variant, status = key
        if name is None:
            return (self.requests.labels(UNKNOWN, "", "", route, str(status)), None, None)
        names = (name, str(version), variant or ALL_TRAFFIC)
        return (self.requests.labels(*names, route, str(status)),
                self.duration.labels(*names), self.rows.labels(*names))

    def exposition(self) -> bytes:
        """Return the Prometheus text format for a scrape (every worker's sum when several)."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_ModelInfo(self.repository))
        return generate_latest(registry)


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
