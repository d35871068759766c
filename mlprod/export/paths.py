"""Every path at once: build each export of one pipeline, and tabulate their parity side by side."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from mlprod.export import onnx as onnx_path
from mlprod.export import pmml, recode
from mlprod.export.parity import agreement, check_parity, path_tolerance

__all__ = ["PATHS", "build_paths", "describe", "parity_table"]

#: The paths of :func:`build_paths`, by key: the title shown in tables.
PATHS = {
    "onnx": "ONNX (skl2onnx + ONNX Runtime)",
    "pmml": "PMML (sklearn2pmml + JPMML-Evaluator)",
    "c": "C (mlprod generator + gcc)",
    "java": "Java (m2cgen + javac)",
}


def build_paths(pipeline: Any, X: pd.DataFrame, workdir: str | os.PathLike,
                paths: Iterable[str] = tuple(PATHS), *, label_agreement: float = 1.0,
                max_prob_diff: float | None = None) -> dict[str, Any]:
    """Export ``pipeline`` through each path; return title → model, or title → why it was skipped.

    Every path is checked for parity on ``X`` as it is built, and refuses beyond the tolerances.

    Parameters
    ----------
    pipeline : fitted Pipeline
    X : DataFrame
        Held-out rows: each path is checked on them (the first ten also become the PMML
        document's verification records; their dtypes give the ONNX input types).
    workdir : path
        Each path writes its files to a subfolder (``pmml/``, ``c/``, ``java/``).
    paths : iterable of str
        Keys of :data:`PATHS`.
    label_agreement : float
        Share of rows whose labels must agree with scikit-learn (default 1.0, all of them).
    max_prob_diff : float, optional
        Largest accepted |Δ probability|; default per path and family (:func:`path_tolerance`).

    Returns
    -------
    models : dict
        Each value has ``predict(X) -> (labels, probabilities)``, or is a string starting with
        ``"skipped:"`` (a tool missing here) or ``"not supported:"`` (the path cannot express
        this model).

    Raises
    ------
    ParityError
        When a path disagrees with scikit-learn beyond the tolerances.
    """
    workdir = Path(workdir)
    tol = {"label_agreement": label_agreement, "max_prob_diff": max_prob_diff}

    def onnx_model() -> Any:
        model = onnx_path.ONNXModel(onnx_path.convert(pipeline, X))
        check_parity("ONNX", pipeline, X, model, **tol)
        return model

    builders: dict[str, tuple[Callable[[], str | None], Callable[[], Any]]] = {
        "onnx": (lambda: None, onnx_model),
        "pmml": (pmml.unavailable,
                 lambda: pmml.PMMLModel.from_pipeline(pipeline, X, workdir=workdir / "pmml",
                                                      X_check=X, **tol)),
        "c": (recode.c_unavailable,
              lambda: recode.CModel.from_pipeline(pipeline, workdir=workdir / "c", X_check=X,
                                                  **tol)),
        "java": (recode.java_unavailable,
                 lambda: recode.JavaModel.from_pipeline(pipeline, workdir=workdir / "java",
                                                        X_check=X, **tol)),
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


def parity_table(pipeline: Any, X: pd.DataFrame, models: Mapping[str, Any], *,
                 label_agreement: float = 1.0, max_prob_diff: float | None = None
                 ) -> pd.DataFrame:
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
    label_agreement : float
        Share of rows whose labels must agree for ``ok`` (default 1.0, all of them).
    max_prob_diff : float, optional
        Largest |Δ probability| for ``ok``; default per path and family (:func:`path_tolerance`).

    Returns
    -------
    table : DataFrame
        One row per path: ``rows``, ``labels_agree``, ``label_agreement``, ``max_abs_dp``,
        ``rows_differ``, ``tolerance``, ``ok`` and ``note``. Unless ``max_prob_diff`` is given,
        ONNX Runtime is held to :func:`default_tolerance` (it computes in float32); the other
        paths compute in double precision, as scikit-learn does, and are held to
        :data:`LINEAR_TOLERANCE`.
    """
    ref = pipeline.predict_proba(X)
    ref_labels = pipeline.classes_[ref.argmax(axis=1)]
    rows = []
    for title, model in models.items():
        if isinstance(model, str):
            rows.append({"path": title, "ok": None, "note": model})
            continue
        labels, proba = model.predict(X)
        tol = path_tolerance(pipeline, model, max_prob_diff)
        report = agreement(ref_labels, ref, labels, proba)
        ok = report["label_agreement"] >= label_agreement and report["max_abs_dp"] <= tol
        rows.append({"path": title, **report, "tolerance": tol, "ok": ok, "note": ""})
    columns = ["path", "rows", "labels_agree", "label_agreement", "max_abs_dp", "rows_differ",
               "tolerance", "ok", "note"]
    return pd.DataFrame(rows, columns=columns).set_index("path")
