"""A progress bar counted in fits, fed by scikit-learn's searches as they run.

This is the one place mlprod reaches into scikit-learn's search internals: ``_run_search``, the
hook ``BaseSearchCV`` documents for subclasses that schedule their own evaluations ("This method,
implemented in sub-classes, makes it possible to customize the scheduling of evaluations"), yet
names with an underscore. :func:`check_run_search` says when it no longer looks as expected.

Why not scikit-learn 1.9's public callbacks (``search.set_callbacks(sklearn.callback.ProgressBar())``)?
Tried again on 2026-12-01 with scikit-learn 1.9.0: its bar draws with rich through an Output
widget, and under nbval every frame, timings included, arrives as text, so strict nbval fails on
each run. A callback of our own (the public ``FitCallback`` protocol) does not help either: a fit's
``on_fit_task_end`` runs where the fit runs, in a worker process or on a Dask worker, and only
scikit-learn's private socket transport carries it back. Evaluating the candidates in chunks
through ``_run_search``'s ``evaluate_candidates`` keeps the count in this process whatever the
joblib backend, and tqdm.auto draws a widget in notebooks (which nbval skips) and text elsewhere.
"""

from __future__ import annotations

import inspect
from typing import Any

import sklearn
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
)


class FitProgress:
    """A tqdm.auto bar counted in fits; the search grows its total as each round is planned.

    In a notebook the bar is a widget, and a widget's text fallback (what GitHub and other static
    viewers show) is fixed when it is displayed, before any fit has run: tqdm's would read
    ``0fit``. So the widget is displayed with a sentence naming it, and the final count is
    printed when the search ends (``grid search: 45/45 fits``), which every viewer shows. On a
    terminal the text bar itself ends on the final count.
    """

    def __init__(self, enabled: bool, label: str) -> None:
        self.bar = None
        self.label = label
        self.widget = False
        if enabled:
            from tqdm.auto import tqdm

            try:
                from tqdm.notebook import tqdm_notebook
            except ImportError:  # pragma: no cover - tqdm always ships it
                tqdm_notebook = None
            self.widget = tqdm_notebook is not None and issubclass(tqdm, tqdm_notebook)
            if self.widget:
                self.bar = tqdm(total=0, desc=label, unit="fit", leave=True, display=False)
                self._display()
            else:
                self.bar = tqdm(total=0, desc=label, unit="fit", leave=True)

    def _display(self) -> None:
        from IPython.display import display

        view = {"version_major": 2, "version_minor": 0, "model_id": self.bar.container.model_id}
        display({"application/vnd.jupyter.widget-view+json": view,
                 "text/plain": f"{self.label}: a progress bar counted in fits (live in JupyterLab)"},
                raw=True)

    def grow(self, n: int) -> None:
        if self.bar is not None:
            self.bar.total += n
            if self.widget:  # tqdm's widget keeps the maximum it was built with
                _, gauge, _ = self.bar.container.children
                gauge.max, gauge.bar_style = self.bar.total, ""
                if self.bar.ncols is None:
                    gauge.layout.width = None
            self.bar.refresh()

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            done, total = self.bar.n, self.bar.total
            self.bar.close()
            if self.widget:
                print(f"{self.label}: {done}/{total} fits")


class _TrackedSearch:
    """Evaluate the candidates in chunks of ``chunk``, counting each chunk's fits in ``progress``."""

    progress: FitProgress
    chunk: int

    def __getstate__(self):
        # The search is sent to the workers with each fit; its progress bar stays here.
        state = dict(super().__getstate__())
        state.pop("progress", None)
        return state

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        def tracked(candidate_params, cv=None, more_results=None, callback_ctx=None):
            # callback_ctx is not passed on: chunks would give the evaluations duplicate task
            # ids under one context, and mlprod sets no scikit-learn callbacks on its searches.
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


_PLAIN = {("grid", False): GridSearchCV, ("random", False): RandomizedSearchCV,
          ("halving", False): HalvingGridSearchCV, ("halving", True): HalvingRandomSearchCV}
_TRACKED = {("grid", False): _TrackedGrid, ("random", False): _TrackedRandom,
            ("halving", False): _TrackedHalvingGrid, ("halving", True): _TrackedHalvingRandom}


def check_run_search() -> None:
    """Raise, naming scikit-learn's version, when ``_run_search`` is not the hook this file expects.

    Raises
    ------
    RuntimeError
        When a search class lacks ``_run_search(self, evaluate_candidates, *, callback_ctx)``.
    """
    for base in _PLAIN.values():
        method = getattr(base, "_run_search", None)
        params = list(inspect.signature(method).parameters) if callable(method) else []
        if params[:2] != ["self", "evaluate_candidates"] or "callback_ctx" not in params:
            raise RuntimeError(
                f"scikit-learn {sklearn.__version__} changed the private hook "
                f"{base.__name__}._run_search (found parameters {params}; expected self, "
                "evaluate_candidates, callback_ctx). mlprod.tuning.progress counts fits through "
                "it: update that adapter, or search with progress=False meanwhile.")


def tracked_search(method: str, distributions: bool, estimator: Any, progress: FitProgress,
                   chunk: int, **options: Any) -> Any:
    """Build scikit-learn's search for ``method`` that counts its fits in ``progress``.

    ``distributions`` picks ``HalvingRandomSearchCV`` over ``HalvingGridSearchCV`` for
    ``method="halving"``; ``chunk`` candidates are evaluated at a time (one bar update each).
    Without a bar, scikit-learn's own class is returned: nothing private is used, and the
    results are the same (the folds are seeded, so every chunk is scored on the same splits).
    """
    key = (method, distributions and method == "halving")
    if progress.bar is None:
        return _PLAIN[key](estimator, **options)
    check_run_search()
    searcher = _TRACKED[key](estimator, **options)
    searcher.progress, searcher.chunk = progress, chunk
    return searcher
