"""The request-inspector widget, driven without a browser against a live server."""

from __future__ import annotations

import base64
import csv
import io
import json

import ipywidgets as widgets
import pytest

from mlprod import data, quickstart
from mlprod.client import Client
from mlprod.serving import free_port
from mlprod.widgets.inspector import FORMATS, build_request, parse_field, request_inspector

MODEL = quickstart.MODEL_NAME


@pytest.fixture(scope="module")
def row() -> dict:
    return data.split().X_test.iloc[0].to_dict()


@pytest.fixture
def inspector(server, row):
    with server.client() as client:
        yield request_inspector(client, MODEL, row)


def test_the_widget_builds_with_one_field_per_input(inspector, row):
    assert isinstance(inspector.widget, widgets.VBox)
    assert list(inspector.fields) == data.FEATURES
    assert inspector.fields["island"].value == row["island"]
    assert float(inspector.fields["body_mass_g"].value) == row["body_mass_g"]
    assert inspector.format.options == tuple(FORMATS)
    assert inspector.accept.disabled  # V2 answers JSON only
    inspector.format.value = "SageMaker CSV"
    assert not inspector.accept.disabled


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_send_shows_the_raw_request_and_response_side_by_side(inspector, row, fmt):
    inspector.format.value = fmt
    inspector.send_button.click()  # what a click in the browser does
    exchange = inspector.exchange
    assert exchange.status == 200
    path = f"/v2/models/{MODEL}/infer" if fmt == "V2 JSON" else "/invocations"
    assert exchange.path == path
    assert f"POST {path} HTTP/1.1" in inspector.request_view.value
    assert "HTTP/1.1 200 OK" in inspector.response_view.value
    assert "200 OK" in inspector.status.value
    assert dict(exchange.response_headers)["x-model-name"] == MODEL
    body = exchange.request_body.decode()
    if fmt == "SageMaker CSV":
        header, values = list(csv.reader(io.StringIO(body)))
        assert header == data.FEATURES and values[4] == row["island"]
    else:
        assert row["island"] in repr(json.loads(body))


def test_an_edited_row_is_sent_as_typed(inspector):
    inspector.fields["body_mass_g"].value = ""  # missing
    inspector.fields["island"].value = "Biscoe"
    inspector.format.value = "SageMaker CSV"
    inspector.accept.value = "text/csv"
    exchange = inspector.send()
    assert exchange.request_body.decode().splitlines()[1].split(",")[3:5] == ["", "Biscoe"]
    assert exchange.response_body.decode().splitlines()[0].split(",")[0] in data.CLASSES
    inspector.accept.value = "text/csv; header=present"  # RFC 4180's parameter: a header line
    exchange = inspector.send()
    assert exchange.response_body.decode().splitlines()[0] == "label,Adelie,Chinstrap,Gentoo"
    inspector.format.value = "V2 JSON"
    body = json.loads(inspector.send().request_body)
    by_name = {t["name"]: t["data"] for t in body["inputs"]}
    assert by_name["body_mass_g"] == [None] and by_name["island"] == ["Biscoe"]
    assert inspector.exchange.status == 200


def test_bad_input_shows_the_servers_error_instead_of_raising(inspector):
    inspector.fields["flipper_length_mm"].value = "long"
    for fmt in FORMATS:
        inspector.format.value = fmt
        exchange = inspector.send()
        assert exchange.status == 400
        assert "flipper_length_mm" in json.loads(exchange.response_body)["error"]
        assert "400 Bad Request" in inspector.status.value
        assert "&#x27;long&#x27;" in inspector.response_view.value  # escaped for HTML


def test_the_button_shows_an_unreachable_server_instead_of_raising(inspector):
    inspector.client = Client(f"http://127.0.0.1:{free_port()}", retries=0)
    inspector.send_button.click()
    assert "No server answers POST" in inspector.status.value
    with pytest.raises(ConnectionError):
        inspector.send()


def test_parse_field():
    assert parse_field(" 39.1 ", numeric=True) == 39.1
    assert parse_field("3750", numeric=True) == 3750
    assert parse_field("", numeric=True) is None
    assert parse_field("abc", numeric=True) == "abc"
    assert parse_field(" ", numeric=False) == ""
    assert parse_field("Dream", numeric=False) == "Dream"


def test_build_request_quotes_csv_and_names_the_target_model():
    inputs = [{"name": "a", "datatype": "FP32"}, {"name": "b", "datatype": "BYTES"}]
    method, path, headers, body = build_request("SageMaker CSV", {"a": None, "b": 'x, "y"'},
                                                inputs, "m", accept="text/csv")
    assert (method, path) == ("POST", "/invocations")
    assert headers == {"Content-Type": "text/csv", "Accept": "text/csv",
                       "X-Amzn-SageMaker-Target-Model": "m"}
    assert body == 'a,b\n,"x, ""y"""\n'
    _, path, _, body = build_request("V2 JSON", {"a": 1.5, "b": "z"}, inputs, "m", version=2)
    assert path == "/v2/models/m/versions/2/infer"
    assert json.loads(body)["inputs"][0] == {"name": "a", "shape": [1, 1], "datatype": "FP32",
                                             "data": [1.5]}
    with pytest.raises(ValueError, match="Unknown format 'XML'"):
        build_request("XML", {}, inputs, "m")


def test_without_a_kernel_it_shows_a_sentence_and_the_last_exchange(inspector):
    bundle = inspector.widget._repr_mimebundle_()
    assert bundle["text/plain"].startswith("The request inspector: an interactive widget.")
    assert "image/png" not in bundle  # nothing sent yet: no picture to show
    inspector.send()
    bundle = inspector.widget._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")


def test_panes_wrap_between_tokens_not_inside_them(inspector):
    inspector.send()
    pane = inspector.response_view.value
    assert "word-break: break-all" not in pane and ",<wbr>" in pane
    assert "font-size: 14px" in pane
