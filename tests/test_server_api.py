"""The server's routes over real HTTP: health, metadata, V2 inference, SageMaker invocations.

Every prediction is compared with ONNX Runtime run in-process on the same model file.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
import requests
from _server_fixtures import ServerProcess, records, reference, v2_body

from mlprod import data

FEATURES = data.FEATURES


@pytest.fixture(scope="module")
def server(module_repo):
    with ServerProcess(module_repo) as process:
        yield process


@pytest.fixture(scope="module")
def frame(split) -> pd.DataFrame:
    """The held-out rows plus rows with missing values (NaN numeric, "" categorical)."""
    test = split.X_test.reset_index(drop=True)
    holes = test.head(4).copy()
    holes.loc[0, "bill_length_mm"] = np.nan
    holes.loc[1, ["island", "sex"]] = ""
    holes.loc[2, data.NUMERIC] = np.nan
    holes.loc[3, FEATURES] = [np.nan] * 4 + ["", ""]
    return pd.concat([test, holes], ignore_index=True)


def assert_same(labels, probabilities, expected) -> None:
    want_labels, want_probabilities, _ = expected
    assert list(labels) == want_labels
    # float32 written at its shortest exact form reads back to the identical float32
    np.testing.assert_array_equal(np.asarray(probabilities, dtype=np.float32), want_probabilities)


def from_v2(body: dict):
    outputs = {o["name"]: o for o in body["outputs"]}
    probabilities = np.asarray(outputs["probabilities"]["data"]).reshape(
        outputs["probabilities"]["shape"])
    return outputs["label"]["data"], probabilities


def from_predictions(body: dict, classes: list[str]):
    predictions = body["predictions"]
    return ([p["label"] for p in predictions],
            [[p["probabilities"][c] for c in classes] for p in predictions])


def from_csv(text: str, classes: list[str], header: bool = False):
    """Read a CSV answer: one line per row, a header line first only when it was asked for."""
    rows = list(csv.reader(io.StringIO(text)))
    if header:
        assert rows.pop(0) == ["label", *classes]
    assert all(len(r) == 1 + len(classes) and r[0] in classes for r in rows), rows[:3]
    return [r[0] for r in rows], [[float(x) for x in r[1:]] for r in rows]


def to_csv(frame: pd.DataFrame, header: bool, columns: list[str] = FEATURES) -> str:
    return frame[columns].to_csv(index=False, header=header)


def test_health_routes(server):
    assert requests.get(f"{server.url}/v2/health/live").json() == {"live": True}
    assert requests.get(f"{server.url}/v2/health/ready").json() == {"ready": True}
    ping = requests.get(f"{server.url}/ping")
    assert (ping.status_code, ping.content) == (200, b"")
    assert requests.get(f"{server.url}/health").status_code == 200


def test_server_metadata_and_model_list(server):
    meta = requests.get(f"{server.url}/v2").json()
    assert set(meta) == {"name", "version", "extensions"}
    assert requests.get(f"{server.url}/v2/models").json() == {"models": ["penguins"]}
    index = requests.post(f"{server.url}/v2/repository/index").json()
    assert sorted((m["name"], m["version"], m["state"]) for m in index) == [
        ("penguins", "1", "READY"), ("penguins", "2", "READY")]


def test_model_metadata_matches_the_onnx_file(server, module_repo):
    import onnxruntime as ort

    session = ort.InferenceSession(str(module_repo / "penguins" / "1" / "model.onnx"))
    types = {"tensor(float)": "FP32", "tensor(string)": "BYTES"}
    meta = requests.get(f"{server.url}/v2/models/penguins").json()
    assert meta["name"] == "penguins" and meta["platform"] == "onnxruntime_onnx"
    assert meta["versions"] == ["1", "2"]
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
        (i.name, types[i.type], [-1, 1]) for i in session.get_inputs()]
    assert [o["name"] for o in meta["outputs"]] == [o.name for o in session.get_outputs()]
    classes = json.loads(session.get_modelmeta().custom_metadata_map["classes"])
    assert meta["parameters"]["classes"] == classes
    assert [f["name"] for f in meta["parameters"]["features"]] == FEATURES
    one = requests.get(f"{server.url}/v2/models/penguins/versions/candidate").json()
    assert one["versions"] == ["2"]


@pytest.mark.parametrize("path, version", [
    ("/v2/models/penguins", 1),
    ("/v2/models/penguins/versions/1", 1),
    ("/v2/models/penguins/versions/2", 2),
    ("/v2/models/penguins/versions/production", 1),
    ("/v2/models/penguins/versions/candidate", 2),
])
def test_v2_infer_equals_in_process_onnxruntime(server, module_repo, frame, path, version):
    body = v2_body(frame) | {"id": "req-7"}
    response = requests.post(f"{server.url}{path}/infer", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["model_name"], answer["model_version"], answer["id"]) == (
        "penguins", str(version), "req-7")
    assert response.headers["X-Model-Name"] == "penguins"
    assert response.headers["X-Model-Version"] == str(version)
    assert_same(*from_v2(answer), reference(module_repo, frame, version))
    ready = requests.get(f"{server.url}{path}/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_v2_accepts_flat_shapes_nested_data_and_no_content_type(server, module_repo, frame):
    body = v2_body(frame)
    for tensor in body["inputs"][:3]:
        tensor["shape"] = [len(frame)]  # [N] for a [-1, 1] input
    for tensor in body["inputs"][3:]:
        tensor["data"] = [[v] for v in tensor["data"]]  # nested rows
    response = requests.post(f"{server.url}/v2/models/penguins/infer", data=json.dumps(body),
                             headers={"Content-Type": ""})
    assert response.status_code == 200, response.text
    assert_same(*from_v2(response.json()), reference(module_repo, frame))


def test_nan_tokens_are_missing_values(server, module_repo, frame):
    """Python's json and tritonclient write a missing float as NaN: it reads as null does."""
    body = json.dumps(v2_body(frame)).replace("null", "NaN")
    assert "NaN" in body
    response = requests.post(f"{server.url}/v2/models/penguins/infer", data=body)
    assert response.status_code == 200, response.text
    assert_same(*from_v2(response.json()), reference(module_repo, frame))
    table = json.dumps(records(frame)).replace("null", "NaN")
    assert "NaN" in table
    response = requests.post(f"{server.url}/invocations", data=table,
                             headers={"Content-Type": "application/json"})
    expected = reference(module_repo, frame)
    assert_same(*from_predictions(response.json(), expected[2]), expected)


