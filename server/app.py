"""Build the server's ASGI application: ``create_app(repository, ...)``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from server.accesslog import AccessLog
from server.batching import Batcher
from server.capture import Capture
from server.context import RequestContext
from server.endpoints import Endpoints
from server.errors import ApiError, error_response
from server.inference import CSV, JSON, InferenceEndpoint, Invocations, Observers, V2Infer
from server.metrics import Metrics
from server.openapi import CSV_TEXT, OBJECT, RouteDoc, docs_page, document
from server.poll import Poller
from server.repository import Repository
from server.shadow import ShadowLog

OPTIONS_ENV = "MODEL_SERVER_OPTIONS"
_INFER = "/v2/models/{name}/versions/{version}/infer"
_CONTROL = ("Only with model control 'explicit' (the default of `python -m server` with one "
            "worker; `serve` needs --model-control explicit); otherwise 404.")
_LOAD = ("With model control 'explicit' or 'poll' (there it re-reads the folder at once); "
         "otherwise 404.")
_ROUTED = (" Routed by the model's routing.json where it has one: a variant by weight, or the one "
           "X-Amzn-SageMaker-Target-Variant names (400 if none); the answer names it in "
           "X-Amzn-Invoked-Production-Variant.")


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


# (path, method, handler, summary, tag, description, request, response, errors);
# the inference routes come first: the router tries routes in order.
ROUTES: list[tuple[RouteDoc, str]] = [
    (RouteDoc(_INFER, "POST", "Infer with one version", "V2",
              "Version is a number or an alias (production, candidate).",
              {JSON: _ref("InferenceRequest")}, {JSON: _ref("InferenceResponse")},
              (400, 404, 413, 415)), "infer"),
    (RouteDoc("/v2/models/{name}/infer", "POST", "Infer with the default version", "V2",
              "The production alias where set, else the latest version." + _ROUTED,
              {JSON: _ref("InferenceRequest")}, {JSON: _ref("InferenceResponse")},
              (400, 404, 413, 415)), "infer"),
    (RouteDoc("/invocations", "POST", "Predict (SageMaker, MLflow)", "SageMaker",
              "Model from X-Amzn-SageMaker-Target-Model, else the default or only model. "
              "Answer format from Accept: application/json (default) or text/csv." + _ROUTED,
              {CSV: CSV_TEXT, JSON: _ref("Table")}, {JSON: _ref("Predictions"), CSV: CSV_TEXT},
              (400, 404, 413, 415, 503)), "invocations"),
    (RouteDoc("/ping", "GET", "Health (SageMaker)", "SageMaker",
              "200 with an empty body when ready.", errors=(503,)), "ping"),
    (RouteDoc("/execution-parameters", "GET", "Batch transform parameters", "SageMaker",
              response={JSON: OBJECT}), "execution_parameters"),
    (RouteDoc("/v2/health/live", "GET", "Server live", "V2", response={JSON: OBJECT}), "live"),
    (RouteDoc("/v2/health/ready", "GET", "Server ready", "V2", response={JSON: OBJECT},
              errors=(503,)), "ready_check"),
    (RouteDoc("/v2", "GET", "Server metadata", "V2", response={JSON: OBJECT}),
     "server_metadata"),
    (RouteDoc("/v2/models", "GET", "List models", "V2", response={JSON: OBJECT}), "list_models"),
    (RouteDoc("/v2/models/{name}", "GET", "Model metadata", "V2",
              response={JSON: _ref("ModelMetadata")}, errors=(404,)), "model_metadata"),
    (RouteDoc("/v2/models/{name}/ready", "GET", "Model ready", "V2", response={JSON: OBJECT},
              errors=(404,)), "model_ready"),
    (RouteDoc("/v2/models/{name}/versions/{version}", "GET", "Version metadata", "V2",
              response={JSON: _ref("ModelMetadata")}, errors=(404,)), "model_metadata"),
    (RouteDoc("/v2/models/{name}/versions/{version}/ready", "GET", "Version ready", "V2",
              response={JSON: OBJECT}, errors=(404,)), "model_ready"),
    (RouteDoc("/v2/repository/index", "POST", "Repository index", "V2 repository",
              "Every model version served, with its state.",
              response={JSON: _ref("RepositoryIndex")}),
     "repository_index"),
    (RouteDoc("/v2/repository/models/{name}/load", "POST", "Load or reload a model",
              "V2 repository", "Reads the model's folder again: new versions, aliases and "
              "routing. A folder that cannot be served answers 400 and the versions loaded "
              "before stay. " + _LOAD, response={JSON: OBJECT}, errors=(400, 404)), "load_model"),
    (RouteDoc("/v2/repository/models/{name}/unload", "POST", "Unload a model", "V2 repository",
              _CONTROL, response={JSON: OBJECT}, errors=(404,)), "unload_model"),
    (RouteDoc("/metrics", "GET", "Prometheus metrics", "Monitoring",
              "Requests, latency, rows and predicted labels per model, version and variant, in "
              "Prometheus' text format (every worker summed).",
              response={"text/plain": {"type": "string"}}), "metrics"),
    (RouteDoc("/health", "GET", "Health (MLflow)", "MLflow", response={JSON: OBJECT}), "live"),
    (RouteDoc("/version", "GET", "Server version (MLflow)", "MLflow", response={JSON: OBJECT}),
     "version"),
    (RouteDoc("/openapi.json", "GET", "This OpenAPI document", "Docs", response={JSON: OBJECT}),
     "openapi"),
    (RouteDoc("/docs", "GET", "The routes as a web page", "Docs",
              response={"text/html": {"type": "string"}}), "docs"),
    (RouteDoc("/", "GET", "The routes as a web page", "Docs",
              response={"text/html": {"type": "string"}}), "docs"),
]


def create_app(
    repository: str | os.PathLike | Repository,
    *,
    default_model: str | None = None,
    max_body_bytes: int = 6_291_456,
    token: str | None = None,
    access_log: bool | AccessLog = True,
    intra_op_num_threads: int = 1,
    model_control: str = "explicit",
    repository_poll_secs: float = 1.0,
    capture_dir: str | os.PathLike | None = None,
    capture_percent: float = 0.0,
    max_batch_delay_ms: float = 0.0,
    platform_routes: dict[str, str] | None = None,
) -> Starlette:
    """Create the server application for a model repository.

    Parameters
    ----------
    repository : path or Repository
        The repository root (``<model>/<version>/model.onnx``), loaded now, once.
    default_model : str, optional
        The model ``/invocations`` serves when the request names none.
    max_body_bytes : int
        Requests with larger bodies get a 413. SageMaker's limit is 6 MB.
    token : str, optional
        Bearer token required on every route but ``/v2/health/*`` and ``/ping``.
        Default: ``$MODEL_SERVER_TOKEN``; no token when unset or empty.
    access_log : bool or AccessLog
        One line per request (id, client, route, status, latency) on stderr.
    intra_op_num_threads : int
        ONNX Runtime threads per call.
    model_control : {"explicit", "poll", "none"}
        ``explicit``: ``/v2/repository/models/{name}/load`` and ``unload`` work; ``poll``: every
        ``repository_poll_secs`` the folders that changed are re-read (new versions, aliases,
        routing), and ``load`` re-reads one at once; ``none``: the models loaded at start are
        the ones served.
    repository_poll_secs : float
        The period of model control ``poll``.
    capture_dir : path, optional
        Where data capture writes (SageMaker Model Monitor's layout); None: no capture.
    capture_percent : float
        The share of answered inference requests captured, 0 to 100.
    max_batch_delay_ms : float
        Dynamic batching: gather concurrent requests to one version for up to this long and
        score them in one call; 0 turns it off.
    platform_routes : dict, optional
        A platform's own routes (Vertex AI's ``AIP_HEALTH_ROUTE`` / ``AIP_PREDICT_ROUTE``):
        ``{"health": path, "predict": path}``, answered as ``/ping`` and ``/invocations``.

    Raises
    ------
    RepositoryError
        If the repository cannot be served (message names the file and the fix).
    ValueError
        If ``default_model`` is not in the repository, or ``model_control`` is unknown.
    """
    if not isinstance(repository, Repository):
        repository = Repository(repository, intra_op_num_threads=intra_op_num_threads)
    if not repository.models:
        repository.load()
    if default_model is not None and default_model not in repository.models:
        raise ValueError(f"default_model={default_model!r} is not in the repository; "
                         f"available: {sorted(repository.models)}.")
    if token is None:
        token = os.environ.get("MODEL_SERVER_TOKEN") or None
    log = access_log if isinstance(access_log, AccessLog) else (AccessLog() if access_log
                                                                 else None)
    if not repository_poll_secs > 0:
        raise ValueError(f"repository_poll_secs={repository_poll_secs!r}; give a positive "
                         f"number of seconds.")
    endpoints = Endpoints(repository, max_body_bytes=max_body_bytes,
                          model_control=model_control)
    if not 0 <= capture_percent <= 100:
        raise ValueError(f"capture_percent={capture_percent!r}; give a share from 0 to 100.")
    shadow_log = ShadowLog(log if log is not None else AccessLog())
    metrics = Metrics(repository)
    capture = (Capture(capture_dir, capture_percent, on_error=metrics.capture_errors.inc)
               if capture_dir is not None and capture_percent > 0 else None)
    observers = Observers(metrics, capture, shadow_log)
    if not 0 <= max_batch_delay_ms < float("inf"):
        raise ValueError(f"max_batch_delay_ms={max_batch_delay_ms!r}; give 0 (off) or a "
                         f"positive number of milliseconds.")
    batcher = Batcher(max_batch_delay_ms / 1000) if max_batch_delay_ms > 0 else None
    infer = V2Infer(repository, max_body_bytes, observers, batcher)
    invocations = Invocations(repository, max_body_bytes, default_model, observers, batcher)
    docs = [doc for doc, _ in ROUTES]
    openapi = document(docs, sorted(repository.models), token=token is not None)
    openapi_bytes = json.dumps(openapi, indent=1).encode()
    page = docs_page(openapi)

    async def openapi_route(request: Request) -> Response:
        return Response(openapi_bytes, media_type=JSON)

    async def docs_route(request: Request) -> Response:
        return HTMLResponse(page)

    async def metrics_route(request: Request) -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    handlers = {"openapi": openapi_route, "docs": docs_route, "infer": infer,
                "invocations": invocations, "metrics": metrics_route}
    routes = [Route(doc.path, handlers.get(name) or getattr(endpoints, name),
                    methods=[doc.method], name=f"{name}:{doc.path}")
              for doc, name in ROUTES]
    platform_routes = platform_routes or {}
    if "health" in platform_routes:  # first: the router tries routes in order
        routes.insert(0, Route(platform_routes["health"], endpoints.ping, methods=["GET"],
                               name="platform:health"))
    if "predict" in platform_routes:
        routes.insert(0, Route(platform_routes["predict"], invocations, methods=["POST"],
                               name="platform:predict"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        tasks = [asyncio.create_task(metrics.run())]
        if model_control == "poll":
            tasks.append(asyncio.create_task(Poller(repository, repository_poll_secs).run()))
        if capture is not None:
            tasks.append(asyncio.create_task(capture.run()))
        endpoints.ready = True
        try:
            yield
        finally:
            endpoints.ready = False
            for task in tasks:
                task.cancel()
            metrics.flush()
            if capture is not None:
                capture.flush()  # a clean stop (SIGTERM) loses no captured record
            shadow_log.log.flush()

    hot = [r for r in routes if isinstance(r.endpoint, InferenceEndpoint)]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestContext, token=token, log=log, hot_routes=hot)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error,
                            Exception: _internal_error},
        lifespan=lifespan,
    )
    app.state.repository = repository
    app.state.endpoints = endpoints
    app.state.openapi = openapi
    app.state.metrics = metrics
    return app


def create_app_from_env() -> Starlette:
    """Create the app from the JSON options in ``$MODEL_SERVER_OPTIONS`` (one per worker)."""
    return create_app(**json.loads(os.environ[OPTIONS_ENV]))


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        message = (f"No route {method} {path}. See /docs (or /openapi.json) for the routes, "
                   f"e.g. POST /v2/models/<name>/infer or POST /invocations.")
    elif exc.status_code == 405:
        # Starlette lists the methods from a set: sort them, so the answer is the same each run.
        allowed = ", ".join(sorted((exc.headers or {}).get("Allow", "").split(", ")))
        message = f"{method} is not allowed on {path}. Use {allowed}."
        return error_response(405, message, {"Allow": allowed})
    else:
        message = f"{exc.detail} ({method} {path})."
    return error_response(exc.status_code, message, exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this answer, so uvicorn logs the traceback; the body never has it.
    request_id = request.scope.get("request_id", b"-").decode("latin-1")
    return error_response(500, f"Internal server error (request id {request_id}); the server "
                               f"log has the details.", headers={"X-Request-Id": request_id})
