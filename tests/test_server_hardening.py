"""Requests an attacker would send: each class that was a 500 is a 4xx now, and stalled clients end.

The classes (one rule each, applied wherever the value is read): a lone UTF-16 surrogate in a
string on the slow JSON path; a numeric header whose characters are digits to ``str.isdigit`` but
not to ``int``; a version segment of thousands of digits; long names echoed in full.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from _server_fixtures import ServerProcess, v2_body

from mlprod import data, quickstart
from server.httpproto import check_uvicorn

INFER = "/v2/models/penguins/infer"


@pytest.fixture(scope="module")
def body(split) -> dict:
    return v2_body(split.X_test.head(2))


def error(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/json"
    return response.json()["error"]


def raw_body(request_id: str = '"1"', island: str = '"Dream"') -> bytes:
    """One row as V2 JSON text, with a NaN (read only by the slow parser) and raw JSON strings."""
    tensors = []
    for name in data.FEATURES:
        if name in data.NUMERIC:
            value, datatype = ("NaN" if name == "bill_length_mm" else "40.0"), "FP32"
        else:
            value, datatype = (island if name == "island" else '"male"'), "BYTES"
        tensors.append(f'{{"name": "{name}", "shape": [1, 1], "datatype": "{datatype}", '
                       f'"data": [{value}]}}')
    return f'{{"id": {request_id}, "inputs": [{", ".join(tensors)}]}}'.encode()


def test_a_lone_surrogate_on_the_slow_json_path_is_a_400(app_client):
    sent = {"headers": {"Content-Type": "application/json"}}
    assert app_client.post(INFER, content=raw_body(), **sent).status_code == 200  # the slow path
    for body in (raw_body(request_id='"\\ud800"'), raw_body(island='"\\udfff"')):
        assert b"\\ud" in body
        assert "surrogate" in error(app_client.post(INFER, content=body, **sent), 400)


def orjson_text(body: dict) -> str:
    return json.dumps(body)


@pytest.mark.parametrize("value", ["²", "١٢", "9" * 5000, "-1", "1e3", " "])
def test_a_numeric_header_is_ascii_digits_or_a_400(app_client, body, value):
    message = error(app_client.post(INFER, content=orjson_text(body).encode(),
                                    headers={"Inference-Header-Content-Length": value.encode()}), 400)
    assert "Inference-Header-Content-Length" in message
    assert len(message) < 400  # the value is shortened, not echoed in full


@pytest.mark.parametrize("path", [
    "/v2/models/penguins/versions/" + "9" * 5000,
    "/v2/models/penguins/versions/" + "9" * 5000 + "/ready",
    "/v2/models/penguins/versions/²",
])
def test_a_huge_or_odd_version_segment_is_a_404(app_client, path):
    message = error(app_client.get(path), 404)
    assert "has no version" in message and len(message) < 400


def test_a_huge_version_in_the_target_model_header_is_a_404(app_client, split):
    from _server_fixtures import records

    response = app_client.post("/invocations", json=records(split.X_test.head(1)),
                               headers={"X-Amzn-SageMaker-Target-Model": "penguins/" + "9" * 5000})
    assert "has no version" in error(response, 404)


def test_a_long_model_name_is_shortened_in_the_answer(app_client, body):
    message = error(app_client.post(f"/v2/models/{'x' * 300}/infer", json=body), 404)
    assert "x" * 100 not in message and "available: ['penguins']" in message


def test_the_adapter_fits_the_installed_uvicorn():
    assert check_uvicorn() == []


def _stall(port: int, kind: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if kind == "head":
        sock.sendall(b"POST /v2/models/penguins/infer HTTP/1.1\r\nHost: x\r\n")
    else:
        sock.sendall(b"POST /v2/models/penguins/infer HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"inp")
    return sock


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(0.05)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_stalled_heads_and_bodies_are_closed_and_others_still_served(body):
    import requests

    args = ["--read-timeout-secs", "1", "--no-access-log"]
    with ServerProcess(quickstart.model_repository(), args=args) as server:
        stalled = [_stall(server.port, "head" if i % 2 else "body") for i in range(300)]
        answer = requests.post(f"{server.url}{INFER}", json=body, timeout=10)
        assert answer.status_code == 200
        assert not any(_closed(s) for s in stalled[:10])  # still open before the timeout
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(_closed(s) for s in stalled):
            time.sleep(0.2)
        assert all(_closed(s) for s in stalled), sum(_closed(s) for s in stalled)
        assert requests.post(f"{server.url}{INFER}", json=body, timeout=10).status_code == 200
        for s in stalled:
            s.close()


def test_beyond_the_concurrency_limit_a_json_503_with_retry_after(body):
    import requests

    args = ["--limit-concurrency", "4", "--no-access-log"]
    with ServerProcess(quickstart.model_repository(), args=args) as server:
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(6)]
        time.sleep(0.2)  # the server has accepted them
        answer = requests.post(f"{server.url}{INFER}", json=body, timeout=10)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert "--limit-concurrency" in answer.json()["error"]
        for sock in held:
            sock.close()
        time.sleep(0.2)
        assert requests.post(f"{server.url}{INFER}", json=body, timeout=10).status_code == 200

