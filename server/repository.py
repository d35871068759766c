"""Read a Triton-layout model repository: one ONNX Runtime session per version, loaded once.

The format (names, versions, ``model.sha256``, ``aliases.json``, ``routing.json``) is read by
:mod:`server.layout`; this module turns it into sessions and routes. Feature and class names
come from the ONNX file's ``metadata_props``; input and output names, types and shapes from the
session.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from server import layout
from server.errors import ApiError, shorten
from server.layout import NAME, FormatError

#: The repository cannot be served: the message names the file and the fix.
RepositoryError = FormatError

# ONNX tensor element types as Open Inference Protocol datatypes and numpy dtypes: the integer
# types share their names (ONNX ``int8`` is V2 ``INT8`` is numpy ``int8``), the others do not.
DATATYPES: dict[str, tuple[str, np.dtype]] = {
    "tensor(float)": ("FP32", np.dtype(np.float32)),
    "tensor(double)": ("FP64", np.dtype(np.float64)),
    "tensor(float16)": ("FP16", np.dtype(np.float16)),
    "tensor(bool)": ("BOOL", np.dtype(np.bool_)),
    "tensor(string)": ("BYTES", np.dtype(object)),
    **{f"tensor({kind}{bits})": (f"{kind}{bits}".upper(), np.dtype(f"{kind}{bits}"))
       for kind in ("int", "uint") for bits in (8, 16, 32, 64)},
}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model: name, V2 datatype, shape (-1 = any) and numpy dtype."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    dtype: np.dtype
    column: bool = field(init=False)  # shape [-1, 1]: one value per row
    where: str = field(init=False)  # how error messages name it

    def __post_init__(self) -> None:
        object.__setattr__(self, "column", self.shape == (-1, 1))
        object.__setattr__(self, "where", f"input '{self.name}'")

    def metadata(self) -> dict:
        """Return the V2 metadata entry ``{"name", "datatype", "shape"}``."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Feature:
    """One column of a tabular model: its name and kind (``numeric`` or ``categorical``)."""

    name: str
    kind: str


