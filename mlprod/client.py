"""Call an inference endpoint over HTTP: the Open Inference Protocol (V2) and SageMaker's contract.

The application side of user → application → endpoint: :class:`Client` formats a request from a
DataFrame, sends it with :mod:`requests` and translates the answer back into a DataFrame. Every call
keeps the exact request and response it exchanged (:attr:`Client.last`, an :class:`Exchange`), so a
lesson can print what travelled over the wire. Only the protocols are assumed, so the same code
calls KServe, Triton or a SageMaker-style container.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from mlprod.exchange import VOLATILE_HEADERS, Exchange

__all__ = ["KIND_DATATYPES", "NUMERIC_DATATYPES", "VOLATILE_HEADERS", "Client", "Exchange",
           "ServerError", "classes_of", "decode_v2", "encode_v2"]

#: V2 datatypes sent as JSON numbers; everything else but BYTES and BOOL is refused before sending.
NUMERIC_DATATYPES = frozenset({"FP16", "FP32", "FP64", "BF16", "INT8", "INT16", "INT32", "INT64",
                               "UINT8", "UINT16", "UINT32", "UINT64"})
#: The V2 datatype of each kind of the kit's features (``data.schema()``, model metadata).
KIND_DATATYPES = {"numeric": "FP32", "categorical": "BYTES"}


class ServerError(Exception):
    """An error answer from the server: its HTTP status and the text of its ``{"error": ...}`` body.

    Attributes
    ----------
    status : int
        The HTTP status code, e.g. 404.
    error : str
        The server's explanation (the ``error`` field of a JSON body, else the body's text).
    exchange : Exchange
        The request and response, for inspection.
    """

    def __init__(self, status: int, error: str, exchange: Exchange):
        self.status = status
        self.error = error
        self.exchange = exchange
        super().__init__(
            f"{status} {exchange.reason} from {exchange.method} {exchange.path}: {error}"
        )


def _retrying_session(retries: int) -> requests.Session:
    """Return a session that reuses connections and retries GET/HEAD on connection failures.

    Connection and read failures of idempotent calls are retried with a short back-off; a POST
    is never retried once sent (it could run twice), and error statuses are answers, not retried.
    """
    retry = Retry(total=retries, connect=retries, read=retries, status=0, other=0,
                  allowed_methods=frozenset({"GET", "HEAD"}), backoff_factor=0.05,
                  raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _segment(value: Any) -> str:
    return quote(str(value), safe="")


def _model_path(model: str, version: int | str | None) -> str:
    path = f"/v2/models/{_segment(model)}"
    return path if version is None else f"{path}/versions/{_segment(version)}"


def _frame(data: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Accept a DataFrame, one record (dict) or a list of records; return a DataFrame."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        return pd.DataFrame([data])
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return pd.DataFrame(list(data))
    raise TypeError(
        f"Cannot predict on a {type(data).__name__}: pass a DataFrame, a dict (one row) "
        "or a list of dicts (one per row)."
    )


def _numbers(column: pd.Series, name: str, datatype: str) -> list:
    """Return a column as JSON numbers, ``None`` (JSON null) where missing."""
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna() & (column.astype(str).str.strip() != "")
    if bad.any():
        row = bad.idxmax()
        raise ValueError(
            f"Input {name!r} is {datatype}, but row {row!r} holds {column[row]!r}. "
            "Pass a number, or leave it empty (NaN/None) for a missing value."
        )
    array = values.to_numpy(dtype="float64")
    if datatype.startswith(("INT", "UINT")):
        return [None if math.isnan(v) else int(v) for v in array]
    return [None if math.isnan(v) else v for v in array.tolist()]


def _strings(column: pd.Series) -> list[str]:
    """Return a column as strings, ``""`` where missing."""
    return ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            for v in column.tolist()]


def encode_v2(frame: pd.DataFrame, inputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Build a V2 inference request body: one input tensor ``[n, 1]`` per model input.

    Parameters
    ----------
    frame : DataFrame of shape (n, ≥ len(inputs))
        One column per model input, named as the input; other columns are ignored.
    inputs : list of dict
        The ``inputs`` of the model's V2 metadata (``name``, ``datatype``, ``shape``), or the
        kit's feature schema (``name``, ``kind``: ``numeric`` is sent as FP32, ``categorical``
        as BYTES), e.g. ``mlprod.data.schema()``.

    Returns
    -------
    body : dict
        ``{"inputs": [{"name", "shape", "datatype", "data"}, ...]}``, numbers as JSON numbers
        (``null`` where missing), strings as JSON strings (``""`` where missing).

    Raises
    ------
    ValueError
        If a column is missing or a numeric input holds a value that is not a number.
    """
    names = [spec["name"] for spec in inputs]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ValueError(
            f"Columns {missing} are missing; the model needs {names}. "
            f"Got {list(frame.columns)}: rename or add the columns."
        )
    tensors = []
    for spec in inputs:
        name = spec["name"]
        datatype = spec["datatype"] if "datatype" in spec else KIND_DATATYPES[spec["kind"]]
        column = frame[name]
        if datatype in NUMERIC_DATATYPES:
            data = _numbers(column, name, datatype)
        elif datatype == "BOOL":
            data = [bool(v) for v in column.tolist()]
        elif datatype == "BYTES":
            data = _strings(column)
        else:
            raise ValueError(f"Input {name!r} has datatype {datatype!r}, which this client "
                             f"cannot send as JSON; supported: BYTES, BOOL, {sorted(NUMERIC_DATATYPES)}.")
        tensors.append({"name": name, "shape": [len(frame), 1], "datatype": datatype,
                        "data": data})
    return {"inputs": tensors}


