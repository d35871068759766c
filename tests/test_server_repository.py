"""The repository extension over real HTTP: load and unload, bad folders, model control.

Each test runs its own server on its own copy of the repository, since these tests change
what the server holds.
"""

from __future__ import annotations

import http.client
import json
import shutil

import pytest
import requests
from _server_fixtures import ServerProcess, v2_body

LOAD = "/v2/repository/models/{}/load"
UNLOAD = "/v2/repository/models/{}/unload"


def check_error(response: requests.Response, status: int, *fragments: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    message = response.json()["error"]
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def served_versions(server: ServerProcess) -> list[str]:
    return requests.get(f"{server.url}/v2/models/penguins").json()["versions"]


def predicts(server: ServerProcess, rows: list[dict]) -> None:
    import pandas as pd

    answer = requests.post(f"{server.url}/v2/models/penguins/infer",
                           json=v2_body(pd.DataFrame(rows)))
    assert answer.status_code == 200, answer.text
    invocation = requests.post(f"{server.url}/invocations", json=rows)
    assert invocation.status_code == 200, invocation.text
    assert len(invocation.json()["predictions"]) == len(rows)


NOT_NAMES = ["%2E%2E", "..", ".hidden", "a%20b", "x" * 65]


def test_load_refuses_what_is_not_a_model_name(repo, rows):
    """`..` would name the repository's parent folder: the name is checked first."""
    with ServerProcess(repo) as server:
        for name in NOT_NAMES:
            # http.client sends the path as written (requests would resolve the dot segments).
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("POST", LOAD.format(name))
            answer = connection.getresponse()
            body = json.loads(answer.read())
            connection.close()
            assert answer.status == 400, (name, body)
            assert "is not a model name" in body["error"], body
            assert "e.g. 'penguins'" in body["error"]
            predicts(server, rows)


def damage_checksum(repo):
    (repo / "penguins" / "2" / "model.sha256").write_text("0" * 64 + "\n")


def damage_aliases(repo):
    (repo / "penguins" / "aliases.json").write_text("{production: 1")


def damage_model(repo):
    import hashlib

    (repo / "penguins" / "2" / "model.onnx").write_bytes(b"not onnx")
    (repo / "penguins" / "2" / "model.sha256").write_text(hashlib.sha256(b"not onnx").hexdigest())


DAMAGES = [
    (damage_checksum, ["does not match", "model.sha256", "Register the model again"]),
    (damage_aliases, ["aliases.json is not valid JSON", '{"production": 1, "candidate": 2}']),
    (damage_model, ["ONNX Runtime cannot load", "model.onnx"]),
]


def test_load_of_a_bad_folder_answers_400_and_keeps_the_model(repo, tmp_path, rows):
    pristine = shutil.copytree(repo / "penguins", tmp_path / "pristine")
    with ServerProcess(repo) as server:
        before = served_versions(server)
        for damage, fragments in DAMAGES:
            damage(repo)
            message = check_error(requests.post(f"{server.url}{LOAD.format('penguins')}"), 400,
                                  "Model 'penguins' cannot be loaded",
                                  "the versions loaded before are still served", *fragments)
            assert "Internal server error" not in message
            assert served_versions(server) == before
            predicts(server, rows)
            shutil.rmtree(repo / "penguins")
            shutil.copytree(pristine, repo / "penguins")


def test_load_of_an_unreadable_folder_answers_400(repo, rows):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    folder = repo / "penguins" / "2"
    with ServerProcess(repo) as server:
        folder.chmod(0o000)
        try:
            check_error(requests.post(f"{server.url}{LOAD.format('penguins')}"), 400,
                        "Cannot read", "readable by the server")
        finally:
            folder.chmod(0o755)
        predicts(server, rows)


def test_without_a_model_health_and_invocations_say_503_until_one_is_loaded(repo, rows):
    with ServerProcess(repo) as server:
        unloaded = requests.post(f"{server.url}{UNLOAD.format('penguins')}")
        assert unloaded.status_code == 200, unloaded.text
        hint = "POST /v2/repository/models/<name>/load"
        check_error(requests.post(f"{server.url}/invocations", json=rows), 503,
                    "No model is loaded", hint)
        check_error(requests.get(f"{server.url}/ping"), 503, "No model is loaded", hint)
        ready = requests.get(f"{server.url}/v2/health/ready")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False and hint in ready.json()["error"]
        assert requests.get(f"{server.url}/v2/health/live").status_code == 200
        check_error(requests.post(f"{server.url}/v2/models/penguins/infer", json={}), 404,
                    "No model 'penguins'", LOAD.format("penguins"))
        loaded = requests.post(f"{server.url}{LOAD.format('penguins')}")
        assert loaded.status_code == 200, loaded.text
        assert requests.get(f"{server.url}/ping").status_code == 200
        assert requests.get(f"{server.url}/v2/health/ready").status_code == 200
        predicts(server, rows)


def test_serve_mode_has_repository_control_off(repo, rows):
    """The container's command binds every interface: loading and unloading need a flag."""
    with ServerProcess(None, command=["serve", "--model-repository", str(repo), "--port",
                                      "{port}"]) as server:
        for route in (LOAD, UNLOAD):
            check_error(requests.post(f"{server.url}{route.format('penguins')}"), 404,
                        "model control is 'none'", "--model-control explicit")
        assert served_versions(server) == ["1", "2"]
        predicts(server, rows)


def test_serve_mode_with_explicit_model_control(repo, rows):
    shutil.copytree(repo / "penguins" / "2", repo / "penguins" / "3")
    with ServerProcess(None, command=["serve", "--model-repository", str(repo), "--port",
                                      "{port}", "--model-control", "explicit"]) as server:
        assert served_versions(server) == ["1", "2", "3"]
        shutil.rmtree(repo / "penguins" / "3")
        loaded = requests.post(f"{server.url}{LOAD.format('penguins')}")
        assert loaded.status_code == 200, loaded.text
        assert served_versions(server) == ["1", "2"]
        predicts(server, rows)
