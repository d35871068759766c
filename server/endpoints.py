"""The route handlers around inference: health, metadata, the repository extension, ping."""

from __future__ import annotations

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from server import __version__, v2
from server.errors import ApiError, shorten
from server.repository import NAME, ModelVersion, Repository, RepositoryError

JSON = "application/json"
SERVER_NAME = "mlprod-model-server"
MODEL_CONTROL_MODES = ("none", "poll", "explicit")
NO_MODEL = ("No model is loaded in this server. Load one with "
            "POST /v2/repository/models/<name>/load.")


def json_response(content: object, status: int = 200, headers: dict | None = None) -> Response:
    """Build a JSON response with orjson."""
    return Response(orjson.dumps(content), status_code=status, headers=headers, media_type=JSON)


class Endpoints:
    """Handlers sharing one loaded repository and the server's settings.

    Parameters
    ----------
    repository : Repository
        The loaded models.
    max_body_bytes : int
        The request body limit, reported by ``/execution-parameters``.
    model_control : {"explicit", "poll", "none"}
        ``explicit``: models can be loaded and unloaded over HTTP; ``poll``: changed folders
        are re-read every period, and load re-reads one at once (unload answers 404);
        ``none``: both routes answer 404 (Triton's model control modes).
    """

    def __init__(self, repository: Repository, max_body_bytes: int = 6_291_456,
                 model_control: str = "explicit"):
        if model_control not in MODEL_CONTROL_MODES:
            raise ValueError(f"model_control={model_control!r}; use one of "
                             f"{list(MODEL_CONTROL_MODES)}.")
        self.repository = repository
        self.max_body_bytes = max_body_bytes
        self.model_control = model_control
        self.ready = False

    # --- health and metadata -------------------------------------------------------------
    async def live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def ready_check(self, request: Request) -> Response:
        if not self.ready:
            return json_response({"ready": False, "error": "The server is starting or "
                                  "stopping. Retry in a moment."}, status=503)
        if not self.repository.models:
            return json_response({"ready": False, "error": NO_MODEL}, status=503)
        return json_response({"ready": True})

    async def ping(self, request: Request) -> Response:
        if not self.ready:
            raise ApiError(503, "The server is starting or stopping. Retry in a moment.")
        if not self.repository.models:
            raise ApiError(503, NO_MODEL)
        return Response(b"", status_code=200)

    async def server_metadata(self, request: Request) -> Response:
        return json_response({"name": SERVER_NAME, "version": __version__,
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
        return json_response({"name": SERVER_NAME, "version": __version__})

    async def execution_parameters(self, request: Request) -> Response:
        return json_response({"MaxConcurrentTransforms": 8, "BatchStrategy": "MULTI_RECORD",
                              "MaxPayloadInMB": max(1, self.max_body_bytes // 1_048_576)})

    # --- repository extension ------------------------------------------------------------
    async def repository_index(self, request: Request) -> Response:
        index = [{"name": m.name, "version": str(v), "state": "READY"}
                 for m in self.repository.models.values() for v in m.versions]
        return json_response(index)

    async def load_model(self, request: Request) -> Response:
        self._check_model_control("load", ("explicit", "poll"))
        name = request.path_params["name"]
        if not NAME.fullmatch(name):
            raise ApiError(400, f"{shorten(name)} is not a model name: a name is 1 to 64 "
                                f"letters, digits, '_', '.' or '-', starting with a letter or "
                                f"digit (a folder of the repository), e.g. 'penguins'.")
        if not (self.repository.root / name).is_dir():
            raise ApiError(404, f"No folder '{name}' in the repository "
                                f"{str(self.repository.root)!r}; available: "
                                f"{sorted(self.repository.models)}.")
        try:  # reading files and building sessions takes a while: off the event loop
            model = await run_in_threadpool(self.repository.load_model, name,
                                            self.repository.models.get(name))
        except RepositoryError as exc:
            kept = ("the versions loaded before are still served" if name in
                    self.repository.models else "nothing was loaded")
            raise ApiError(400, f"Model '{name}' cannot be loaded ({kept}): {exc}") from None
        if model is None:
            raise ApiError(400, f"Folder '{name}' holds no <version>/model.onnx. Register a "
                                f"version first.")
        self.repository.models[name] = model
        return json_response({"name": name, "versions": [str(v) for v in model.versions],
                              "aliases": model.aliases,
                              "variants": {r.name: r.version.version for r in model.routes}})

    async def unload_model(self, request: Request) -> Response:
        self._check_model_control("unload", ("explicit",))
        model = self.repository.get(request.path_params["name"])
        del self.repository.models[model.name]
        return json_response({"name": model.name, "state": "UNAVAILABLE"})

    def _check_model_control(self, action: str, modes: tuple[str, ...]) -> None:
        if self.model_control not in modes:
            hint = ("(the default of `python -m server serve`)" if self.model_control == "none"
                    else "(changed folders are re-read by themselves)")
            raise ApiError(404, f"Models cannot be {action}ed over HTTP on this server: model "
                                f"control is '{self.model_control}' {hint}. Start the server "
                                f"with --model-control explicit (one worker) to allow it, and "
                                f"set MODEL_SERVER_TOKEN so only you can.")

    def _version(self, request: Request) -> ModelVersion:
        params = request.path_params
        return self.repository.get(params["name"]).resolve(params.get("version"))
