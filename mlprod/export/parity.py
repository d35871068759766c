"""Prove an exported model predicts what scikit-learn predicts: labels and probabilities per row.

Every path (ONNX, PMML, generated code) is scored on the same held-out rows and compared with the
fitted pipeline: the share of labels that agree and the largest absolute probability difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ParityError", "agreement", "compare", "default_tolerance", "parity_table",
           "LINEAR_TOLERANCE", "TREE_TOLERANCE", "ROW_THRESHOLD"]

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


def parity_table(
    pipeline: Any,
    X: pd.DataFrame,
    paths: Iterable[str] = ("onnx", "pmml", "c", "java"),
    workdir: str | None = None,
) -> pd.DataFrame:
    """Score ``X`` through every available path and compare each with scikit-learn.

    Parameters
    ----------
    pipeline : fitted Pipeline
        The reference: its ``predict_proba`` on ``X``.
    X : DataFrame
        Held-out rows.
    paths : iterable of str
        Any of ``"onnx"`` (skl2onnx + ONNX Runtime), ``"pmml"`` (sklearn2pmml + jpmml-evaluator,
        needs Java), ``"c"`` (generated C, needs gcc), ``"java"`` (m2cgen for the estimator,
        preprocessing in Python, needs a JDK).
    workdir : str, optional
        Where generated files go; a temporary folder by default.

    Returns
    -------
    table : DataFrame
        One row per path: ``rows``, ``labels_agree``, ``label_agreement``, ``max_abs_dp``,
        ``rows_differ``, ``tolerance``, ``ok`` and ``note`` (why a path was skipped).
    """
    ref = pipeline.predict_proba(X)
    ref_labels = pipeline.classes_[ref.argmax(axis=1)]
    tolerance = default_tolerance(pipeline)
    rows = []
    for path in paths:
        scorer = _scorers()[path]
        skipped = scorer.unavailable()
        if skipped:
            rows.append({"path": scorer.title, "note": f"skipped: {skipped}"})
            continue
        labels, proba = scorer.predict(pipeline, X, workdir)
        tol = scorer.tolerance(tolerance)
        report = agreement(ref_labels, ref, labels, proba)
        ok = report["label_agreement"] == 1.0 and report["max_abs_dp"] <= tol
        rows.append({"path": scorer.title, **report, "tolerance": tol, "ok": ok, "note": ""})
    return pd.DataFrame(rows).set_index("path")


class _Scorer:
    """One path of the parity table: how to find out it can run, and how to score with it."""

    def __init__(self, title: str, unavailable: Callable[[], str | None],
                 predict: Callable[..., tuple[np.ndarray, np.ndarray]],
                 tolerance: Callable[[float], float] = lambda t: t) -> None:
        self.title, self.unavailable, self.predict, self.tolerance = (
            title, unavailable, predict, tolerance)


def _scorers() -> dict[str, _Scorer]:
    from mlprod.export import onnx as onnx_path
    from mlprod.export import pmml, recode

    def onnx_predict(pipeline, X, workdir):
        return onnx_path.onnx_predict(onnx_path.session(onnx_path.convert(pipeline, X)), X)

    def pmml_predict(pipeline, X, workdir):
        return pmml.PMMLModel.from_pipeline(pipeline, X, workdir=workdir).predict(X)

    def c_predict(pipeline, X, workdir):
        return recode.CModel.from_pipeline(pipeline, workdir=workdir).predict(X)

    def java_predict(pipeline, X, workdir):
        return recode.JavaModel.from_pipeline(pipeline, workdir=workdir).predict(X)

    # Generated code and PMML compute in double precision, like scikit-learn: hold them to the
    # linear tolerance whatever the model family.
    exact = lambda t: LINEAR_TOLERANCE  # noqa: E731
    return {
        "onnx": _Scorer("ONNX (skl2onnx + ONNX Runtime)", lambda: None, onnx_predict),
        "pmml": _Scorer("PMML (sklearn2pmml + jpmml-evaluator)", pmml.unavailable, pmml_predict,
                        exact),
        "c": _Scorer("C (mlprod generator + gcc)", recode.c_unavailable, c_predict, exact),
        "java": _Scorer("Java (m2cgen estimator + javac)", recode.java_unavailable, java_predict,
                        exact),
    }
