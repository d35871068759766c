"""The Open Inference Protocol (KServe V2 / Triton) over HTTP: decode requests, encode answers."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

import numpy as np
import orjson

from server import tensors
from server.errors import ApiError, header_count, shorten
from server.repository import ModelVersion, TensorSpec


def parse_json(body: bytes) -> object:
    """Parse a JSON body, or raise a 400 that says where it broke and how to fix it.

    ``NaN`` (what tritonclient and Python's json write for a missing float) is read as a
    missing value; ``Infinity`` is read too, and refused later as out of range.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        error = exc
    if b"NaN" in body or b"Infinity" in body:
        try:
            value = json.loads(body)  # slower, but reads NaN and Infinity
        except (ValueError, RecursionError):
            pass
        else:
            _check_strings(value)
            return value
    hint = " The body is empty." if not body else ""
    raise ApiError(400, f"The request body is not valid JSON: {error}.{hint} "
                        f"Send a JSON object (Content-Type: application/json).") from None


def _check_strings(value: object) -> None:
    """Refuse a lone UTF-16 surrogate (``"\\ud800"``), as the fast parser does.

    A decoded string must be Unicode text: Python's json module lets a lone surrogate escape
    through, and it would then break ONNX Runtime's strings or the answer's encoding.
    """
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        if "surrogate" in str(exc):
            raise ApiError(400, "A string in the JSON body holds a lone UTF-16 surrogate escape "
                                "(\\ud800-\\udfff without its pair), which is not text. Send "
                                "valid Unicode (UTF-8).") from None


@dataclass
class InferRequest:
    """A decoded V2 inference request.

    ``feed`` maps input names to arrays in the model's dtype and shape; ``outputs`` maps the
    output names to return to True where the answer should carry them as binary tensor data.
    """

    id: object
    feed: dict[str, np.ndarray]
    outputs: dict[str, bool]


def decode_request(body: bytes, model: ModelVersion,
                   header_length: str | None = None) -> InferRequest:
    """Decode a V2 inference request for ``model``, JSON or with binary tensor data.

    Parameters
    ----------
    body : bytes
        The request body.
    model : ModelVersion
        The version that will run it.
    header_length : str, optional
        The ``Inference-Header-Content-Length`` header: the JSON part's size when binary
        tensor data follows it (the binary tensor data extension).

    Raises
    ------
    ApiError
        400 naming the input, the value and the fix.
    """
    binary = b""
    if header_length is not None:
        size = header_count(header_length)
        if size is None or size > len(body):
            raise ApiError(400, f"Inference-Header-Content-Length {shorten(header_length)} is "
                                f"not the size of the JSON part of this {len(body)}-byte body. "
                                f"Send the JSON header's length in bytes.")
        body, binary = body[:size], memoryview(body)[size:]
    request = parse_json(body)
    if type(request) is not dict:
        raise ApiError(400, f"A V2 inference request is a JSON object with 'inputs'; got "
                            f"{type(request).__name__} {shorten(request)}. Send "
                            f'{{"inputs": [{{"name", "shape", "datatype", "data"}}]}}.')
    request_id = request.get("id")
    if request_id is not None and type(request_id) is not str:
        raise ApiError(400, f"'id' {shorten(request_id)} is a {type(request_id).__name__}; an "
                            f"inference request's id is a string. Send \"id\": \"my-request-1\", "
                            f"or leave it out.")
    inputs = request.get("inputs")
    if type(inputs) is not list or not inputs:
        raise ApiError(400, f"'inputs' must be a non-empty list of tensors; got "
                            f"{shorten(inputs)}. Send one entry per model input: "
                            f"{[s.name for s in model.inputs]}.")
    specs = model.input_specs
    feed: dict[str, np.ndarray] = {}
    offset = 0
    for tensor in inputs:
        if type(tensor) is not dict:
            raise ApiError(400, f"Each entry of 'inputs' must be an object with 'name', "
                                f"'shape', 'datatype' and 'data'; got {shorten(tensor)}.")
        name = tensor.get("name")
        spec = specs.get(name) if type(name) is str else None  # a list or object is no name
        if spec is None:
            raise ApiError(400, f"Model '{model.name}' has no input {shorten(name)}; its inputs "
                                f"are {[s.name for s in model.inputs]}. Rename the tensor.")
        if name in feed:
            raise ApiError(400, f"Input '{name}' appears twice in 'inputs'. Send it once.")
        size = _binary_size(tensor, spec) if "parameters" in tensor else None
        if size is None:
            feed[name] = _decode_tensor(tensor, spec)
        else:
            if offset + size > len(binary):
                raise ApiError(400, f"input '{name}' declares binary_data_size {size}, but only "
                                    f"{len(binary) - offset} bytes of binary data remain. Send "
                                    f"each tensor's bytes after the JSON header, in order.")
            feed[name] = _decode_binary(bytes(binary[offset:offset + size]), tensor, spec)
            offset += size
    if offset != len(binary):
        raise ApiError(400, f"The body holds {len(binary) - offset} bytes of binary data that no "
                            f"input claims. Set binary_data_size on each binary input.")
    if len(feed) != len(specs):
        missing = [s.name for s in model.inputs if s.name not in feed]
        raise ApiError(400, f"Missing inputs {missing} for model '{model.name}', which needs "
                            f"{[s.name for s in model.inputs]}. Add them to 'inputs'.")
    if model.tabular:
        sizes = {len(a) for a in feed.values()}
        if len(sizes) > 1:
            rows = {n: len(a) for n, a in feed.items()}
            raise ApiError(400, f"Inputs hold different numbers of rows: {rows}. Send the same "
                                f"number of rows for every input.")
    parameters = request.get("parameters")
    binary_default = type(parameters) is dict and parameters.get("binary_data_output") is True
    return InferRequest(request_id, feed,
                        _requested_outputs(request.get("outputs"), model, binary_default))


def encode_response(model: ModelVersion, request: InferRequest,
                    results: list[np.ndarray]) -> tuple[bytes, int | None]:
    """Encode a V2 inference response with the outputs the request asked for.

    Returns
    -------
    body : bytes
        JSON, followed by the binary tensor data of the outputs asked for in binary.
    header_length : int or None
        The JSON part's size when binary data follows (``Inference-Header-Content-Length``).
    """
    outputs = []
    blobs = []
    for spec, value in zip(model.outputs, results, strict=True):  # results follow model.outputs
        name = spec.name
        binary = request.outputs.get(name)
        if binary is None:
            continue
        entry: dict = {"name": name, "datatype": spec.datatype, "shape": value.shape}
        if binary:
            blob = _encode_binary(value, spec)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = value.ravel().tolist() if spec.datatype == "BYTES" else value.ravel()
        outputs.append(entry)
    answer: dict = {"model_name": model.name, "model_version": str(model.version)}
    if request.id is not None:
        answer["id"] = request.id
    answer["outputs"] = outputs
    text = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return text, None
    return b"".join([text, *blobs]), len(text)


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
    datatype = tensor.get("datatype")
    shape = tensor.get("shape")
    data = tensor.get("data")
    if (datatype == spec.datatype and spec.column and type(shape) is list and len(shape) == 2
            and shape[1] == 1 and type(data) is list and 0 < len(data) == shape[0]
            and type(data[0]) is not list):
        # The common case, a flat column for a [-1, 1] input: fewer checks to make.
        where = spec.where
        if datatype == "BYTES":
            return tensors.strings(data, where).reshape(-1, 1)
        return tensors.numeric(data, spec.dtype, where).reshape(-1, 1)
    where = spec.where
    if datatype != spec.datatype:
        raise ApiError(400, f"{where} has datatype {shorten(datatype)}; the model expects "
                            f"{spec.datatype}. Send \"datatype\": \"{spec.datatype}\" with "
                            f"matching data.")
    if type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape):
        raise ApiError(400, f"{where} has shape {shorten(shape)}; a shape is a list of "
                            f"non-negative integers, e.g. {_example_shape(spec)}.")
    shape = _check_shape(shape, spec, where)
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


