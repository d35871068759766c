"""Re-code a fitted pipeline in C (mlprod's generator) or Java (m2cgen), compile it and run it.

Path 1 of the three paths to deployment: the model becomes source code in the production
environment's language, with no runtime library at all. mlprod's generator writes C for the whole
pipeline the course uses: imputation, scaling and one-hot encoding, then a logistic regression
(softmax) or tree models (nested ``if``/``else``). A small harness reads CSV rows on stdin and
prints a label and the probabilities per row, or times the model (``bench``).

Trees compare ``(float)z[j] <= threshold``: scikit-learn rounds a tree's inputs to float32 before
comparing them with its (float64) thresholds, and the generated code must do the same to agree.

m2cgen (a maintained code generator) covers the estimator alone, not the preprocessing: the Java
demo transforms rows in Python and scores the result with the generated class.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlprod.export.parity import check_parity

__all__ = ["CModel", "JavaModel", "c_unavailable", "generate_c", "java_unavailable",
           "C_HARNESS"]

TREE_MODELS = (DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier,
               GradientBoostingClassifier)


def c_unavailable(compiler: str = "gcc") -> str | None:
    """Return why C cannot be compiled here, or None."""
    if shutil.which(compiler) is None:
        return (f"no C compiler {compiler!r} on PATH: install one (Debian/Ubuntu: "
                "apt-get install -y gcc)")
    return None


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


def _c_string(value: str) -> str:
    """Quote a Python string as a C string literal."""
    return json.dumps(value, ensure_ascii=True)  # JSON escapes are valid C escapes for text


def _c_double(value: float) -> str:
    """Write a float so that strtod/the compiler reads back exactly the same double."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    return repr(float(value))


def _unsupported(what: Any, where: str) -> NotImplementedError:
    name = what if isinstance(what, str) else type(what).__name__
    return NotImplementedError(
        f"The C generator does not handle {name} ({where}). It covers a ColumnTransformer of "
        "SimpleImputer, StandardScaler and OneHotEncoder(handle_unknown='ignore'), then "
        "LogisticRegression, DecisionTree, RandomForest, ExtraTrees or GradientBoosting "
        "classifiers. Export this pipeline with mlprod.export.to_onnx instead.")


def _steps(transformer: Any) -> list[Any]:
    return [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]


def _preprocessing(pre: ColumnTransformer) -> tuple[list[str], list[str], list[str], int]:
    """Emit C statements computing ``z`` (model inputs) from ``num``/``cat`` (raw columns)."""
    numeric, categorical, lines, width = [], [], [], 0
    for name, transformer, columns in pre.transformers_:
        if isinstance(transformer, str):
            if transformer == "drop":
                continue
            raise _unsupported(f"{transformer!r} columns", f"transformer {name!r}")
        steps = _steps(transformer)
        if any(isinstance(s, OneHotEncoder) for s in steps):
            for col_index, col in enumerate(columns):
                c = len(categorical)
                categorical.append(str(col))
                lines.append(f"    s = cat[{c}];  /* {col} */")
                for step in steps:
                    if isinstance(step, SimpleImputer) and step.missing_values == "":
                        fill = str(step.statistics_[col_index])
                        lines.append(f'    if (s[0] == \'\\0\') s = {_c_string(fill)};')
                    elif isinstance(step, OneHotEncoder):
                        if step.handle_unknown != "ignore" or step.drop_idx_ is not None or \
                                getattr(step, "_infrequent_enabled", False):
                            raise _unsupported("OneHotEncoder other than handle_unknown='ignore' "
                                               "without drop or infrequent categories",
                                               f"transformer {name!r}")
                        for category in step.categories_[col_index]:
                            lines.append(f"    z[{width}] = strcmp(s, {_c_string(str(category))})"
                                         " == 0;")
                            width += 1
                    else:
                        raise _unsupported(step, f"categorical transformer {name!r}")
        else:
            for col_index, col in enumerate(columns):
                n = len(numeric)
                numeric.append(str(col))
                lines.append(f"    v = num[{n}];  /* {col} */")
                for step in steps:
                    if isinstance(step, SimpleImputer) and _is_nan(step.missing_values):
                        fill = _c_double(step.statistics_[col_index])
                        lines.append(f"    if (isnan(v)) v = {fill};")
                    elif isinstance(step, StandardScaler):
                        # mean_ is fitted even with with_mean=False; transform does not use it.
                        if step.with_mean and step.mean_ is not None:
                            lines.append(f"    v = v - {_c_double(step.mean_[col_index])};")
                        if step.with_std and step.scale_ is not None:
                            lines.append(f"    v = v / {_c_double(step.scale_[col_index])};")
                    else:
                        raise _unsupported(step, f"numeric transformer {name!r}")
                lines.append(f"    z[{width}] = v;")
                width += 1
    return numeric, categorical, lines, width


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _tree_body(tree: Any, leaf: Any, indent: int = 1) -> list[str]:
    """Emit nested if/else for one fitted tree; ``leaf(node)`` gives a leaf's statements."""
    t = tree.tree_

    def walk(node: int, depth: int) -> list[str]:
        pad = "    " * depth
        if t.children_left[node] == -1:
            return [pad + s for s in leaf(node)]
        return ([f"{pad}if ((float)z[{t.feature[node]}] <= {_c_double(t.threshold[node])}) {{"]
                + walk(t.children_left[node], depth + 1) + [f"{pad}}} else {{"]
                + walk(t.children_right[node], depth + 1) + [f"{pad}}}"])

    return walk(0, indent)


