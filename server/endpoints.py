"""The route handlers: V2 health, metadata and inference; SageMaker ping and invocations."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from server import tabular, v2
from server.errors import ApiError, shorten
from server.repository import Model, ModelVersion, Repository

JSON = "application/json"
CSV = "text/csv"
SERVER_NAME = "mlprod-model-server"
SERVER_VERSION = "0.1.0"


def json_response(content: object, status: int = 200, headers: dict | None = None) -> Response:
    """Build a JSON response with orjson."""
    return Response(orjson.dumps(content), status_code=status, headers=headers, media_type=JSON)


def model_headers(model: ModelVersion) -> dict[str, str]:
    """Return the headers naming the model and version that answered."""
    return {"X-Model-Name": model.name, "X-Model-Version": str(model.version)}


class Endpoints:
    """Handlers sharing one loaded repository and the server's settings.

    Parameters
    ----------
    repository : Repository
        The loaded models.
    default_model : str, optional
        The model ``/invocations`` serves when the request names none.
    max_body_bytes : int
        Larger request bodies get a 413.
    """

    def __init__(self, repository: Repository, default_model: str | None = None,
                 max_body_bytes: int = 6_291_456):
        self.repository = repository
        self.default_model = default_model
        self.max_body_bytes = max_body_bytes
        self.ready = False

    # --- health and metadata -------------------------------------------------------------
    async def live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def ready_check(self, request: Request) -> Response:
        if not self.ready:
            return json_response({"ready": False, "error": "The server is starting or "
                                  "stopping. Retry in a moment."}, status=503)
        return json_response({"ready": True})

    async def ping(self, request: Request) -> Response:
        if not self.ready:
            raise ApiError(503, "The server is starting or stopping. Retry in a moment.")
        return Response(b"", status_code=200)

    async def server_metadata(self, request: Request) -> Response:
        return json_response({"name": SERVER_NAME, "version": SERVER_VERSION,
                              "extensions": ["binary_tensor_data", "model_repository"]})

    async def list_models(self, request: Request) -> Response:
        return json_response({"models": sorted(self.repository.models)})

    async def model_ready(self, request: Request) -> Response:
        model = self._version(request)
        return json_response({"name": model.name, "version": str(model.version), "ready": True})

    async def model_metadata(self, request: Request) -> Response:
        params = request.path_params
        model = self.repository.get(params["name"])
        if "version" in params:
            found = model.resolve(params["version"])
            versions = [found.version]
        else:
            found = model.resolve(None)
            versions = list(model.versions)
        return json_response(v2.model_metadata(found, versions, model.aliases))

    async def version(self, request: Request) -> Response:
        return json_response({"name": SERVER_NAME, "version": SERVER_VERSION})

    async def execution_parameters(self, request: Request) -> Response:
        return json_response({"MaxConcurrentTransforms": 8, "BatchStrategy": "MULTI_RECORD",
                              "MaxPayloadInMB": max(1, self.max_body_bytes // 1_048_576)})

    # --- repository extension ------------------------------------------------------------
    async def repository_index(self, request: Request) -> Response:
        index = [{"name": m.name, "version": str(v), "state": "READY"}
                 for m in self.repository.models.values() for v in m.versions]
        return json_response(index)

    async def load_model(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not (self.repository.root / name).is_dir():
            raise ApiError(404, f"No folder '{name}' in the repository "
                                f"{str(self.repository.root)!r}; available: "
                                f"{sorted(self.repository.models)}.")
        model = self.repository.load_model(name)
        if model is None:
            raise ApiError(400, f"Folder '{name}' holds no <version>/model.onnx. Register a "
                                f"version first.")
        self.repository.models[name] = model
        return json_response({"name": name, "versions": [str(v) for v in model.versions],
                              "aliases": model.aliases})

    async def unload_model(self, request: Request) -> Response:
        model = self.repository.get(request.path_params["name"])
        del self.repository.models[model.name]
        return json_response({"name": model.name, "state": "UNAVAILABLE"})

    # --- inference -----------------------------------------------------------------------
    async def infer(self, request: Request) -> Response:
        model = self._version(request)
        headers = model_headers(model)
        try:
            header_length = request.headers.get("inference-header-content-length")
            if header_length is None:
                _require_json(request.headers.get("content-type"))
            body = await self._body(request)
            decoded = v2.decode_request(body, model, header_length)
            results = _run(model, decoded.feed)
        except ApiError as exc:
            exc.headers.update(headers)
            raise
        answer, json_length = v2.encode_response(model, decoded, results)
        if json_length is None:
            return Response(answer, headers=headers, media_type=JSON)
        headers["Inference-Header-Content-Length"] = str(json_length)
        return Response(answer, headers=headers, media_type="application/octet-stream")

    async def invocations(self, request: Request) -> Response:
        model = self._target(request)
        headers = model_headers(model)
        try:
            content_type = _media_type(request.headers.get("content-type"))
            accept = _accept(request.headers.get("accept"))
            if content_type == CSV:
                body = await self._body(request)
                feed = tabular.read_csv(body, model)
            elif content_type == JSON or content_type.endswith("+json"):
                body = await self._body(request)
                feed = tabular.read_json(body, model)
            else:
                raise ApiError(415, f"Content-Type {shorten(content_type or None)} is not "
                                    f"supported on /invocations. Send text/csv or "
                                    f"application/json.")
            results = _run(model, feed)
        except ApiError as exc:
            exc.headers.update(headers)
            raise
        if accept == CSV:
            return Response(tabular.write_csv(model, results), headers=headers, media_type=CSV)
        return Response(tabular.write_json(model, results), headers=headers, media_type=JSON)

    # --- helpers -------------------------------------------------------------------------
    def _version(self, request: Request) -> ModelVersion:
        params = request.path_params
        return self.repository.get(params["name"]).resolve(params.get("version"))

    def _target(self, request: Request) -> ModelVersion:
        target = request.headers.get("x-amzn-sagemaker-target-model")
        if target:
            name, _, version = target.removesuffix(".tar.gz").partition("/")
            return self.repository.get(name).resolve(version or None)
        models = self.repository.models
        if self.default_model is not None:
            return self.repository.get(self.default_model).resolve(None)
        if len(models) == 1:
            model: Model = next(iter(models.values()))
            return model.resolve(None)
        raise ApiError(400, f"This server holds several models {sorted(models)}; name one with "
                            f"the header X-Amzn-SageMaker-Target-Model (e.g. "
                            f"'{sorted(models)[0]}' or '{sorted(models)[0]}/2'), or start the "
                            f"server with --default-model.")

    async def _body(self, request: Request) -> bytes:
        limit = self.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise _too_large(int(length), limit)
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit)
            chunks.append(chunk)
        return b"".join(chunks)


def _run(model: ModelVersion, feed: dict) -> list:
    try:
        return model.run(feed)
    except Exception as exc:  # input checks passed, yet ONNX Runtime refused: still bad input
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ApiError(400, f"Model '{model.name}' version {model.version} cannot score this "
                            f"input: {first_line[:300]}. Check the values against "
                            f"GET /v2/models/{model.name}.") from None


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(413, f"The request body ({size} bytes or more) exceeds the limit of "
                         f"{limit} bytes. Split the batch into smaller requests, or start the "
                         f"server with a larger --max-body-bytes.")


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _require_json(header: str | None) -> None:
    media = _media_type(header)
    if media and media != JSON and not media.endswith("+json") and media != "text/plain":
        raise ApiError(415, f"Content-Type {shorten(media)} is not supported for V2 inference. "
                            f"Send application/json (with binary tensor data: the "
                            f"Inference-Header-Content-Length header).")


def _accept(header: str | None) -> str:
    if not header:
        return JSON
    for part in header.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in (JSON, "*/*", "application/*") or media.endswith("+json"):
            return JSON
        if media in (CSV, "text/*"):
            return CSV
    raise ApiError(400, f"Accept {shorten(header)} asks for a format this server does not "
                        f"write. Ask for application/json or text/csv.")
