"""Convert a fitted pipeline to ONNX, with its metadata inside the file and parity checked.

Path 3 of the three paths to deployment: automatic conversion to a portable format. skl2onnx walks
the fitted pipeline and writes an equivalent graph of ONNX operators; any ONNX runtime (ONNX Runtime
in Python, C++, Java, C#, JavaScript; Triton; KServe) can then score it without scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime
from typing import Any

import numpy as np
import onnx
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.utils.validation import check_is_fitted

from mlprod.export.parity import check_parity
from mlprod.registry import read_metadata

__all__ = ["ONNXModel", "to_onnx", "convert", "onnx_inputs", "onnx_predict", "metadata", "feature_schema",
           "session"]

#: The keys every exported model carries in ``metadata_props``, each value a JSON string.
METADATA_KEYS = ("features", "target", "classes", "metrics", "training_data_sha256",
                 "libraries", "created")


def feature_schema(X: pd.DataFrame) -> list[dict[str, str]]:
    """Return ``[{"name", "kind"}]`` for the columns of ``X``: numeric dtypes, else categorical."""
    return [
        {"name": str(c), "kind": "numeric" if pd.api.types.is_numeric_dtype(X[c]) else "categorical"}
        for c in X.columns
    ]


def onnx_inputs(X: pd.DataFrame, features: list[dict[str, str]] | None = None) -> dict[str, np.ndarray]:
    """Build the ONNX feed: one ``[N, 1]`` array per column, float32 numeric, str categorical.

    Parameters
    ----------
    X : DataFrame of shape (n_rows, n_features)
        Missing numerics are NaN; a missing categorical is ``""`` (``None``/NaN become ``""``).
    features : list of dict, optional
        The model's ``features`` metadata; defaults to :func:`feature_schema` of ``X``.
    """
    features = feature_schema(X) if features is None else features
    missing = [f["name"] for f in features if f["name"] not in X.columns]
    if missing:
        raise ValueError(f"Columns {missing} are missing; the model needs "
                         f"{[f['name'] for f in features]}. Got {list(X.columns)}.")
    feed = {}
    for f in features:
        col = X[f["name"]]
        if f["kind"] == "numeric":
            feed[f["name"]] = col.to_numpy(dtype=np.float32, na_value=np.nan).reshape(-1, 1)
        else:
            values = col.astype(object).where(col.notna(), "").astype(str)
            feed[f["name"]] = values.to_numpy(dtype=object).reshape(-1, 1)
    return feed


def onnx_predict(session: Any, X: pd.DataFrame, features: list[dict[str, str]] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Score ``X`` with an ONNX Runtime session; return ``(labels, probabilities)``."""
    if features is None:
        meta = session.get_modelmeta().custom_metadata_map
        features = json.loads(meta["features"]) if "features" in meta else None
    labels, proba = session.run(["label", "probabilities"], onnx_inputs(X, features))
    return np.asarray(labels), np.asarray(proba, dtype=np.float64)


def _sha256_of_training_data(X: pd.DataFrame, y: pd.Series) -> str:
    """Hash the training rows (features then target, as CSV) so a model names its data."""
    frame = X.copy()
    frame[y.name or "target"] = np.asarray(y)
    return hashlib.sha256(frame.to_csv(index=False, float_format="%.17g").encode()).hexdigest()


def _libraries() -> dict[str, str]:
    import onnxruntime
    import skl2onnx
    import sklearn

    import mlprod

    return {"python": platform.python_version(), "mlprod": mlprod.__version__,
            "scikit-learn": sklearn.__version__, "skl2onnx": skl2onnx.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__, "pandas": pd.__version__}


def _metrics(pipeline: BaseEstimator, X: pd.DataFrame, y: pd.Series, on: str) -> dict[str, Any]:
    proba = pipeline.predict_proba(X)
    labels = pipeline.classes_[proba.argmax(axis=1)]
    return {
        "on": on, "rows": int(len(y)),
        "accuracy": round(float(accuracy_score(y, labels)), 6),
        "f1_macro": round(float(f1_score(y, labels, average="macro")), 6),
        "log_loss": round(float(log_loss(y, proba, labels=pipeline.classes_)), 6),
    }


def metadata(model: onnx.ModelProto) -> dict[str, Any]:
    """Return the model's ``metadata_props`` with every JSON value decoded."""
    return read_metadata(model)


def convert(pipeline: BaseEstimator, X: pd.DataFrame, target_opset: int | None = None
            ) -> onnx.ModelProto:
    """Convert a fitted pipeline with skl2onnx: one input per column of ``X``, ZipMap off.

    Numeric columns are given to skl2onnx as float32, so the inputs are ``tensor(float)``;
    no metadata and no parity check (see :func:`to_onnx`).
    """
    from skl2onnx import to_onnx as skl_to_onnx

    check_is_fitted(pipeline)
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame (one ONNX input per column); got "
                        f"{type(X).__name__}. Wrap it: pd.DataFrame(X, columns=[...]).")
    if not hasattr(pipeline, "predict_proba"):
        raise TypeError(f"{type(pipeline).__name__} has no predict_proba; mlprod exports "
                        "classifiers with probabilities.")
    features = feature_schema(X)
    sample = X.iloc[:1].astype({f["name"]: np.float32 for f in features if f["kind"] == "numeric"})
    model = skl_to_onnx(pipeline, sample, options={"zipmap": False}, target_opset=target_opset)
    outputs = [o.name for o in model.graph.output]
    if outputs != ["label", "probabilities"]:
        raise ValueError(f"skl2onnx produced outputs {outputs}; expected ['label', 'probabilities']."
                         " Fit the pipeline on a DataFrame and export a classifier.")
    return model


