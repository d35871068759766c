"""GET /metrics and data capture over real HTTP: counts that match what was sent, records on disk."""

from __future__ import annotations

import json
import re
import signal
import time

import pytest
import requests
from _server_fixtures import ServerProcess, copy_repository
from prometheus_client.parser import text_string_to_metric_families

from mlprod import data, rollout, traffic
from mlprod.registry import Registry
from server.metrics import FLUSH_SECS

INFER = "/v2/models/penguins/infer"
LAYOUT = re.compile(r"penguins/(AllTraffic|production|candidate|shadow)/\d{4}/\d{2}/\d{2}/\d{2}/"
                    r"[\w-]+\.jsonl")


@pytest.fixture(scope="module")
def rows(split):
    return split.X_test


def samples(url: str, name: str, token: str | None = None) -> dict[tuple, float]:
    """The samples named ``name`` (as exposed, e.g. ``..._total``): sorted label items → value."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return samples_of(requests.get(f"{url}/metrics", headers=headers, timeout=10).text, name)


def by(table: dict[tuple, float], key: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in table.items():
        out[dict(labels)[key]] = out.get(dict(labels)[key], 0) + value
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_counters_equal_what_was_sent_by_code_and_variant(tmp_path, rows, workers):
    repo = copy_repository(tmp_path / "models")
    rollout.set_routing(Registry(repo), "penguins", [
        {"name": "production", "version": "production", "weight": 70},
        {"name": "candidate", "version": "candidate", "weight": 30}])
    with ServerProcess(repo, args=["--workers", str(workers)]) as server:
        sent = traffic.send(server.url, "penguins", rows, 300, concurrency=8)
        for _ in range(7):  # 4xx: an unknown model, a bad body
            requests.post(f"{server.url}/v2/models/iris/infer", json={})
            requests.post(f"{server.url}{INFER}", data=b"{", timeout=10)
        if workers > 1:  # the worker a scrape reaches flushes at once, the others every second
            time.sleep(FLUSH_SECS + 0.5)
        table = samples(server.url, "mlprod_requests_total")
        assert by(table, "code") == {"200": 300, "404": 7, "400": 7}
        ok = {k: v for k, v in table.items() if dict(k)["code"] == "200"}
        assert by(ok, "variant") == sent["variant"].value_counts().to_dict()
        assert dict(next(k for k in table if dict(k)["code"] == "404"))["model"] == "_unknown"
        rows_total = samples(server.url, "mlprod_rows_total")
        assert sum(rows_total.values()) == 300
        labels = by(samples(server.url, "mlprod_predictions_total"), "label")
        assert labels == sent["label"].value_counts().to_dict()
        info = samples(server.url, "mlprod_model_info")
        assert sorted(dict(k)["version"] for k in info) == ["1", "2"]
        histogram = samples(server.url, "mlprod_request_duration_seconds_bucket")
        counts = {k: v for k, v in histogram.items() if ("le", "+Inf") in k}
        assert sum(counts.values()) == 307  # 300 answers and the 7 bad bodies of a known model


def test_metrics_need_the_token_when_one_is_set(tmp_path):
    repo = copy_repository(tmp_path / "models")
    with ServerProcess(repo, env={"MODEL_SERVER_TOKEN": "s3cret"}) as server:
        assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 401
        assert samples(server.url, "mlprod_model_info", token="s3cret")


def test_every_answer_is_captured_in_the_documented_layout_and_a_stop_loses_none(tmp_path, rows):
    repo, capture = copy_repository(tmp_path / "models"), tmp_path / "capture"
    args = ["--capture-dir", str(capture), "--capture-percent", "100", "--no-access-log"]
    server = ServerProcess(repo, args=args).start()
    try:
        sent = traffic.send(server.url, "penguins", rows, 5000, concurrency=8,
                            headers={"X-Amzn-SageMaker-Inference-Id": "batch-7"})
        requests.post(f"{server.url}{INFER}", data=b"{", timeout=10)  # a 400: not captured
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0
    finally:
        server.stop()
    assert (sent["status"] == 200).all()
    files = sorted(capture.rglob("*.jsonl"))
    assert files and all(LAYOUT.fullmatch(f.relative_to(capture).as_posix()) for f in files)
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert len(records) == 5000
    first = records[0]
    assert first["eventVersion"] == "0" and first["eventMetadata"]["inferenceId"] == "batch-7"
    assert first["captureData"]["endpointInput"]["mode"] == "INPUT"
    assert json.loads(first["captureData"]["endpointInput"]["data"])["inputs"]
    output = json.loads(first["captureData"]["endpointOutput"]["data"])
    assert output["model_name"] == "penguins" and output["outputs"][0]["name"] == "label"
    assert len({r["eventMetadata"]["eventId"] for r in records}) == 5000


def test_a_share_is_captured_and_an_unwritable_folder_fails_no_request(tmp_path, rows):
    repo = copy_repository(tmp_path / "models")
    capture = tmp_path / "capture"
    with ServerProcess(repo, args=["--capture-dir", str(capture), "--capture-percent", "20",
                                   "--no-access-log"]) as server:
        traffic.send(server.url, "penguins", rows, 2000, concurrency=8)
        server.stop()
    records = sum(len(f.read_text().splitlines()) for f in capture.rglob("*.jsonl"))
    assert abs(records / 2000 - 0.2) <= 0.03, records
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the capture folder should be")
    with ServerProcess(repo, args=["--capture-dir", str(blocked)]) as server:
        answers = traffic.send(server.url, "penguins", rows, 200, concurrency=4)
        assert (answers["status"] == 200).all()
        lost = {}
        for _ in range(50):  # the writer runs every second
            lost = samples(server.url, "mlprod_capture_errors_total")
            if sum(lost.values()) >= 200:
                break
            time.sleep(0.1)
        assert sum(lost.values()) == 200
        server.stop()
        assert server.log().count("capture: cannot write") == 1


def test_shadow_answers_are_captured_and_counted_as_variant_shadow(tmp_path, rows):
    repo, capture = copy_repository(tmp_path / "models"), tmp_path / "capture"
    rollout.add_shadow(Registry(repo), "penguins", 2, 100)
    with ServerProcess(repo, args=["--capture-dir", str(capture)]) as server:
        traffic.send(server.url, "penguins", rows, 50)
        shadow = {k: v for k, v in samples(server.url, "mlprod_requests_total").items()
                  if dict(k)["variant"] == "shadow"}
        assert sum(shadow.values()) == 50 and {dict(k)["version"] for k in shadow} == {"2"}
        server.stop()
    assert len(list((capture / "penguins" / "shadow").rglob("*.jsonl"))) >= 1
    assert data.FEATURES  # the rows sent were the six features


def test_flushed_counts_equal_prometheus_clients_own_observations():
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from server.metrics import BUCKETS, add_observations, check_prometheus_client

    assert check_prometheus_client() == []
    seconds = [0.00005, 0.0001, 0.0003, 0.0003, 0.7, 10.0, 12.5]  # edges, a repeat, past 10 s
    texts = []
    for batched in (False, True):
        registry = CollectorRegistry()
        child = Histogram("t_seconds", "t", ["model"], buckets=BUCKETS,
                          registry=registry).labels("m")
        if batched:
            counts = [0] * (len(BUCKETS) + 1)
            for s in seconds:
                counts[next(i for i, le in enumerate([*BUCKETS, float("inf")]) if s <= le)] += 1
            add_observations(child, counts, sum(seconds))
        else:
            for s in seconds:
                child.observe(s)
        texts.append([line for line in generate_latest(registry).decode().splitlines()
                      if not line.startswith("t_seconds_created")])
    assert texts[0] == texts[1]
    assert 't_seconds_bucket{le="+Inf",model="m"} 7.0' in texts[1]


def test_a_scrape_shows_every_request_answered_before_it(app_client, split):
    from _server_fixtures import records

    before = samples_of(app_client.get("/metrics").text, "mlprod_requests_total")
    for _ in range(3):
        assert app_client.post("/invocations", json=records(split.X_test.head(2))).status_code == 200
    after = samples_of(app_client.get("/metrics").text, "mlprod_requests_total")
    assert sum(after.values()) - sum(before.values()) == 3


def samples_of(text: str, name: str) -> dict[tuple, float]:
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == name}


def test_written_records_have_v4_event_ids_and_the_documented_times_and_layout(tmp_path):
    import uuid

    from server.capture import Capture

    capture = Capture(tmp_path, 100)
    when = 1_764_547_199.25  # 2025-11-30T23:59:59.250Z; the next record is in the next hour
    body = b'{"inputs": []}'
    records = [(when + i, "penguins", "AllTraffic", b"id-%d" % i, b"application/json", body,
                b"text/csv; charset=utf-8", b"Adelie,0.9\n") for i in range(3)]
    capture.write(records)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jsonl"))
    assert [f.rsplit("/", 1)[0] for f in files] == ["penguins/AllTraffic/2025/11/30/23",
                                                    "penguins/AllTraffic/2025/12/01/00"]
    lines = [json.loads(line) for f in files for line in (tmp_path / f).read_text().splitlines()]
    ids = [uuid.UUID(r["eventMetadata"]["eventId"]) for r in lines]
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids) and len(set(ids)) == 3
    assert [r["eventMetadata"]["inferenceTime"] for r in lines] == [
        "2025-11-30T23:59:59.250Z", "2025-12-01T00:00:00.250Z", "2025-12-01T00:00:01.250Z"]
    assert lines[1]["eventMetadata"]["inferenceId"] == "id-1"
    assert lines[0]["captureData"]["endpointOutput"]["encoding"] == "CSV"
