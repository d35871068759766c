"""The server as a process: token, graceful stop, parent watch, SageMaker mode, workers, start-up
errors and several models."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from _server_fixtures import ServerProcess, records, v2_body

TOKEN = "s3cret-token"
V2 = "/v2/models/penguins/infer"


@pytest.fixture(scope="module")
def token_server(module_repo):
    with ServerProcess(module_repo, env={"MODEL_SERVER_TOKEN": TOKEN}) as process:
        yield process


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready", "/ping"])
def test_health_needs_no_token(token_server, path):
    assert requests.get(f"{token_server.url}{path}").status_code == 200


@pytest.mark.parametrize("headers, problem", [
    ({}, "No Authorization header"),
    (auth("wrong"), "The bearer token is wrong"),
    ({"Authorization": f"Basic {TOKEN}"}, "not a bearer token"),
])
@pytest.mark.parametrize("method, path", [("POST", V2), ("POST", "/invocations"),
                                          ("GET", "/v2/models/penguins"), ("GET", "/v2"),
                                          ("GET", "/openapi.json"), ("GET", "/docs")])
def test_token_is_required(token_server, split, headers, problem, method, path):
    body = v2_body(split.X_test.head(2)) if path == V2 else records(split.X_test.head(2))
    response = requests.request(method, f"{token_server.url}{path}", json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    message = response.json()["error"]
    assert problem in message and "Authorization: Bearer <token>" in message
    assert TOKEN not in message
    good = requests.request(method, f"{token_server.url}{path}", json=body, headers=auth(TOKEN))
    assert good.status_code == 200, good.text


def test_openapi_declares_the_bearer_scheme(token_server):
    doc = requests.get(f"{token_server.url}/openapi.json", headers=auth(TOKEN)).json()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "security" in doc["paths"]["/invocations"]["post"]
    assert "security" not in doc["paths"]["/ping"]["get"]


def test_sigterm_drains_the_request_in_flight_and_logs_it(module_repo, rows):
    """A request whose body is still arriving when SIGTERM lands is answered, then the server
    exits 0; its access-log line carries the request id and the latency."""
    body = json.dumps(v2_body_rows(rows)).encode()
    with ServerProcess(module_repo) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.putrequest("POST", V2)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(body)))
        connection.putheader("X-Request-Id", "drain-42")
        connection.endheaders(body[:10])
        # A full exchange on another connection: by its answer, the first request has begun.
        assert requests.get(f"{server.url}/v2/health/live").status_code == 200
        server.process.send_signal(signal.SIGTERM)
        connection.send(body[10:])
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("X-Request-Id") == "drain-42"
        assert json.loads(response.read())["model_name"] == "penguins"
        assert server.process.wait(15) == 0
        log = server.log()
    line = next(x for x in log.splitlines() if " drain-42 " in x)
    assert f'"POST {V2}" 200' in line and line.endswith("ms")
    assert "Traceback" not in log


def v2_body_rows(rows: list[dict]) -> dict:
    import pandas as pd

    return v2_body(pd.DataFrame(rows))


def test_exits_when_the_parent_process_is_gone(module_repo):
    parent = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                              stdin=subprocess.PIPE)
    server = ServerProcess(module_repo)
    try:
        server.args = ["--parent-pid", str(parent.pid)]
        server.start()
        parent.stdin.close()  # the parent ends
        parent.wait(10)
        assert server.process.wait(15) == 0
    finally:
        parent.kill()
        parent.wait()
        server.__exit__(None, None, None)


def test_parent_pid_that_does_not_exist(module_repo):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with pytest.raises(RuntimeError, match="no such process"):
        with ServerProcess(module_repo, args=["--parent-pid", str(dead.pid)]):
            pass


def listening_address(port: int) -> str | None:
    """Return the IPv4 address a local socket listens on for ``port`` (from /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            return ".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0))
    return None


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_serve_mode_binds_all_interfaces_on_the_sagemaker_port(module_repo, rows):
    with ServerProcess(None, command=["serve", "--model-repository", str(module_repo)],
                       env={"SAGEMAKER_BIND_TO_PORT": "{port}"}) as server:
        assert listening_address(server.port) == "0.0.0.0"
        response = requests.post(f"{server.url}/invocations", json=rows,
                                 headers={"Accept": "text/csv"})
        assert response.status_code == 200
        assert response.text.splitlines()[0].split(",")[0] in ("Adelie", "Chinstrap", "Gentoo")


def test_serve_mode_defaults(monkeypatch):
    from server.__main__ import parse

    for name in ("SAGEMAKER_BIND_TO_PORT", "SAGEMAKER_MODEL_SERVER_WORKERS",
                 "SAGEMAKER_MAX_PAYLOAD_IN_MB"):
        monkeypatch.delenv(name, raising=False)
    args = parse(["serve"])
    assert (args.model_repository, args.host, args.port) == ("/opt/ml/model", "0.0.0.0", 8080)
    assert (args.workers, args.max_body_bytes) == (1, 6_291_456)
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "9090")
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "2")
    monkeypatch.setenv("SAGEMAKER_MAX_PAYLOAD_IN_MB", "10")
    args = parse(["serve", "--model-repository", "models"])
    assert (args.model_repository, args.port, args.workers) == ("models", 9090, 2)
    assert args.max_body_bytes == 10 * 1_048_576
    local = parse(["--model-repository", "models"])  # SageMaker variables touch serve only
    assert (local.host, local.port, local.workers, local.max_body_bytes) == (
        "127.0.0.1", 8000, 1, 6_291_456)
    assert (args.model_control, local.model_control) == ("none", "explicit")
    monkeypatch.delenv("SAGEMAKER_MODEL_SERVER_WORKERS")
    assert parse(["serve", "--model-control", "explicit"]).model_control == "explicit"