def _binary_size(tensor: dict, spec: TensorSpec) -> int | None:
    parameters = tensor.get("parameters")
    if type(parameters) is not dict or "binary_data_size" not in parameters:
        return None
    size = parameters["binary_data_size"]
    if type(size) is not int or size < 0:
        raise ApiError(400, f"input '{spec.name}': binary_data_size {shorten(size)} must be a "
                            f"non-negative integer (the tensor's size in bytes).")
    return size


def _decode_binary(blob: bytes, tensor: dict, spec: TensorSpec) -> np.ndarray:
    where = spec.where
    datatype = tensor.get("datatype")
    if datatype != spec.datatype:
        raise ApiError(400, f"{where} has datatype {shorten(datatype)}; the model expects "
                            f"{spec.datatype}. Send {spec.datatype} data.")
    shape = tensor.get("shape")
    if type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape):
        raise ApiError(400, f"{where} has shape {shorten(shape)}; a shape is a list of "
                            f"non-negative integers, e.g. {_example_shape(spec)}.")
    shape = _check_shape(shape, spec, where)
    count = math.prod(shape)
    if spec.datatype == "BYTES":
        arr = _unpack_strings(blob, where)
    else:
        dtype = spec.dtype.newbyteorder("<")
        if len(blob) != count * dtype.itemsize:
            raise ApiError(400, f"{where}: {len(blob)} bytes of binary data for shape {shape} "
                                f"of {spec.datatype}; expected {count * dtype.itemsize}. Send "
                                f"little-endian {spec.datatype} values.")
        arr = np.frombuffer(blob, dtype=dtype).astype(spec.dtype)
        if spec.dtype.kind == "f" and np.isinf(arr).any():
            raise ApiError(400, f"{where}: a value is infinite. Send finite numbers, or NaN "
                                f"for missing.")
    if arr.size != count:
        raise ApiError(400, f"{where} has shape {shape} ({count} values) but its binary data "
                            f"holds {arr.size}. Make the shape match the data.")
    return arr.reshape(shape)


