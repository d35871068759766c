"""A search's outcome as a tidy table: one row per candidate, best first, rounded for printing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlprod.explore import round_sig


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


def short_params(params: Mapping[str, Any], families: Mapping[type, str]) -> dict[str, Any]:
    """``{"model": LR(), "model__C": 1}`` → ``{"family": "logistic_regression", "C": 1}``."""
    model = params["model"]
    out: dict[str, Any] = {"family": families.get(type(model), type(model).__name__)}
    for key in sorted(k for k in params if k != "model"):
        out[key.removeprefix("model__")] = params[key]
    return out


def tidy(cv_results: Mapping[str, Any], families: Mapping[type, str], n_rows: int
         ) -> pd.DataFrame:
    """Turn scikit-learn's ``cv_results_`` into :attr:`SearchResult.results`."""
    params = [short_params(p, families) for p in cv_results["params"]]
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


def best_per_family(result: SearchResult) -> pd.DataFrame:
    """Return each family's best candidate: family, score (3 significant digits) and its rank."""
    best = result.results.drop_duplicates("family", keep="first")
    return pd.DataFrame({"family": best.family,
                         "mean_score": best.mean_score.map(round_sig),
                         "std_score": best.std_score.map(round_sig),
                         "rank": best["rank"]}).reset_index(drop=True)
