"""The inference routes as plain ASGI endpoints: V2 ``infer`` and SageMaker ``/invocations``.

They are the hot path, so they read headers and body straight from the ASGI messages and send
prebuilt header lists, skipping Starlette's per-request ``Request`` and wrapper objects.
Errors they raise as :class:`ApiError` are answered here, with the model headers when known.
"""

from __future__ import annotations

import random
import time

import orjson

from server import tabular, v2
from server.batching import Batcher
from server.capture import Capture
from server.errors import ApiError, header_count, shorten
from server.layout import ALL_TRAFFIC, SHADOW
from server.metrics import Metrics
from server.repository import Model, ModelVersion, Repository, Route
from server.shadow import ShadowLog

JSON = "application/json"
CSV = "text/csv"
CSV_HEADER = "text/csv; header=present"  # RFC 4180's parameter: a header line first
_JSON = b"application/json"


class _Disconnected(Exception):
    """The client went away before its body arrived: nothing to answer."""


_TARGET_VARIANT = b"x-amzn-sagemaker-target-variant"


class Observers:
    """What watches the inference routes: metrics, data capture and the shadow log.

    Parameters
    ----------
    metrics : Metrics, optional
        Counts every answer (``GET /metrics``).
    capture : Capture, optional
        Records a sample of answered requests (``--capture-dir``).
    shadow_log : ShadowLog, optional
        Records what a shadow version answered.
    """

    def __init__(self, metrics: Metrics | None = None, capture: Capture | None = None,
                 shadow_log: ShadowLog | None = None):
        self.metrics = metrics
        self.capture = capture
        self.shadow_log = shadow_log


