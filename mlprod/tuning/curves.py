"""A validation curve: the pipeline's training and held-out scores against one hyperparameter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.model_selection import validation_curve as _sk_validation_curve

from mlprod import data
from mlprod.tuning.spaces import (
    SEED,
    as_estimator,
    check_names,
    check_scoring,
    check_space,
    training_data,
)


def validation_curve(
    model: str | BaseEstimator,
    name: str,
    values: Sequence[Any],
    X: pd.DataFrame | None = None,
    y: pd.Series | None = None,
    *,
    scoring: str = "accuracy",
    cv: int = 5,
    seed: int = SEED,
    n_jobs: int | None = -1,
) -> pd.DataFrame:
    """Score the pipeline on its training folds and held-out folds for each value of one hyperparameter.

    Returns
    -------
    curve : DataFrame of shape (len(values), 5)
        ``value``, ``train_mean``, ``train_std``, ``cv_mean``, ``cv_std``, with the
        hyperparameter's name in ``curve.attrs["name"]``.
    """
    family, est = as_estimator(model, seed)
    check_names(est, {name: values}, family)
    check_space({name: values}, family, "grid")
    check_scoring(scoring)
    X, y = training_data(X, y, seed)
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    import joblib

    with joblib.parallel_config(prefer="threads"):
        train, test = _sk_validation_curve(
            data.make_pipeline(est), X, y, param_name=f"model__{name}", param_range=list(values),
            cv=folds, scoring=scoring, n_jobs=n_jobs,
        )
    curve = pd.DataFrame({"value": pd.Series(list(values), dtype=object),
                          "train_mean": train.mean(axis=1), "train_std": train.std(axis=1),
                          "cv_mean": test.mean(axis=1), "cv_std": test.std(axis=1)})
    curve.attrs.update(name=name, family=family, scoring=scoring)
    return curve