def to_onnx(
    pipeline: BaseEstimator,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    *,
    X_test: pd.DataFrame | None = None,
    y_test: pd.Series | None = None,
    label_agreement: float = 1.0,
    max_prob_diff: float | None = None,
    doc_string: str | None = None,
    target_opset: int | None = None,
) -> onnx.ModelProto:
    """Convert a fitted classifier pipeline to ONNX, check parity, and embed its metadata.

    Parameters
    ----------
    pipeline : fitted Pipeline
        Preprocessing and a classifier, fitted on a DataFrame (one ONNX input per column).
    X_train, y_train : DataFrame of shape (n_rows, n_features), Series of shape (n_rows,)
        The training data: its dtypes give the input types, its hash goes in the metadata.
    X_test, y_test : optional
        Held-out rows: parity is checked on ``X_test`` (else ``X_train``) and the metrics in the
        metadata are computed on them (else on the training rows, marked ``"on": "train"``).
    label_agreement : float
        Share of rows whose labels must agree with scikit-learn (default 1.0, all of them).
    max_prob_diff : float, optional
        Largest accepted |Δ probability|; default 1e-4 for linear models, 0.1 for tree models
        (float32 thresholds, see :func:`mlprod.export.parity.default_tolerance`).
    doc_string : str, optional
        Description stored in the file; a default names the estimator and classes.
    target_opset : int, optional
        ONNX opset; skl2onnx's default when omitted.

    Returns
    -------
    model : onnx.ModelProto
        Inputs named as the columns (numeric ``tensor(float)``, categorical ``tensor(string)``,
        shape ``[-1, 1]``); outputs ``label`` ``[-1]`` and ``probabilities`` ``[-1, C]``.

    Raises
    ------
    ParityError
        When ONNX Runtime disagrees with scikit-learn beyond the tolerances.
    """
    model = convert(pipeline, X_train, target_opset=target_opset)
    features = feature_schema(X_train)
    estimator = pipeline[-1] if hasattr(pipeline, "steps") else pipeline
    X_check = X_train if X_test is None else X_test
    report = check_parity("ONNX", pipeline, X_check, ONNXModel(model, features),
                          label_agreement, max_prob_diff)

    if X_test is not None and y_test is not None:
        metrics = _metrics(pipeline, X_test, y_test, "test")
    else:
        metrics = _metrics(pipeline, X_train, y_train, "train")
    classes = [str(c) for c in pipeline.classes_]
    props = {
        "features": features,
        "target": str(y_train.name or "target"),
        "classes": classes,
        "metrics": metrics | {"parity": report},
        "training_data_sha256": _sha256_of_training_data(X_train, y_train),
        "libraries": _libraries(),
        "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    onnx.helper.set_model_props(model, {k: json.dumps(v) for k, v in props.items()})
    import mlprod

    model.producer_name = "mlprod"
    model.producer_version = mlprod.__version__
    model.doc_string = doc_string or (
        f"{type(estimator).__name__} pipeline predicting {props['target']} "
        f"({', '.join(classes)}) from {', '.join(f['name'] for f in features)}.")
    return model


def session(model: onnx.ModelProto | bytes):
    """Open a single-threaded ONNX Runtime session on an in-memory model (or its bytes)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options,
                                providers=["CPUExecutionProvider"])


class ONNXModel:
    """An ONNX model and an ONNX Runtime session scoring it.

    Parameters
    ----------
    model : onnx.ModelProto or bytes
        An exported model (inputs named as the columns, outputs ``label`` and ``probabilities``).
    features : list of dict, optional
        The inputs' ``[{"name", "kind"}]``; default the model's ``features`` metadata, else the
        graph's inputs with kinds from the rows scored.
    """

    #: ONNX Runtime computes in float32 (the inputs are ``tensor(float)``).
    float32 = True

    def __init__(self, model: onnx.ModelProto | bytes,
                 features: list[dict[str, str]] | None = None) -> None:
        self.model = model if isinstance(model, onnx.ModelProto) else onnx.load_from_string(model)
        self.session = session(self.model)
        meta = self.session.get_modelmeta().custom_metadata_map
        if features is None and "features" in meta:
            features = json.loads(meta["features"])
        self.features = features

    def __repr__(self) -> str:
        names = [i.name for i in self.model.graph.input]
        return f"ONNXModel(inputs={names})"

    def summary(self) -> str:
        """Describe the graph: inputs, outputs and the operators, in order."""
        def kind(v: onnx.ValueInfoProto) -> str:
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
            return f"{v.name}: {onnx.TensorProto.DataType.Name(t.elem_type).lower()} {dims}"

        graph = self.model.graph
        return "\n".join(
            [f"ONNX graph, opset {max(o.version for o in self.model.opset_import)}, "
             f"{len(graph.node)} operators", "inputs:"]
            + [f"  {kind(v)}" for v in graph.input] + ["outputs:"]
            + [f"  {kind(v)}" for v in graph.output]
            + ["operators: " + " -> ".join(n.op_type for n in graph.node)])

    def predict(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Score rows; return ``(labels, probabilities)``."""
        if self.features is None:
            feed = onnx_inputs(X[[i.name for i in self.model.graph.input]])
            labels, proba = self.session.run(["label", "probabilities"], feed)
            return np.asarray(labels), np.asarray(proba, dtype=np.float64)
        return onnx_predict(self.session, X, self.features)
