"""Triton's ``config.pbtxt`` for an ONNX model: its inputs and outputs, every version served."""

from __future__ import annotations

from typing import Any

import onnx

_TRITON_TYPES = {
    onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.FLOAT16: "TYPE_FP16", onnx.TensorProto.BFLOAT16: "TYPE_BF16",
    onnx.TensorProto.STRING: "TYPE_STRING", onnx.TensorProto.BOOL: "TYPE_BOOL",
    onnx.TensorProto.INT8: "TYPE_INT8", onnx.TensorProto.INT16: "TYPE_INT16",
    onnx.TensorProto.INT32: "TYPE_INT32", onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.UINT8: "TYPE_UINT8", onnx.TensorProto.UINT16: "TYPE_UINT16",
    onnx.TensorProto.UINT32: "TYPE_UINT32", onnx.TensorProto.UINT64: "TYPE_UINT64",
}


def dims(value_info: onnx.ValueInfoProto) -> list[int]:
    """Return a tensor's shape with every symbolic or unknown dimension as -1."""
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else -1 for d in shape.dim]


def config_pbtxt(name: str, model: onnx.ModelProto) -> str:
    """Write Triton's ``config.pbtxt`` for an ONNX model: every input and output, every version.

    Raises
    ------
    ValueError
        If a tensor has a type a Triton config cannot declare.
    """

    def tensors(values: Any) -> str:
        items = []
        for v in values:
            elem = v.type.tensor_type.elem_type
            if elem not in _TRITON_TYPES:
                raise ValueError(
                    f"Tensor {v.name!r} has ONNX type {onnx.TensorProto.DataType.Name(elem)}, "
                    "which a Triton config cannot declare; export tensors of plain types.")
            shape = ", ".join(str(d) for d in dims(v))
            items.append(f'  {{\n    name: "{v.name}"\n    data_type: {_TRITON_TYPES[elem]}\n'
                         f"    dims: [ {shape} ]\n  }}")
        return ",\n".join(items)

    return (f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n'
            f"version_policy: {{ all: {{}} }}\n"
            f"input [\n{tensors(model.graph.input)}\n]\n"
            f"output [\n{tensors(model.graph.output)}\n]\n")