@dataclass
class ModelVersion:
    """One loaded version of a model: its session, tensors, features and classes."""

    name: str
    version: int
    path: Path
    session: ort.InferenceSession
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    features: list[Feature]
    classes: list[str]
    sha256: str
    input_specs: dict[str, TensorSpec] = field(init=False)
    output_names: list[str] = field(init=False)
    tabular: bool = field(init=False)
    headers: list[tuple[bytes, bytes]] = field(init=False)  # X-Model-Name, X-Model-Version
    label_index: int | None = field(init=False)  # the position of output 'label', if any

    def __post_init__(self) -> None:
        self.headers = [(b"x-model-name", self.name.encode()),
                        (b"x-model-version", str(self.version).encode())]
        self.input_specs = {spec.name: spec for spec in self.inputs}
        self.output_names = [spec.name for spec in self.outputs]
        self.label_index = self.output_names.index("label") if "label" in self.output_names \
            else None
        # Tabular: one [-1, 1] input per feature, so CSV and records can feed it column by column.
        self.tabular = bool(self.features) and all(
            f.name in self.input_specs and len(self.input_specs[f.name].shape) == 2
            and self.input_specs[f.name].shape[1] == 1 for f in self.features
        ) and len(self.features) == len(self.inputs)

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run the session on ``feed`` (input name → array) and return every output."""
        return self.session.run(self.output_names, feed)


@dataclass
class Route:
    """A variant of ``routing.json`` resolved to a loaded version, with its response headers."""

    name: str
    version: ModelVersion
    weight: float
    shadow: ModelVersion | None = None  # the model's shadow, scored after the answer
    shadow_share: float = 0.0  # 0 to 1
    headers: list[tuple[bytes, bytes]] = field(init=False)

    def __post_init__(self) -> None:
        self.headers = [*self.version.headers,
                        (b"x-amzn-invoked-production-variant", self.name.encode())]


@dataclass
class Model:
    """A named model: its loaded versions, aliases (``production``, ``candidate``...) and routing.

    ``stamp`` is the folder's :func:`server.layout.fingerprint` when it was read, so model
    control ``poll`` can tell whether it changed since.
    """

    name: str
    versions: dict[int, ModelVersion]
    aliases: dict[str, int]
    routing: layout.Routing | None = None
    stamp: tuple = ()
    routes: list[Route] = field(init=False)
    shadow: ModelVersion | None = field(init=False)
    shadow_share: float = field(init=False)  # 0 to 1
    _bounds: list[float] = field(init=False)  # cumulative shares, for picking a variant

    def __post_init__(self) -> None:
        self.routes, self.shadow, self.shadow_share, self._bounds = [], None, 0.0, []
        if self.routing is None:
            return
        if self.routing.shadow is not None:
            self.shadow = self.versions[layout.resolve(self.routing.shadow.version, self.aliases)]
            self.shadow_share = self.routing.shadow.percent / 100
        for variant in self.routing.variants:
            number = layout.resolve(variant.version, self.aliases)
            self.routes.append(Route(variant.name, self.versions[number], variant.weight,
                                     self.shadow, self.shadow_share))
        total, running = sum(r.weight for r in self.routes), 0.0
        for route in self.routes:
            running += route.weight / total
            self._bounds.append(running)

    def default_version(self) -> int:
        """Return the version served when none is named: ``production`` if set, else the latest."""
        return self.aliases.get("production") or max(self.versions)

    def route(self, target: bytes | None = None) -> tuple[ModelVersion, list, Route | None]:
        """Pick the version for a request without one: a variant by share, or the default.

        Parameters
        ----------
        target : bytes, optional
            The ``X-Amzn-SageMaker-Target-Variant`` header: forces that variant.

        Returns
        -------
        (ModelVersion, headers, Route or None)
            The version, the response headers naming it (and its variant), and the variant
            (None when the model has no ``routing.json``).

        Raises
        ------
        ApiError
            400 when ``target`` names no variant, listing those there are.
        """
        routes = self.routes
        if target is not None:
            text = target.decode("latin-1")
            for route in routes:
                if route.name == text:
                    return route.version, route.headers, route
            if not routes and text == layout.ALL_TRAFFIC:
                found = self.versions[self.default_version()]
                return found, found.headers, None
            names = [r.name for r in routes] or [layout.ALL_TRAFFIC]
            raise ApiError(400, f"X-Amzn-SageMaker-Target-Variant {shorten(text)} is not a "
                                f"variant of model '{self.name}'; variants: {names}. Send one "
                                f"of those, or leave the header out to be routed by weight.")
        if not routes:
            found = self.versions[self.default_version()]
            return found, found.headers, None
        if len(routes) == 1:
            route = routes[0]
        else:
            draw = random.random()
            route = routes[-1]
            for candidate, bound in zip(routes, self._bounds, strict=True):
                if draw < bound:
                    route = candidate
                    break
        return route.version, route.headers, route

    def resolve(self, version: str | None) -> ModelVersion:
        """Return the version named by an integer, an alias or ``None`` (the default).

        Raises
        ------
        ApiError
            404 naming the versions and aliases that exist.
        """
        if version is None or version == "":
            return self.versions[self.default_version()]
        if layout.is_version(version):
            number = int(version)
        elif version in self.aliases:
            number = self.aliases[version]
        else:
            raise ApiError(404, f"Model '{self.name}' has no version or alias "
                                f"{shorten(version)}; {self.describe()}. Use one of those in "
                                f"the path.")
        found = self.versions.get(number)
        if found is None:
            raise ApiError(404, f"Model '{self.name}' has no version {version}; "
                                f"{self.describe()}. Use one of those in the path.")
        return found

    def describe(self) -> str:
        """Describe the available versions and aliases, for error messages."""
        aliases = ", ".join(f"{k} -> {v}" for k, v in sorted(self.aliases.items()))
        return f"versions {sorted(self.versions)}, aliases {{{aliases}}}"


class Repository:
    """The models served, read from a repository folder once.

    Parameters
    ----------
    root : path
        The repository root, holding one folder per model.
    intra_op_num_threads : int
        Threads ONNX Runtime uses inside one call. 1 is fastest for small tabular models
        when the server handles many requests at once (benchmarks/bench.py measures it).
    """

    def __init__(self, root: str | os.PathLike, intra_op_num_threads: int = 1):
        self.root = Path(root)
        self.intra_op_num_threads = intra_op_num_threads
        self.models: dict[str, Model] = {}

    def load(self) -> Repository:
        """Load every model and version under ``root``; return self.

        Raises
        ------
        RepositoryError
            If the folder is missing, holds no model, or a file is unreadable or altered.
        """
        if not self.root.is_dir():
            raise RepositoryError(
                f"Model repository {str(self.root)!r} is not a folder. Pass the folder that holds "
                f"<model>/<version>/model.onnx, e.g. --model-repository build/models.")
        models = {}
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and NAME.fullmatch(folder.name):
                model = self.load_model(folder.name)
                if model is not None:
                    models[model.name] = model
        if not models:
            raise RepositoryError(
                f"No model in repository {str(self.root)!r}: expected "
                f"<model>/<version>/model.onnx under it. Register one (mlprod.registry) or "
                f"point --model-repository at the repository root.")
        self.models = models
        return self

    def load_model(self, name: str, previous: Model | None = None) -> Model | None:
        """Read model ``name``'s folder; return None if it has no version folder.

        Versions whose bytes are unchanged since ``previous`` keep their session (no reload).

        Raises
        ------
        RepositoryError
            If a file breaks the format (:mod:`server.layout`), or ONNX Runtime refuses a model.
        """
        folder = self.root / name
        try:
            stamp = layout.fingerprint(folder)
            numbers = layout.version_folders(folder)
            if not numbers:
                return None
            aliases = layout.read_aliases(folder, numbers)
            routing = layout.read_routing(folder, numbers, aliases)
            versions = {}
            for number in numbers:
                data, digest = layout.read_verified(folder / str(number))
                kept = previous.versions.get(number) if previous is not None else None
                versions[number] = (kept if kept is not None and kept.sha256 == digest
                                    else self._load_version(name, number, folder / str(number),
                                                            data, digest))
        except OSError as exc:
            raise RepositoryError(f"Cannot read {exc.filename or folder}: {exc.strerror or exc}. "
                                  f"Make the model's folder and files readable by the "
                                  f"server.") from exc
        return Model(name, versions, aliases, routing, stamp)

    def get(self, name: str) -> Model:
        """Return model ``name``, or raise a 404 ApiError listing the models served."""
        model = self.models.get(name)
        if model is None:
            if not self.models:
                folder = name if NAME.fullmatch(name) else "<name>"
                raise ApiError(404, f"No model {shorten(name)} in this server, which holds none "
                                    f"now. Load it with POST /v2/repository/models/{folder}/load.")
            raise ApiError(404, f"No model {shorten(name)} in this server; available: "
                                f"{sorted(self.models)}. Use one of those names.")
        return model

    def _load_version(self, name: str, version: int, folder: Path, content: bytes,
                      digest: str) -> ModelVersion:
        path = folder / "model.onnx"
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_num_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise RepositoryError(f"ONNX Runtime cannot load {path}: {exc}. "
                                  f"Export the model again with mlprod.export.to_onnx.") from exc
        meta = session.get_modelmeta().custom_metadata_map
        inputs = [_spec(arg, path) for arg in session.get_inputs()]
        outputs = [_spec(arg, path) for arg in session.get_outputs()]
        features = _read_features(meta, inputs, path)
        classes = _read_json(meta, "classes", path) or []
        loaded = ModelVersion(name, version, path, session, inputs, outputs, features,
                              [str(c) for c in classes], digest)
        if loaded.tabular:
            try:
                _warm_up(loaded)
            except Exception as exc:  # onnxruntime raises several unrelated types
                raise RepositoryError(f"ONNX Runtime cannot run {path} on a row of missing "
                                      f"values: {exc}. Export the model again with "
                                      f"mlprod.export.to_onnx.") from exc
        return loaded


def _spec(arg, path: Path) -> TensorSpec:
    if arg.type not in DATATYPES:
        raise RepositoryError(f"{path}: tensor '{arg.name}' has type {arg.type}, which this "
                              f"server does not serve; supported: {sorted(DATATYPES)}.")
    datatype, dtype = DATATYPES[arg.type]
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape)
    return TensorSpec(arg.name, datatype, shape, dtype)


def _read_json(meta: dict[str, str], key: str, path: Path):
    if key not in meta:
        return None
    try:
        return json.loads(meta[key])
    except ValueError as exc:
        raise RepositoryError(f"{path}: metadata_props[{key!r}] is not JSON ({exc}). "
                              f"Export the model again with mlprod.export.to_onnx.") from exc


def _read_features(meta: dict[str, str], inputs: list[TensorSpec], path: Path) -> list[Feature]:
    declared = _read_json(meta, "features", path)
    if declared is None:  # not written by mlprod: derive the columns from the inputs
        return [Feature(s.name, "categorical" if s.datatype == "BYTES" else "numeric")
                for s in inputs]
    try:
        return [Feature(str(f["name"]), str(f["kind"])) for f in declared]
    except (TypeError, KeyError) as exc:
        raise RepositoryError(f"{path}: metadata_props['features'] must be a list of "
                              f"{{'name', 'kind'}}; got {declared!r:.200}.") from exc


def _warm_up(model: ModelVersion) -> None:
    """Run one all-missing row, so the first request does not pay ONNX Runtime's first-call cost."""
    feed = {
        spec.name: np.full((1, 1), "" if spec.datatype == "BYTES" else np.nan, dtype=spec.dtype)
        for spec in model.inputs
    }
    model.run(feed)
