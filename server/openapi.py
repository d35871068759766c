"""The OpenAPI document for every route, and a docs page that renders it without any CDN."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from server import __version__
from server.context import is_open

ERROR = {"$ref": "#/components/schemas/Error"}


@dataclass(frozen=True)
class RouteDoc:
    """How one route is documented: summary, description, body and success answer."""

    path: str
    method: str
    summary: str
    tag: str
    description: str = ""
    request: dict = field(default_factory=dict)  # media type -> schema
    response: dict = field(default_factory=dict)  # media type -> schema
    errors: tuple[int, ...] = ()


SCHEMAS = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string",
                                 "description": "What is wrong, with the value and the fix."}},
    },
    "Tensor": {
        "type": "object", "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string", "enum": ["BOOL", "UINT8", "UINT16", "UINT32",
                                                    "UINT64", "INT8", "INT16", "INT32", "INT64",
                                                    "FP16", "FP32", "FP64", "BYTES"]},
            "parameters": {"type": "object"},
            "data": {"type": "array", "description": "Row-major values, flat or nested; "
                                                     "null marks a missing value."},
        },
    },
    "InferenceRequest": {
        "type": "object", "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "minItems": 1,
                       "items": {"$ref": "#/components/schemas/Tensor"}},
            "outputs": {"type": ["array", "null"],
                        "description": "The outputs to return; null or absent: all of them.",
                        "items": {"type": "object", "required": ["name"],
                                  "properties": {"name": {"type": "string"},
                                                 "parameters": {"type": "object"}}}},
        },
        "example": {"id": "1", "inputs": [
            {"name": "bill_length_mm", "shape": [1, 1], "datatype": "FP32", "data": [39.1]},
            {"name": "bill_depth_mm", "shape": [1, 1], "datatype": "FP32", "data": [18.7]},
            {"name": "flipper_length_mm", "shape": [1, 1], "datatype": "FP32", "data": [181]},
            {"name": "body_mass_g", "shape": [1, 1], "datatype": "FP32", "data": [3750]},
            {"name": "island", "shape": [1, 1], "datatype": "BYTES", "data": ["Torgersen"]},
            {"name": "sex", "shape": [1, 1], "datatype": "BYTES", "data": ["male"]}]},
    },
    "InferenceResponse": {
        "type": "object", "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"}, "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": {
                "type": "object", "required": ["name", "shape", "datatype"],
                "properties": {
                    "name": {"type": "string"}, "datatype": {"type": "string"},
                    "shape": {"type": "array", "items": {"type": "integer"}},
                    "parameters": {"type": "object", "description": "binary_data_size when "
                                                                    "the data follows as bytes"},
                    "data": {"type": "array"}}}},
        },
    },
    "RepositoryIndex": {
        "type": "array", "items": {
            "type": "object", "required": ["name", "version", "state"],
            "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                           "state": {"type": "string", "enum": ["READY"]}}},
    },
    "TensorMetadata": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "datatype": {"type": "string"},
                       "shape": {"type": "array", "items": {"type": "integer"}}},
    },
    "ModelMetadata": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/TensorMetadata"}},
            "outputs": {"type": "array",
                        "items": {"$ref": "#/components/schemas/TensorMetadata"}},
        },
    },
    "Table": {
        "description": "A list of records, or an object with exactly one of dataframe_split "
                       "({columns, data}), dataframe_records, instances or inputs.",
        "oneOf": [{"type": "array"}, {"type": "object"}],
        "example": {"dataframe_split": {
            "columns": ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g",
                        "island", "sex"],
            "data": [[39.1, 18.7, 181, 3750, "Torgersen", "male"]]}},
    },
    "Predictions": {
        "type": "object",
        "properties": {"predictions": {"type": "array", "items": {
            "type": "object",
            "properties": {"label": {"type": "string"},
                           "probabilities": {"type": "object",
                                             "additionalProperties": {"type": "number"}}}}}},
    },
}

OBJECT = {"type": "object"}
CSV_TEXT = {"type": "string", "description": "Comma-separated rows, one line per row. In a "
                                            "request the header row is optional; an answer has "
                                            "none unless asked with 'Accept: text/csv; "
                                            "header=present'."}
FRAMING = ("Malformed HTTP framing (both Content-Length and Transfer-Encoding, a bad request "
           "line) is refused by the HTTP parser with a plain-text 400, before this server's "
           "code runs: only those answers lack the JSON error shape. Beyond --limit-concurrency "
           "connections or requests, any route answers 503 with Retry-After.")


def document(routes: list[RouteDoc], models: list[str], token: bool) -> dict:
    """Build the OpenAPI 3.1 document describing ``routes``."""
    paths: dict[str, dict] = {}
    for route in routes:
        operation: dict = {"summary": route.summary, "tags": [route.tag],
                           "operationId": _operation_id(route)}
        if route.description:
            operation["description"] = route.description
        parameters = [{"name": name, "in": "path", "required": True,
                       "schema": {"type": "string"},
                       "description": _PARAMS.get(name, "")}
                      for name in _path_params(route.path)]
        if parameters:
            operation["parameters"] = parameters
        if route.request:
            operation["requestBody"] = {"required": True, "content": {
                media: {"schema": schema} for media, schema in route.request.items()}}
        responses: dict = {"200": {"description": "Success"}}
        if route.response:
            responses["200"]["content"] = {media: {"schema": schema}
                                           for media, schema in route.response.items()}
        for status in route.errors + ((401,) if token and not is_open(route.path) else ()):
            responses[str(status)] = {"description": _STATUS[status],
                                      "content": {"application/json": {"schema": ERROR}}}
        operation["responses"] = responses
        if token and not is_open(route.path):
            operation["security"] = [{"bearer": []}]
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "mlprod model server", "version": __version__,
                 "description": "Open Inference Protocol (V2) and SageMaker routes for the "
                                f"ONNX models in this repository: {', '.join(models)}. "
                                "Every error answers {\"error\": \"...\"}. " + FRAMING},
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }
    if token:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return doc


def docs_page(doc: dict) -> str:
    """Render the OpenAPI document as one self-contained HTML page (no scripts, no CDN)."""
    rows = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            bodies = ", ".join(op.get("requestBody", {}).get("content", {}))
            answers = ", ".join(op["responses"])
            rows.append(
                f"<tr><td><code class='m {method}'>{method.upper()}</code></td>"
                f"<td><code>{html.escape(path)}</code></td>"
                f"<td><b>{html.escape(op['summary'])}</b><br>"
                f"{html.escape(op.get('description', ''))}"
                f"{'<br><i>Body:</i> ' + html.escape(bodies) if bodies else ''}"
                f"<br><i>Statuses:</i> {answers}</td></tr>")
    info = doc["info"]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(info['title'])}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse;width:100%}td{border-top:1px solid #ddd;padding:.4em;"
        "vertical-align:top}code.m{font-weight:bold}.get{color:#06c}.post{color:#080}"
        "</style></head><body>"
        f"<h1>{html.escape(info['title'])}</h1><p>{html.escape(info['description'])}</p>"
        "<p>The machine-readable document: <a href='/openapi.json'>/openapi.json</a>.</p>"
        "<table><tr><th>Method</th><th>Path</th><th>What it does</th></tr>"
        + "".join(rows) + "</table></body></html>")


_PARAMS = {"name": "Model name, e.g. penguins.",
           "version": "Version number (1) or alias (production, candidate)."}
_STATUS = {400: "Bad input", 401: "Missing or wrong bearer token", 404: "Unknown model or version",
           413: "Body too large", 415: "Unsupported content type", 503: "Not ready"}


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _operation_id(route: RouteDoc) -> str:
    words = [p.strip("{}") for p in route.path.strip("/").replace("-", "_").split("/") if p]
    return route.method.lower() + "_" + ("_".join(words) or "root")
