"""A fitted gradient-boosting classifier's starting scores: the one adapter over ``_raw_predict_init``.

Before its first tree, ``GradientBoostingClassifier`` starts every row from the raw scores (log-odds)
of its ``init`` estimator. scikit-learn exposes them only through the private
``_raw_predict_init(X)``; the C generator needs them as constants. :func:`check_raw_predict_init`
proves the adapter against public behaviour: ``decision_function(X)`` must equal the starting
scores plus ``learning_rate`` times the sum of the trees' predictions.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def initial_raw_scores(model: Any) -> np.ndarray:
    """Return the raw scores every row starts from, one per tree column (1 for two classes).

    Raises
    ------
    NotImplementedError
        When ``init`` is an estimator of the user's: its scores depend on the row.
    RuntimeError
        When scikit-learn's private method changed, naming scikit-learn's version.
    """
    if model.init not in (None, "zero"):
        raise NotImplementedError(
            f"init={model.init!r}: the starting scores depend on the row; the C generator handles "
            "init=None (the class priors) or 'zero'")
    try:
        init = np.asarray(model._raw_predict_init(np.zeros((1, model.n_features_in_))), float)
    except (AttributeError, TypeError) as exc:
        raise _changed(f"_raw_predict_init(X) failed: {exc}") from exc
    if init.ndim != 2 or init.shape[0] != 1:
        raise _changed(f"_raw_predict_init(X) of one row has shape {init.shape}, not (1, K)")
    return init[0]


def check_raw_predict_init() -> None:
    """Raise, naming scikit-learn's version, when :func:`initial_raw_scores` no longer adds up.

    Fits two small models (two and three classes) on seeded random rows and compares their public
    ``decision_function`` with the starting scores plus the trees.
    """
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    for n_classes in (2, 3):
        y = np.arange(60) % n_classes
        model = GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0).fit(X, y)
        trees = sum(np.column_stack([t.predict(X) for t in stage]) for stage in model.estimators_)
        rebuilt = initial_raw_scores(model) + model.learning_rate * trees
        public = model.decision_function(X).reshape(len(X), -1)
        if rebuilt.shape != public.shape or not np.allclose(rebuilt, public, rtol=0, atol=1e-9):
            raise _changed(f"with {n_classes} classes the starting scores plus the trees differ "
                           "from decision_function")


def _changed(what: str) -> RuntimeError:
    import sklearn

    return RuntimeError(
        f"scikit-learn {sklearn.__version__} changed GradientBoostingClassifier's private "
        f"_raw_predict_init: {what}. mlprod.export.recode.gradient_boosting reads it for the C "
        "generator; update that adapter, or export gradient boosting with mlprod.export.to_onnx.")
