"""Per-request context as plain ASGI middleware: request id, bearer token check, access log."""

from __future__ import annotations

import hmac
import os
import time

from server.accesslog import AccessLog
from server.errors import error_response

OPEN_PATHS = ("/v2/health/", "/ping")
#: How many request paths the hot-route table remembers before it starts afresh.
HOT_CACHE_SIZE = 1024


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
        self._hot_cache: dict[tuple, tuple | None] = {}
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
        try:
            if self.token is not None and not self._allowed(scope["path"], authorization):
                await self._unauthorized(authorization)(scope, receive, _with_id(scope, send))
            elif (endpoint := self._hot(scope)) is not None:
                # The inference endpoints add X-Request-Id and record their status themselves:
                # no wrapper around send on the hot path.
                await endpoint(scope, receive, send)
            else:
                await self.app(scope, receive, _with_id(scope, send))
        finally:
            if self.log is not None:
                self.log.write(request_id, scope.get("client"), scope["method"], scope["path"],
                               scope.get("response_status", 500), time.perf_counter() - start)

    def _hot(self, scope):
        """Return the inference endpoint for this request (path params set), or None.

        The answer for a (root path, path, method) is kept: clients repeat a handful of paths.
        At most :data:`HOT_CACHE_SIZE` are kept, so no client can grow the table without bound.
        """
        key = (scope.get("root_path"), scope["path"], scope["method"])
        found = self._hot_cache.get(key, False)
        if found is False:
            found = self._hot_match(*key)
            if len(self._hot_cache) >= HOT_CACHE_SIZE:
                self._hot_cache.clear()
            self._hot_cache[key] = found
        if found is None:
            return None
        scope["path_params"] = dict(found[1])
        return found[0]

    def _hot_match(self, root: str | None, path: str, method: str):
        if root and path.startswith(root):  # as the router sees it, behind a path prefix
            path = path[len(root):]
        for regex, methods, endpoint in self.hot_routes:
            match = regex.match(path)
            if match is not None and method in methods:
                return endpoint, match.groupdict()
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


def _with_id(scope, send):
    """Wrap ``send``: the answer's head gets ``X-Request-Id``, and its status goes in ``scope``."""

    async def send_with_id(message) -> None:
        if message["type"] == "http.response.start":
            scope["response_status"] = message["status"]
            message["headers"] = [*message.get("headers", ()),
                                  (b"x-request-id", scope["request_id"])]
        await send(message)

    return send_with_id
