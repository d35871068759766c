"""mlprod.client against the reference server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import io
import json
import socket
import threading

import numpy as np
import pandas as pd
import pytest

from mlprod import data, export, quickstart
from mlprod.client import (
    Client,
    Exchange,
    ServerError,
    classes_of,
    decode_v2,
    encode_v2,
)
from mlprod.serving import LocalServer, free_port

MODEL = quickstart.MODEL_NAME


@pytest.fixture
def client(server):
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def rows():
    """Held-out rows plus rows with every kind of missing value."""
    X = data.split().X_test.reset_index(drop=True)
    gaps = X.iloc[:4].copy()
    gaps.loc[0, "body_mass_g"] = np.nan
    gaps.loc[1, "sex"] = ""
    gaps.loc[2, ["bill_length_mm", "island"]] = [np.nan, ""]
    gaps.loc[3, data.NUMERIC] = np.nan
    return pd.concat([X, gaps], ignore_index=True)


@pytest.mark.parametrize("version, folder", [(None, "1"), ("candidate", "2"), (2, "2")])
def test_predict_equals_in_process_onnxruntime(client, repository, rows, version, folder):
    got = client.predict(rows, model=MODEL, version=version, classes=data.CLASSES)
    model = (repository / MODEL / folder / "model.onnx").read_bytes()
    labels, probabilities = export.onnx_predict(export.session(model), rows)
    assert list(got.columns) == ["label", *data.CLASSES]
    assert got.index.equals(rows.index)
    assert got["label"].tolist() == labels.tolist()
    np.testing.assert_allclose(got[data.CLASSES].to_numpy(dtype=float), probabilities,
                               rtol=0, atol=1e-7)
    assert client.last.status == 200
    assert dict(client.last.response_headers)["x-model-version"] == folder


def test_predict_names_probability_columns_from_metadata_or_by_position(client, rows):
    got = client.predict(rows.iloc[:3], model=MODEL)
    declared = classes_of(client.metadata(MODEL, 1))
    expected = declared or [f"probabilities_{j}" for j in range(len(data.CLASSES))]
    assert list(got.columns) == ["label", *expected]


def test_predict_accepts_records_and_one_dict(client, rows):
    frame = client.predict(rows.iloc[:5], model=MODEL, classes=data.CLASSES)
    records = rows.iloc[:5].replace({np.nan: None}).to_dict(orient="records")
    from_records = client.predict(records, model=MODEL, classes=data.CLASSES)
    pd.testing.assert_frame_equal(from_records, frame)
    one = client.predict(records[0], model=MODEL, classes=data.CLASSES)
    assert one["label"].tolist() == frame["label"].tolist()[:1]


def test_last_exchange_shows_the_raw_request_and_response(client, server, rows):
    client.predict(rows.iloc[:2], model=MODEL, classes=data.CLASSES)
    exchange = client.last
    assert isinstance(exchange, Exchange)
    assert exchange.method == "POST"
    assert exchange.url == f"{server.url}/v2/models/{MODEL}/infer"
    sent = dict(exchange.request_headers)
    assert sent["Host"] == server.url.removeprefix("http://")
    assert sent["Content-Type"] == "application/json"
    assert int(sent["Content-Length"]) == len(exchange.request_body)
    assert json.loads(exchange.request_body) == client.infer_body(rows.iloc[:2], MODEL)
    answer = json.loads(exchange.response_body)
    assert answer["model_name"] == MODEL
    assert [o["name"] for o in answer["outputs"]] == ["label", "probabilities"]
    received = {k.lower(): v for k, v in exchange.response_headers}
    assert received["x-model-name"] == MODEL
    assert received["content-type"] == "application/json"

    text = exchange.format()
    assert text.startswith(f"POST /v2/models/{MODEL}/infer HTTP/1.1\nHost: 127.0.0.1:")
    assert "\n\nHTTP/1.1 200 OK\n" in text
    assert exchange.request_body.decode() in text
    assert "date:" in text.lower() and "User-Agent: python-requests/" in text
    stable = exchange.format(volatile=False).lower()
    assert "date:" not in stable and "user-agent" not in stable and "content-length" in stable
    rounded = exchange.response_text(digits=3).split("\n\n", 1)[1]
    shown = json.loads(rounded)["outputs"][1]["data"]
    assert shown == [float(f"{p:.3g}") for p in answer["outputs"][1]["data"]]
    assert json.loads(rounded)["outputs"][0] == answer["outputs"][0]
    short = exchange.request_text(max_body=10)
    assert f"({len(exchange.request_body) - 10} more characters)" in short


def test_encode_v2_sends_missing_numbers_as_null_and_missing_text_as_empty(client):
    inputs = client.metadata(MODEL)["inputs"]
    frame = pd.DataFrame([{"bill_length_mm": np.nan, "bill_depth_mm": 18, "flipper_length_mm": None,
                           "body_mass_g": "3750", "island": None, "sex": np.nan}])
    body = encode_v2(frame, inputs)
    by_name = {t["name"]: t for t in body["inputs"]}
    assert [t["name"] for t in body["inputs"]] == data.FEATURES
    assert by_name["bill_length_mm"] == {"name": "bill_length_mm", "shape": [1, 1],
                                         "datatype": "FP32", "data": [None]}
    assert by_name["flipper_length_mm"]["data"] == [None]
    assert by_name["body_mass_g"]["data"] == [3750.0]
    assert by_name["island"] == {"name": "island", "shape": [1, 1], "datatype": "BYTES",
                                 "data": [""]}
    assert by_name["sex"]["data"] == [""]
    got = client.predict(frame, model=MODEL, classes=data.CLASSES)
    assert got["label"].iloc[0] in data.CLASSES


def test_encode_v2_takes_the_kits_feature_schema_as_the_server_declares_it(client, rows):
    """data.schema() (kinds) and the served metadata (datatypes) give the same body."""
    assert encode_v2(rows, data.schema()) == encode_v2(rows, client.metadata(MODEL)["inputs"])


def test_bad_input_is_refused_before_sending_with_the_column_and_value(client, rows):
    client.infer_body(rows.iloc[:1], MODEL)  # the model's inputs, fetched once and kept
    client.health()
    before = client.last
    with pytest.raises(ValueError, match=r"Columns \['sex'\] are missing"):
        client.predict(rows.drop(columns="sex"), model=MODEL)
    bad = rows.iloc[:3].astype({"body_mass_g": object})
    bad.loc[bad.index[1], "body_mass_g"] = "heavy"
    with pytest.raises(ValueError, match=r"'body_mass_g' is FP32, but row 1 holds 'heavy'"):
        client.predict(bad, model=MODEL)
    assert client.last is before  # nothing was sent
    with pytest.raises(TypeError, match="pass a DataFrame"):
        client.predict("bill_length_mm=39", model=MODEL)


def test_server_errors_surface_with_status_and_the_servers_text(client):
    with pytest.raises(ServerError) as info:
        client.metadata("no-such-model")
    err = info.value
    assert err.status == 404
    assert "no-such-model" in err.error and MODEL in err.error
    assert str(err).startswith("404 Not Found from GET /v2/models/no-such-model: ")
    assert err.exchange.status == 404 and client.last is err.exchange

    with pytest.raises(ServerError) as info:
        client.predict(pd.DataFrame([dict.fromkeys(data.FEATURES, 1.0)]), model=MODEL,
                       version=99)
    assert info.value.status == 404 and "99" in info.value.error

    with pytest.raises(ServerError) as info:
        client.invocations("bill_length_mm\nabc\n", content_type="text/csv")
    assert info.value.status == 400

    with pytest.raises(ServerError) as info:
        client.invocations("<row/>", content_type="application/xml")
    assert info.value.status == 415 and "application/xml" in info.value.error

    response = client.send("GET", f"/v2/models/{MODEL}/infer", check=False)
    assert response.status_code == 405
    assert "error" in response.json()


def test_invocations_json_and_csv_agree_with_v2(client, rows):
    sample = rows.iloc[:6]
    v2 = client.predict(sample, model=MODEL, classes=data.CLASSES)
    records = sample.replace({np.nan: None}).to_dict(orient="records")
    response = client.invocations({"dataframe_records": records})
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["X-Model-Name"] == MODEL
    predictions = response.json()["predictions"]
    assert [p["label"] for p in predictions] == v2["label"].tolist()
    np.testing.assert_allclose([[p["probabilities"][c] for c in data.CLASSES]
                                for p in predictions], v2[data.CLASSES], atol=1e-7)

    response = client.invocations(sample.to_csv(index=False), content_type="text/csv",
                                  accept="text/csv", model=MODEL)
    assert response.headers["Content-Type"].startswith("text/csv")
    table = pd.read_csv(io.StringIO(response.text), header=None, names=["label", *data.CLASSES])
    assert len(table) == len(sample)  # one line per row: no header line unless asked for
    assert table["label"].tolist() == v2["label"].tolist()
    np.testing.assert_allclose(table[data.CLASSES], v2[data.CLASSES], atol=1e-7)
    assert dict(client.last.request_headers)["X-Amzn-SageMaker-Target-Model"] == MODEL


def test_health_models_and_metadata(client):
    assert client.health() is True
    assert client.ping() is True
    assert client.models() == [MODEL]
    assert client.ready(MODEL, "production") is True
    meta = client.metadata(MODEL)
    assert [i["name"] for i in meta["inputs"]] == data.FEATURES
    assert [i["datatype"] for i in meta["inputs"]] == ["FP32"] * 4 + ["BYTES"] * 2
    assert client.server_metadata()["name"]


def test_decode_v2_refuses_a_wrong_number_of_class_names():
    body = {"outputs": [{"name": "label", "datatype": "BYTES", "shape": [1], "data": ["Adelie"]},
                        {"name": "probabilities", "datatype": "FP32", "shape": [1, 3],
                         "data": [0.5, 0.3, 0.2]}]}
    frame = decode_v2(body, ["a", "b", "c"])
    assert frame.to_dict(orient="records") == [{"label": "Adelie", "a": 0.5, "b": 0.3, "c": 0.2}]
    with pytest.raises(ValueError, match="classes has 2 names"):
        decode_v2(body, ["a", "b"])


def test_classes_of_reads_model_or_output_parameters():
    assert classes_of({"inputs": [], "outputs": []}) is None
    assert classes_of({"parameters": {"classes": ["x", "y"]}}) == ["x", "y"]
    assert classes_of({"outputs": [{"name": "p", "parameters": {"classes": '["u"]'}}]}) == ["u"]


def test_token_is_sent_masked_in_the_view_and_required_by_the_server(repository, rows):
    with LocalServer(repository, token="s3cret-token") as secured:
        with Client(secured.url) as anonymous:
            assert anonymous.health() is True  # health needs no token
            with pytest.raises(ServerError) as info:
                anonymous.metadata(MODEL)
            assert info.value.status == 401
            assert dict(info.value.exchange.response_headers)["www-authenticate"] \
                .startswith("Bearer")
        with secured.client() as client:
            got = client.predict(rows.iloc[:3], model=MODEL, classes=data.CLASSES)
            assert got.shape == (3, 4)
            assert dict(client.last.request_headers)["Authorization"] == "Bearer s3cret-token"
            text = client.last.format()
            assert "Authorization: Bearer ***" in text and "s3cret" not in text
        with Client(secured.url, token="wrong") as wrong, pytest.raises(ServerError) as info:
            wrong.predict(rows.iloc[:1], model=MODEL)
        assert info.value.status == 401


def test_no_server_gives_a_clear_connection_error():
    port = free_port()
    with Client(f"http://127.0.0.1:{port}", retries=0) as client:
        assert client.health() is False
        with pytest.raises(ConnectionError, match=f"No server answers GET http://127.0.0.1:{port}"):
            client.models()


class FlakyServer:
    """Answer HTTP on a raw socket, closing the first connection after reading its request."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                request = conn.recv(65536)
                if not request:
                    continue
                self.requests.append(request)
                if len(self.requests) > 1:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 13\r\nConnection: close\r\n\r\n"
                                 b'{"models":[]}')

    def close(self):
        self.sock.close()
        self.thread.join(timeout=5)


def test_get_is_retried_after_a_dropped_connection_and_post_is_not():
    flaky = FlakyServer()
    try:
        with Client(flaky.url, retries=2) as client:
            assert client.models() == []
            assert len(flaky.requests) == 2
            assert all(r.startswith(b"GET /v2/models ") for r in flaky.requests)
        flaky.requests.clear()  # the next request is dropped again
        with Client(flaky.url, retries=2) as client:
            with pytest.raises(ConnectionError):
                client.invocations({"instances": []})
            assert len(flaky.requests) == 1
            assert flaky.requests[0].startswith(b"POST /invocations ")
    finally:
        flaky.close()
