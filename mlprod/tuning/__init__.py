"""Tune the penguins pipeline: seeded, cross-validated searches over its hyperparameters, and plots.

A *parameter* is learned from the data by ``fit`` (a logistic regression's coefficients, a tree's
thresholds); a *hyperparameter* is chosen before training (``C``, ``max_depth``, ``n_estimators``).
:func:`search` tunes one model family, :func:`compare` several at once, always on the whole
preprocessing + model pipeline of :func:`mlprod.data.make_pipeline`, so that imputation and scaling
are refitted inside every cross-validation fold. :func:`default_search` is lesson 02's search and
:func:`search_best_pipeline` its refitted winner, version 2 ("candidate") of the course model.

Searches run in parallel on the local cores through joblib, or on a Dask cluster when given one
(:mod:`mlprod.tuning.backends`; ``backends.CONNECT_TIMEOUT`` is how long to wait for a scheduler).

One idea per module:

- :mod:`~mlprod.tuning.spaces`: model families, lesson 02's spaces, the checks on a space;
- :mod:`~mlprod.tuning.search`: the search runner (:func:`compare`, :func:`search`, ...);
- :mod:`~mlprod.tuning.progress`: the progress bar, fed through scikit-learn's ``_run_search``;
- :mod:`~mlprod.tuning.backends`: local threads or a Dask cluster (joblib's Dask backend);
- :mod:`~mlprod.tuning.results`: :class:`SearchResult` and its tidy table;
- :mod:`~mlprod.tuning.curves` and :mod:`~mlprod.tuning.plots`: validation curves and figures;
- :mod:`~mlprod.tuning.saving`: :func:`save_choice`.
"""

from mlprod.explore import round_sig
from mlprod.tuning.curves import validation_curve
from mlprod.tuning.plots import (
    PlotFigure,
    plot_families,
    plot_heatmap,
    plot_validation_curve,
    score_table,
)
from mlprod.tuning.results import SearchResult, best_per_family
from mlprod.tuning.saving import save_choice
from mlprod.tuning.search import compare, default_search, search, search_best_pipeline
from mlprod.tuning.spaces import (
    FAMILIES,
    FULL_SPACES,
    METHODS,
    QUICK_SPACES,
    SEED,
    default_spaces,
    estimator,
    training_data,
)

# The adapters (progress, backends) stay in their modules: settings such as
# backends.CONNECT_TIMEOUT are read there, so a copy here would be a setting that does nothing.
__all__ = [
    "FAMILIES", "FULL_SPACES", "METHODS", "QUICK_SPACES", "SEED", "PlotFigure", "SearchResult",
    "best_per_family", "compare", "default_search", "default_spaces", "estimator",
    "plot_families", "plot_heatmap", "plot_validation_curve", "round_sig", "save_choice",
    "score_table", "search", "search_best_pipeline", "training_data", "validation_curve",
]