def _unpack_strings(blob: bytes, where: str) -> np.ndarray:
    values = []
    offset = 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise ApiError(400, f"{where}: binary BYTES data ends inside a length prefix. Send "
                                f"each string as a 4-byte little-endian length then its bytes.")
        (size,) = struct.unpack_from("<I", blob, offset)
        offset += 4
        if offset + size > len(blob):
            raise ApiError(400, f"{where}: a string of {size} bytes runs past the binary data. "
                                f"Send each string as a 4-byte length then its bytes.")
        try:
            values.append(blob[offset:offset + size].decode("utf-8"))
        except UnicodeDecodeError:
            raise ApiError(400, f"{where}: string {shorten(blob[offset:offset + size])} is "
                                f"not UTF-8. Send UTF-8 text.") from None
        offset += size
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _encode_binary(value: np.ndarray, spec: TensorSpec) -> bytes:
    if spec.datatype != "BYTES":
        return np.ascontiguousarray(value, dtype=spec.dtype.newbyteorder("<")).tobytes()
    parts = []
    for item in value.ravel().tolist():
        raw = item if isinstance(item, bytes) else str(item).encode()
        parts.append(struct.pack("<I", len(raw)))
        parts.append(raw)
    return b"".join(parts)


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


def _requested_outputs(outputs: object, model: ModelVersion,
                       binary_default: bool) -> dict[str, bool]:
    if outputs is None:
        return dict.fromkeys(model.output_names, binary_default)
    if type(outputs) is not list or not all(type(o) is dict for o in outputs):
        raise ApiError(400, f"'outputs' must be a list of objects like {{\"name\": \"label\"}}; "
                            f"got {shorten(outputs)}.")
    names = [o.get("name") for o in outputs]
    unknown = [n for n in names if n not in model.output_names]
    if unknown:
        raise ApiError(400, f"Model '{model.name}' has no output {unknown}; its outputs are "
                            f"{model.output_names}. Ask for those, or omit 'outputs' for all.")
    if not outputs:
        return dict.fromkeys(model.output_names, binary_default)
    requested = {}
    for o in outputs:
        params = o.get("parameters")
        binary = params.get("binary_data") if type(params) is dict else None
        requested[o["name"]] = binary_default if binary is None else binary is True
    return requested