def _estimator(model: Any, n_classes: int) -> list[str]:
    """Emit C statements computing ``p`` (probabilities) from ``z``."""
    lines: list[str] = []
    if isinstance(model, LogisticRegression):
        coef, intercept = np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)
        for k in range(coef.shape[0]):
            terms = " + ".join(f"{_c_double(w)} * z[{j}]" for j, w in enumerate(coef[k]))
            lines.append(f"    d[{k}] = {terms} + {_c_double(intercept[k])};")
        if coef.shape[0] == 1:
            lines += ["    p[1] = 1.0 / (1.0 + exp(-d[0]));", "    p[0] = 1.0 - p[1];"]
        else:
            lines.append("    mlprod_softmax(d, p);")
        return lines
    if isinstance(model, (DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier)):
        trees = [model] if isinstance(model, DecisionTreeClassifier) else model.estimators_
        lines.append("    for (int k = 0; k < MLPROD_N_CLASSES; k++) p[k] = 0.0;")
        for index, tree in enumerate(trees):
            def leaf(node: int, tree=tree) -> list[str]:
                value = tree.tree_.value[node, 0, :n_classes]
                total = value.sum()
                share = value / (total if total else 1.0)  # as DecisionTree.predict_proba
                return [f"p[{k}] += {_c_double(v)};" for k, v in enumerate(share) if v]
            lines.append(f"    /* tree {index} */")
            lines += _tree_body(tree, leaf)
        if len(trees) > 1:
            lines.append(f"    for (int k = 0; k < MLPROD_N_CLASSES; k++) p[k] /= {len(trees)}.0;")
        return lines
    if isinstance(model, GradientBoostingClassifier):
        init = model._raw_predict_init(np.zeros((1, model.n_features_in_)))[0]
        for k, value in enumerate(init):
            lines.append(f"    d[{k}] = {_c_double(value)};")
        rate = _c_double(model.learning_rate)
        for stage in model.estimators_:
            for k, tree in enumerate(stage):
                def leaf(node: int, tree=tree, k=k) -> list[str]:
                    return [f"d[{k}] += {rate} * {_c_double(tree.tree_.value[node, 0, 0])};"]
                lines += _tree_body(tree, leaf)
        if len(init) == 1:
            lines += ["    p[1] = 1.0 / (1.0 + exp(-d[0]));", "    p[0] = 1.0 - p[1];"]
        else:
            lines.append("    mlprod_softmax(d, p);")
        return lines
    raise _unsupported(model, "the estimator")


