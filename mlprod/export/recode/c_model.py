"""Compile mlprod's generated C with its harness, and score rows or time the model with the executable."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlprod.export.parity import check_parity
from mlprod.export.recode.c_generator import columns, generate_c
from mlprod.export.recode.core import harness, run

__all__ = ["CModel", "c_unavailable", "compile_c"]


def c_unavailable(compiler: str = "gcc") -> str | None:
    """Return why C cannot be compiled here, or None."""
    if shutil.which(compiler) is None:
        return (f"no C compiler {compiler!r} on PATH: install one (Debian/Ubuntu: "
                "apt-get install -y gcc)")
    return None


def compile_c(folder: str | os.PathLike, compiler: str = "gcc",
              flags: tuple[str, ...] = ("-O2",)) -> Path:
    """Compile ``folder/main.c`` (the harness, which includes ``model.c``) into ``folder/model``."""
    folder = Path(folder)
    run([compiler, *flags, "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-o", str(folder / "model"),
         str(folder / "main.c"), "-lm"], what=compiler)
    return folder / "model"


def _csv_rows(X: pd.DataFrame, numeric: list[str], categorical: list[str]) -> str:
    """Write rows as the harness reads them: repr() of each number (exact), empty = missing."""
    missing = [c for c in numeric + categorical if c not in X.columns]
    if missing:
        raise ValueError(f"Columns {missing} are missing; the model needs {numeric + categorical}.")
    out = []
    num = X[numeric].to_numpy(dtype=float)
    cat = X[categorical].astype(object).where(X[categorical].notna(), "").astype(str).to_numpy()
    for i in range(len(X)):
        fields = ["" if math.isnan(v) else repr(float(v)) for v in num[i]]
        for v in cat[i]:
            if any(ch in v for ch in ',\n\r"'):
                raise ValueError(f"Category {v!r} holds a comma, quote or newline, which the "
                                 "generated harness's CSV reader does not handle.")
            fields.append(v)
        out.append(",".join(fields))
    return "\n".join(out) + "\n"


class CModel:
    """A pipeline re-coded in C by :func:`generate_c`, compiled into an executable.

    Parameters
    ----------
    folder : path
        Holds ``model.c``, ``main.c`` and the executable ``model``.
    numeric, categorical, classes : list of str
        The columns the executable reads, in order, and its classes.
    """

    def __init__(self, folder: str | os.PathLike, numeric: list[str], categorical: list[str],
                 classes: list[str]) -> None:
        self.folder = Path(folder)
        self.numeric, self.categorical, self.classes = numeric, categorical, classes

    @property
    def source(self) -> str:
        """The generated C source of the model."""
        return (self.folder / "model.c").read_text()

    @property
    def executable(self) -> Path:
        """The compiled harness: ``model < rows.csv`` or ``model bench REPEATS < rows.csv``."""
        return self.folder / "model"

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline, workdir: str | os.PathLike | None = None,
                      compiler: str = "gcc", flags: tuple[str, ...] = ("-O2",), *,
                      X_check: pd.DataFrame, label_agreement: float = 1.0,
                      max_prob_diff: float | None = None) -> CModel:
        """Generate C for ``pipeline``, compile it in ``workdir`` and check it against scikit-learn.

        ``X_check``, ``label_agreement`` and ``max_prob_diff`` go to
        :func:`~mlprod.export.parity.check_parity` (by default every label must agree and
        |Δ probability| stay ≤ 1e-4: the C computes in double precision), whose ParityError
        says where the compiled model disagrees with scikit-learn.

        Parameters
        ----------
        pipeline : fitted Pipeline
        workdir : path, optional
            Where ``model.c``, ``main.c`` and the executable go (a temporary folder by default).
        compiler, flags
            The C compiler and its optimisation flags.

        Raises
        ------
        RuntimeError
            When no compiler is found (naming what to install) or compilation fails.
        """
        reason = c_unavailable(compiler)
        if reason:
            raise RuntimeError(f"Cannot compile the generated C: {reason}.")
        folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mlprod-c-"))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.c").write_text(generate_c(pipeline))
        (folder / "main.c").write_text(harness("main.c"))
        compile_c(folder, compiler, flags)
        numeric, categorical = columns(pipeline)
        model = cls(folder, numeric, categorical, [str(c) for c in pipeline.classes_])
        check_parity("C", pipeline, X_check, model, label_agreement, max_prob_diff)
        return model

    def __repr__(self) -> str:
        return f"CModel({str(self.folder)!r}, classes={self.classes})"

    def summary(self) -> str:
        """Describe the generated C: its size, its constants and the one-hot code (no parameters)."""
        lines = self.source.splitlines()
        head = lines[: next(i for i, line in enumerate(lines) if "mlprod_softmax" in line)]
        onehot = [line for line in lines if "cat[" in line or "strcmp" in line or "s[0]" in line]
        return "\n".join([f"model.c: {len(lines)} lines of C, compiled with gcc -O2", "",
                          *head, "/* ... the one-hot encoding, inside mlprod_transform: */",
                          *onehot, "/* ... */"])

    def predict(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Score rows with the executable; return ``(labels, probabilities)``."""
        out = run([str(self.executable)], _csv_rows(X, self.numeric, self.categorical),
                   "the generated C model")
        rows = [line.split(",") for line in out.splitlines()]
        labels = np.array([r[0] for r in rows], dtype=object)
        proba = np.array([[float(v) for v in r[1:]] for r in rows]).reshape(len(rows), -1)
        return labels, proba

    def bench(self, X: pd.DataFrame, repeats: int = 5) -> dict[str, float]:
        """Time the model inside the executable: one row (averaged over a loop) and all of ``X``.

        Returns
        -------
        timings : dict
            ``rows``, ``single_seconds`` and ``batch_seconds``: medians over ``repeats``.
        """
        out = run([str(self.executable), "bench", str(int(repeats))],
                   _csv_rows(X, self.numeric, self.categorical), "the generated C model")
        return json.loads(out)
