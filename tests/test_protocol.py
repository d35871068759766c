"""A real third-party client, tritonclient[http], against the live server: health, metadata and
inference (JSON and binary tensor data) give the same predictions as in-process ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _server_fixtures import ServerProcess, feed, reference

from mlprod import data

pytestmark = pytest.mark.protocol

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture(scope="module")
def client(module_repo):
    with ServerProcess(module_repo) as server:
        triton = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        try:
            yield triton
        finally:
            triton.close()


@pytest.fixture(scope="module")
def frame(split) -> pd.DataFrame:
    """Held-out rows and one row with every value missing."""
    missing = pd.DataFrame([[np.nan] * 4 + ["", ""]], columns=data.FEATURES)
    return pd.concat([split.X_test, missing], ignore_index=True)


def inputs_for(frame: pd.DataFrame, binary: bool) -> list:
    inputs = []
    for name, array in feed(frame).items():
        datatype = "FP32" if name in data.NUMERIC else "BYTES"
        tensor = httpclient.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return inputs


def test_health(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("penguins")
    assert client.is_model_ready("penguins", "2")
    assert not client.is_model_ready("iris")


def test_server_and_model_metadata(client, module_repo):
    import onnxruntime as ort

    server = client.get_server_metadata()
    assert "binary_tensor_data" in server["extensions"]
    meta = client.get_model_metadata("penguins", "1")
    session = ort.InferenceSession(str(module_repo / "penguins" / "1" / "model.onnx"))
    assert [i["name"] for i in meta["inputs"]] == [i.name for i in session.get_inputs()]
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]
    assert meta["versions"] == ["1"]


@pytest.mark.parametrize("version", ["", "1", "2", "candidate"])
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_equals_in_process_onnxruntime(client, module_repo, frame, version, binary):
    outputs = [httpclient.InferRequestedOutput(name, binary_data=binary)
               for name in ("label", "probabilities")]
    result = client.infer("penguins", inputs_for(frame, binary), model_version=version,
                          outputs=outputs, request_id="protocol-1")
    labels, probabilities, _ = reference(module_repo, frame, 2 if version in ("2", "candidate") else 1)
    got_labels = [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy("label")]
    assert got_labels == labels
    np.testing.assert_array_equal(result.as_numpy("probabilities"), probabilities)
    response = result.get_response()
    assert response["model_name"] == "penguins" and response["id"] == "protocol-1"


def test_infer_with_default_outputs(client, module_repo, frame):
    """No outputs named: tritonclient asks for binary_data_output, and reads it back."""
    result = client.infer("penguins", inputs_for(frame, binary=True))
    labels, probabilities, _ = reference(module_repo, frame)
    assert [x.decode() for x in result.as_numpy("label")] == labels
    np.testing.assert_array_equal(result.as_numpy("probabilities"), probabilities)


def test_errors_reach_the_client(client, frame):
    with pytest.raises(InferenceServerException, match="No model 'iris'") as info:
        client.infer("iris", inputs_for(frame, binary=False))
    assert info.value.status() == "404"
    bad = inputs_for(frame, binary=False)
    bad[0] = httpclient.InferInput("bill_length_mm", [len(frame), 1], "FP64")
    bad[0].set_data_from_numpy(frame[["bill_length_mm"]].to_numpy(np.float64), binary_data=False)
    with pytest.raises(InferenceServerException, match="expects FP32") as info:
        client.infer("penguins", bad)
    assert info.value.status() == "400"