def decode_v2(body: Mapping[str, Any], classes: Sequence[str] | None = None,
              index: pd.Index | None = None) -> pd.DataFrame:
    """Turn a V2 inference response into a DataFrame, one row per input row.

    An output of shape ``[n]`` becomes one column named as the output; ``probabilities`` of shape
    ``[n, C]`` becomes one column per class (``classes`` in order), any other ``[n, k]`` output
    ``<name>_0`` … ``<name>_{k-1}``.
    """
    columns: dict[str, Any] = {}
    for output in body["outputs"]:
        name, shape = output["name"], output["shape"]
        values = np.asarray(output["data"], dtype=object if output["datatype"] == "BYTES"
                            else None).reshape(shape)
        if values.ndim == 1:
            columns[name] = values
            continue
        values = values.reshape(shape[0], -1)
        if name == "probabilities" and classes is not None:
            if len(classes) != values.shape[1]:
                raise ValueError(
                    f"classes has {len(classes)} names ({list(classes)}) but the model returns "
                    f"{values.shape[1]} probabilities per row. Pass one name per class, in the "
                    "model's order."
                )
            labels = list(classes)
        else:
            labels = [f"{name}_{j}" for j in range(values.shape[1])]
        columns |= {label: values[:, j] for j, label in enumerate(labels)}
    frame = pd.DataFrame(columns)
    if index is not None and len(index) == len(frame):
        frame.index = index
    return frame


def classes_of(metadata: Mapping[str, Any]) -> list[str] | None:
    """Return the class names a model's V2 metadata declares, or None when it declares none."""
    for where in (metadata, *metadata.get("outputs", ())):
        params = where.get("parameters") or {}
        if "classes" in params:
            value = params["classes"]
            return json.loads(value) if isinstance(value, str) else list(value)
    return None


