"""A real Prometheus scrapes a real model server; its query API gives back the rate that was sent.

Debian's ``prometheus`` runs as a plain process with a temporary config (written by
``mlprod.monitoring.write_prometheus_config``, scrape interval 1 s) and storage. The test sends a
paced, known request rate to a :class:`~mlprod.serving.LocalServer`, then asks Prometheus for
``rate(mlprod_requests_total[...])`` and ``histogram_quantile(...)``. It skips with a message
when ``prometheus`` is missing, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import json
import math
import time

import _prometheus as prometheus
import pytest
import requests

from mlprod import monitoring, quickstart
from mlprod.client import Client
from mlprod.serving import LocalServer
from mlprod.widgets.dashboard import histogram_quantile

RATE = 25.0  # requests per second, paced
SECONDS = 6.0  # of steady traffic; the queries look at its last WINDOW seconds
WINDOW = "4s"


def _paced(url: str, rows, rate: float, seconds: float) -> tuple[int, float, float]:
    """Send single-row requests at ``rate`` per second for ``seconds``; return (n, start, end)."""
    with Client(url) as client:
        body = json.dumps(client.infer_body(rows.iloc[[0]], "penguins")).encode()
    session = requests.Session()
    target = f"{url}/v2/models/penguins/infer"
    start = time.time()
    n = 0
    while (due := start + n / rate) < start + seconds:
        time.sleep(max(0.0, due - time.time()))  # the schedule, not a guess at readiness
        answer = session.post(target, data=body, timeout=10,
                              headers={"Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text
        n += 1
    return n, start, time.time()


def test_prometheus_scrapes_the_server_and_returns_the_rate_sent(tmp_path, split):
    with LocalServer(quickstart.model_repository(), args=["--no-access-log"]) as server:
        config = tmp_path / "config"
        monitoring.write_prometheus_config(config, server.url, scrape_interval="1s",
                                           evaluation_interval="1s")
        with prometheus.running(config, tmp_path) as (api, log):
            def query(expr: str, at: float | None = None) -> list:
                return prometheus.query(api, expr, at)

            def value(expr: str, at: float | None = None) -> float:
                return float(query(expr, at)[0]["value"][1])

            prometheus.poll(lambda: query('up{job="mlprod"} == 1'), 20, "scrape of the server",
                            log)
            sent, start, end = _paced(server.url, split.X_test, RATE, SECONDS)
            achieved = sent / (end - start)
            # wait until a scrape after the last request is stored
            prometheus.poll(lambda: value('timestamp(up{job="mlprod"})') > end + 0.1, 10,
                            "scrape after the traffic", log)
            assert value('sum(mlprod_requests_total{model="penguins"})') == sent

            rate = value(f'sum(rate(mlprod_requests_total{{model="penguins"}}[{WINDOW}]))', end)
            assert abs(rate - achieved) / achieved < 0.10, (rate, achieved)
            assert abs(achieved - RATE) / RATE < 0.10, achieved  # the pacing held

            buckets = f'sum by (le) (rate(mlprod_request_duration_seconds_bucket[{WINDOW}]))'
            p99 = value(f"histogram_quantile(0.99, {buckets})", end)
            p50 = value(f"histogram_quantile(0.5, {buckets})", end)
            assert 0 < p50 <= p99 <= 10.0, (p50, p99)
            # the dashboard's arithmetic gives Prometheus' answer on the same buckets
            rows = query(buckets, end)
            stored = sorted((float(r["metric"]["le"]), float(r["value"][1])) for r in rows)
            assert math.isinf(stored[-1][0])
            assert histogram_quantile(0.99, stored) == pytest.approx(p99, rel=1e-9)
            assert histogram_quantile(0.5, stored) == pytest.approx(p50, rel=1e-9)
