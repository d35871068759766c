"""Tune the penguins pipeline: seeded, cross-validated searches over its hyperparameters, and plots.

A *parameter* is learned from the data by ``fit`` (a logistic regression's coefficients, a tree's
thresholds); a *hyperparameter* is chosen before training (``C``, ``max_depth``, ``n_estimators``).
:func:`search` tunes one model family, :func:`compare` several at once, always on the whole
preprocessing + model pipeline of :func:`mlprod.data.make_pipeline`, so that imputation and scaling
are refitted inside every cross-validation fold. :func:`default_search` is lesson 02's search and
:func:`tuned_pipeline` its refitted winner, version 2 ("candidate") of the course model.

Searches run in parallel on the local cores through joblib, or on a Dask cluster when given one.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer_names
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
    StratifiedKFold,
)
from sklearn.model_selection import validation_curve as _sk_validation_curve
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from mlprod import data
from mlprod.files import atomic_open, atomic_write

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


@dataclass(frozen=True)
class SearchResult:
    """The outcome of a search: a tidy table, the refitted best pipeline and what it cost.

    Attributes
    ----------
    results : DataFrame
        One row per candidate, best first: ``family``, one column per hyperparameter,
        ``mean_score``, ``std_score``, ``mean_train_score``, ``fit_time`` (seconds per fit),
        ``n_resources`` (rows the candidate's last round used, before the folds split them)
        and ``rank``.
    best_pipeline : Pipeline
        The best candidate refitted on all the data the search was given.
    best_params : dict
        The best candidate's hyperparameters (``family`` included).
    best_score : float
        Its mean cross-validated score.
    scoring : str
        The scorer's name.
    method : str
        ``"grid"``, ``"random"`` or ``"halving"``.
    n_fits : int
        Fits made during the search (folds times candidates, over every round), refit excluded.
    rows_used : int
        Rows given to those fits, summed (before each fold split): the search's work.
    seconds : float
        Wall time of the whole search, refit included.
    """

    results: pd.DataFrame
    best_pipeline: Pipeline
    best_params: dict[str, Any]
    best_score: float
    scoring: str
    method: str
    n_fits: int
    rows_used: int
    seconds: float

    def top(self, n: int = 5) -> pd.DataFrame:
        """Return the ``n`` best candidates, numbers to 3 significant digits, without timings."""
        table = self.results.head(n).drop(columns=["fit_time"]).copy()
        for col in table.columns.drop(["family", "n_resources", "rank"]):
            table[col] = table[col].map(
                lambda v: round_sig(v) if isinstance(v, float | np.floating) else v)
        return table

    def cost(self) -> dict[str, Any]:
        """Return what the search cost: method, candidates, fits and seconds (3 significant digits)."""
        return {"method": self.method, "candidates": len(self.results), "fits": self.n_fits,
                "rows_used": self.rows_used, "seconds": round_sig(self.seconds)}


class PlotFigure(Figure):
    """A matplotlib figure that shows itself as a PNG in a notebook without pyplot.

    Built without pyplot, so plotting keeps no global state and is safe off the main thread.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def round_sig(x: float, digits: int = 3) -> float:
    """Round ``x`` to ``digits`` significant digits (so printed scores reproduce on other CPUs)."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(float(x), digits - 1 - math.floor(math.log10(abs(x))))


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
    _check_names(model, hyperparameters, family)
    return model.set_params(**hyperparameters)


def _seeded(model: BaseEstimator, seed: int) -> BaseEstimator:
    if model.get_params().get("random_state", 0) is None:
        model.set_params(random_state=seed)
    return model


def _as_estimator(model: str | BaseEstimator, seed: int) -> tuple[str, BaseEstimator]:
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


def _check_names(model: BaseEstimator, space: Mapping[str, Any], label: str) -> None:
    valid = sorted(k for k in model.get_params(deep=False))
    unknown = [k for k in space if k not in valid]
    if unknown:
        hints = {k: difflib.get_close_matches(k, valid, n=1) for k in unknown}
        hint = "".join(f" Did you mean {h[0]!r} for {k!r}?" for k, h in hints.items() if h)
        raise ValueError(
            f"Unknown hyperparameter(s) {unknown} for {label} ({type(model).__name__}).{hint} "
            f"Valid ones: {valid}."
        )


def _check_space(space: Mapping[str, Any], label: str, method: str) -> None:
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


def _check_scoring(scoring: str) -> None:
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


def _grid(spaces: Mapping[str, Mapping[str, Any]], seed: int, method: str) -> tuple[list, dict]:
    """Turn ``{family: {name: values}}`` into a scikit-learn grid over the pipeline's model step."""
    if not isinstance(spaces, Mapping) or not spaces:
        raise ValueError(
            f"The search space is empty ({spaces!r}): give at least one model family with its "
            "hyperparameters, e.g. {'logistic_regression': {'C': [0.1, 1.0, 10.0]}}."
        )
    grid, families = [], {}
    for model, space in spaces.items():
        family, est = _as_estimator(model, seed)
        _check_space(space, family, method)
        _check_names(est, space, family)
        families[type(est)] = family
        grid.append({"model": [est], **{f"model__{k}": v for k, v in space.items()}})
    return grid, families


class _Progress:
    """A tqdm.auto bar counted in fits; the search grows its total as each round is planned."""

    def __init__(self, enabled: bool, label: str):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=0, desc=label, unit="fit", leave=True)

    def grow(self, n: int) -> None:
        if self.bar is not None:
            self.bar.total += n
            self.bar.refresh()

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _TrackedSearch:
    """Report progress to a tqdm bar by evaluating the candidates in chunks.

    scikit-learn 1.9's own ``sklearn.callback.ProgressBar`` draws with rich through an Output
    widget: under nbval its frames, timings included, arrive as text, so strict nbval fails on
    every run; and worker processes report to it over a local socket, which a remote Dask worker
    cannot reach. Evaluating the candidates in chunks through the ``evaluate_candidates`` hook
    keeps the count in this process whatever the joblib backend, and tqdm.auto draws a widget in
    notebooks (which nbval skips) and text elsewhere.
    """

    progress: _Progress
    chunk: int

    def __getstate__(self):
        # The search is sent to the workers with each fit; its progress bar stays here.
        state = dict(super().__getstate__())
        state.pop("progress", None)
        return state

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        def tracked(candidate_params, cv=None, more_results=None, callback_ctx=None):
            params = list(candidate_params)
            self.progress.grow(len(params) * self.n_splits_)
            results = None
            for start in range(0, len(params), self.chunk):
                part = slice(start, start + self.chunk)
                more = None if more_results is None else {
                    k: v[part] for k, v in more_results.items()
                }
                results = evaluate_candidates(params[part], cv, more)
                self.progress.update(len(params[part]) * self.n_splits_)
            return results

        super()._run_search(tracked, callback_ctx=callback_ctx)


