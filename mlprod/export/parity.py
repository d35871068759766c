"""Prove an exported model predicts what scikit-learn predicts: labels and probabilities per row.

Every path (ONNX, PMML, generated code) is scored on the same held-out rows and compared with the
fitted pipeline: the share of labels that agree and the largest absolute probability difference.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ParityError", "agreement", "build_paths", "compare", "default_tolerance", "describe",
           "parity_table", "LINEAR_TOLERANCE", "PATHS", "ROW_THRESHOLD", "TREE_TOLERANCE"]

#: Largest |Δ probability| accepted for models scored with continuous arithmetic (CONTRACTS §3).
LINEAR_TOLERANCE = 1e-4
#: Tree ensembles compare float32-rounded inputs with thresholds: a value next to a threshold can
#: fall on the other side and flip a few trees' votes (0.06 seen for a 50-tree forest).
TREE_TOLERANCE = 0.1
#: A row "differs" when its labels disagree or some probability differs by more than this.
ROW_THRESHOLD = 1e-4


class ParityError(ValueError):
    """An exported model disagrees with scikit-learn beyond the tolerances."""

    def __init__(self, path: str, report: dict[str, Any], label_agreement: float,
                 tolerance: float) -> None:
        self.path, self.report = path, report
        self.label_agreement, self.tolerance = label_agreement, tolerance
        super().__init__(
            f"{path} export refused: labels agree on {report['labels_agree']} of {report['rows']} "
            f"rows ({report['label_agreement']:.1%}; {label_agreement:.0%} required) and the "
            f"largest |Δ probability| is {report['max_abs_dp']:.3g} (tolerance {tolerance:g}); "
            f"{report['rows_differ']} rows differ by more than {ROW_THRESHOLD:g}. Check the "
            "conversion (float32 inputs, unsupported options), or pass label_agreement= / "
            "max_prob_diff= to accept a looser tolerance knowingly."
        )


def default_tolerance(estimator: Any) -> float:
    """Return the default max |Δ probability| for an estimator: 0.1 for tree models, else 1e-4."""
    from sklearn.ensemble import BaseEnsemble, HistGradientBoostingClassifier
    from sklearn.tree import BaseDecisionTree

    estimator = estimator[-1] if hasattr(estimator, "steps") else estimator
    trees = (BaseDecisionTree, BaseEnsemble, HistGradientBoostingClassifier)
    return TREE_TOLERANCE if isinstance(estimator, trees) else LINEAR_TOLERANCE


def agreement(ref_labels: np.ndarray, ref_proba: np.ndarray, labels: np.ndarray,
              proba: np.ndarray) -> dict[str, Any]:
    """Compare one path's predictions with the reference, row by row.

    Returns
    -------
    report : dict
        ``rows``, ``labels_agree`` (count), ``label_agreement`` (share), ``max_abs_dp`` (largest
        |Δ probability| over rows and classes) and ``rows_differ`` (rows whose label differs or
        whose probabilities differ by more than :data:`ROW_THRESHOLD`).
    """
    ref_labels, labels = np.asarray(ref_labels).astype(str), np.asarray(labels).astype(str)
    ref_proba, proba = np.asarray(ref_proba, float), np.asarray(proba, float)
    if ref_proba.shape != proba.shape:
        raise ValueError(f"Probabilities of shape {proba.shape} cannot be compared with the "
                         f"reference's {ref_proba.shape}: the path must score the same rows and "
                         "classes in the same order.")
    same = ref_labels == labels
    dp = np.abs(ref_proba - proba).max(axis=1) if len(proba) else np.zeros(0)
    dp = np.where(np.isnan(dp), np.inf, dp)
    return {
        "rows": int(len(labels)),
        "labels_agree": int(same.sum()),
        "label_agreement": float(same.mean()) if len(same) else 1.0,
        "max_abs_dp": float(dp.max()) if len(dp) else 0.0,
        "rows_differ": int((~same | (dp > ROW_THRESHOLD)).sum()),
    }


def compare(pipeline: Any, X: pd.DataFrame, session: Any,
            features: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """Score ``X`` with scikit-learn and with an ONNX Runtime session; return :func:`agreement`."""
    from mlprod.export.onnx import onnx_predict

    ref = pipeline.predict_proba(X)
    labels, proba = onnx_predict(session, X, features)
    return agreement(pipeline.classes_[ref.argmax(axis=1)], ref, labels, proba)


#: The paths of :func:`build_paths`, by key: the title shown in tables.
PATHS = {
    "onnx": "ONNX (skl2onnx + ONNX Runtime)",
    "pmml": "PMML (sklearn2pmml + JPMML-Evaluator)",
    "c": "C (mlprod generator + gcc)",
    "java": "Java (m2cgen + javac)",
}


def build_paths(pipeline: Any, X: pd.DataFrame, workdir: str | os.PathLike,
                paths: Iterable[str] = tuple(PATHS)) -> dict[str, Any]:
    """Export ``pipeline`` through each path; return title → model, or title → why it was skipped.

    Parameters
    ----------
    pipeline : fitted Pipeline
    X : DataFrame
        A few rows for the PMML document's verification records (and the ONNX input types).
    workdir : path
        Each path writes its files to a subfolder (``pmml/``, ``c/``, ``java/``).
    paths : iterable of str
        Keys of :data:`PATHS`.

    Returns
    -------
    models : dict
        Each value has ``predict(X) -> (labels, probabilities)``, or is a string starting with
        ``"skipped:"`` (a tool missing here) or ``"not supported:"`` (the path cannot express
        this model).
    """
    from mlprod.export import onnx as onnx_path
    from mlprod.export import pmml, recode

    workdir = Path(workdir)
    builders: dict[str, tuple[Callable[[], str | None], Callable[[], Any]]] = {
        "onnx": (lambda: None, lambda: onnx_path.ONNXModel(onnx_path.convert(pipeline, X))),
        "pmml": (pmml.unavailable,
                 lambda: pmml.PMMLModel.from_pipeline(pipeline, X, workdir=workdir / "pmml")),
        "c": (recode.c_unavailable,
              lambda: recode.CModel.from_pipeline(pipeline, workdir=workdir / "c")),
        "java": (recode.java_unavailable,
                 lambda: recode.JavaModel.from_pipeline(pipeline, workdir=workdir / "java")),
    }
    models: dict[str, Any] = {}
    for key in paths:
        if key not in builders:
            raise ValueError(f"Unknown path {key!r}; choose from {list(PATHS)}.")
        unavailable, build = builders[key]
        reason = unavailable()
        if reason:
            models[PATHS[key]] = f"skipped: {reason}"
            continue
        try:
            models[PATHS[key]] = build()
        except NotImplementedError as exc:
            models[PATHS[key]] = f"not supported: {exc}"
    return models


def describe(model: Any) -> str:
    """Return a path's :meth:`summary`, or the reason it was skipped (a string from build_paths)."""
    return model if isinstance(model, str) else model.summary()