@pytest.mark.parametrize("name, value", [
    ("SAGEMAKER_BIND_TO_PORT", "abc"), ("SAGEMAKER_BIND_TO_PORT", "70000"),
    ("SAGEMAKER_MODEL_SERVER_WORKERS", "abc"), ("SAGEMAKER_MODEL_SERVER_WORKERS", "0"),
    ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "six"), ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "nan"),
])
def test_serve_mode_bad_environment_is_a_usage_error(monkeypatch, capsys, name, value):
    from server.__main__ import parse

    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        parse(["serve"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "usage: python -m server" in error and "Traceback" not in error
    assert value in error and (name in error or "port" in error), error


def test_server_never_imports_mlprod_or_scikit_learn():
    code = ("import sys, server, server.app, server.__main__, server.inference; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('mlprod', 'sklearn', 'pandas', 'skl2onnx')); print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(x) for x in path.read_text().split()} if path.exists() else set()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_two_workers_serve_and_stop_together(module_repo, rows):
    with ServerProcess(module_repo, args=["--workers", "2"]) as server:
        for _ in range(4):
            response = requests.post(f"{server.url}/invocations", json=rows)
            assert response.status_code == 200, response.text
        spawned = children(server.process.pid)  # two workers and multiprocessing's tracker
        assert len(spawned) >= 2
        assert server.stop() == 0
    deadline = time.monotonic() + 10  # the tracker leaves once it sees its parent gone
    while running(spawned) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(spawned)


def running(pids: set[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if "zombie" not in Path(f"/proc/{pid}/status").read_text():
                alive.append(pid)
        except FileNotFoundError:
            pass
    return alive


def expect_start_failure(repository, *args: str) -> str:
    server = ServerProcess(repository, args=args)
    try:
        server.start(wait=False)
        assert server.process.wait(30) == 2
        return server.log()
    finally:
        server.__exit__(None, None, None)


def test_start_fails_on_an_altered_model_file(repo):
    (repo / "penguins" / "2" / "model.onnx").write_bytes(
        (repo / "penguins" / "1" / "model.onnx").read_bytes())
    log = expect_start_failure(repo)
    assert "does not match" in log and "model.sha256" in log and "Register the model again" in log
    assert "Traceback" not in log


def test_start_fails_on_an_empty_repository(tmp_path):
    log = expect_start_failure(tmp_path)
    assert "No model in repository" in log and "<model>/<version>/model.onnx" in log


def test_start_fails_on_an_unknown_default_model(module_repo):
    log = expect_start_failure(module_repo, "--default-model", "iris")
    assert "'iris'" in log and "['penguins']" in log


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, module_repo):
    root = tmp_path_factory.mktemp("two-models")
    shutil.copytree(module_repo / "penguins", root / "penguins")
    shutil.copytree(module_repo / "penguins", root / "penguins-b")
    return root


def test_several_models_need_a_target(two_models, rows):
    with ServerProcess(two_models) as server:
        response = requests.post(f"{server.url}/invocations", json=rows)
        assert response.status_code == 400
        message = response.json()["error"]
        assert "['penguins', 'penguins-b']" in message
        assert "X-Amzn-SageMaker-Target-Model" in message and "--default-model" in message
        named = requests.post(f"{server.url}/invocations", json=rows,
                              headers={"X-Amzn-SageMaker-Target-Model": "penguins-b"})
        assert named.headers["X-Model-Name"] == "penguins-b"
        assert requests.get(f"{server.url}/v2/models").json()["models"] == [
            "penguins", "penguins-b"]


def test_default_model_serves_invocations(two_models, rows):
    with ServerProcess(two_models, args=["--default-model", "penguins-b"]) as server:
        response = requests.post(f"{server.url}/invocations", json=rows)
        assert response.status_code == 200
        assert response.headers["X-Model-Name"] == "penguins-b"