class Client:
    """Call a model server over HTTP with :mod:`requests`: V2 routes and SageMaker ``/invocations``.

    Parameters
    ----------
    base_url : str
        Where the server answers, e.g. ``"http://127.0.0.1:8000"``.
    session : requests.Session, optional
        Used as given (its adapters, retries, proxies). By default a session that reuses
        connections and retries GET/HEAD calls on connection failures.
    timeout : float
        Seconds to wait for the connection and for the answer.
    token : str, optional
        Sent as ``Authorization: Bearer <token>`` on every call.
    retries : int
        Retries of a failed GET/HEAD connection, for the default session.

    Attributes
    ----------
    last : Exchange or None
        The request and response of the latest call.
    """

    def __init__(self, base_url: str, session: requests.Session | None = None,
                 timeout: float = 10.0, token: str | None = None, retries: int = 3):
        self.base_url = base_url.rstrip("/")
        self.session = session if session is not None else _retrying_session(retries)
        self.timeout = timeout
        self.token = token
        self.last: Exchange | None = None
        self._inputs: dict[tuple[str, str], list] = {}
        self._classes: dict[tuple[str, str], list[str] | None] = {}

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def send(self, method: str, path: str, *, body: bytes | str | None = None,
             headers: Mapping[str, str] | None = None, check: bool = True) -> requests.Response:
        """Send one request to ``base_url + path``; record it in :attr:`last`.

        Parameters
        ----------
        method : str
            ``"GET"``, ``"POST"``, …
        path : str
            Starting with ``/``, e.g. ``"/v2/health/ready"``.
        body : bytes or str, optional
            The message body, sent as is (set ``Content-Type`` in ``headers``).
        headers : dict, optional
            Extra request headers.
        check : bool
            Raise :class:`ServerError` on a status of 400 or more; with False, return it.

        Raises
        ------
        ServerError
            If ``check`` and the server answered an error status.
        ConnectionError
            If no server answers at ``base_url``.
        TimeoutError
            If the answer takes longer than ``timeout``.
        """
        if not path.startswith("/"):
            raise ValueError(f"path={path!r} must start with '/', e.g. '/v2/health/ready'.")
        sent = dict(headers or {})
        if self.token is not None:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        if isinstance(body, str):
            body = body.encode("utf-8")
        try:
            response = self.session.request(method, self.base_url + path, data=body,
                                            headers=sent, timeout=self.timeout)
        except requests.Timeout as exc:
            raise TimeoutError(
                f"No answer to {method} {self.base_url}{path} within {self.timeout} s. "
                "Raise Client(timeout=...) for slow calls, or check the server's log."
            ) from exc
        except requests.ConnectionError as exc:
            raise ConnectionError(
                f"No server answers {method} {self.base_url}{path} ({exc.__class__.__name__}). "
                "Start one (mlprod.serving.LocalServer) or check the address and port."
            ) from exc
        self.last = Exchange.from_response(response)
        if check and response.status_code >= 400:
            raise ServerError(response.status_code, _error_text(response), self.last)
        return response

    def _json(self, method: str, path: str, payload: Any = None, **kw: Any) -> Any:
        body = None
        headers = {"Accept": "application/json"}
        if payload is not None:
            body = json.dumps(payload, separators=(",", ":"), allow_nan=False)
            headers["Content-Type"] = "application/json"
        return self.send(method, path, body=body, headers=headers, **kw).json()

    def health(self) -> bool:
        """Return True when the server is ready to serve (``GET /v2/health/ready`` answers 200).

        A server that answers 503 or does not answer at all is not ready: False.
        """
        try:
            response = self.send("GET", "/v2/health/ready", check=False)
        except (ConnectionError, TimeoutError):
            return False
        if response.status_code in (200, 503):
            return response.status_code == 200
        raise ServerError(response.status_code, _error_text(response), self.last)

    def server_metadata(self) -> dict:
        """Return the server's name, version and protocol extensions (``GET /v2``)."""
        return self._json("GET", "/v2")

    def models(self) -> list[str]:
        """Return the names of the models the server holds (``GET /v2/models``)."""
        answer = self._json("GET", "/v2/models")
        models = answer.get("models", answer) if isinstance(answer, dict) else answer
        return [m["name"] if isinstance(m, dict) else str(m) for m in models]

    def metadata(self, model: str, version: int | str | None = None) -> dict:
        """Return a model's V2 metadata: its name, versions, platform, inputs and outputs.

        Parameters
        ----------
        model : str
            The model's name, e.g. ``"penguins"``.
        version : int or str, optional
            A version number or an alias (``"production"``); default: what the server serves
            when none is named.
        """
        return self._json("GET", _model_path(model, version))

    def ready(self, model: str, version: int | str | None = None) -> bool:
        """Return True when the model (version) is ready (``GET .../ready`` answers 200)."""
        response = self.send("GET", _model_path(model, version) + "/ready", check=False)
        if response.status_code in (200, 503):
            return response.status_code == 200
        raise ServerError(response.status_code, _error_text(response), self.last)

    def infer_body(self, data: pd.DataFrame | Mapping | Sequence[Mapping], model: str,
                   version: int | str | None = None) -> dict:
        """Return the V2 request body that :meth:`predict` sends for ``data``.

        The model's inputs come from its metadata, fetched on the first call and kept.
        """
        asked = (model, "" if version is None else str(version))
        if asked not in self._inputs:
            self._inputs[asked] = self.metadata(model, version)["inputs"]
        return encode_v2(_frame(data), self._inputs[asked])

    def classes(self, model: str, version: int | str | None = None) -> list[str] | None:
        """Return the class names of one model version, from its metadata, fetched once.

        Kept per ``(model, version)``: a version's file never changes. :meth:`predict` asks for
        the version the server says it used, so a moved alias never mislabels columns.
        """
        key = (model, "" if version is None else str(version))
        if key not in self._classes:
            self._classes[key] = classes_of(self.metadata(model, version))
        return self._classes[key]

    def predict(self, data: pd.DataFrame | Mapping | Sequence[Mapping], model: str,
                version: int | str | None = None, classes: Sequence[str] | None = None
                ) -> pd.DataFrame:
        """Predict over V2: send the rows, return their labels and class probabilities.

        Parameters
        ----------
        data : DataFrame, dict or list of dict
            One column (key) per model input. Missing values: NaN or None (numeric),
            ``""`` or None (categorical).
        model : str
            The model's name.
        version : int or str, optional
            A version number or an alias; default: the server's choice (``production``).
        classes : list of str, optional
            Names of the probability columns, in the model's class order. Default: the classes
            the model's metadata declares, else ``probabilities_0``, ``probabilities_1``, …

        Returns
        -------
        predictions : DataFrame of shape (n, 1 + C)
            ``label`` and one probability column per class, indexed like ``data``.

        Raises
        ------
        ValueError
            If a column is missing or holds a value of the wrong type (checked before sending).
        ServerError
            If the server refuses the request, with its status and explanation.
        """
        frame = _frame(data)
        payload = self.infer_body(frame, model, version)
        answer = self._json("POST", _model_path(model, version) + "/infer", payload)
        if classes is None:
            exchange = self.last
            served = answer.get("model_version")
            classes = self.classes(model, served if served else version)
            self.last = exchange  # the inference, not the metadata look-up, is what to show
        return decode_v2(answer, classes, frame.index)

    def invocations(self, body: bytes | str | Mapping | Sequence,
                    content_type: str = "application/json", accept: str = "application/json",
                    model: str | None = None, headers: Mapping[str, str] | None = None
                    ) -> requests.Response:
        """Call the SageMaker route ``POST /invocations`` and return the raw response.

        Parameters
        ----------
        body : bytes, str, dict or list
            The message body; a dict or list is sent as JSON.
        content_type : str
            ``"application/json"`` or ``"text/csv"``: what the body is.
        accept : str
            ``"application/json"`` or ``"text/csv"``: what the answer should be.
        model : str, optional
            Sent as ``X-Amzn-SageMaker-Target-Model`` when the server holds several models.
        headers : dict, optional
            Extra headers, e.g. ``{"X-Amzn-SageMaker-Custom-Attributes": "..."}``.

        Raises
        ------
        ServerError
            If the server refuses the request, with its status and explanation.
        """
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body, separators=(",", ":"), allow_nan=False)
        sent = {"Content-Type": content_type, "Accept": accept, **(headers or {})}
        if model is not None:
            sent["X-Amzn-SageMaker-Target-Model"] = model
        return self.send("POST", "/invocations", body=body, headers=sent)

    def load(self, model: str) -> dict:
        """Make the server re-read a model's folder now (versions, aliases, routing); its answer.

        ``POST /v2/repository/models/{model}/load``: under model control ``explicit`` or
        ``poll``; a folder that cannot be served is a :class:`ServerError` (400) naming the
        file and the field, and the server keeps serving what it served before.
        """
        return self._json("POST", f"/v2/repository/models/{_segment(model)}/load")

    def ping(self) -> bool:
        """Return True when ``GET /ping`` (the SageMaker health check) answers 200."""
        try:
            return self.send("GET", "/ping", check=False).status_code == 200
        except (ConnectionError, TimeoutError):
            return False


def _error_text(response: requests.Response) -> str:
    """Return the ``error`` of a JSON error body, else the body's text (or the reason)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason or ""
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return response.text.strip()
