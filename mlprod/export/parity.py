"""Prove an exported model predicts what scikit-learn predicts: labels and probabilities per row.

Every path (ONNX, PMML, generated code) is scored on the same held-out rows and compared with the
fitted pipeline: the share of labels that agree and the largest absolute probability difference.
This module knows no path: each path's module calls :func:`check_parity` on what it built, and
:mod:`mlprod.export.paths` builds them all and tabulates them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ParityError", "agreement", "check_parity", "default_tolerance", "path_tolerance",
           "LINEAR_TOLERANCE", "ROW_THRESHOLD", "TREE_TOLERANCE"]

#: Largest |Δ probability| accepted for models scored with continuous arithmetic: float32 against
#: float64 leaves differences near 1e-7, so 1e-4 passes them and catches any real mistake.
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
            f"largest |Δ probability| is {report['max_abs_dp']:.3g} (tolerance {tolerance:.3g}); "
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


def path_tolerance(pipeline: Any, model: Any, max_prob_diff: float | None = None) -> float:
    """Return the max |Δ probability| a path is held to: ``max_prob_diff``, else its default.

    A path that computes in float32 (ONNX Runtime, ``model.float32``) gets
    :func:`default_tolerance` of the model family (0.1 for trees, 1e-4 otherwise); the paths that
    compute in double precision, as scikit-learn does (C, Java, PMML), get
    :data:`LINEAR_TOLERANCE` for every family.
    """
    if max_prob_diff is not None:
        return float(max_prob_diff)
    return default_tolerance(pipeline) if getattr(model, "float32", False) else LINEAR_TOLERANCE


def check_parity(path: str, pipeline: Any, X: pd.DataFrame, model: Any,
                 label_agreement: float = 1.0, max_prob_diff: float | None = None
                 ) -> dict[str, Any]:
    """Score ``X`` with ``model`` and scikit-learn; return :func:`agreement`, or refuse.

    Parameters
    ----------
    path : str
        The path's name, for the error message (``"C"``, ``"Java"``, ``"PMML"``, ``"ONNX"``).
    pipeline : fitted Pipeline
        The reference.
    X : DataFrame
        The rows to compare on, e.g. the held-out set.
    model : object with ``predict(X) -> (labels, probabilities)``
    label_agreement : float
        Share of rows whose labels must agree (default 1.0, all of them).
    max_prob_diff : float, optional
        Largest accepted |Δ probability|; default from :func:`path_tolerance`.

    Raises
    ------
    ParityError
        Naming the path, the label agreement, the largest difference and the rows that differ.
    """
    if X is None or len(X) == 0:
        raise ValueError(f"No rows to check the {path} export on: pass X_check, e.g. the "
                         "held-out rows (split.X_test).")
    ref = pipeline.predict_proba(X)
    labels, proba = model.predict(X)
    report = agreement(pipeline.classes_[ref.argmax(axis=1)], ref, labels, proba)
    tolerance = path_tolerance(pipeline, model, max_prob_diff)
    if report["label_agreement"] < label_agreement or report["max_abs_dp"] > tolerance:
        raise ParityError(path, report, label_agreement, tolerance)
    return report


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
