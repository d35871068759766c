"""mlprod.widgets.dashboard: the arithmetic on its own, then against a real server with known traffic."""

from __future__ import annotations

import base64
import math
import time

import pandas as pd
import pytest
import requests
from _server_fixtures import ServerProcess

from mlprod import data, monitoring, quickstart, traffic
from mlprod.widgets.dashboard import (
    Dashboard,
    Snapshot,
    drift_flags,
    histogram_quantile,
    live_dashboard,
    read_snapshot,
    window,
)

INF = math.inf
METRICS = """\
# TYPE mlprod_requests_total counter
mlprod_requests_total{code="200",model="penguins",route="infer",variant="production",version="1"} 90.0
mlprod_requests_total{code="200",model="penguins",route="infer",variant="candidate",version="2"} 8.0
mlprod_requests_total{code="400",model="penguins",route="infer",variant="production",version="1"} 2.0
mlprod_requests_total{code="404",model="_unknown",route="infer",variant="",version=""} 5.0
# TYPE mlprod_request_duration_seconds histogram
mlprod_request_duration_seconds_bucket{le="0.01",model="penguins",variant="production",version="1"} 80.0
mlprod_request_duration_seconds_bucket{le="0.1",model="penguins",variant="production",version="1"} 92.0
mlprod_request_duration_seconds_bucket{le="+Inf",model="penguins",variant="production",version="1"} 92.0
mlprod_request_duration_seconds_count{model="penguins",variant="production",version="1"} 92.0
mlprod_request_duration_seconds_sum{model="penguins",variant="production",version="1"} 0.5
mlprod_request_duration_seconds_bucket{le="0.01",model="penguins",variant="candidate",version="2"} 4.0
mlprod_request_duration_seconds_bucket{le="0.1",model="penguins",variant="candidate",version="2"} 8.0
mlprod_request_duration_seconds_bucket{le="+Inf",model="penguins",variant="candidate",version="2"} 8.0
mlprod_request_duration_seconds_count{model="penguins",variant="candidate",version="2"} 8.0
mlprod_request_duration_seconds_sum{model="penguins",variant="candidate",version="2"} 0.2
# TYPE mlprod_predictions_total counter
mlprod_predictions_total{label="Adelie",model="penguins",variant="production",version="1"} 50.0
mlprod_predictions_total{label="Gentoo",model="penguins",variant="production",version="1"} 40.0
mlprod_predictions_total{label="Gentoo",model="penguins",variant="candidate",version="2"} 8.0
"""


# --- histogram_quantile: Prometheus' algorithm ----------------------------------------------

def test_quantile_matches_what_promtool_computes_for_the_lessons_latency_alert():
    # alerts_test.yml's latency series (per minute: 55 under 10 ms, 5 more under 500 ms);
    # promtool's histogram_quantile(0.99, ...) gives 452 ms for it.
    buckets = [(0.01, 55.0), (0.1, 55.0), (0.5, 60.0), (INF, 60.0)]
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.452)


def test_quantile_interpolates_inside_a_bucket_from_the_bound_below():
    buckets = [(1.0, 10.0), (2.0, 30.0), (4.0, 40.0), (INF, 40.0)]
    assert histogram_quantile(0.125, buckets) == pytest.approx(0.5)  # rank 5 of 10, from 0
    assert histogram_quantile(0.5, buckets) == pytest.approx(1.5)  # rank 20: half of 10..30
    assert histogram_quantile(1.0, buckets) == pytest.approx(4.0)


def test_quantile_edges_empty_histogram_and_the_inf_bucket():
    assert math.isnan(histogram_quantile(0.5, [(1.0, 0.0), (INF, 0.0)]))
    assert math.isnan(histogram_quantile(0.5, []))
    assert histogram_quantile(0.99, [(1.0, 1.0), (2.0, 2.0), (INF, 100.0)]) == 2.0  # highest bound
    assert histogram_quantile(-0.1, [(1.0, 1.0), (INF, 1.0)]) == -INF
    assert histogram_quantile(1.1, [(1.0, 1.0), (INF, 1.0)]) == INF
    # a bucket lower than the one below it (scrapes that raced) is levelled up, as Prometheus does
    assert histogram_quantile(0.5, [(1.0, 10.0), (2.0, 8.0), (4.0, 20.0), (INF, 20.0)]) == \
        histogram_quantile(0.5, [(1.0, 10.0), (2.0, 10.0), (4.0, 20.0), (INF, 20.0)]) == 1.0


# --- snapshots and windows ------------------------------------------------------------------

def test_a_snapshot_sums_series_and_can_keep_one_model():
    every = read_snapshot(METRICS, at=0.0)
    assert every.requests == {"200": 98.0, "400": 2.0, "404": 5.0} and every.total == 105
    penguins = read_snapshot(METRICS, at=0.0, model="penguins")
    assert penguins.requests == {"200": 98.0, "400": 2.0}
    assert penguins.buckets == ((0.01, 84.0), (0.1, 100.0), (INF, 100.0))
    assert penguins.predictions == {"Adelie": 50.0, "Gentoo": 48.0}


def test_a_window_gives_rate_errors_and_quantiles_of_what_happened_inside_it():
    before = Snapshot(10.0, {"200": 100.0}, ((0.01, 100.0), (0.1, 100.0), (INF, 100.0)),
                      {"Adelie": 100.0})
    after = Snapshot(12.0, {"200": 140.0, "500": 10.0},
                     ((0.01, 100.0), (0.1, 150.0), (INF, 150.0)), {"Adelie": 140.0})
    w = window(before, after)
    assert (w.seconds, w.requests, w.errors, w.rate) == (2.0, 50.0, 10.0, 25.0)
    assert w.error_share == pytest.approx(0.2)
    # every request of the window took 10-100 ms: the quantiles interpolate inside that bucket
    assert w.p50 == pytest.approx(0.055) and w.p99 == pytest.approx(0.0991)
    assert w.total == 150 and w.mix == {"Adelie": 140.0}