class _TrackedGrid(_TrackedSearch, GridSearchCV):
    pass


class _TrackedRandom(_TrackedSearch, RandomizedSearchCV):
    pass


class _TrackedHalvingGrid(_TrackedSearch, HalvingGridSearchCV):
    pass


class _TrackedHalvingRandom(_TrackedSearch, HalvingRandomSearchCV):
    pass


_CLASSES = {("grid", False): _TrackedGrid, ("random", False): _TrackedRandom,
            ("halving", False): _TrackedHalvingGrid, ("halving", True): _TrackedHalvingRandom}


@contextlib.contextmanager
def _backend(cluster: Any, n_jobs: int | None) -> Iterator[int]:
    """Run joblib on the local cores, or on Dask when given a cluster, an address or ``"local"``.

    Yields the number of fits that can run at once.
    """
    import joblib

    if cluster is None:
        # Threads, not processes: on data this small a fit takes milliseconds, while starting
        # a pool of worker processes takes seconds; the fits release the GIL in their
        # numerical cores. An explicit joblib.parallel_config(backend=...) still wins.
        with joblib.parallel_config(prefer="threads"):
            yield joblib.effective_n_jobs(n_jobs)
        return
    from dask.distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if isinstance(cluster, Client):
            client = cluster
        elif cluster == "local":
            local = stack.enter_context(LocalCluster(dashboard_address=None))
            client = stack.enter_context(Client(local))
        elif isinstance(cluster, str):
            client = stack.enter_context(_connect(Client, cluster))
        else:
            client = stack.enter_context(Client(cluster))
        with client.as_current(), joblib.parallel_config(backend=_cluster_backend(client)):
            yield max(1, sum(client.ncores().values()))


