"""Per-request context as plain ASGI middleware: request id, bearer token check, access log."""

from __future__ import annotations

import hmac
import os
import time

from server.accesslog import AccessLog
from server.errors import error_response

OPEN_PATHS = ("/v2/health/", "/ping")


def is_open(path: str) -> bool:
    """Return whether ``path`` is answered without a bearer token (``/v2/health/*``, ``/ping``).

    Parameters
    ----------
    path : str
        The request path, or a route's path template.

    Returns
    -------
    bool
        True for the health routes and ``/ping``.
    """
    return path.startswith(OPEN_PATHS[0]) or path == OPEN_PATHS[1]


class RequestContext:
    """Give every request an id (``X-Request-Id``, echoed or generated), check the token, log it.

    Parameters
    ----------
    app : ASGI app
        The application to wrap.
    token : str or None
        When set, every path but ``/v2/health/*`` and ``/ping`` needs
        ``Authorization: Bearer <token>``.
    log : AccessLog or None
        Where access lines go; None turns the access log off.
    hot_routes : list of starlette Route
        Routes whose plain-ASGI endpoints are called straight from here when their path and
        method match, skipping the router and exception layers in between (the inference
        routes: about 5 µs a request, measured in-process). They stay in the router too, which
        answers every other method on them (405) and documents them.
    """

    def __init__(self, app, token: str | None = None, log: AccessLog | None = None,
                 hot_routes: list | None = None):
        self.app = app
        self.token = token.encode() if token else None
        self.log = log
        self.hot_routes = [(r.path_regex, r.methods, r.app) for r in hot_routes or ()]
        self._prefix = os.urandom(4).hex()
        self._count = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = authorization = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                request_id = value[:128]
            elif key == b"authorization":
                authorization = value
        if request_id is None:
            self._count += 1
            request_id = f"{self._prefix}-{self._count:x}".encode()
        scope["request_id"] = request_id
        status = 500

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            await send(message)

        try:
            if self.token is not None and not self._allowed(scope["path"], authorization):
                await self._unauthorized(authorization)(scope, receive, send_with_id)
            elif (endpoint := self._hot(scope)) is not None:
                # The inference endpoints add X-Request-Id and record their status themselves:
                # no wrapper around send on the hot path.
                await endpoint(scope, receive, send)
                status = scope.get("response_status", 500)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            if self.log is not None:
                self.log.write(request_id, scope.get("client"), scope["method"], scope["path"],
                               status, time.perf_counter() - start)

    def _hot(self, scope):
        """Return the inference endpoint for this request (path params set), or None."""
        path = scope["path"]
        root = scope.get("root_path")
        if root and path.startswith(root):  # as the router sees it, behind a path prefix
            path = path[len(root):]
        for regex, methods, endpoint in self.hot_routes:
            match = regex.match(path)
            if match is not None and scope["method"] in methods:
                scope["path_params"] = match.groupdict()
                return endpoint
        return None

    def _allowed(self, path: str, authorization: bytes | None) -> bool:
        # The token first: an authorised request (the hot path) never needs the path check.
        if (authorization is not None and authorization[:7].lower() == b"bearer "
                and hmac.compare_digest(authorization[7:].strip(), self.token)):
            return True
        return is_open(path)

    @staticmethod
    def _unauthorized(authorization: bytes | None):
        if authorization is None:
            problem = "No Authorization header"
        elif authorization[:7].lower() != b"bearer ":
            problem = "The Authorization header is not a bearer token"
        else:
            problem = "The bearer token is wrong"
        return error_response(
            401, f"{problem}. Send 'Authorization: Bearer <token>' with the token the server "
                 f"was started with (MODEL_SERVER_TOKEN).",
            headers={"WWW-Authenticate": 'Bearer realm="model-server"'})
