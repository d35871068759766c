"""Look at a table before modelling it: types, missing values, class balance, distributions, relations."""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from mlprod.data import CATEGORICAL, CLASSES, FEATURES, NUMERIC, TARGET


def _shown_once(fig: Figure) -> Figure:
    """Close ``fig`` in pyplot so only the returned object is displayed (once, also under nbval)."""
    plt.close(fig)
    return fig


def round_sig(value: float, digits: int = 3) -> float:
    """Round to ``digits`` significant digits, so printed figures reproduce on another CPU.

    ``round_sig(4211.3)`` is 4210.0; zero, NaN and infinities come back unchanged. This is the
    kit's one rounding rule for printed numbers (``mlprod.tuning.round_sig`` is this function).
    """
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


#: Lesson 01's name for :func:`round_sig` with its default of 3 digits.
round3 = round_sig


def figure_png(fig: Figure, **savefig: Any) -> bytes:
    """Return ``fig`` drawn as PNG bytes (``savefig`` options such as ``dpi`` or ``bbox_inches``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **savefig)
    return buffer.getvalue()


def overview(frame: pd.DataFrame) -> pd.DataFrame:
    """Tabulate each feature's kind, dtype, missing count and number of distinct values."""
    rows = []
    for col in FEATURES + [TARGET]:
        values = frame[col]
        missing = values.isna()
        if not pd.api.types.is_numeric_dtype(values):  # a missing category is ""
            missing |= values.astype(str) == ""
        rows.append({
            "column": col,
            "kind": "target" if col == TARGET else ("numeric" if col in NUMERIC else "categorical"),
            "dtype": str(values.dtype),
            "missing": int(missing.sum()),
            "distinct": int(values[~missing].nunique()),
        })
    return pd.DataFrame(rows).set_index("column")


def class_balance(target: pd.Series) -> pd.DataFrame:
    """Count each class and its share (rounded to 3 digits), in the course's class order."""
    counts = target.value_counts().reindex(CLASSES, fill_value=0)
    return pd.DataFrame({"count": counts, "share": (counts / counts.sum()).round(3)})


def island_species(frame: pd.DataFrame) -> pd.DataFrame:
    """Count each species on each island (rows: islands, columns: species in the class order)."""
    table = pd.crosstab(frame["island"].replace("", "(missing)"), frame[TARGET])
    return table.reindex(columns=CLASSES, fill_value=0)


def plot_distributions(frame: pd.DataFrame) -> Figure:
    """Plot each numeric feature's histogram per species, and each categorical one's counts."""
    fig, axes = plt.subplots(2, 3, figsize=(12, 6), constrained_layout=True)
    for ax, col in zip(axes.flat, NUMERIC, strict=False):
        for label in CLASSES:
            ax.hist(frame.loc[frame[TARGET] == label, col].dropna(), bins=20, alpha=0.5,
                    label=label)
        ax.set_title(col)
    axes.flat[0].legend()
    for ax, col in zip(axes.flat[len(NUMERIC):], CATEGORICAL, strict=False):
        counts = pd.crosstab(frame[col].replace("", "(missing)"), frame[TARGET])
        counts.reindex(columns=CLASSES, fill_value=0).plot.bar(ax=ax, rot=0)
        ax.set_title(col)
        ax.set_xlabel("")
    return _shown_once(fig)


def plot_relation(frame: pd.DataFrame, x: str = "bill_length_mm",
                  y: str = "bill_depth_mm") -> Figure:
    """Scatter two numeric features coloured by species: where the classes separate."""
    unknown = [c for c in (x, y) if c not in NUMERIC]
    if unknown:
        raise ValueError(f"{unknown} are not numeric features; choose from {NUMERIC}.")
    fig, ax = plt.subplots(figsize=(6, 4.5), constrained_layout=True)
    for label in CLASSES:
        part = frame[frame[TARGET] == label]
        ax.scatter(part[x], part[y], s=14, alpha=0.7, label=label)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend()
    return _shown_once(fig)


def plot_workflow() -> Figure:
    """Draw the path of the course: explore & process → model & tune → export → serve → operate."""
    steps = ["explore &\nprocess", "model &\ntune", "export", "serve &\ncall", "container",
             "versions &\nrouting", "monitor"]
    fig, ax = plt.subplots(figsize=(12, 1.6), constrained_layout=True)
    for i, step in enumerate(steps):
        ax.text(i * 1.6, 0, step, ha="center", va="center", fontsize=10,
                bbox={"boxstyle": "round,pad=0.5", "fc": "#dbe9f6" if i < 2 else "#e8f3e0"})
        if i:
            ax.annotate("", xy=(i * 1.6 - 0.55, 0), xytext=((i - 1) * 1.6 + 0.55, 0),
                        arrowprops={"arrowstyle": "->"})
    ax.set_xlim(-0.8, (len(steps) - 1) * 1.6 + 0.8)
    ax.set_ylim(-0.6, 0.6)
    ax.axis("off")
    return _shown_once(fig)