def parity_table(pipeline: Any, X: pd.DataFrame, models: Mapping[str, Any]) -> pd.DataFrame:
    """Score ``X`` through every path and compare each with scikit-learn's ``predict_proba``.

    Parameters
    ----------
    pipeline : fitted Pipeline
        The reference.
    X : DataFrame
        Held-out rows.
    models : mapping
        Path title → a model with ``predict(X) -> (labels, probabilities)``, or a string saying
        why the path was skipped (as :func:`build_paths` returns).

    Returns
    -------
    table : DataFrame
        One row per path: ``rows``, ``labels_agree``, ``label_agreement``, ``max_abs_dp``,
        ``rows_differ``, ``tolerance``, ``ok`` and ``note``. ONNX Runtime is held to
        :func:`default_tolerance` (it computes in float32); the other paths compute in double
        precision, as scikit-learn does, and are held to :data:`LINEAR_TOLERANCE`.
    """
    ref = pipeline.predict_proba(X)
    ref_labels = pipeline.classes_[ref.argmax(axis=1)]
    rows = []
    for title, model in models.items():
        if isinstance(model, str):
            rows.append({"path": title, "ok": None, "note": model})
            continue
        labels, proba = model.predict(X)
        tol = default_tolerance(pipeline) if getattr(model, "float32", False) else LINEAR_TOLERANCE
        report = agreement(ref_labels, ref, labels, proba)
        ok = report["label_agreement"] == 1.0 and report["max_abs_dp"] <= tol
        rows.append({"path": title, **report, "tolerance": tol, "ok": ok, "note": ""})
    columns = ["path", "rows", "labels_agree", "label_agreement", "max_abs_dp", "rows_differ",
               "tolerance", "ok", "note"]
    return pd.DataFrame(rows, columns=columns).set_index("path")
