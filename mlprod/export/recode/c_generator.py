"""Write C for a fitted pipeline: imputation, scaling and one-hot encoding, then the classifier.

mlprod's generator covers the pipeline the course uses: a ``ColumnTransformer`` of
``SimpleImputer``, ``StandardScaler`` and ``OneHotEncoder(handle_unknown="ignore")``, then a
logistic regression (softmax) or tree models (nested ``if``/``else``). The output is one C file
with no library but libm; :mod:`mlprod.export.recode.c_model` compiles and runs it.

Trees compare ``(float)z[j] <= threshold``: scikit-learn rounds a tree's inputs to float32 before
comparing them with its (float64) thresholds, and the generated code must do the same to agree.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
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

from mlprod.export.recode.gradient_boosting import initial_raw_scores

__all__ = ["generate_c", "columns"]


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
                        infrequent = step.min_frequency is not None or \
                            step.max_categories is not None  # public settings, not _infrequent_enabled
                        if step.handle_unknown != "ignore" or step.drop_idx_ is not None or infrequent:
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
        try:
            init = initial_raw_scores(model)
        except NotImplementedError as exc:
            raise _unsupported(f"GradientBoostingClassifier with init={model.init!r}", str(exc)
                               ) from None
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


def columns(pipeline: Pipeline) -> tuple[list[str], list[str]]:
    """Return the numeric and the categorical columns the generated code reads, in order."""
    numeric, categorical, _, _ = _preprocessing(pipeline[0])
    return numeric, categorical
