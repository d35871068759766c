"""The platforms' container contracts, chosen by the variables each sets (python -m server serve)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import requests
from _server_fixtures import ServerProcess, records, reference

from mlprod import data, quickstart
from server import platforms


def test_no_platform_variable_changes_nothing():
    assert platforms.from_environment({}) == platforms.Platform()


@pytest.mark.parametrize("env, fragments", [
    ({"AIP_HTTP_PORT": "9000", "SAGEMAKER_BIND_TO_PORT": "9001"},
     ["SAGEMAKER_BIND_TO_PORT=9001", "AIP_HTTP_PORT=9000", "different ports"]),
    ({"PORT": "8081", "AIP_HTTP_PORT": "8080"}, ["AIP_HTTP_PORT=8080", "PORT=8081"]),
    ({"PORT": "http"}, ["PORT='http' is not a port"]),
    ({"PORT": "²"}, ["is not a port"]),
    ({"AIP_PREDICT_ROUTE": "predict"}, ["AIP_PREDICT_ROUTE='predict' is not a route"]),
    ({"AIP_STORAGE_URI": "gs://bucket/model"}, ["Cloud Storage URI", "baked into the image"]),
    ({"AIP_STORAGE_URI": "/nowhere/at/all"}, ["is not a folder here"]),
])
def test_what_cannot_be_honoured_is_named(env, fragments):
    with pytest.raises(platforms.PlatformError) as info:
        platforms.from_environment(env)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_the_same_port_twice_is_fine():
    found = platforms.from_environment({"AIP_HTTP_PORT": "9000", "PORT": "9000"})
    assert found.port == 9000


def test_two_ports_stop_the_server_with_both_named():
    done = subprocess.run([sys.executable, "-m", "server", "serve"], capture_output=True,
                          text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "AIP_HTTP_PORT": "9000", "PORT": "9001"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "AIP_HTTP_PORT=9000" in done.stderr and "PORT=9001" in done.stderr


def test_vertex_ai_routes_and_body(split):
    repo = quickstart.model_repository()
    env = {"AIP_HTTP_PORT": "{port}", "AIP_HEALTH_ROUTE": "/v1/health",
           "AIP_PREDICT_ROUTE": "/v1/endpoints/e/deployedModels/m:predict",
           "AIP_STORAGE_URI": str(repo)}
    frame = split.X_test.head(4)
    expected_labels, expected_p, classes = reference(repo, frame)
    with ServerProcess(None, command=["serve"], env=env) as server:
        assert requests.get(f"{server.url}/v1/health", timeout=10).status_code == 200
        route = f"{server.url}/v1/endpoints/e/deployedModels/m:predict"
        as_records = requests.post(route, json={"instances": records(frame),
                                                "parameters": {}}, timeout=10)
        as_lists = requests.post(route, json={"instances": [
            [r[c] for c in data.FEATURES] for r in records(frame)]}, timeout=10)
        refused = requests.post(route, json={"instances": [{"island": "Mars"}]}, timeout=10)
    for answer in (as_records, as_lists):
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert [p["label"] for p in predictions] == expected_labels
        got = np.array([[p["probabilities"][c] for c in classes] for p in predictions])
        np.testing.assert_allclose(got, expected_p, atol=1e-5)
    assert refused.status_code == 400 and "error" in refused.json()


def test_cloud_foundry_port(split):
    with ServerProcess(None, command=["serve", "--model-repository",
                                      str(quickstart.model_repository())],
                       env={"PORT": "{port}"}) as server:
        assert requests.get(f"{server.url}/ping", timeout=10).status_code == 200