_ADDRESS = re.compile(r"^([a-z]+://)?[^\s/:]+:\d+$")
#: Seconds to wait for a Dask scheduler given by address.
CONNECT_TIMEOUT = 10.0


def _connect(client_class: type, address: str) -> Any:
    timeout = CONNECT_TIMEOUT
    if not _ADDRESS.match(address):
        raise ValueError(
            f"cluster={address!r} is not a Dask scheduler address; give e.g. "
            "'tcp://127.0.0.1:8786', 'local' for a local cluster, or None for the local cores."
        )
    try:
        return client_class(address, timeout=timeout)
    except (OSError, TimeoutError) as error:
        raise ConnectionError(
            f"No Dask scheduler answered at {address!r} within {timeout:g} s ({error}). Start one "
            "(`dask scheduler`, then `dask worker <address>`), or pass cluster='local'."
        ) from error


def _cluster_backend(client: Any) -> Any:
    """Return Dask's joblib backend on ``client``, using the cluster even when it has one thread.

    joblib runs a call in the calling process when its backend offers a single slot; a cluster
    was asked for, so its single slot is used instead (the scheduler queues the fits).
    """
    from joblib._dask import DaskDistributedBackend

    class ClusterBackend(DaskDistributedBackend):
        def effective_n_jobs(self, n_jobs):
            return max(2, super().effective_n_jobs(n_jobs))

    return ClusterBackend(client=client)


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
    _check_scoring(scoring)
    grid, families = _grid(spaces, seed, method)
    X, y = training_data(X, y, seed)
    has_distributions = any(hasattr(v, "rvs") for g in grid for v in g.values())
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    kwargs: dict[str, Any] = dict(scoring=scoring, cv=folds, n_jobs=n_jobs,
                                  return_train_score=True)
    if method == "grid":
        kwargs["param_grid"] = grid
    elif method == "random":
        kwargs.update(param_distributions=grid, n_iter=n_iter, random_state=seed)
    elif has_distributions:
        kwargs.update(param_distributions=grid, random_state=seed)
    else:
        kwargs.update(param_grid=grid, random_state=seed)
    searcher = _CLASSES[method, has_distributions and method == "halving"](
        data.make_pipeline(), **kwargs)
    searcher.progress = _Progress(progress, f"{method} search")
    start = time.perf_counter()
    try:
        with _backend(cluster, n_jobs) as slots:
            searcher.chunk = max(2, 2 * slots)
            searcher.fit(X, y)
    finally:
        searcher.progress.close()
    seconds = time.perf_counter() - start
    results = _tidy(searcher.cv_results_, families, len(X))
    n_fits = len(searcher.cv_results_["params"]) * searcher.n_splits_
    rows = searcher.cv_results_.get("n_resources", [len(X)] * len(searcher.cv_results_["params"]))
    rows_used = int(np.sum(rows)) * searcher.n_splits_
    best = _short(searcher.best_params_, families)
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


def _short(params: Mapping[str, Any], families: Mapping[type, str]) -> dict[str, Any]:
    """``{"model": LR(), "model__C": 1}`` → ``{"family": "logistic_regression", "C": 1}``."""
    model = params["model"]
    out: dict[str, Any] = {"family": families.get(type(model), type(model).__name__)}
    for key in sorted(k for k in params if k != "model"):
        out[key.removeprefix("model__")] = params[key]
    return out