def generate_c(pipeline: Pipeline) -> str:
    """Write C source for a fitted pipeline: ``mlprod_predict(num, cat, p)`` and its constants.

    Parameters
    ----------
    pipeline : fitted Pipeline
        ``ColumnTransformer`` preprocessing then a classifier (see the module's docstring).

    Returns
    -------
    source : str
        Defines ``MLPROD_N_NUMERIC``, ``MLPROD_N_CATEGORICAL``, ``MLPROD_N_CLASSES``, the column
        and class names, and ``void mlprod_predict(const double *num, const char *const *cat,
        double *p)``: ``num`` holds the numeric columns (NaN = missing), ``cat`` the categorical
        ones (``""`` = missing), ``p`` receives one probability per class.

    Raises
    ------
    NotImplementedError
        For a transformer or estimator the generator does not cover.
    """
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2 or \
            not isinstance(pipeline[0], ColumnTransformer):
        raise _unsupported(type(pipeline[0]).__name__ if isinstance(pipeline, Pipeline)
                           else pipeline, "the pipeline's shape: expected ColumnTransformer "
                           "then a classifier")
    numeric, categorical, pre_lines, width = _preprocessing(pipeline[0])
    classes = [str(c) for c in pipeline.classes_]
    model_lines = _estimator(pipeline[-1], len(classes))
    names = lambda values: ", ".join(_c_string(v) for v in values) or "0"  # noqa: E731
    return "\n".join([
        f"/* {type(pipeline[-1]).__name__} pipeline, generated by mlprod.export.recode. */",
        "#include <math.h>",
        "#include <string.h>",
        "",
        f"#define MLPROD_N_NUMERIC {len(numeric)}",
        f"#define MLPROD_N_CATEGORICAL {len(categorical)}",
        f"#define MLPROD_N_INPUTS {width}",
        f"#define MLPROD_N_CLASSES {len(classes)}",
        f"static const char *const mlprod_numeric[] = {{{names(numeric)}}};",
        f"static const char *const mlprod_categorical[] = {{{names(categorical)}}};",
        f"static const char *const mlprod_classes[] = {{{names(classes)}}};",
        "",
        "static void mlprod_softmax(const double *d, double *p) {",
        "    double top = d[0], sum = 0.0;",
        "    for (int k = 1; k < MLPROD_N_CLASSES; k++) if (d[k] > top) top = d[k];",
        "    for (int k = 0; k < MLPROD_N_CLASSES; k++) { p[k] = exp(d[k] - top); sum += p[k]; }",
        "    for (int k = 0; k < MLPROD_N_CLASSES; k++) p[k] /= sum;",
        "}",
        "",
        "/* Preprocess one row, as the fitted ColumnTransformer does. */",
        "static void mlprod_transform(const double *num, const char *const *cat, double *z) {",
        "    double v;",
        "    const char *s;",
        "    (void)num; (void)cat; (void)v; (void)s;",
        *pre_lines,
        "}",
        "",
        "/* Probabilities of one row, one per class, in mlprod_classes order. */",
        "static void mlprod_predict(const double *num, const char *const *cat, double *p) {",
        "    double z[MLPROD_N_INPUTS], d[MLPROD_N_CLASSES];",
        "    (void)d;",
        "    mlprod_transform(num, cat, z);",
        *model_lines,
        "}",
        "",
    ])


#: Reads CSV rows (numeric columns then categorical ones, no header; empty = missing) on stdin.
#: ``predict``: one line per row, ``label,p1,...,pC``. ``bench R``: JSON with the median time of
#: one row (averaged over a loop) and of the whole batch, over R repeats.
C_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "model.c"

#define MAX_ROWS 1000000
static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y);
}
static double median(double *v, int n) { qsort(v, n, sizeof *v, cmp); return v[n / 2]; }

