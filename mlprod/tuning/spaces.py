"""What a search may try: model families, lesson 02's search spaces, and the checks on a space.

A family is a name for a fresh, seeded scikit-learn estimator; a space maps each family to
``{hyperparameter: values}``. Every check here runs before any fit and names the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer_names
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from mlprod import data

SEED = data.SEED
METHODS = ("grid", "random", "halving")

#: Model families by name: each builds a fresh estimator (:func:`estimator` seeds it).
FAMILIES: dict[str, Callable[[], BaseEstimator]] = {
    "logistic_regression": lambda: LogisticRegression(max_iter=1000),
    "random_forest": lambda: RandomForestClassifier(n_estimators=50),
    "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=50),
    "decision_tree": lambda: DecisionTreeClassifier(),
    "k_neighbors": lambda: KNeighborsClassifier(),
    "svm": lambda: SVC(),
}

#: Lesson 02's default (quick) search: a few candidates of each family, seconds on one core.
QUICK_SPACES: dict[str, dict[str, list]] = {
    "logistic_regression": {"C": [0.1, 1.0, 10.0, 100.0]},
    "random_forest": {"max_depth": [3, None]},
    "gradient_boosting": {"max_depth": [2], "learning_rate": [0.1]},
}

#: The bigger search of ``FULL = True``: well under a minute on 2 cores.
FULL_SPACES: dict[str, dict[str, list]] = {
    "logistic_regression": {"C": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]},
    "random_forest": {
        "n_estimators": [50, 100, 200],
        "max_depth": [3, 6, None],
        "min_samples_leaf": [1, 3],
    },
    "gradient_boosting": {
        "n_estimators": [50, 100],
        "learning_rate": [0.03, 0.1, 0.3],
        "max_depth": [2, 3],
    },
}


def default_spaces(full: bool = False) -> dict[str, dict[str, list]]:
    """Return lesson 02's search space: :data:`QUICK_SPACES`, or :data:`FULL_SPACES` if ``full``."""
    return {k: dict(v) for k, v in (FULL_SPACES if full else QUICK_SPACES).items()}


def estimator(family: str, seed: int = SEED, **hyperparameters: Any) -> BaseEstimator:
    """Build a fresh estimator of a named family, seeded, with some hyperparameters set.

    Raises
    ------
    ValueError
        For a family not in :data:`FAMILIES`, or a hyperparameter that family does not have.
    """
    if family not in FAMILIES:
        raise ValueError(
            f"Unknown model family {family!r}; choose one of {sorted(FAMILIES)}, "
            "or pass an estimator instance."
        )
    model = _seeded(FAMILIES[family](), seed)
    check_names(model, hyperparameters, family)
    return model.set_params(**hyperparameters)


def _seeded(model: BaseEstimator, seed: int) -> BaseEstimator:
    if model.get_params().get("random_state", 0) is None:
        model.set_params(random_state=seed)
    return model


def as_estimator(model: str | BaseEstimator, seed: int) -> tuple[str, BaseEstimator]:
    """Return ``(family name, fresh estimator)``, seeding ``random_state`` when it is unset."""
    if isinstance(model, str):
        return model, estimator(model, seed)
    if not isinstance(model, BaseEstimator):
        raise TypeError(
            f"model={model!r} is neither a family name nor a scikit-learn estimator; "
            f"use one of {sorted(FAMILIES)} or an estimator such as LogisticRegression()."
        )
    model = _seeded(clone(model), seed)
    names = {type(FAMILIES[f]()): f for f in FAMILIES}
    return names.get(type(model), type(model).__name__), model


def check_names(model: BaseEstimator, space: Mapping[str, Any], label: str) -> None:
    """Refuse hyperparameters ``model`` does not have, suggesting the closest valid name."""
    valid = sorted(k for k in model.get_params(deep=False))
    unknown = [k for k in space if k not in valid]
    if unknown:
        hints = {k: difflib.get_close_matches(k, valid, n=1) for k in unknown}
        hint = "".join(f" Did you mean {h[0]!r} for {k!r}?" for k, h in hints.items() if h)
        raise ValueError(
            f"Unknown hyperparameter(s) {unknown} for {label} ({type(model).__name__}).{hint} "
            f"Valid ones: {valid}."
        )


def check_space(space: Mapping[str, Any], label: str, method: str) -> None:
    """Refuse an empty space, a scalar where a list is needed, or a distribution in a grid."""
    if not isinstance(space, Mapping) or not space:
        raise ValueError(
            f"The search space for {label} is empty ({space!r}): give at least one hyperparameter "
            "with a list of values, e.g. {'C': [0.1, 1.0, 10.0]}."
        )
    for name, values in space.items():
        if hasattr(values, "rvs"):
            if method == "grid":
                raise ValueError(
                    f"Hyperparameter {name!r} of {label} is a distribution; a grid search needs a "
                    "list of values. Use method='random' (or 'halving') for distributions."
                )
            continue
        if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray):
            raise ValueError(
                f"Hyperparameter {name!r} of {label} has values {values!r}; give a list, "
                f"e.g. {{{name!r}: [{values!r}]}}."
            )
        if len(values) == 0:
            raise ValueError(
                f"The search space for {label} is empty: hyperparameter {name!r} has no values. "
                "Give at least one, e.g. [1, 10]."
            )


def check_scoring(scoring: str) -> None:
    """Refuse a scorer name scikit-learn does not know, suggesting close ones."""
    names = sorted(get_scorer_names())
    if scoring not in names:
        close = difflib.get_close_matches(scoring, names, n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise ValueError(
            f"Unknown scoring {scoring!r}.{hint} Common ones: ['accuracy', 'balanced_accuracy', "
            "'f1_macro', 'neg_log_loss', 'roc_auc_ovr']; all: sklearn.metrics.get_scorer_names()."
        )


def training_data(X: pd.DataFrame | None, y: pd.Series | None, seed: int = SEED
                  ) -> tuple[pd.DataFrame, pd.Series]:
    """Return ``(X, y)`` as given, or the training part of :func:`mlprod.data.split` if neither is.

    Raises
    ------
    ValueError
        When only one of ``X`` and ``y`` is given: the other is not guessed.
    """
    if X is None and y is None:
        split = data.split(seed=seed)
        return split.X_train, split.y_train
    if X is None or y is None:
        given, value, missing = ("X", X, "y") if y is None else ("y", y, "X")
        raise ValueError(
            f"{given} was given ({_describe(value)}) but {missing} was not. Pass both X (the "
            "feature rows) and y (their labels), or neither to use the training part of "
            "mlprod.data.split()."
        )
    return X, y


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"a {type(value).__name__} of shape {tuple(shape)}"
    return f"{type(value).__name__} {value!r:.60}"


def grid(spaces: Mapping[str, Mapping[str, Any]], seed: int, method: str
         ) -> tuple[list, dict[type, str]]:
    """Turn ``{family: {name: values}}`` into a scikit-learn grid over the pipeline's model step.

    Returns the grid and the family name of each estimator class in it.
    """
    if not isinstance(spaces, Mapping) or not spaces:
        raise ValueError(
            f"The search space is empty ({spaces!r}): give at least one model family with its "
            "hyperparameters, e.g. {'logistic_regression': {'C': [0.1, 1.0, 10.0]}}."
        )
    out, families = [], {}
    for model, space in spaces.items():
        family, est = as_estimator(model, seed)
        check_space(space, family, method)
        check_names(est, space, family)
        families[type(est)] = family
        out.append({"model": [est], **{f"model__{k}": v for k, v in space.items()}})
    return out, families
