"""A baseline from the training data: per-feature statistics and the constraints traffic must keep.

In the spirit of SageMaker Model Monitor's baseline job, whose two files this mirrors:
``statistics.json`` (per feature: ``inferred_type``, ``num_present``, ``num_missing``, mean,
standard deviation, min, max and the distribution) and ``constraints.json`` (per feature:
completeness, ``is_non_negative``, the string domain; and a ``monitoring_config`` holding the
drift thresholds). Model Monitor keeps a KLL sketch of each numeric distribution; this keeps
decile buckets (for the PSI) and a seeded sample of at most ``sample_size`` values (for the
two-sample KS test), which is what a sketch stands for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlprod.files import atomic_write

__all__ = ["Baseline", "suggest_baseline", "read_baseline", "DEFAULT_THRESHOLDS",
           "STATISTICS", "CONSTRAINTS"]

STATISTICS = "statistics.json"
CONSTRAINTS = "constraints.json"

#: The drift report's thresholds, chosen on ``data.drift``'s default shift (see ``drift_report``).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "psi": 0.2,       # population stability index: > 0.2 is the usual "significant shift"
    "ks": 0.1,        # KS distance, Model Monitor's default comparison_threshold
    "linf": 0.1,      # largest change of a category's share (L-infinity), Model Monitor's too
    "alpha": 0.01,    # significance of the tests backing each distance (about 10 tests a report)
    "missing": 0.05,  # tolerated rise of a feature's missing share over the baseline's
    "unseen": 0.0,    # tolerated share of categories the baseline never saw
    "non_numeric": 0.0,  # tolerated share of numeric values that are not numbers
}


@dataclass(frozen=True)
class Baseline:
    """The statistics and constraints of a reference table, as Model Monitor's two files hold them.

    Attributes
    ----------
    statistics : dict
        ``{"version", "dataset": {"item_count"}, "features": [...]}``, as ``statistics.json``.
    constraints : dict
        ``{"version", "features": [...], "monitoring_config": {...}}``, as ``constraints.json``.
    """

    statistics: dict[str, Any]
    constraints: dict[str, Any] = field(repr=False)

    @property
    def features(self) -> list[dict[str, str]]:
        """The schema, ``[{"name", "kind"}]`` in baseline order."""
        return [{"name": f["name"],
                 "kind": "numeric" if f["inferred_type"] == "Fractional" else "categorical"}
                for f in self.statistics["features"]]

    @property
    def thresholds(self) -> dict[str, float]:
        """The drift thresholds stored in ``constraints.json`` (edit that file to change them)."""
        return {**DEFAULT_THRESHOLDS, **self.constraints["monitoring_config"]["thresholds"]}

    def feature(self, name: str) -> dict[str, Any]:
        """Return one feature's entry of ``statistics.json``.

        Raises
        ------
        KeyError
            Naming the feature and the baseline's features.
        """
        for entry in self.statistics["features"]:
            if entry["name"] == name:
                return entry
        names = [f["name"] for f in self.statistics["features"]]
        raise KeyError(f"The baseline has no feature {name!r}; it has {names}.")

    def constraint(self, name: str) -> dict[str, Any]:
        """Return one feature's entry of ``constraints.json``."""
        return next(c for c in self.constraints["features"] if c["name"] == name)

    def write(self, folder: str | os.PathLike) -> dict[str, Path]:
        """Write ``statistics.json`` and ``constraints.json`` into ``folder``, each atomically.

        Returns
        -------
        dict
            ``{"statistics": path, "constraints": path}``.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return {
            "statistics": atomic_write(folder / STATISTICS, _dumps(self.statistics)),
            "constraints": atomic_write(folder / CONSTRAINTS, _dumps(self.constraints)),
        }


def suggest_baseline(frame: pd.DataFrame, schema: Sequence[Mapping[str, str]] | None = None, *,
                     sample_size: int = 2000, seed: int = 0,
                     thresholds: Mapping[str, float] | None = None) -> Baseline:
    """Compute a baseline from reference data (the training features), like Model Monitor's job.

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, n_features)
        The reference rows. Missing values: NaN (numeric), ``""`` or None (categorical).
    schema : list of {"name", "kind"}, optional
        Features in order, ``kind`` ``"numeric"`` or ``"categorical"``; the model's metadata
        ``features`` has this shape. Default: ``mlprod.data.schema()``.
    sample_size : int
        Numeric values kept per feature for the KS test (all of them when there are fewer).
    seed : int
        Seed of that sample.
    thresholds : dict, optional
        Overrides of :data:`DEFAULT_THRESHOLDS`, stored in ``constraints.json``.

    Returns
    -------
    Baseline

    Raises
    ------
    ValueError
        If the frame lacks a feature, has no rows, or a threshold name is unknown.
    """
    from mlprod.data import schema as default_schema

    schema = [dict(f) for f in (default_schema() if schema is None else schema)]
    missing = [f["name"] for f in schema if f["name"] not in frame.columns]
    if missing:
        raise ValueError(f"Columns {missing} are missing from the reference data; it has "
                         f"{list(frame.columns)}. Pass the training features.")
    if len(frame) == 0:
        raise ValueError("The reference data has no rows; pass the training features.")
    unknown = sorted(set(thresholds or {}) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise ValueError(f"Unknown thresholds {unknown}; known: {sorted(DEFAULT_THRESHOLDS)}.")
    rng = np.random.default_rng(seed)
    stats, constraints = [], []
    for feature in schema:
        name, kind = feature["name"], feature["kind"]
        if kind == "numeric":
            entry, constraint = _numeric(name, frame[name], sample_size, rng)
        elif kind == "categorical":
            entry, constraint = _categorical(name, frame[name])
        else:
            raise ValueError(f"Feature {name!r} has kind {kind!r}; use 'numeric' or "
                             f"'categorical'.")
        stats.append(entry)
        constraints.append(constraint)
    return Baseline(
        statistics={"version": 0.0, "dataset": {"item_count": len(frame)}, "features": stats},
        constraints={"version": 0.0, "features": constraints, "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "thresholds": {**DEFAULT_THRESHOLDS, **(thresholds or {})}}})


def read_baseline(folder: str | os.PathLike) -> Baseline:
    """Read the ``statistics.json`` and ``constraints.json`` that :meth:`Baseline.write` wrote.

    Raises
    ------
    FileNotFoundError
        Naming the missing file and how to make it.
    ValueError
        If a file is not JSON or lacks its ``features`` list.
    """
    folder = Path(folder)
    parts = []
    for name in (STATISTICS, CONSTRAINTS):
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"No {name} in {folder}; write a baseline there with "
                                    f"suggest_baseline(train).write({str(folder)!r}).")
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not JSON ({exc}); write it again with "
                             f"Baseline.write.") from None
        if not isinstance(value, dict) or not isinstance(value.get("features"), list):
            raise ValueError(f"{path} has no 'features' list; it is not a baseline file.")
        parts.append(value)
    return Baseline(*parts)


def _numeric(name: str, column: pd.Series, sample_size: int,
             rng: np.random.Generator) -> tuple[dict, dict]:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64")
    present = values[~np.isnan(values)]
    common = {"num_present": int(present.size), "num_missing": int(values.size - present.size)}
    if present.size == 0:
        raise ValueError(f"Numeric feature {name!r} has no value in the reference data; a "
                         f"baseline needs some.")
    edges = np.unique(np.quantile(present, np.linspace(0, 1, 11)))
    counts = np.bincount(np.searchsorted(edges[1:-1], present, side="right"),
                         minlength=len(edges) - 1)
    sample = present if present.size <= sample_size else rng.choice(present, sample_size,
                                                                     replace=False)
    entry = {"name": name, "inferred_type": "Fractional", "numerical_statistics": {
        "common": common, "mean": float(present.mean()), "sum": float(present.sum()),
        "std_dev": float(present.std()), "min": float(present.min()),
        "max": float(present.max()),
        "distribution": {
            # decile buckets: the PSI compares traffic's shares in them to these counts
            "buckets": [{"lower_bound": float(lo), "upper_bound": float(hi), "count": int(c)}
                        for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)],
            "sample": np.sort(sample).tolist()}}}
    constraint = {"name": name, "inferred_type": "Fractional",
                  "completeness": common["num_present"] / values.size,
                  "num_constraints": {"is_non_negative": bool(present.min() >= 0)}}
    return entry, constraint


def _categorical(name: str, column: pd.Series) -> tuple[dict, dict]:
    values = column.astype(object).where(column.notna(), "").astype(str)
    present = values[values != ""]
    counts = present.value_counts().sort_index()
    common = {"num_present": int(present.size), "num_missing": int(values.size - present.size)}
    entry = {"name": name, "inferred_type": "String", "string_statistics": {
        "common": common, "distinct_count": int(counts.size),
        "distribution": {"categorical": {"buckets": [
            {"value": str(v), "count": int(c)} for v, c in counts.items()]}}}}
    constraint = {"name": name, "inferred_type": "String",
                  "completeness": common["num_present"] / max(values.size, 1),
                  "string_constraints": {"domains": [str(v) for v in counts.index]}}
    return entry, constraint


def _dumps(value: dict) -> str:
    return json.dumps(value, indent=2) + "\n"
