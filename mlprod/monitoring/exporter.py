"""Serve a drift report as Prometheus gauges, so alert rules can watch it.

The model server knows requests, not distributions: drift is computed by the lesson (or a
scheduled job, as Model Monitor's schedules do) from the captured traffic. The latest report is
served on ``/metrics`` as two gauges, read by ``alerts.yml``'s ``MlprodFeatureDrift`` and
``MlprodDataQuality``:

- ``mlprod_drift_violations{model, feature, check}``: how many statistics of that check are
  violated (0 when all pass, so a quiet feature has a series too);
- ``mlprod_drift_statistic{model, feature, statistic}``: each statistic's value (PSI, KS
  distance, L-infinity, missing share...), for graphs.
"""

from __future__ import annotations

import threading

import pandas as pd

__all__ = ["DriftExporter", "drift_metrics_text", "VIOLATIONS_METRIC", "STATISTIC_METRIC"]

VIOLATIONS_METRIC = "mlprod_drift_violations"
STATISTIC_METRIC = "mlprod_drift_statistic"


class _ReportCollector:
    """A prometheus-client collector reading the latest report: one swap, never a half update."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.report: pd.DataFrame | None = None

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        report = self.report  # read once: update() swaps the reference whole
        violations = GaugeMetricFamily(
            VIOLATIONS_METRIC, "Violated statistics per feature and check in the latest drift "
            "report.", labels=["model", "feature", "check"])
        statistics = GaugeMetricFamily(
            STATISTIC_METRIC, "Each statistic of the latest drift report.",
            labels=["model", "feature", "statistic"])
        if report is not None:
            counts = report.groupby(["feature", "check"], sort=False)["violated"].sum()
            for (feature, check), n in counts.items():
                violations.add_metric([self.model, feature, check], float(n))
            for row in report.dropna(subset=["value"]).itertuples():
                statistics.add_metric([self.model, row.feature, row.statistic], float(row.value))
        yield violations
        yield statistics


def drift_metrics_text(report: pd.DataFrame, model: str) -> str:
    """Return the report's gauges in Prometheus' text format (what the exporter serves)."""
    from prometheus_client import CollectorRegistry, generate_latest

    collector = _ReportCollector(model)
    collector.report = report
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


class DriftExporter:
    """Serve the latest drift report's gauges on ``http://HOST:PORT/metrics`` for Prometheus.

    Parameters
    ----------
    model : str
        The model's name, the gauges' ``model`` label.
    host : str
        The address to listen on; loopback by default.
    port : int
        0 picks a free port (read it from :attr:`address` after :meth:`start`).

    Examples
    --------
    >>> with DriftExporter("penguins").start() as exporter:   # doctest: +SKIP
    ...     exporter.update(drift_report(baseline, traffic))
    ...     write_prometheus_config(folder, server.url, drift_target=exporter.address)
    """

    def __init__(self, model: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.model = model
        self.host = host
        self.port = port
        self._collector = _ReportCollector(model)
        self._server = None
        self._thread: threading.Thread | None = None

    def start(self) -> DriftExporter:
        """Start serving in a background thread; return self."""
        from prometheus_client import CollectorRegistry, start_http_server

        if self._server is None:
            registry = CollectorRegistry()
            registry.register(self._collector)
            self._server, self._thread = start_http_server(self.port, addr=self.host,
                                                           registry=registry)
        return self

    def update(self, report: pd.DataFrame) -> None:
        """Serve ``report`` (from :func:`~mlprod.monitoring.drift_report`) from now on."""
        self._collector.report = report

    @property
    def address(self) -> str:
        """``host:port`` being served, for a scrape config.

        Raises
        ------
        RuntimeError
            If the exporter is not started.
        """
        if self._server is None:
            raise RuntimeError("The exporter is not serving; call start() first.")
        return f"{self.host}:{self._server.server_port}"

    @property
    def url(self) -> str:
        """The metrics URL, ``http://host:port/metrics``."""
        return f"http://{self.address}/metrics"

    def close(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> DriftExporter:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