def _tidy(cv_results: Mapping[str, Any], families: Mapping[type, str], n_rows: int
          ) -> pd.DataFrame:
    params = [_short(p, families) for p in cv_results["params"]]
    keys = [repr(sorted(p.items(), key=lambda kv: kv[0])) for p in params]
    names = list(dict.fromkeys(k for p in params for k in p))
    # Object columns keep a searched ``None`` (e.g. max_depth=None) apart from "not this
    # family's hyperparameter" (NaN).
    rows = pd.DataFrame({k: pd.Series([p.get(k, np.nan) for p in params], dtype=object)
                         for k in names})
    rows["mean_score"] = cv_results["mean_test_score"]
    rows["std_score"] = cv_results["std_test_score"]
    rows["mean_train_score"] = cv_results["mean_train_score"]
    rows["fit_time"] = cv_results["mean_fit_time"]
    rows["n_resources"] = cv_results.get("n_resources", n_rows)
    if "iter" in cv_results:  # successive halving: keep each candidate's last round
        rows["iter"] = cv_results["iter"]
        rows["_key"] = keys
        rows = rows.sort_values("iter", kind="stable").drop_duplicates("_key", keep="last")
        rows = rows.sort_values(["iter", "mean_score"], ascending=[False, False],
                                kind="stable").drop(columns=["_key", "iter"])
    else:
        rows = rows.sort_values("mean_score", ascending=False, kind="stable")
    rows["rank"] = np.arange(1, len(rows) + 1)
    return rows.reset_index(drop=True)


def default_spaces(full: bool = False) -> dict[str, dict[str, list]]:
    """Return lesson 02's search space: :data:`QUICK_SPACES`, or :data:`FULL_SPACES` if ``full``."""
    return {k: dict(v) for k, v in (FULL_SPACES if full else QUICK_SPACES).items()}


def default_search(full: bool = False, **options: Any) -> SearchResult:
    """Run lesson 02's search: a grid over three model families on the seeded training split.

    ``options`` go to :func:`compare`: ``n_jobs``, ``cluster`` and ``progress`` change where and
    how fast it runs, never its result; ``seed`` (default :data:`SEED`) changes the folds.
    """
    return compare(default_spaces(full), **options)


def tuned_pipeline() -> Pipeline:
    """Return the refitted best pipeline of lesson 02's default search (deterministic, seconds).

    Steps are ``("preprocess", ColumnTransformer)`` then ``("model", estimator)``. It runs on one
    core without a progress bar; the result is the same as the notebook's.
    """
    return default_search(n_jobs=1, progress=False).best_pipeline


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
    family, est = _as_estimator(model, seed)
    _check_names(est, {name: values}, family)
    _check_space({name: values}, family, "grid")
    _check_scoring(scoring)
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


def _labels(values: Sequence[Any]) -> list[str]:
    return [f"{v:g}" if isinstance(v, float) else str(v) for v in values]


def plot_validation_curve(curve: pd.DataFrame) -> PlotFigure:
    """Draw train and cross-validated scores against one hyperparameter, shading ±1 std."""
    fig = PlotFigure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(curve))
    for col, label, color in (("train", "training folds", "tab:blue"),
                              ("cv", "held-out folds (CV)", "tab:orange")):
        mean, std = curve[f"{col}_mean"], curve[f"{col}_std"]
        ax.plot(x, mean, "o-", color=color, label=label)
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2)
    best = int(curve["cv_mean"].to_numpy().argmax())
    ax.axvline(best, color="grey", ls="--", lw=1, label=f"best CV: {_labels(curve.value)[best]}")
    ax.set_xticks(x, _labels(curve.value))
    ax.set_xlabel(curve.attrs.get("name", "value"))
    ax.set_ylabel(curve.attrs.get("scoring", "score"))
    ax.set_title(f"Validation curve — {curve.attrs.get('family', '')}")
    ax.legend(loc="lower right")
    return fig


