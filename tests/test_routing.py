"""Routing between variants, shadow scoring and model control poll, over real HTTP.

Each test serves its own copy of the course repository (penguins 1 and 2, production → 1,
candidate → 2) and changes it with mlprod.registry and mlprod.rollout, as a learner does.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import requests
from _server_fixtures import ServerProcess, TestClient, records, v2_body

from mlprod import data, quickstart, rollout, traffic
from mlprod.client import Client
from mlprod.registry import Registry
from server import create_app

VARIANT = "X-Amzn-Invoked-Production-Variant"
SPLIT = [{"name": "production", "version": "production", "weight": 80},
         {"name": "candidate", "version": "candidate", "weight": 20}]


@pytest.fixture(scope="module")
def rows(split):
    return split.X_test.head(5)


def test_weights_split_traffic_and_every_answer_names_its_variant(repo, rows):
    rollout.set_routing(Registry(repo), "penguins", SPLIT)
    with ServerProcess(repo) as server:
        answers = traffic.send(server.url, "penguins", rows, 2000, concurrency=4)
        assert (answers["status"] == 200).all()
        assert answers["variant"].notna().all()  # the variant header on every routed answer
        share = (answers["variant"] == "production").mean()
        assert abs(share - 0.8) <= 0.04, share
        versions = answers.groupby("variant")["version"].unique()
        assert [list(versions["production"]), list(versions["candidate"])] == [[1], [2]]
        forced = traffic.send(server.url, "penguins", rows, 50,
                              headers={"X-Amzn-SageMaker-Target-Variant": "candidate"})
        assert set(forced["variant"]) == {"candidate"} and set(forced["version"]) == {2}
        body = v2_body(rows)
        unknown = requests.post(f"{server.url}/v2/models/penguins/infer", json=body,
                                headers={"X-Amzn-SageMaker-Target-Variant": "blue"})
        assert unknown.status_code == 400
        assert "variants: ['production', 'candidate']" in unknown.json()["error"]
        pinned = requests.post(f"{server.url}/v2/models/penguins/versions/2/infer", json=body)
        assert pinned.status_code == 200 and VARIANT not in pinned.headers
        assert pinned.headers["X-Model-Version"] == "2"
        invocation = requests.post(f"{server.url}/invocations", json=records(rows),
                                   headers={"X-Amzn-SageMaker-Target-Variant": "production"})
        assert invocation.headers[VARIANT] == "production"
        assert invocation.headers["X-Model-Version"] == "1"


def test_without_routing_nothing_changes(repo, rows):
    with ServerProcess(repo) as server:
        answer = requests.post(f"{server.url}/v2/models/penguins/infer", json=v2_body(rows))
        assert answer.status_code == 200 and VARIANT not in answer.headers
        assert answer.headers["X-Model-Version"] == "1"
        all_traffic = requests.post(f"{server.url}/v2/models/penguins/infer", json=v2_body(rows),
                                    headers={"X-Amzn-SageMaker-Target-Variant": "AllTraffic"})
        assert all_traffic.status_code == 200


def test_a_bad_routing_file_keeps_what_was_served(repo, rows):
    registry = Registry(repo)
    rollout.set_routing(registry, "penguins", SPLIT)
    with ServerProcess(repo) as server:
        (repo / "penguins" / "routing.json").write_text(
            '{"variants": [{"name": "a", "version": 1, "weight": -1}]}')
        answer = requests.post(f"{server.url}/v2/repository/models/penguins/load")
        assert answer.status_code == 400
        assert "routing.json: variants[0].weight is -1" in answer.json()["error"]
        still = traffic.send(server.url, "penguins", rows, 200)
        assert set(still["variant"]) == {"production", "candidate"}


def test_poll_brings_every_worker_to_the_new_production(repo, rows):
    registry = Registry(repo)
    args = ["--workers", "2", "--model-control", "poll", "--repository-poll-secs", "1"]
    with ServerProcess(repo, args=args) as server:
        before = traffic.send(server.url, "penguins", rows, 40, concurrency=4)
        assert set(before["version"]) == {1}
        registry.set_alias("penguins", "production", 2)
        time.sleep(3)  # the contract: every worker within the poll period (1 s) and a margin
        after = traffic.send(server.url, "penguins", rows, 200, concurrency=8)
        assert set(after["version"]) == {2}
        assert registry.rollback("penguins") == 1
        time.sleep(3)
        assert set(traffic.send(server.url, "penguins", rows, 200, concurrency=8)["version"]) == {1}


def test_explicit_model_control_with_two_workers_is_refused(repo):
    done = subprocess.run([sys.executable, "-m", "server", "--model-repository", str(repo),
                           "--workers", "2", "--model-control", "explicit"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "--model-control poll" in done.stderr and "Traceback" not in done.stderr


def test_swaps_under_load_lose_no_request(repo, rows):
    """Two version changes and a weight change while 16 clients send single rows."""
    registry = Registry(repo)
    rollout.set_routing(registry, "penguins", SPLIT)
    results = {}

    def load() -> None:
        results["answers"] = traffic.send(server.url, "penguins", rows, 10_000, concurrency=16)

    args = ["--model-control", "poll", "--repository-poll-secs", "0.2", "--no-access-log"]
    with ServerProcess(repo, args=args) as server:
        sender = threading.Thread(target=load)
        sender.start()
        time.sleep(0.5)
        registry.register("penguins", repo / "penguins" / "2" / "model.onnx")  # a new version
        registry.set_alias("penguins", "candidate", 3)
        time.sleep(0.5)
        registry.set_alias("penguins", "production", 2)
        time.sleep(0.5)
        rollout.set_weights(registry, "penguins", {"production": 50, "candidate": 50})
        sender.join()
    answers = results["answers"]
    assert len(answers) == 10_000
    assert (answers["status"] == 200).all(), answers["status"].value_counts()
    assert {1, 2, 3} <= set(answers["version"])  # the changes happened during the load


def test_shadow_answers_are_logged_never_returned(repo, rows):
    registry = Registry(repo)
    bad = registry.register("penguins", quickstart.shuffled_label_model())
    rollout.add_shadow(registry, "penguins", bad, 100)
    with ServerProcess(repo) as server:
        answers = traffic.send(server.url, "penguins", rows, 30)
        assert set(answers["version"]) == {1} and set(answers["variant"]) == {"production"}
        server.stop()
        shadow = rollout.shadow_records(server.log())
    assert len(shadow) == 30 and set(shadow["shadow_version"]) == {bad}
    assert set(shadow["request_id"]) == set(answers["request_id"])


def test_a_shadow_that_raises_changes_no_answer(repo, rows):
    registry = Registry(repo)
    rollout.add_shadow(registry, "penguins", 2, 100)
    app = create_app(repo, access_log=False)
    model = app.state.repository.models["penguins"]

    class Broken:
        def run(self, *args):
            raise RuntimeError("shadow exploded")

    model.shadow.session = Broken()
    with TestClient(app) as client:
        answer = client.post("/v2/models/penguins/infer", json=v2_body(rows))
    assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "1"
    assert len(answer.json()["outputs"][0]["data"]) == len(rows)


def test_the_rollout_rolls_a_bad_model_back_and_promotes_a_good_one(repo, capsys):
    registry = Registry(repo)
    labelled = data.synthesize(400, seed=5)
    bad = registry.register("penguins", quickstart.shuffled_label_model())
    registry.set_alias("penguins", "candidate", bad)
    with ServerProcess(repo) as server:
        client = Client(server.url)
        steps = rollout.Rollout(registry, "penguins", client, labelled[data.FEATURES],
                                labelled["species"], requests_per_step=150).run()
        assert list(steps["verdict"]) == ["rolled back"]
        assert "rolled back" in capsys.readouterr().out
        assert registry.aliases("penguins")["production"] == 1
        served = traffic.send(server.url, "penguins", labelled[data.FEATURES], 50)
        assert set(served["version"]) == {1}
        registry.set_alias("penguins", "candidate", 2)
        steps = rollout.Rollout(registry, "penguins", client, labelled[data.FEATURES],
                                labelled["species"], requests_per_step=150).run(progress=False)
        assert list(steps["verdict"]) == ["passed"] * 3
        assert registry.aliases("penguins")["production"] == 2
        assert registry.rollback("penguins") == 1
