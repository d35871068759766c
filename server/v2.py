"""The Open Inference Protocol (KServe V2 / Triton) over HTTP: decode requests, encode answers."""

from __future__ import annotations

import math

import numpy as np
import orjson

from server import tensors
from server.errors import ApiError, shorten
from server.repository import ModelVersion, TensorSpec


def parse_json(body: bytes) -> object:
    """Parse a JSON body, or raise a 400 that says where it broke and how to fix it."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        hint = ""
        if b"NaN" in body or b"Infinity" in body:
            hint = " JSON has no NaN or Infinity: send null for a missing value."
        elif not body:
            hint = " The body is empty."
        raise ApiError(400, f"The request body is not valid JSON: {exc}.{hint} "
                            f"Send a JSON object (Content-Type: application/json).") from None


def decode_request(body: bytes, model: ModelVersion) -> tuple[object, dict, list[str]]:
    """Decode a V2 inference request for ``model``.

    Returns
    -------
    request_id : str or None
        The request's ``id``, echoed in the answer.
    feed : dict
        Input name → numpy array in the model's dtype and shape.
    outputs : list of str
        The output names to return (all when the request names none).

    Raises
    ------
    ApiError
        400 naming the input, the value and the fix.
    """
    request = parse_json(body)
    if type(request) is not dict:
        raise ApiError(400, f"A V2 inference request is a JSON object with 'inputs'; got "
                            f"{type(request).__name__} {shorten(request)}. Send "
                            f'{{"inputs": [{{"name", "shape", "datatype", "data"}}]}}.')
    inputs = request.get("inputs")
    if type(inputs) is not list or not inputs:
        raise ApiError(400, f"'inputs' must be a non-empty list of tensors; got "
                            f"{shorten(inputs)}. Send one entry per model input: "
                            f"{[s.name for s in model.inputs]}.")
    specs = {s.name: s for s in model.inputs}
    feed: dict[str, np.ndarray] = {}
    for tensor in inputs:
        if type(tensor) is not dict:
            raise ApiError(400, f"Each entry of 'inputs' must be an object with 'name', "
                                f"'shape', 'datatype' and 'data'; got {shorten(tensor)}.")
        name = tensor.get("name")
        spec = specs.get(name)  # type: ignore[arg-type]
        if spec is None:
            raise ApiError(400, f"Model '{model.name}' has no input {shorten(name)}; its inputs "
                                f"are {[s.name for s in model.inputs]}. Rename the tensor.")
        if name in feed:
            raise ApiError(400, f"Input '{name}' appears twice in 'inputs'. Send it once.")
        feed[name] = _decode_tensor(tensor, spec)
    missing = [s.name for s in model.inputs if s.name not in feed]
    if missing:
        raise ApiError(400, f"Missing inputs {missing} for model '{model.name}', which needs "
                            f"{[s.name for s in model.inputs]}. Add them to 'inputs'.")
    if model.tabular:
        sizes = {len(a) for a in feed.values()}
        if len(sizes) > 1:
            rows = {n: len(a) for n, a in feed.items()}
            raise ApiError(400, f"Inputs hold different numbers of rows: {rows}. Send the same "
                                f"number of rows for every input.")
    return request.get("id"), feed, _requested_outputs(request.get("outputs"), model)


def encode_response(model: ModelVersion, request_id: object, names: list[str],
                    results: list[np.ndarray]) -> bytes:
    """Encode a V2 inference response holding the outputs ``names`` of ``results``."""
    specs = {s.name: s for s in model.outputs}
    outputs = []
    for name, value in zip(model.output_names, results, strict=True):
        if name not in names:
            continue
        spec = specs[name]
        data = value.ravel().tolist() if spec.datatype == "BYTES" else value.ravel()
        outputs.append({"name": name, "datatype": spec.datatype, "shape": value.shape,
                        "data": data})
    answer: dict = {"model_name": model.name, "model_version": str(model.version)}
    if request_id is not None:
        answer["id"] = request_id
    answer["outputs"] = outputs
    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)


def model_metadata(model: ModelVersion, versions: list[int], aliases: dict[str, int]) -> dict:
    """Return V2 model metadata: name, versions, platform, inputs, outputs and parameters.

    ``parameters`` adds what the ONNX file declares beyond the protocol: ``classes`` (the
    columns of ``probabilities``), ``features`` (the CSV column order) and the ``aliases``.
    """
    return {
        "name": model.name,
        "versions": [str(v) for v in versions],
        "platform": "onnxruntime_onnx",
        "inputs": [s.metadata() for s in model.inputs],
        "outputs": [s.metadata() for s in model.outputs],
        "parameters": {
            "version": str(model.version),
            "classes": model.classes,
            "features": [{"name": f.name, "kind": f.kind} for f in model.features],
            "aliases": aliases,
        },
    }


def _decode_tensor(tensor: dict, spec: TensorSpec) -> np.ndarray:
    where = f"input '{spec.name}'"
    datatype = tensor.get("datatype")
    if datatype != spec.datatype:
        raise ApiError(400, f"{where} has datatype {shorten(datatype)}; the model expects "
                            f"{spec.datatype}. Send \"datatype\": \"{spec.datatype}\" with "
                            f"matching data.")
    parameters = tensor.get("parameters")
    if type(parameters) is dict and "binary_data_size" in parameters:
        raise ApiError(415, f"{where} is sent as binary tensor data, which this server does "
                            f"not read. Send JSON data (tritonclient: "
                            f"set_data_from_numpy(x, binary_data=False)).")
    shape = tensor.get("shape")
    if type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape):
        raise ApiError(400, f"{where} has shape {shorten(shape)}; a shape is a list of "
                            f"non-negative integers, e.g. {_example_shape(spec)}.")
    shape = _check_shape(shape, spec, where)
    data = tensor.get("data")
    if type(data) is not list:
        raise ApiError(400, f"{where}: 'data' must be a list (flat or nested, row-major); got "
                            f"{shorten(data)}.")
    if spec.datatype == "BYTES":
        arr = tensors.strings(data, where)
    else:
        arr = tensors.numeric(data, spec.dtype, where)
    if arr.size != math.prod(shape):
        raise ApiError(400, f"{where} has shape {shape} ({math.prod(shape)} values) but 'data' "
                            f"holds {arr.size} values. Make the shape match the data.")
    return arr.reshape(shape)


def _check_shape(shape: list[int], spec: TensorSpec, where: str) -> list[int]:
    if len(shape) == 1 and len(spec.shape) == 2 and spec.shape[1] == 1:
        shape = [shape[0], 1]  # [N] for a [-1, 1] column: one value per row
    fits = len(shape) == len(spec.shape) and all(
        want == -1 or want == got for want, got in zip(spec.shape, shape, strict=True))
    if not fits:
        raise ApiError(400, f"{where} has shape {shape}; the model expects "
                            f"{list(spec.shape)} (-1 = any size), e.g. {_example_shape(spec)}.")
    if 0 in shape:
        raise ApiError(400, f"{where} has shape {shape}: the batch is empty. Send at least "
                            f"one row.")
    return shape


def _example_shape(spec: TensorSpec) -> list[int]:
    return [2 if d == -1 else d for d in spec.shape]


def _requested_outputs(outputs: object, model: ModelVersion) -> list[str]:
    if outputs is None:
        return model.output_names
    if type(outputs) is not list or not all(type(o) is dict for o in outputs):
        raise ApiError(400, f"'outputs' must be a list of objects like {{\"name\": \"label\"}}; "
                            f"got {shorten(outputs)}.")
    names = [o.get("name") for o in outputs]
    unknown = [n for n in names if n not in model.output_names]
    if unknown:
        raise ApiError(400, f"Model '{model.name}' has no output {unknown}; its outputs are "
                            f"{model.output_names}. Ask for those, or omit 'outputs' for all.")
    for o in outputs:
        params = o.get("parameters")
        if type(params) is dict and params.get("binary_data"):
            raise ApiError(415, f"Output '{o.get('name')}' is requested as binary tensor data, "
                                f"which this server does not write. Ask for JSON (tritonclient: "
                                f"InferRequestedOutput(name, binary_data=False)).")
    return names or model.output_names
