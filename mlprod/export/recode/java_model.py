"""Re-code a pipeline's estimator in Java with m2cgen, compile it with javac and score rows with it.

m2cgen (a maintained code generator) covers the estimator alone, not the preprocessing: the Java
demo transforms rows in Python and scores the result with the generated class.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from mlprod.export.parity import check_parity
from mlprod.export.recode.core import harness, run

__all__ = ["JavaModel", "java_unavailable"]

TREE_MODELS = (DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier,
               GradientBoostingClassifier)


def java_unavailable() -> str | None:
    """Return why the Java demo cannot run here (no JDK, no m2cgen), or None."""
    try:
        import m2cgen  # noqa: F401
    except ImportError:
        return "m2cgen is not installed; install mlprod's dependencies"
    if shutil.which("javac") is None or shutil.which("java") is None:
        return ("no Java compiler (javac) on PATH: install a JDK (Debian/Ubuntu: "
                "apt-get install -y openjdk-17-jdk-headless)")
    return None


class JavaModel:
    """A pipeline's estimator re-coded in Java by m2cgen; preprocessing stays in Python.

    m2cgen translates the estimator (not the ColumnTransformer), so :meth:`predict` transforms
    the rows with the fitted preprocessing and sends the model inputs to the compiled class.
    """

    def __init__(self, folder: str | os.PathLike, pipeline: Pipeline, softmax: bool) -> None:
        self.folder, self.pipeline, self.softmax = Path(folder), pipeline, softmax

    @property
    def source(self) -> str:
        """The Java source m2cgen generated for the estimator."""
        return (self.folder / "Model.java").read_text()

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline, workdir: str | os.PathLike | None = None, *,
                      X_check: pd.DataFrame, label_agreement: float = 1.0,
                      max_prob_diff: float | None = None) -> JavaModel:
        """Generate ``Model.java`` with m2cgen, compile it with ``javac`` and check it.

        ``X_check``, ``label_agreement`` and ``max_prob_diff`` go to
        :func:`~mlprod.export.parity.check_parity` (by default every label must agree and
        |Δ probability| stay ≤ 1e-4: Java computes in double precision), whose ParityError
        says where the compiled model disagrees with scikit-learn.

        Parameters
        ----------
        pipeline : fitted Pipeline
        workdir : path, optional
            Where the sources and classes go (a temporary folder by default).

        Raises
        ------
        RuntimeError
            When no JDK is found (naming what to install) or compilation fails.
        NotImplementedError
            When m2cgen cannot translate the estimator.
        """
        reason = java_unavailable()
        if reason:
            raise RuntimeError(f"Cannot run the Java demo: {reason}.")
        import m2cgen

        folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mlprod-java-"))
        folder.mkdir(parents=True, exist_ok=True)
        model = pipeline[-1]
        try:
            source = m2cgen.export_to_java(model, class_name="Model")
        except NotImplementedError:
            raise NotImplementedError(
                f"m2cgen {m2cgen.__version__} cannot translate {type(model).__name__} to Java; "
                "use the C generator (CModel) or ONNX for it.") from None
        (folder / "Model.java").write_text(source)
        (folder / "Main.java").write_text(harness("Main.java"))
        run(["javac", "-nowarn", "-d", str(folder), str(folder / "Model.java"),
              str(folder / "Main.java")], what="javac")
        # m2cgen's logistic regression returns the decision values (logits), not probabilities.
        softmax = isinstance(model, LogisticRegression) and len(model.classes_) > 2
        java = cls(folder, pipeline, softmax)
        check_parity("Java", pipeline, X_check, java, label_agreement, max_prob_diff)
        return java

    def __repr__(self) -> str:
        return f"JavaModel({str(self.folder)!r})"

    def summary(self) -> str:
        """Describe the generated Java: its size and entry point."""
        lines = self.source.splitlines()
        entry = next(line.strip() for line in lines if "static double[] score" in line)
        return (f"Model.java: {len(lines)} lines of Java from m2cgen, compiled with javac\n"
                f"entry point: {entry.rstrip(' {')}\n"
                "preprocessing: in Python (the fitted ColumnTransformer)"
                + ("\nsoftmax: in the harness (m2cgen returns the logits)" if self.softmax else ""))

    def predict(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Transform rows in Python, score them with the Java class; return ``(labels, proba)``."""
        z = np.asarray(self.pipeline[:-1].transform(X), dtype=float)
        if isinstance(self.pipeline[-1], TREE_MODELS):
            z = z.astype(np.float32).astype(float)  # what scikit-learn's trees compare
        rows = "\n".join(",".join(repr(float(v)) for v in row) for row in z) + "\n"
        cmd = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", str(self.folder),
               "Main"] + (["softmax"] if self.softmax else [])
        out = run(cmd, rows, "the generated Java model")
        proba = np.array([[float(v) for v in line.split(",")] for line in out.splitlines()])
        classes = np.asarray(self.pipeline.classes_)
        return classes[proba.argmax(axis=1)].astype(object), proba