def test_the_first_poll_has_no_rate_and_a_restarted_server_counts_from_zero():
    first = window(None, Snapshot(1.0, {"200": 7.0}, ((0.01, 7.0), (INF, 7.0))))
    assert math.isnan(first.rate) and math.isnan(first.seconds) and first.total == 7
    before = Snapshot(0.0, {"200": 500.0}, ((0.01, 500.0), (INF, 500.0)))
    restarted = window(before, Snapshot(1.0, {"200": 20.0}, ((0.01, 20.0), (INF, 20.0))))
    assert restarted.requests == 20 and restarted.rate == 20.0
    quiet = window(before, Snapshot(2.0, dict(before.requests), before.buckets))
    assert quiet.rate == 0.0 and math.isnan(quiet.p50) and math.isnan(quiet.error_share)


# --- drift flags ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def report(split):
    return monitoring.drift_report(monitoring.suggest_baseline(split.X_train),
                                   data.drift(data.synthesize(1000, seed=(1, 7)), seed=1))


def test_drift_flags_name_the_moved_features_from_a_report_an_exporter_or_a_callable(report):
    from_report = drift_flags(report)
    assert list(from_report) == data.FEATURES
    assert {f for f, checks in from_report.items() if checks} == {"flipper_length_mm",
                                                                   "body_mass_g"}
    assert from_report["body_mass_g"] == ["baseline_drift_check"]
    assert drift_flags(lambda: report) == from_report
    with monitoring.DriftExporter("penguins").start() as exporter:
        exporter.update(report)
        assert drift_flags(exporter, model="penguins") == from_report
        assert drift_flags(exporter, model="iris") == {}
    assert drift_flags({"sex": ["completeness_check"]}) == {"sex": ["completeness_check"]}
    with pytest.raises(TypeError, match="not a drift source"):
        drift_flags(42)


# --- against a real server ------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    """One live server for the tests that only read it (each counts from its own first poll)."""
    with ServerProcess(quickstart.model_repository(), args=["--no-access-log"]) as process:
        yield process


def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def test_counts_equal_what_was_sent_to_a_real_server(server, split):
    board = Dashboard(server.url, model="penguins", interval=1.0)
    first = board.poll()
    everything = Dashboard(server.url)
    everything.poll()
    sent = traffic.send(server.url, "penguins", split.X_test, 150, concurrency=4)
    for _ in range(3):  # 400s: a body that is not JSON, to a model that exists
        requests.post(f"{server.url}/v2/models/penguins/infer", data=b"{", timeout=10)
    requests.post(f"{server.url}/v2/models/iris/infer", json={}, timeout=10)  # another model
    w = board.poll()
    assert (w.requests, w.errors, w.total - first.total) == (153, 3, 153)
    mix = {k: n - first.mix.get(k, 0.0) for k, n in w.mix.items()}
    assert {k: n for k, n in mix.items() if n} == {
        k: float(v) for k, v in sent["label"].value_counts().sort_index().items()}
    assert w.rate == pytest.approx(153 / w.seconds)
    assert 0 < w.p50 <= w.p99 <= 10.0
    assert f"data-total='{int(w.total)}'" in board.board.value and board.status.startswith("live")
    assert everything.poll().requests == 154  # every model: the 404 counts too


def test_the_thread_polls_without_the_caller_and_stops_when_the_server_goes(split):
    server = ServerProcess(quickstart.model_repository(), args=["--no-access-log"]).start()
    board = live_dashboard(server.url, "penguins", interval=0.2)
    try:
        assert board.running and board.latest.total == 0
        traffic.send(server.url, "penguins", split.X_test, 40)
        _until(lambda: board.latest.total == 40, 10, "the thread to see 40 requests")
        _until(lambda: len(board.history) >= 2, 10, "a rate history")
        server.stop()
        _until(lambda: not board.running, 10, "the thread to stop after the server went")
        assert "the server has gone away" in board.status
        assert "the server has gone away" in board.board.value
    finally:
        board.close()
        server.stop()


def test_a_server_that_refuses_the_scrape_stops_the_thread_with_its_answer():
    with ServerProcess(quickstart.model_repository(), env={"MODEL_SERVER_TOKEN": "s3cret"}) as server:
        assert Dashboard(server.url, token="s3cret").poll().total == 0  # with the token: fine
        board = Dashboard(server.url, interval=0.1).start()  # without it: 401
        _until(lambda: not board.running, 10, "the thread to stop on a 401")
        assert "401" in board.status and "gone away" not in board.status
        board.close()


def test_close_stops_the_thread_and_the_display_data_is_a_sentence_and_a_picture(server, report):
    board = live_dashboard(server.url, "penguins", drift=report, interval=0.2)
    bundle = board._repr_mimebundle_()
    assert bundle["text/plain"].startswith("The monitoring dashboard: an interactive widget.")
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    assert "data-feature='body_mass_g' data-flagged='1'" in board.board.value
    assert "data-feature='bill_length_mm' data-flagged='0'" in board.board.value
    board.close()
    assert not board.running and board.status == "closed"


def test_a_drift_source_that_cannot_be_read_is_said_not_raised(server):
    exporter = monitoring.DriftExporter("penguins")  # never started: no address
    board = Dashboard(server.url, drift=exporter)
    board.poll()
    assert "unreadable" in next(iter(board.flags.values()))[0]
    with pytest.raises(ValueError, match="positive number of seconds"):
        Dashboard(server.url, interval=0)
    assert isinstance(drift_flags(pd.DataFrame(columns=["feature", "check", "violated"])), dict)