def test_v2_returns_only_the_outputs_asked_for(server, frame):
    body = v2_body(frame.head(3)) | {"outputs": [{"name": "label"}]}
    answer = requests.post(f"{server.url}/v2/models/penguins/infer", json=body).json()
    assert [o["name"] for o in answer["outputs"]] == ["label"]
    assert answer["outputs"][0]["shape"] == [3]


@pytest.mark.parametrize("shape", ["records", "dataframe_records", "dataframe_split",
                                   "dataframe_split_reordered", "instances_records",
                                   "instances_rows", "inputs_columns", "rows"])
def test_invocations_json_shapes(server, module_repo, frame, shape):
    rows = records(frame)
    columns = {c: [r[c] for r in rows] for c in FEATURES}
    reordered = FEATURES[::-1]
    payload = {
        "records": rows,
        "dataframe_records": {"dataframe_records": rows},
        "dataframe_split": {"dataframe_split": {"columns": FEATURES,
                                                "data": [[r[c] for c in FEATURES] for r in rows]}},
        "dataframe_split_reordered": {"dataframe_split": {
            "columns": reordered, "data": [[r[c] for c in reordered] for r in rows]}},
        "instances_records": {"instances": rows},
        "instances_rows": {"instances": [[r[c] for c in FEATURES] for r in rows]},
        "inputs_columns": {"inputs": columns},
        "rows": [[r[c] for c in FEATURES] for r in rows],
    }[shape]
    response = requests.post(f"{server.url}/invocations", json=payload)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    expected = reference(module_repo, frame)
    assert_same(*from_predictions(response.json(), expected[2]), expected)