int main(int argc, char **argv) {
    static char line[65536];
    int n = 0, cap = 1024, bench = argc > 2 && strcmp(argv[1], "bench") == 0;
    double (*num)[MLPROD_N_NUMERIC + 1] = malloc(cap * sizeof *num);
    char *(*cat)[MLPROD_N_CATEGORICAL + 1] = malloc(cap * sizeof *cat);
    while (fgets(line, sizeof line, stdin) && n < MAX_ROWS) {
        if (n == cap) {
            cap *= 2; num = realloc(num, cap * sizeof *num); cat = realloc(cat, cap * sizeof *cat);
        }
        line[strcspn(line, "\r\n")] = '\0';
        char *field = line;
        for (int j = 0; j < MLPROD_N_NUMERIC + MLPROD_N_CATEGORICAL; j++) {
            char *end = strchr(field, ',');
            if (end) *end = '\0';
            if (j < MLPROD_N_NUMERIC) num[n][j] = *field ? strtod(field, NULL) : NAN;
            else cat[n][j - MLPROD_N_NUMERIC] = strdup(field);
            field = end ? end + 1 : field + strlen(field);
        }
        n++;
    }
    double p[MLPROD_N_CLASSES];
    if (!bench) {
        for (int i = 0; i < n; i++) {
            mlprod_predict(num[i], (const char *const *)cat[i], p);
            int best = 0;
            for (int k = 1; k < MLPROD_N_CLASSES; k++) if (p[k] > p[best]) best = k;
            printf("%s", mlprod_classes[best]);
            for (int k = 0; k < MLPROD_N_CLASSES; k++) printf(",%.17g", p[k]);
            printf("\n");
        }
        return 0;
    }
    int repeats = atoi(argv[2]), loop = 10000;
    double *single = malloc(repeats * sizeof *single), *batch = malloc(repeats * sizeof *batch);
    volatile double sink = 0.0;
    for (int r = 0; r < repeats; r++) {
        double t0 = now();
        for (int i = 0; i < loop; i++) {
            mlprod_predict(num[0], (const char *const *)cat[0], p); sink += p[0];
        }
        single[r] = (now() - t0) / loop;
        t0 = now();
        for (int i = 0; i < n; i++) {
            mlprod_predict(num[i], (const char *const *)cat[i], p); sink += p[0];
        }
        batch[r] = now() - t0;
    }
    printf("{\"rows\": %d, \"single_seconds\": %.6g, \"batch_seconds\": %.6g}\n",
           n, median(single, repeats), median(batch, repeats));
    return 0;
}
"""


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


def _run(cmd: list[str], stdin: str = "", what: str = "") -> str:
    """Run a command, returning stdout; raise RuntimeError with its stderr when it fails."""
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what or cmd[0]} failed (exit {result.returncode}): "
                           f"{result.stderr.strip()[:2000]}")
    return result.stdout


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

        Parameters
        ----------
        pipeline : fitted Pipeline
        workdir : path, optional
            Where ``model.c``, ``main.c`` and the executable go (a temporary folder by default).
        compiler, flags
            The C compiler and its optimisation flags.
        X_check : DataFrame
            Rows to check parity on, e.g. the held-out rows.
        label_agreement, max_prob_diff
            Tolerances, as in :func:`mlprod.export.parity.check_parity` (default: every label,
            |Δ probability| ≤ 1e-4, since the C computes in double precision).

        Raises
        ------
        RuntimeError
            When no compiler is found (naming what to install) or compilation fails.
        ParityError
            When the compiled model disagrees with scikit-learn on ``X_check``.
        """
        reason = c_unavailable(compiler)
        if reason:
            raise RuntimeError(f"Cannot compile the generated C: {reason}.")
        folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mlprod-c-"))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.c").write_text(generate_c(pipeline))
        (folder / "main.c").write_text(C_HARNESS)
        _run([compiler, *flags, "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-o",
              str(folder / "model"), str(folder / "main.c"), "-lm"], what=compiler)
        numeric, categorical, _, _ = _preprocessing(pipeline[0])
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
        out = _run([str(self.executable)], _csv_rows(X, self.numeric, self.categorical),
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
        out = _run([str(self.executable), "bench", str(int(repeats))],
                   _csv_rows(X, self.numeric, self.categorical), "the generated C model")
        return json.loads(out)


JAVA_HARNESS = r"""
import java.io.BufferedReader;
import java.io.InputStreamReader;

public class Main {
    public static void main(String[] args) throws Exception {
        boolean softmax = args.length > 0 && args[0].equals("softmax");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        StringBuilder out = new StringBuilder();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] fields = line.split(",");
            double[] x = new double[fields.length];
            for (int j = 0; j < fields.length; j++) x[j] = Double.parseDouble(fields[j]);
            double[] p = Model.score(x);
            if (softmax) {
                double top = p[0], sum = 0;
                for (double v : p) top = Math.max(top, v);
                double[] e = new double[p.length];
                for (int k = 0; k < p.length; k++) { e[k] = Math.exp(p[k] - top); sum += e[k]; }
                for (int k = 0; k < p.length; k++) e[k] /= sum;
                p = e;
            }
            for (int k = 0; k < p.length; k++) out.append(k == 0 ? "" : ",").append(p[k]);
            out.append('\n');
        }
        System.out.print(out);
    }
}
"""


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

        Parameters
        ----------
        pipeline : fitted Pipeline
        workdir : path, optional
            Where the sources and classes go (a temporary folder by default).
        X_check : DataFrame
            Rows to check parity on, e.g. the held-out rows.
        label_agreement, max_prob_diff
            Tolerances, as in :func:`mlprod.export.parity.check_parity` (default: every label,
            |Δ probability| ≤ 1e-4, since Java computes in double precision).

        Raises
        ------
        RuntimeError
            When no JDK is found (naming what to install) or compilation fails.
        NotImplementedError
            When m2cgen cannot translate the estimator.
        ParityError
            When the compiled model disagrees with scikit-learn on ``X_check``.
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
        (folder / "Main.java").write_text(JAVA_HARNESS)
        _run(["javac", "-nowarn", "-d", str(folder), str(folder / "Model.java"),
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
        out = _run(cmd, rows, "the generated Java model")
        proba = np.array([[float(v) for v in line.split(",")] for line in out.splitlines()])
        classes = np.asarray(self.pipeline.classes_)
        return classes[proba.argmax(axis=1)].astype(object), proba
