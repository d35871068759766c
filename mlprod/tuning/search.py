"""Run a seeded, cross-validated search over the whole pipeline and refit the best candidate."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from mlprod import data
from mlprod.tuning.backends import run_on
from mlprod.tuning.progress import FitProgress, tracked_search
from mlprod.tuning.results import SearchResult, short_params, tidy
from mlprod.tuning.spaces import METHODS, SEED, check_scoring, default_spaces, grid, training_data


def compare(
    spaces: Mapping[str | BaseEstimator, Mapping[str, Any]],
    X: pd.DataFrame | None = None,
    y: pd.Series | None = None,
    *,
    method: str = "grid",
    scoring: str = "accuracy",
    cv: int = 5,
    n_iter: int = 10,
    seed: int = SEED,
    n_jobs: int | None = -1,
    cluster: Any = None,
    progress: bool = True,
) -> SearchResult:
    """Search hyperparameters of several model families at once and refit the best pipeline.

    Parameters
    ----------
    spaces : mapping
        Family name (see :data:`FAMILIES`) or estimator → ``{hyperparameter: values}``.
        Values are lists; ``method="random"`` also takes scipy.stats distributions.
    X, y : DataFrame of shape (n_rows, 6), Series of shape (n_rows,), optional
        Training data, both or neither; default the training part of :func:`mlprod.data.split`.
        Never pass the test set: a model tuned on it looks better than it will be.
    method : {"grid", "random", "halving"}
        Every candidate; ``n_iter`` sampled candidates; or successive halving (all candidates
        on few rows, the best third kept each round on three times as many rows).
    scoring : str
        A scikit-learn scorer name, e.g. ``"accuracy"``, ``"neg_log_loss"``.
    cv : int
        Number of stratified folds, shuffled with ``seed``.
    n_iter : int
        Candidates sampled by ``method="random"``.
    seed : int
        Seeds the folds, the sampling and every estimator whose ``random_state`` is unset.
    n_jobs : int or None
        Parallel fits; -1 uses every local core (or every Dask worker).
    cluster : None, "local", str, dask Client or cluster
        None runs on the local cores through joblib; otherwise the fits run on Dask: "local"
        starts a local cluster for this call, a string is a scheduler address
        (``"tcp://127.0.0.1:8786"``), a Client or cluster object is used as is.
    progress : bool
        Show a tqdm.auto progress bar counted in fits.

    Returns
    -------
    SearchResult

    Raises
    ------
    ValueError
        For an empty space, an unknown family, hyperparameter, method or scoring name, or only
        one of ``X`` and ``y``.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown search method {method!r}; choose one of {list(METHODS)}.")
    check_scoring(scoring)
    candidates, families = grid(spaces, seed, method)
    X, y = training_data(X, y, seed)
    has_distributions = any(hasattr(v, "rvs") for g in candidates for v in g.values())
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    kwargs: dict[str, Any] = dict(scoring=scoring, cv=folds, n_jobs=n_jobs,
                                  return_train_score=True)
    if method == "grid":
        kwargs["param_grid"] = candidates
    elif method == "random":
        kwargs.update(param_distributions=candidates, n_iter=n_iter, random_state=seed)
    elif has_distributions:
        kwargs.update(param_distributions=candidates, random_state=seed)
    else:
        kwargs.update(param_grid=candidates, random_state=seed)
    bar = FitProgress(progress, f"{method} search")
    start = time.perf_counter()
    try:
        with run_on(cluster, n_jobs) as slots:
            searcher = tracked_search(method, has_distributions, data.make_pipeline(), bar,
                                      chunk=max(2, 2 * slots), **kwargs)
            searcher.fit(X, y)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    results = tidy(searcher.cv_results_, families, len(X))
    n_fits = len(searcher.cv_results_["params"]) * searcher.n_splits_
    rows = searcher.cv_results_.get("n_resources", [len(X)] * len(searcher.cv_results_["params"]))
    rows_used = int(np.sum(rows)) * searcher.n_splits_
    best = short_params(searcher.best_params_, families)
    return SearchResult(results=results, best_pipeline=searcher.best_estimator_,
                        best_params=best, best_score=float(searcher.best_score_),
                        scoring=scoring, method=method, n_fits=n_fits, rows_used=rows_used,
                        seconds=seconds)


def search(
    model: str | BaseEstimator,
    space: Mapping[str, Any],
    X: pd.DataFrame | None = None,
    y: pd.Series | None = None,
    **options: Any,
) -> SearchResult:
    """Search one model family's hyperparameters on the whole pipeline and refit the best.

    ``search("random_forest", {"max_depth": [2, 4, None]}, method="random")`` is
    ``compare({"random_forest": {...}}, ...)``; see :func:`compare` for the options.
    """
    return compare({model: space}, X, y, **options)


def default_search(full: bool = False, **options: Any) -> SearchResult:
    """Run lesson 02's search: a grid over three model families on the seeded training split.

    ``options`` go to :func:`compare`: ``n_jobs``, ``cluster`` and ``progress`` change where and
    how fast it runs, never its result; ``seed`` (default :data:`SEED`) changes the folds.
    """
    return compare(default_spaces(full), **options)


def search_best_pipeline() -> Pipeline:
    """Run lesson 02's default search again and return its refitted best pipeline (seconds).

    Deterministic: steps ``("preprocess", ColumnTransformer)`` then ``("model", estimator)``, the
    same as the notebook's. It runs on one core without a progress bar, every time it is called;
    :func:`mlprod.quickstart.tuned_pipeline` returns the same pipeline from a cache on disk.
    """
    return default_search(n_jobs=1, progress=False).best_pipeline
