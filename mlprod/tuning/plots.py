"""Draw a search: validation curves, a heatmap over two hyperparameters, model families side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mlprod.explore import figure_png
from mlprod.tuning.results import SearchResult


class PlotFigure(Figure):
    """A matplotlib figure that shows itself as a PNG in a notebook without pyplot.

    Built without pyplot, so plotting keeps no global state and is safe off the main thread.
    """

    def _repr_png_(self) -> bytes:
        return figure_png(self, bbox_inches="tight")


def _labels(values: Sequence[Any]) -> list[str]:
    return [f"{v:g}" if isinstance(v, float) else str(v) for v in values]


def _order(value: Any) -> tuple[int, Any]:
    """Sort numbers first, then None (e.g. max_depth=None: unlimited) and other values."""
    if isinstance(value, int | float | np.number):
        return (0, float(value))
    return (1, str(value))


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