def score_table(result: SearchResult, x: str, y: str, family: str | None = None) -> pd.DataFrame:
    """Return the mean CV score over a grid of two hyperparameters, as :func:`plot_heatmap` draws it.

    Returns
    -------
    table : DataFrame of shape (n_y_values, n_x_values)
        One row per value of ``y`` and one column per value of ``x``, both ascending (numbers
        first, then ``None``); NaN where a combination was not tried.

    Raises
    ------
    ValueError
        When ``x`` or ``y`` was not searched.
    """
    table = result.results
    if family is not None:
        table = table[table.family == family]
    missing = [h for h in (x, y) if h not in table.columns]
    if missing:
        raise ValueError(f"{missing} not searched; the results have {list(table.columns)}.")
    table = table[table[x].notna() & table[y].notna()]
    xs = sorted(table[x].unique(), key=_order)
    ys = sorted(table[y].unique(), key=_order)
    grid = np.full((len(ys), len(xs)), np.nan)
    for _, row in table.iterrows():
        grid[ys.index(row[y]), xs.index(row[x])] = row["mean_score"]
    scores = pd.DataFrame(grid, index=pd.Index(ys, name=y, dtype=object),
                          columns=pd.Index(xs, name=x, dtype=object))
    scores.attrs.update(scoring=result.scoring)
    return scores


def plot_heatmap(result: SearchResult, x: str, y: str, family: str | None = None) -> PlotFigure:
    """Draw the mean CV score over a grid of two hyperparameters, one annotated cell each."""
    scores = score_table(result, x, y, family)
    grid, xs, ys = scores.to_numpy(), list(scores.columns), list(scores.index)
    fig = PlotFigure(figsize=(1.2 * len(xs) + 2, 0.6 * len(ys) + 1.6), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="viridis", aspect="auto", origin="lower")
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.3f}", ha="center", va="center",
                    color="white" if value < np.nanmean(grid) else "black")
    ax.set_xticks(range(len(xs)), _labels(xs))
    ax.set_yticks(range(len(ys)), _labels(ys))
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"Mean CV {result.scoring}")
    fig.colorbar(image, ax=ax)
    return fig


def _order(value: Any) -> tuple[int, Any]:
    """Sort numbers first, then None (e.g. max_depth=None: unlimited) and other values."""
    if isinstance(value, int | float | np.number):
        return (0, float(value))
    return (1, str(value))


def best_per_family(result: SearchResult) -> pd.DataFrame:
    """Return each family's best candidate: family, score (3 significant digits) and its rank."""
    best = result.results.drop_duplicates("family", keep="first")
    return pd.DataFrame({"family": best.family,
                         "mean_score": best.mean_score.map(round_sig),
                         "std_score": best.std_score.map(round_sig),
                         "rank": best["rank"]}).reset_index(drop=True)


def plot_families(result: SearchResult) -> PlotFigure:
    """Compare model families: each one's best CV score (±1 std) and its mean fit time."""
    best = result.results.drop_duplicates("family", keep="first").iloc[::-1]
    fig = PlotFigure(figsize=(8, 0.5 * len(best) + 1.6), layout="constrained")
    score_ax, time_ax = fig.subplots(1, 2, sharey=True)
    score_ax.barh(best.family, best.mean_score, xerr=best.std_score, color="tab:green")
    low = max(0.0, float((best.mean_score - best.std_score).min()) - 0.05)
    score_ax.set_xlim(low, 1.005 if result.scoring.endswith("accuracy") else None)
    score_ax.set_xlabel(f"best mean CV {result.scoring} (±1 std)")
    time_ax.barh(best.family, best.fit_time * 1000, color="tab:grey")
    time_ax.set_xlabel("fit time of that candidate (ms per fit)")
    fig.suptitle("Model families, best candidate of each")
    return fig


def save_choice(result: SearchResult, folder: str | Path, test_score: float | None = None) -> Path:
    """Save the chosen pipeline (``model.joblib``) and what was chosen (``choice.json``), atomically.

    The copy is for inspection on this machine; later lessons rebuild the same pipeline with
    ``mlprod.quickstart.tuned_pipeline()`` and deploy it as ONNX, never as a pickle.

    Returns
    -------
    folder : Path
        The folder holding both files.
    """
    import joblib

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    choice = {"params": {k: _jsonable(v) for k, v in result.best_params.items()},
              "cv_score": result.best_score, "scoring": result.scoring,
              "test_score": test_score, "method": result.method}
    with atomic_open(folder / "model.joblib", "wb") as fh:
        joblib.dump(result.best_pipeline, fh)
    atomic_write(folder / "choice.json", json.dumps(choice, indent=2) + "\n")
    return folder


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
