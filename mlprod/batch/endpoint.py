"""The endpoint back end: ``POST /invocations`` with CSV, requests in parallel, retries when busy.

Lines are checked here first, so a bad line never reaches the server and never fails its
neighbours' request. Each request carries a header line (the server then cannot mistake a first
row for one) and asks for ``Accept: text/csv; header=present``, so the answer starts with the
header line on every server version; :func:`~mlprod.batch.answers.read_csv_answers` drops it and
the answers are rewritten by the one writer, byte for byte as in-process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import orjson

from mlprod.batch.answers import Answers, Rendered, read_csv_answers, render
from mlprod.batch.inprocess import ordered_map
from mlprod.batch.lines import Chunk, parse
from mlprod.batch.scoring import BatchError, calls

#: Answers that mean "busy, try again": retried with backoff, like connection errors.
RETRY_STATUSES = frozenset({502, 503, 504})
STRATEGIES = ("MultiRecord", "SingleRecord")


class Endpoint:
    """Score chunks through a server's ``/invocations`` (SageMaker's container contract).

    Parameters
    ----------
    url : str
        The server's base URL, e.g. ``http://127.0.0.1:8000``.
    model, version : str, optional
        The model (and version or alias) to call, sent as ``X-Amzn-SageMaker-Target-Model``;
        default: the only model the server holds.
    batch_strategy : {"MultiRecord", "SingleRecord"}
        Many lines per request (up to the payload limit and
        :data:`~mlprod.batch.scoring.ROWS_PER_CALL` rows, the size the other back ends score
        in one call, so the server's answers are the same bytes), or one.
    concurrency : int, optional
        Requests in flight; default the server's ``MaxConcurrentTransforms``, at most one per
        core of this machine (and 8).
    retries : int
        Retries of a request answered 502/503/504 or failing to connect; never after a 4xx.
    backoff : float
        First wait in seconds, doubled at each retry (a ``Retry-After`` header wins).
    timeout : float
        Seconds to wait for an answer.
    token : str, optional
        Bearer token; default ``MODEL_SERVER_TOKEN`` from the environment.
    """

    def __init__(self, url: str, model: str | None = None, version: str | None = None,
                 batch_strategy: str = "MultiRecord", concurrency: int | None = None,
                 retries: int = 5, backoff: float = 0.1, timeout: float = 60.0,
                 token: str | None = None):
        self.url = url.rstrip("/")
        self.model = model
        self.version = version
        self.batch_strategy = batch_strategy
        self.concurrency = concurrency
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.token = token if token is not None else os.environ.get("MODEL_SERVER_TOKEN")
        self.description = f"endpoint {self.url}"
        self.features: list[dict[str, str]] = []
        self.classes: list[str] = []
        self._session = None  # a requests.Session, made by open()
        self._headers: dict[str, str] = {}
        self._max_payload: int | None = None
        self._names = b""
        self._closed = threading.Event()

    def open(self) -> Endpoint:
        """Read ``/execution-parameters`` and the model's metadata (features, classes).

        Raises
        ------
        BatchError
            If the endpoint cannot be reached or does not serve the model.
        """
        if self.batch_strategy not in STRATEGIES:
            raise BatchError(f"batch_strategy={self.batch_strategy!r}; use one of {list(STRATEGIES)}.")
        import requests  # here, not at import: in-process and Dask jobs start faster without it
        from requests.adapters import HTTPAdapter

        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=16)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        if self.token:
            session.headers["Authorization"] = f"Bearer {self.token}"
        self._session = session
        params = self._get("/execution-parameters", retries=2)
        if isinstance(params.get("MaxPayloadInMB"), (int, float)) and params["MaxPayloadInMB"] > 0:
            self._max_payload = int(params["MaxPayloadInMB"] * 1_048_576)
        if self.concurrency is None:
            # The server's figure, but no more requests in flight than this machine has cores:
            # on 2 cores, 4 in flight ran slower than 2 (client and server share the CPUs).
            wanted = params.get("MaxConcurrentTransforms")
            wanted = wanted if isinstance(wanted, int) and wanted > 0 else 4
            self.concurrency = max(1, min(wanted, os.cpu_count() or 1, 8))
        if self.model is None:
            models = self._get("/v2/models").get("models", [])
            if len(models) != 1:
                raise BatchError(f"The endpoint {self.url} serves models {models}; name one with "
                                 f"--model.")
            self.model = models[0]
        path = f"/v2/models/{self.model}" + (f"/versions/{self.version}" if self.version else "")
        parameters = self._get(path).get("parameters") or {}
        if not parameters.get("features") or not parameters.get("classes"):
            raise BatchError(f"GET {self.url}{path} names no 'features' and 'classes' in its "
                             f"parameters; the batch job needs them to check lines and write "
                             f"answers. Serve the model with mlprod's server (python -m server).")
        self.features = parameters["features"]
        self._names = b",".join(f["name"].encode() for f in self.features)
        self.classes = [str(c) for c in parameters["classes"]]
        # Pin the version the metadata describes: an unversioned request may be routed between
        # variants (routing.json), and one job must be scored by one model.
        pinned = self.version or parameters.get("version")
        target = self.model + (f"/{pinned}" if pinned else "")
        self._headers = {"X-Amzn-SageMaker-Target-Model": target,
                         "Accept": "text/csv; header=present"}
        self.description = f"endpoint {self.url} ({target})"
        return self

    def chunk_bytes(self, max_payload_bytes: int) -> int:
        """The size of the chunks to read, so that one request fits the smaller payload limit."""
        limit = min(max_payload_bytes, self._max_payload or max_payload_bytes)
        return max(1, limit - len(self._names) - 1)

    def map(self, path: Path, chunks: Iterable[Chunk], json_lines: bool, join_source: bool
            ) -> Iterator[Rendered]:
        """Yield each chunk's answer lines in order, ``concurrency`` requests in flight."""
        workers = max(1, self.concurrency or 1)
        with ThreadPoolExecutor(workers, thread_name_prefix="mlprod-batch") as pool:
            def submit(chunk: Chunk):
                return pool.submit(self._process, chunk, json_lines, join_source)

            yield from ordered_map(submit, chunks, 2 * workers)

    def close(self) -> None:
        """Close the connections."""
        self._closed.set()
        if self._session is not None:
            self._session.close()

    # --- one chunk -----------------------------------------------------------------------
    def _process(self, chunk: Chunk, json_lines: bool, join_source: bool) -> Rendered:
        rows = parse(chunk, self.features, json_lines)
        good = rows.good.tolist()
        if json_lines:  # each record as JSON; a request sends a list of them
            items = [orjson.dumps(r) for r in rows.records or []]
            content_type = "application/json"
        else:  # the good lines as they are, under a header line
            lines = chunk.lines()
            items = [lines[i] for i in good]
            content_type = "text/csv"
        single = self.batch_strategy == "SingleRecord"
        labels = [np.empty(0, dtype=object)]
        probabilities = [np.empty((0, len(self.classes)), dtype=np.float32)]
        for start, stop in calls(len(items), single):
            group = items[start:stop]
            if len(group) == 1 and not single:  # as in-process: a lone row beside a copy of itself
                group = group * 2
            if json_lines:
                body = b"[" + b",".join(group) + b"]"
            else:
                body = b"\n".join([self._names, *group, b""])
            where = f"lines {chunk.first_line + good[start]}-{chunk.first_line + good[stop - 1]}"
            answer = self._post(body, content_type, where)
            try:
                got = read_csv_answers(answer, self.classes, len(group))
            except ValueError as exc:
                raise BatchError(f"POST {self.url}/invocations ({where}): {exc}") from None
            labels.append(got[0][:stop - start])
            probabilities.append(got[1][:stop - start])
        answers = Answers(rows.first_line, rows.n_lines, rows.good, np.concatenate(labels),
                          np.concatenate(probabilities), rows.errors, len(chunk.data))
        return render(answers, chunk, join_source)

    # --- HTTP ------------------------------------------------------------------------------
    def _get(self, path: str, retries: int | None = None) -> dict:
        return orjson.loads(self._request("GET", path, None, {}, path, retries))

    def _post(self, body: bytes, content_type: str, where: str) -> bytes:
        headers = {**self._headers, "Content-Type": content_type}
        return self._request("POST", "/invocations", body, headers, where, None)

    def _request(self, method: str, path: str, body: bytes | None, headers: dict, where: str,
                 retries: int | None) -> bytes:
        import requests

        retries = self.retries if retries is None else retries
        url = self.url + path
        problem = ""
        for attempt in range(retries + 1):
            wait = self.backoff * 2 ** attempt
            try:
                response = self._session.request(method, url, data=body, headers=headers,
                                                 timeout=self.timeout)
            except requests.RequestException as exc:
                problem = _connection_problem(exc)
            else:
                if response.status_code == 200:
                    return response.content
                problem = f"{response.status_code} {_error_text(response)}"
                if response.status_code not in RETRY_STATUSES:
                    raise BatchError(f"{method} {url} ({where}) answered {problem}. Not retried: a "
                                     f"{response.status_code} means the request is wrong, not "
                                     f"that the server is busy.")
                after = response.headers.get("Retry-After", "")
                wait = min(float(after), 10.0) if after.isdigit() else wait
            if attempt < retries and self._closed.wait(wait):
                break
        raise BatchError(f"{method} {url} ({where}) failed {retries + 1} times; last: {problem}. "
                         f"Is the server running at {self.url}? Start it with python -m server "
                         f"--model-repository <repo> (or mlprod.serving.LocalServer).")


def _connection_problem(exc: Exception) -> str:
    import requests

    if isinstance(exc, requests.Timeout):
        return f"no answer in time ({type(exc).__name__})"
    text = str(exc)
    for known in ("Connection refused", "Name or service not known", "No route to host",
                  "Connection reset"):
        if known in text:
            return known.lower()
    return f"{type(exc).__name__}: {text[:200]}"


def _error_text(response) -> str:
    try:
        return str(orjson.loads(response.content).get("error", ""))[:300] or response.reason
    except (orjson.JSONDecodeError, AttributeError):
        return response.text[:300] or (response.reason or "")
