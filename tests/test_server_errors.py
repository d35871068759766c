"""Bad input over real HTTP: each answer is a 4xx ``{"error": ...}`` naming the problem, and the
next good request still succeeds."""

from __future__ import annotations

import json

import pytest
import requests
from _server_fixtures import ServerProcess, copy_repository, records, v2_body

from mlprod import data

LIMIT = 20_000  # --max-body-bytes for this module's server, so 413s need only small bodies
V2 = "/v2/models/penguins/infer"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repo = copy_repository(tmp_path_factory.mktemp("server-errors") / "models")
    with ServerProcess(repo, args=["--max-body-bytes", str(LIMIT)]) as process:
        yield process


def v2(rows: list[dict], **changes) -> dict:
    """A V2 body for ``rows``; ``changes`` maps an input name to the fields to replace."""
    import pandas as pd

    body = v2_body(pd.DataFrame(rows))
    for tensor in body["inputs"]:
        tensor.update(changes.get(tensor["name"], {}))
    return body


def csv_text(rows: list[dict], header: bool = False) -> str:
    lines = [",".join(data.FEATURES)] if header else []
    lines += [",".join("" if r[c] is None else str(r[c]) for c in data.FEATURES) for r in rows]
    return "\n".join(lines) + "\n"


def check_error(response: requests.Response, status: int, *fragments: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"], body
    message = body["error"]
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert "Traceback" not in message and 'File "' not in message
    return message


def good_requests_still_work(server, rows) -> None:
    answer = requests.post(f"{server.url}{V2}", json=v2(rows))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["shape"] == [len(rows)]
    csv_answer = requests.post(f"{server.url}/invocations", data=csv_text(rows),
                               headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    assert csv_answer.status_code == 200, csv_answer.text
    assert len(csv_answer.text.strip().splitlines()) == len(rows)  # no header line unless asked


# (id, path, body builder, headers, status, fragments of the error message)
V2_CASES = [
    ("malformed", lambda r: '{"inputs": [', {}, 400, ["not valid JSON"]),
    ("nan-for-string", lambda r: json.dumps(v2(r, sex={"data": ["male", float("nan"), ""]})),
     {}, 400, ["input 'sex'", "value nan at position 1", "not a string", "null or \"\""]),
    ("infinity", lambda r: json.dumps(v2(r, body_mass_g={"data": [3000.0, float("inf"), 1.0]})),
     {}, 400, ["input 'body_mass_g'", "out of range", "inf", "finite"]),
    ("empty-body", lambda r: "", {}, 400, ["not valid JSON", "empty"]),
    ("not-an-object", lambda r: "[1, 2]", {}, 400, ["JSON object with 'inputs'", "list"]),
    ("no-inputs", lambda r: "{}", {}, 400, ["'inputs' must be a non-empty list",
                                            "bill_length_mm"]),
    ("unknown-input", lambda r: json.dumps(v2(r, island={"name": "isle"})), {}, 400,
     ["no input 'isle'", "island"]),
    ("name-is-a-list", lambda r: json.dumps(v2(r, island={"name": ["island"]})), {}, 400,
     ["no input ['island']", "its inputs are", "'island'", "Rename"]),
    ("name-is-an-object", lambda r: json.dumps(v2(r, island={"name": {"island": 1}})), {},
     400, ["no input {'island': 1}", "its inputs are", "'island'"]),
    ("name-missing", lambda r: json.dumps(v2(r, island={"name": None})), {}, 400,
     ["no input None", "'island'"]),
    ("ragged-strings",
     lambda r: json.dumps(v2(r, sex={"data": [["male"], ["female", "male"], ["male"]]})), {},
     400, ["input 'sex'", "not a regular array", "equally long nested lists"]),
    ("ragged-strings-deeper",
     lambda r: json.dumps(v2(r, sex={"data": [[["male"]], [["female"], ["male"]], [["m"]]]})),
     {}, 400, ["input 'sex'", "not a regular array"]),
    ("ragged-numbers",
     lambda r: json.dumps(v2(r, body_mass_g={"data": [[3000.0], [1.0, 2.0], [5.0]]})), {},
     400, ["input 'body_mass_g'", "not a regular array"]),
    ("id-not-a-string", lambda r: json.dumps(v2(r) | {"id": {"run": 1}}), {}, 400,
     ["'id'", "{'run': 1}", "string"]),
    ("missing-input", lambda r: json.dumps({"inputs": v2(r)["inputs"][:5]}), {}, 400,
     ["Missing inputs ['sex']"]),
    ("duplicate-input",
     lambda r: json.dumps({"inputs": v2(r)["inputs"] + v2(r)["inputs"][:1]}), {}, 400,
     ["appears twice"]),
    ("wrong-datatype", lambda r: json.dumps(v2(r, body_mass_g={"datatype": "FP64"})), {}, 400,
     ["'body_mass_g'", "FP64", "expects FP32"]),
    ("string-for-number",
     lambda r: json.dumps(v2(r, bill_depth_mm={"data": ["deep", 18.0, 17.1]})), {}, 400,
     ["'bill_depth_mm'", "'deep'", "not a number"]),
    ("bool-for-number",
     lambda r: json.dumps(v2(r, bill_depth_mm={"data": [True, False, True]})), {}, 400,
     ["'bill_depth_mm'", "True", "not a number"]),
    ("number-for-string", lambda r: json.dumps(v2(r, island={"data": ["Dream", 3, "Biscoe"]})),
     {}, 400, ["'island'", "value 3", "not a string"]),
    ("out-of-range", lambda r: json.dumps(v2(r, body_mass_g={"data": [1e39, 1.0, 2.0]})), {},
     400, ["'body_mass_g'", "out of range", "1e+39"]),
    ("shape-vs-data", lambda r: json.dumps(v2(r, sex={"shape": [2, 1]})), {}, 400,
     ["'sex'", "shape [2, 1]", "holds 3 values"]),
    ("bad-rank", lambda r: json.dumps(v2(r, sex={"shape": [3, 1, 1]})), {}, 400,
     ["'sex'", "expects [-1, 1]"]),
    ("bad-shape", lambda r: json.dumps(v2(r, sex={"shape": "3x1"})), {}, 400,
     ["'sex'", "'3x1'", "list of non-negative integers"]),
    ("empty-batch", lambda r: json.dumps(v2(r, **{c: {"shape": [0, 1], "data": []}
                                                  for c in data.FEATURES})), {}, 400,
     ["batch is empty"]),
    ("ragged-rows", lambda r: json.dumps({"inputs": v2(r)["inputs"][:5] + v2(r[:2])["inputs"][5:]}),
     {}, 400, ["different numbers of rows"]),
    ("unknown-output", lambda r: json.dumps(v2(r) | {"outputs": [{"name": "proba"}]}), {}, 400,
     ["no output ['proba']", "probabilities"]),
    ("csv-content-type", lambda r: json.dumps(v2(r)), {"Content-Type": "text/csv"}, 415,
     ["text/csv", "application/json"]),
    ("binary-header-too-long", lambda r: json.dumps(v2(r)),
     {"Inference-Header-Content-Length": "100000"}, 400,
     ["Inference-Header-Content-Length '100000'", "JSON header's length"]),
    ("binary-size-past-the-end",
     lambda r: json.dumps(v2(r, sex={"parameters": {"binary_data_size": 40}})),
     lambda body: {"Inference-Header-Content-Length": str(len(body))}, 400,
     ["'sex'", "binary_data_size 40", "0 bytes"]),
    ("binary-bytes-unclaimed", lambda r: json.dumps(v2(r)) + "\0\0\0\0",
     lambda body: {"Inference-Header-Content-Length": str(len(body) - 4)}, 400,
     ["4 bytes of binary data that no input claims"]),
]


@pytest.mark.parametrize("case", V2_CASES, ids=[c[0] for c in V2_CASES])
def test_v2_bad_input(server, rows, case):
    _, build, headers, status, fragments = case
    body = build(rows)
    headers = headers(body) if callable(headers) else headers
    response = requests.post(f"{server.url}{V2}", data=body,
                             headers={"Content-Type": "application/json"} | headers)
    check_error(response, status, *fragments)
    assert response.headers["X-Model-Name"] == "penguins"
    good_requests_still_work(server, rows)


CSV = {"Content-Type": "text/csv"}
JSON = {"Content-Type": "application/json"}
INVOCATION_CASES = [
    ("csv-not-utf8", lambda r: "39.1,18.7,181,3750,Bisc\xf6e,male\n".encode("latin-1"), CSV,
     400, ["not UTF-8"]),
    ("csv-column-count", lambda r: "39.1,18.7,181\n", CSV, 400,
     ["row 1 has 3 values", "expected 6", "bill_length_mm"]),
    ("csv-wrong-header",
     lambda r: csv_text(r, header=True).replace("body_mass_g", "mass", 1), CSV, 400,
     ["unknown columns ['mass']", "missing columns ['body_mass_g']"]),
    ("csv-not-a-number", lambda r: csv_text(r).replace(str(r[0]["bill_length_mm"]), "long", 1),
     CSV, 400, ["'bill_length_mm'", "'long'", "row 1", "not a number"]),
    ("csv-infinite", lambda r: "inf,18.7,181,3750,Dream,male\n", CSV, 400,
     ["'bill_length_mm'", "not finite"]),
    ("csv-underscore-in-number", lambda r: "3_9.1,18.7,181,3750,Dream,male\n", CSV, 400,
     ["'bill_length_mm'", "'3_9.1'", "row 1", "not a number"]),
    ("csv-header-only", lambda r: ",".join(data.FEATURES) + "\n", CSV, 400, ["batch is empty"]),
    ("csv-empty", lambda r: "", CSV, 400, ["batch is empty"]),
    ("json-malformed", lambda r: '[{"island": "Dream"', JSON, 400, ["not valid JSON"]),
    ("json-nan-for-string", lambda r: json.dumps([r[0] | {"island": float("nan")}]), JSON,
     400, ["column 'island'", "nan", "not a string"]),
    ("json-infinity", lambda r: json.dumps([r[0] | {"bill_length_mm": float("-inf")}]), JSON,
     400, ["column 'bill_length_mm'", "out of range", "-inf"]),
    ("json-unknown-column",
     lambda r: json.dumps([x | {"year": 2007} for x in r]), JSON, 400,
     ["unknown columns ['year']", "drop"]),
    ("json-missing-column", lambda r: json.dumps([{k: v for k, v in x.items() if k != "sex"}
                                                  for x in r]), JSON, 400,
     ["missing columns ['sex']"]),
    ("json-wrong-type", lambda r: json.dumps([r[0] | {"flipper_length_mm": "long"}]), JSON, 400,
     ["'flipper_length_mm'", "'long'", "not a number"]),
    ("json-empty-list", lambda r: "[]", JSON, 400, ["batch is empty"]),
    ("json-inputs-ragged-strings",
     lambda r: json.dumps({"inputs": {c: [r[0][c], r[1][c]] for c in data.FEATURES}
                           | {"island": [["Dream"], ["Biscoe", "Dream"]]}}), JSON, 400,
     ["column 'island'", "not a regular array"]),
    ("json-instances-ragged-strings",
     lambda r: json.dumps({"instances": [[*[r[0][c] for c in data.FEATURES[:5]], ["male"]],
                                         [*[r[1][c] for c in data.FEATURES[:5]],
                                          ["female", "male"]]]}), JSON, 400,
     ["column 'sex'", "not a regular array"]),
    ("json-no-known-key", lambda r: json.dumps({"rows": r}), JSON, 400,
     ["exactly one of", "dataframe_split", "['rows']"]),
    ("json-split-short-row",
     lambda r: json.dumps({"dataframe_split": {"columns": data.FEATURES,
                                               "data": [[1.0, 2.0]]}}), JSON, 400,
     ["dataframe_split.data[0]", "6 values"]),
    ("no-content-type", lambda r: csv_text(r), {"Content-Type": ""}, 415,
     ["text/csv or application/json"]),
    ("xml-content-type", lambda r: "<rows/>", {"Content-Type": "application/xml"}, 415,
     ["'application/xml'", "text/csv"]),
    ("unsupported-accept", lambda r: csv_text(r), CSV | {"Accept": "application/xml"}, 400,
     ["Accept", "application/xml", "text/csv"]),
    ("accept-refuses-both", lambda r: csv_text(r),
     CSV | {"Accept": "application/json;q=0, text/csv;q=0"}, 400,
     ["Accept", "q=0", "application/json or text/csv"]),
    ("unknown-target", lambda r: csv_text(r), CSV | {"X-Amzn-SageMaker-Target-Model": "iris"},
     404, ["No model 'iris'", "['penguins']"]),
    ("unknown-target-version", lambda r: csv_text(r),
     CSV | {"X-Amzn-SageMaker-Target-Model": "penguins/9"}, 404, ["no version 9"]),
]


@pytest.mark.parametrize("case", INVOCATION_CASES, ids=[c[0] for c in INVOCATION_CASES])
def test_invocations_bad_input(server, rows, case):
    _, build, headers, status, fragments = case
    response = requests.post(f"{server.url}/invocations", data=build(rows), headers=headers)
    check_error(response, status, *fragments)
    good_requests_still_work(server, rows)


def first_field(lines: list[str], i: int, value: str) -> None:
    lines[i] = value + lines[i][lines[i].index(","):]


@pytest.fixture(scope="module")
def many_rows(split) -> list[dict]:
    """Enough rows (a few kB of CSV) for the server's whole-body CSV reader."""
    return records(split.X_test.head(60))


@pytest.mark.parametrize("change, fragments", [
    (lambda lines: first_field(lines, 40, "long"),
     ["'bill_length_mm'", "'long'", "row 41", "not a number"]),
    (lambda lines: first_field(lines, 30, "inf"),
     ["'bill_length_mm'", "'inf'", "row 31", "not finite"]),
    (lambda lines: lines.__setitem__(50, lines[50] + ",extra"),
     ["row 51 has 7 values", "expected 6"]),
    (lambda lines: first_field(lines, 45, "4_0.1"),
     ["'bill_length_mm'", "'4_0.1'", "row 46", "not a number"]),
    (lambda lines: lines.__setitem__(20, ""), None),  # a blank line is skipped
], ids=["not-a-number", "infinite", "extra-field", "underscore", "blank-line"])
def test_csv_errors_in_a_larger_body(server, rows, many_rows, change, fragments):
    lines = csv_text(many_rows).splitlines()
    assert len("\n".join(lines)) > 2048
    change(lines)
    response = requests.post(f"{server.url}/invocations", data="\n".join(lines) + "\n",
                             headers=CSV | {"Accept": "text/csv"})
    if fragments is None:
        assert response.status_code == 200, response.text
        assert len(response.text.strip().splitlines()) == len(many_rows) - 1  # a line a row
    else:
        check_error(response, 400, *fragments)
    good_requests_still_work(server, rows)


@pytest.mark.parametrize("method, path, status, fragments", [
    ("POST", "/v2/models/iris/infer", 404, ["No model 'iris'", "['penguins']"]),
    ("POST", "/v2/models/penguins/versions/7/infer", 404, ["no version 7", "[1, 2]"]),
    ("POST", "/v2/models/penguins/versions/staging/infer", 404,
     ["no version or alias 'staging'", "production -> 1"]),
    ("POST", "/v2/models/penguins/versions/%C2%B2/infer", 404,  # '²' is a digit, not a number
     ["no version or alias '\u00b2'"]),
    ("GET", "/v2/models/iris", 404, ["No model 'iris'"]),
    ("GET", "/v2/models/penguins/versions/7/ready", 404, ["no version 7"]),
    ("POST", "/v2/repository/models/iris/load", 404, ["No folder 'iris'"]),
    ("GET", "/v3/predict", 404, ["No route GET /v3/predict", "/docs"]),
    ("GET", "/v2/models/penguins/infer", 405, ["GET is not allowed", "Use POST."]),
    ("POST", "/ping", 405, ["POST is not allowed on /ping", "Use GET, HEAD."]),
    ("DELETE", "/invocations", 405, ["DELETE is not allowed", "Use POST."]),
    ("DELETE", "/v2/models/penguins", 405, ["Use GET, HEAD."]),  # sorted: the same every run
])
def test_unknown_models_routes_and_methods(server, rows, method, path, status, fragments):
    response = requests.request(method, f"{server.url}{path}", json=v2(rows))
    check_error(response, status, *fragments)
    if status == 405:
        assert response.headers["Allow"] == fragments[-1].removeprefix("Use ").rstrip(".")
    good_requests_still_work(server, rows)


@pytest.mark.parametrize("path, headers", [(V2, JSON), ("/invocations", CSV)])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body(server, rows, path, headers, chunked):
    body = b"x" * (LIMIT + 1)
    payload = iter([body[:LIMIT // 2], body[LIMIT // 2:]]) if chunked else body
    response = requests.post(f"{server.url}{path}", data=payload, headers=headers)
    check_error(response, 413, f"limit of {LIMIT} bytes", "--max-body-bytes")
    good_requests_still_work(server, rows)


def test_body_at_the_limit_is_read(server, rows):
    body = json.dumps(v2(rows)).encode()
    padded = body + b" " * (LIMIT - len(body))
    response = requests.post(f"{server.url}{V2}", data=padded, headers=JSON)
    assert response.status_code == 200, response.text


def test_unexpected_failure_is_a_json_500_without_traceback(monkeypatch, tmp_path, rows):
    """In-process: a bug in the server (here, a broken encoder) answers a 500 JSON error that
    names the request id; the exception goes on to uvicorn, which logs its traceback."""
    import asyncio

    from server import v2 as v2_module
    from server.app import create_app

    def broken(*args, **kwargs):
        raise RuntimeError("encoder bug")

    monkeypatch.setattr(v2_module, "encode_response", broken)
    app = create_app(copy_repository(tmp_path / "models"), access_log=False)
    body = json.dumps(v2(rows)).encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": V2, "raw_path": V2.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80),
             "headers": [(b"content-type", b"application/json"), (b"x-request-id", b"bug-1")]}
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    with pytest.raises(RuntimeError, match="encoder bug"):
        asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"]) == {
        "error": "Internal server error (request id bug-1); the server log has the details."}