class InferenceEndpoint:
    """Shared plumbing: find the model, read the body within the limit, answer or explain.

    A request for a model without a version is routed (``routing.json``: a variant by weight,
    or the one ``X-Amzn-SageMaker-Target-Variant`` names); after its answer is sent, it is
    counted in the metrics, sampled into the data capture, and the model's shadow version
    scores the same input (recorded, never returned).

    Parameters
    ----------
    repository : Repository
        The loaded models.
    max_body_bytes : int
        Larger request bodies get a 413.
    observers : Observers, optional
        Metrics, capture and shadow log; none by default.
    batcher : Batcher, optional
        Gathers concurrent requests into one call (``--max-batch-delay-ms``); None scores each
        request alone.
    """

    route = "infer"  # the metrics' route label

    def __init__(self, repository: Repository, max_body_bytes: int = 6_291_456,
                 observers: Observers | None = None, batcher: Batcher | None = None):
        self.repository = repository
        self.max_body_bytes = max_body_bytes
        self.observers = observers or Observers()
        self.batcher = batcher

    async def __call__(self, scope, receive, send) -> None:
        start = time.perf_counter()
        headers = dict(scope["headers"])
        model_headers: list = []
        model = route = feed = results = None
        body = b""
        try:
            model, model_headers, route = self.model(scope, headers)
            body = await self._body(receive, headers)
            status, content_type, payload, extra, feed, results = await self.answer(
                model, headers, body)
        except ApiError as exc:
            status, content_type, extra = exc.status, _JSON, [
                (k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
            payload = orjson.dumps({"error": exc.message})
        except _Disconnected:
            scope["response_status"] = 499  # logged as nginx does: the client closed first
            return
        headers_out = [*model_headers, *extra, (b"content-length", b"%d" % len(payload)),
                       (b"content-type", content_type)]
        if "request_id" in scope:  # set by RequestContext, which logs the status recorded here
            headers_out.append((b"x-request-id", scope["request_id"]))
            scope["response_status"] = status
        await send({"type": "http.response.start", "status": status, "headers": headers_out})
        await send({"type": "http.response.body", "body": payload})
        # After the answer is sent: what watches the route.
        observers = self.observers
        variant = route.name if route is not None else None
        labels = (results[model.label_index] if results is not None
                  and model.label_index is not None else None)
        if observers.metrics is not None:
            observers.metrics.record(self.route, model, variant, status,
                                     time.perf_counter() - start, labels)
        capture = observers.capture
        if status == 200 and capture is not None and capture.sample():
            capture.add(model.name, variant or ALL_TRAFFIC,
                        headers.get(b"x-amzn-sagemaker-inference-id"),
                        headers.get(b"content-type", b""), body, content_type, payload)
        if (route is not None and route.shadow is not None and feed is not None
                and random.random() < route.shadow_share):
            self._shadow(route.shadow, feed, model, route, scope, headers, body)

    def _shadow(self, shadow: ModelVersion, feed: dict, served: ModelVersion, route: Route,
                scope, headers: dict, body: bytes) -> None:
        """Score ``feed`` with the shadow version and record it; never raises."""
        start = time.perf_counter()
        try:
            outputs, error = shadow.run(feed), None
        except Exception as exc:  # noqa: BLE001 - a failing shadow must not touch serving
            outputs, error = None, str(exc).splitlines()[0][:300] if str(exc) else repr(exc)
        observers = self.observers
        if observers.shadow_log is not None:
            observers.shadow_log.write(scope.get("request_id", b"-"), served, route.name,
                                       shadow, outputs, error)
        labels = (outputs[shadow.label_index] if outputs is not None
                  and shadow.label_index is not None else None)
        if observers.metrics is not None:
            observers.metrics.record(self.route, shadow, SHADOW, 200 if outputs else 500,
                                     time.perf_counter() - start, labels)
        capture = observers.capture
        if outputs is not None and capture is not None and capture.sample():
            answer = {"outputs": [{"name": name, "data": value.tolist()}
                                  for name, value in zip(shadow.output_names, outputs,
                                                         strict=True)]}
            capture.add(shadow.name, SHADOW, headers.get(b"x-amzn-sagemaker-inference-id"),
                        headers.get(b"content-type", b""), body, _JSON, orjson.dumps(answer))

    def model(self, scope, headers: dict[bytes, bytes]) -> tuple[ModelVersion, list,
                                                                   Route | None]:
        """Return the version the request is for, its response headers and its variant.

        Raises ApiError 404 or 400 if none fits.
        """
        raise NotImplementedError

    async def answer(self, model: ModelVersion, headers: dict[bytes, bytes],
                     body: bytes) -> tuple[int, bytes, bytes, list, dict, list]:
        """Return status, content type, body, extra headers, the scored feed and the outputs."""
        raise NotImplementedError

    async def score(self, model: ModelVersion, feed: dict) -> list:
        """Run the model on ``feed``, alone or in a dynamic batch; a refusal is a 400."""
        if self.batcher is None:
            return run(model, feed)
        try:
            return await self.batcher.run(model, feed)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
            raise _refused(model, exc) from None

    async def _body(self, receive, headers: dict[bytes, bytes]) -> bytes:
        limit = self.max_body_bytes
        length = header_count(headers.get(b"content-length"))
        if length is not None and length > limit:
            raise _too_large(length, limit)
        message = await receive()
        body = message.get("body", b"")
        if not message.get("more_body", False):
            if message["type"] == "http.disconnect":
                raise _Disconnected
            if len(body) > limit:
                raise _too_large(len(body), limit)
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit)
            chunks.append(chunk)
        return b"".join(chunks)


class V2Infer(InferenceEndpoint):
    """``POST /v2/models/{name}[/versions/{version}]/infer``: JSON or binary tensor data."""

    def model(self, scope, headers):
        params = scope["path_params"]
        model = self.repository.get(params["name"])
        if "version" in params:  # a versioned path bypasses routing
            found = model.resolve(params["version"])
            return found, found.headers, None
        return model.route(headers.get(_TARGET_VARIANT))

    async def answer(self, model, headers, body):
        header_length = headers.get(b"inference-header-content-length")
        if header_length is None:
            _require_json(headers.get(b"content-type"))
        decoded = v2.decode_request(
            body, model, None if header_length is None else header_length.decode("latin-1"))
        results = await self.score(model, decoded.feed)
        answer, json_length = v2.encode_response(model, decoded, results)
        if json_length is None:
            return 200, _JSON, answer, [], decoded.feed, results
        return 200, b"application/octet-stream", answer, [
            (b"inference-header-content-length", b"%d" % json_length)], decoded.feed, results


class Invocations(InferenceEndpoint):
    """``POST /invocations``: CSV or JSON tables in, JSON or CSV predictions out (by Accept).

    Parameters
    ----------
    default_model : str, optional
        The model served when the request names none and the repository holds several.
    """

    route = "invocations"

    def __init__(self, repository: Repository, max_body_bytes: int = 6_291_456,
                 default_model: str | None = None, observers: Observers | None = None,
                 batcher: Batcher | None = None):
        super().__init__(repository, max_body_bytes, observers, batcher)
        self.default_model = default_model

    def model(self, scope, headers):
        variant = headers.get(_TARGET_VARIANT)
        target = headers.get(b"x-amzn-sagemaker-target-model")
        if target:
            name, _, version = target.decode("latin-1").removesuffix(".tar.gz").partition("/")
            model = self.repository.get(name)
            if version:  # a version named: no routing
                found = model.resolve(version)
                return found, found.headers, None
            return model.route(variant)
        models = self.repository.models
        if not models:
            raise ApiError(503, "No model is loaded in this server, so /invocations has "
                                "nothing to run. Load one with "
                                "POST /v2/repository/models/<name>/load.")
        if self.default_model is not None:
            return self.repository.get(self.default_model).route(variant)
        if len(models) == 1:
            only: Model = next(iter(models.values()))
            return only.route(variant)
        names = sorted(models)
        raise ApiError(400, f"This server holds several models {names}; name one with the "
                            f"header X-Amzn-SageMaker-Target-Model (e.g. '{names[0]}' or "
                            f"'{names[0]}/2'), or start the server with --default-model.")

    async def answer(self, model, headers, body):
        content_type = media_type(headers.get(b"content-type"))
        accept = _accept(headers.get(b"accept"))
        if content_type == CSV:
            feed = tabular.read_csv(body, model)
        elif content_type == JSON or content_type.endswith("+json"):
            feed = tabular.read_json(body, model)
        else:
            raise ApiError(415, f"Content-Type {shorten(content_type or None)} is not supported "
                                f"on /invocations. Send text/csv or application/json.")
        results = await self.score(model, feed)
        if accept == CSV:
            return (200, b"text/csv; charset=utf-8", tabular.write_csv(model, results), [], feed,
                    results)
        if accept == CSV_HEADER:
            return (200, b"text/csv; charset=utf-8; header=present",
                    tabular.write_csv(model, results, header=True), [], feed, results)
        return 200, _JSON, tabular.write_json(model, results), [], feed, results


def run(model: ModelVersion, feed: dict) -> list:
    """Run the model; an input ONNX Runtime still refuses is bad input, answered with a 400."""
    try:
        return model.run(feed)
    except Exception as exc:  # onnxruntime raises several unrelated types
        raise _refused(model, exc) from None


def _refused(model: ModelVersion, exc: Exception) -> ApiError:
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ApiError(400, f"Model '{model.name}' version {model.version} cannot score this "
                         f"input: {first_line[:300]}. Check the values against "
                         f"GET /v2/models/{model.name}.")


def media_type(header: bytes | None) -> str:
    """Return the media type of a Content-Type header, lower case, without parameters."""
    return (header or b"").decode("latin-1").split(";", 1)[0].strip().lower()


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(413, f"The request body ({size} bytes or more) exceeds the limit of "
                         f"{limit} bytes. Split the batch into smaller requests, or start the "
                         f"server with a larger --max-body-bytes.")


def _require_json(header: bytes | None) -> None:
    if header is None or header == _JSON:
        return
    media = media_type(header)
    if media and media != JSON and not media.endswith("+json") and media != "text/plain":
        raise ApiError(415, f"Content-Type {shorten(media)} is not supported for V2 inference. "
                            f"Send application/json (with binary tensor data: the "
                            f"Inference-Header-Content-Length header).")


def _accept(header: bytes | None) -> str:
    """Return the answer format an Accept header prefers: highest q first, q=0 never.

    CSV answers carry no header line (one line per input row, as SageMaker Batch Transform
    joins them) unless the client asks with RFC 4180's ``text/csv; header=present``.
    """
    if not header:
        return JSON
    text = header.decode("latin-1")
    if text in (JSON, CSV):
        return text
    wanted = []
    for part in text.split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        quality, header = 1.0, False
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
            elif key.strip() == "header":
                header = value.strip().strip('"') == "present"
        if quality > 0:
            wanted.append((-quality, media, header))
    for _, media, header in sorted(wanted, key=lambda w: w[0]):  # stable: ties keep the order
        if media in (JSON, "*/*", "application/*") or media.endswith("+json"):
            return JSON
        if media in (CSV, "text/*"):
            return CSV_HEADER if header else CSV
    raise ApiError(400, f"Accept {shorten(text)} asks for a format this server does not "
                        f"write. Ask for application/json or text/csv.")