def test_invocations_single_record(server, module_repo, frame):
    row = records(frame.head(1))[0]
    response = requests.post(f"{server.url}/invocations", json={"inputs": row})
    assert response.status_code == 200, response.text
    expected = reference(module_repo, frame.head(1))
    assert_same(*from_predictions(response.json(), expected[2]), expected)


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("accept", ["text/csv", "application/json", None])
def test_invocations_csv_in(server, module_repo, frame, header, accept):
    headers = {"Content-Type": "text/csv"} | ({"Accept": accept} if accept else {})
    response = requests.post(f"{server.url}/invocations", data=to_csv(frame, header),
                             headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["X-Model-Name"] == "penguins"
    assert response.headers["X-Model-Version"] == "1"
    expected = reference(module_repo, frame)
    if accept == "text/csv":
        assert response.headers["Content-Type"].startswith("text/csv")
        assert_same(*from_csv(response.text, expected[2]), expected)
    else:
        assert_same(*from_predictions(response.json(), expected[2]), expected)


def test_invocations_csv_header_in_any_column_order(server, module_repo, frame):
    columns = ["sex", *data.NUMERIC, "island"]
    response = requests.post(f"{server.url}/invocations", data=to_csv(frame, True, columns),
                             headers={"Content-Type": "text/csv; charset=utf-8",
                                      "Accept": "text/csv"})
    assert response.status_code == 200, response.text
    expected = reference(module_repo, frame)
    assert_same(*from_csv(response.text, expected[2]), expected)


def test_invocations_csv_with_quotes_and_crlf(server, module_repo, frame):
    """Quoted fields and Windows line ends read the same as plain CSV."""
    text = frame[FEATURES].to_csv(index=False, header=True, quoting=csv.QUOTE_NONNUMERIC,
                                  lineterminator="\r\n")
    assert '"Dream"' in text or '"Biscoe"' in text
    response = requests.post(f"{server.url}/invocations", data=text,
                             headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    assert response.status_code == 200, response.text
    expected = reference(module_repo, frame)
    assert_same(*from_csv(response.text, expected[2]), expected)


@pytest.mark.parametrize("rows", [5, 200], ids=["small-body", "large-body"])
def test_invocations_csv_with_a_byte_order_mark(server, module_repo, frame, rows):
    """Spreadsheets save UTF-8 CSV with a byte order mark before the header."""
    text = "\ufeff" + to_csv(frame.head(rows), True)
    assert (len(text.encode()) > 2048) == (rows == 200)  # both of the server's CSV readers
    response = requests.post(f"{server.url}/invocations", data=text.encode(),
                             headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    assert response.status_code == 200, response.text
    expected = reference(module_repo, frame.head(rows))
    assert_same(*from_csv(response.text, expected[2]), expected)


@pytest.mark.parametrize("accept, answer", [
    ("text/csv;q=0, */*", "application/json"),
    ("application/json;q=0, text/csv", "text/csv"),
    ("application/json;q=0.5, text/csv;q=0.9", "text/csv"),
    ("text/csv;q=0.2, application/*;q=0.8", "application/json"),
])
def test_invocations_accept_quality_values(server, frame, accept, answer):
    response = requests.post(f"{server.url}/invocations", data=to_csv(frame.head(2), False),
                             headers={"Content-Type": "text/csv", "Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].split(";")[0] == answer


def test_a_batch_transform_csv_gets_one_line_per_line(server, module_repo, split):
    """SageMaker Batch Transform joins input and output by line: 500 lines in, 500 out."""
    frame = pd.concat([split.X_test] * 8, ignore_index=True).head(500)
    body = to_csv(frame, False)
    assert body.count("\n") == 500
    expected = reference(module_repo, frame)
    plain = requests.post(f"{server.url}/invocations", data=body,
                          headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    assert plain.text.count("\n") == 500 and plain.text.endswith("\n")
    assert_same(*from_csv(plain.text, expected[2]), expected)
    asked = requests.post(f"{server.url}/invocations", data=body,
                          headers={"Content-Type": "text/csv",
                                   "Accept": "text/csv; header=present"})
    assert asked.headers["Content-Type"] == "text/csv; charset=utf-8; header=present"
    assert asked.text.count("\n") == 501
    assert_same(*from_csv(asked.text, expected[2], header=True), expected)
    as_json = requests.post(f"{server.url}/invocations", data=body,
                            headers={"Content-Type": "text/csv"})
    assert len(as_json.json()["predictions"]) == 500


def test_invocations_json_in_csv_out(server, module_repo, frame):
    response = requests.post(f"{server.url}/invocations", json=records(frame),
                             headers={"Accept": "text/csv"})
    expected = reference(module_repo, frame)
    assert_same(*from_csv(response.text, expected[2]), expected)


@pytest.mark.parametrize("target, version", [("penguins", 1), ("penguins/2", 2),
                                             ("penguins/candidate", 2)])
def test_invocations_target_model_header(server, module_repo, frame, target, version):
    response = requests.post(f"{server.url}/invocations", json=records(frame),
                             headers={"X-Amzn-SageMaker-Target-Model": target})
    assert response.headers["X-Model-Version"] == str(version)
    expected = reference(module_repo, frame, version)
    assert_same(*from_predictions(response.json(), expected[2]), expected)


def test_execution_parameters_and_version(server):
    params = requests.get(f"{server.url}/execution-parameters").json()
    assert params == {"MaxConcurrentTransforms": 8, "BatchStrategy": "MULTI_RECORD",
                      "MaxPayloadInMB": 6}
    assert requests.get(f"{server.url}/version").json()["version"]


def test_request_id_is_echoed_or_generated(server):
    echoed = requests.get(f"{server.url}/v2/health/live", headers={"X-Request-Id": "abc-123"})
    assert echoed.headers["X-Request-Id"] == "abc-123"
    first = requests.get(f"{server.url}/v2/health/live").headers["X-Request-Id"]
    second = requests.get(f"{server.url}/nowhere").headers["X-Request-Id"]
    assert first and second and first != second


def test_openapi_documents_every_route(server):
    from starlette.routing import Route

    from server.app import create_app

    doc = requests.get(f"{server.url}/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    expected = {("get", p) for p in [
        "/", "/docs", "/openapi.json", "/health", "/version", "/ping", "/execution-parameters",
        "/metrics",
        "/v2", "/v2/health/live", "/v2/health/ready", "/v2/models", "/v2/models/{name}",
        "/v2/models/{name}/ready", "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/versions/{version}/ready"]}
    expected |= {("post", p) for p in [
        "/invocations", "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer",
        "/v2/repository/index", "/v2/repository/models/{name}/load",
        "/v2/repository/models/{name}/unload"]}
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == expected
    app = create_app(server.repository, access_log=False)
    served = {(m.lower(), r.path) for r in app.routes if isinstance(r, Route)
              for m in r.methods if m != "HEAD"}
    assert served == expected
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["responses"], (method, path)


def test_the_documented_examples_are_answered(server, module_repo):
    """Sending the examples of /openapi.json as they are gets predictions."""
    schemas = requests.get(f"{server.url}/openapi.json").json()["components"]["schemas"]
    example = schemas["InferenceRequest"]["example"]
    answer = requests.post(f"{server.url}/v2/models/penguins/infer", json=example)
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == example["id"]
    split = schemas["Table"]["example"]["dataframe_split"]
    frame = pd.DataFrame(split["data"], columns=split["columns"])
    expected = reference(module_repo, frame)
    assert_same(*from_v2(answer.json()), expected)
    table = requests.post(f"{server.url}/invocations", json=schemas["Table"]["example"])
    assert table.status_code == 200, table.text
    assert_same(*from_predictions(table.json(), expected[2]), expected)


def test_docs_page_works_offline(server):
    page = requests.get(f"{server.url}/docs")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    doc = requests.get(f"{server.url}/openapi.json").json()
    for path in doc["paths"]:
        assert path in page.text
    assert "<script" not in page.text and "https://" not in page.text


def test_load_picks_up_new_versions_and_aliases(server, module_repo, frame):
    """Register version 3 on disk, load it without a restart, then move the production alias."""
    import shutil

    shutil.copytree(module_repo / "penguins" / "2", module_repo / "penguins" / "3")
    loaded = requests.post(f"{server.url}/v2/repository/models/penguins/load")
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["versions"] == ["1", "2", "3"]
    answer = requests.post(f"{server.url}/v2/models/penguins/versions/3/infer",
                           json=v2_body(frame)).json()
    assert_same(*from_v2(answer), reference(module_repo, frame, 2))

    aliases = module_repo / "penguins" / "aliases.json"
    original = aliases.read_text()
    try:
        aliases.write_text(json.dumps({"production": 3, "candidate": 2}))
        requests.post(f"{server.url}/v2/repository/models/penguins/load").raise_for_status()
        response = requests.post(f"{server.url}/invocations", json=records(frame))
        assert response.headers["X-Model-Version"] == "3"
    finally:
        aliases.write_text(original)
        shutil.rmtree(module_repo / "penguins" / "3")
        requests.post(f"{server.url}/v2/repository/models/penguins/load").raise_for_status()
    assert requests.get(f"{server.url}/v2/models/penguins").json()["versions"] == ["1", "2"]
