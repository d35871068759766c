"""Load the Palmer penguins data, split it, build the preprocessing, and generate larger or drifted tables.

The schema here is the one place that names the columns: export and the server's inputs
follow it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlprod.files import atomic_open

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]
FEATURES = NUMERIC + CATEGORICAL
TARGET = "species"
CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
SEED = 42


@dataclass(frozen=True)
class Split:
    """A train/test split: features and target for each side."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def schema() -> list[dict[str, str]]:
    """Return the feature schema, in input order, as ``[{"name", "kind"}]``."""
    return [{"name": c, "kind": "numeric"} for c in NUMERIC] + [
        {"name": c, "kind": "categorical"} for c in CATEGORICAL
    ]


def penguins_path() -> Path:
    """Return the path of the penguins CSV shipped with the kit (CC0, Horst, Hill & Gorman)."""
    return Path(str(resources.files("mlprod") / "datasets" / "penguins.csv"))


def load_penguins() -> pd.DataFrame:
    """Load the 344-row penguins table, offline, in the schema's types.

    Returns
    -------
    frame : DataFrame of shape (344, 8)
        Numeric features as float64 (missing = NaN), categorical features as str
        (missing = ``""``), ``species`` and ``year``.
    """
    frame = pd.read_csv(penguins_path(), na_values=["NA"], keep_default_na=False)
    return coerce(frame)


def coerce(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy with numeric features as float64 and categorical ones as str, ``""`` if missing.

    Raises
    ------
    ValueError
        If a feature column is missing, naming it and the expected columns.
    """
    missing = [c for c in FEATURES if c not in frame.columns]
    if missing:
        raise ValueError(
            f"Columns {missing} are missing; the model needs {FEATURES}. "
            f"Got {list(frame.columns)}: rename or add the columns."
        )
    out = frame.copy()
    for col in NUMERIC:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    for col in CATEGORICAL:
        out[col] = out[col].astype(object).where(out[col].notna(), "").astype(str)
    return out


def split(
    frame: pd.DataFrame | None = None, test_size: float = 0.2, seed: int = SEED
) -> Split:
    """Split the table into stratified train and test parts, the same for the same seed.

    Parameters
    ----------
    frame : DataFrame, optional
        Defaults to :func:`load_penguins`. Rows without a target are dropped.
    test_size : float
        Share of rows held out, strictly between 0 and 1.
    seed : int
        Random seed of the shuffle.
    """
    if not 0 < test_size < 1:
        raise ValueError(
            f"test_size={test_size!r} must be a share strictly between 0 and 1, e.g. 0.2."
        )
    frame = load_penguins() if frame is None else coerce(frame)
    if TARGET not in frame.columns:
        raise ValueError(
            f"No target column {TARGET!r} to split on; got columns {list(frame.columns)}. "
            f"Pass the labelled table (e.g. data.load_penguins())."
        )
    frame = frame[frame[TARGET].notna() & (frame[TARGET] != "")]
    X_train, X_test, y_train, y_test = train_test_split(
        frame[FEATURES], frame[TARGET], test_size=test_size, random_state=seed,
        stratify=frame[TARGET],
    )
    return Split(X_train, X_test, y_train, y_test)


def make_preprocessor() -> ColumnTransformer:
    """Build the preprocessing: impute and scale numerics; impute and one-hot categoricals.

    The categorical imputer treats ``""`` as missing (skl2onnx cannot convert a NaN imputer
    on strings); unseen categories become all-zero columns instead of an error.
    """
    numeric = Pipeline([("impute", SimpleImputer(strategy="mean")), ("scale", StandardScaler())])
    categorical = Pipeline([
        ("impute", SimpleImputer(missing_values="", strategy="most_frequent")),
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ])
    return ColumnTransformer(
        [("numeric", numeric, NUMERIC), ("categorical", categorical, CATEGORICAL)]
    )


def make_pipeline(model: BaseEstimator | None = None) -> Pipeline:
    """Chain the preprocessing and a classifier (default: logistic regression) in one pipeline."""
    if model is None:
        model = LogisticRegression(max_iter=1000)
    return Pipeline([("preprocess", make_preprocessor()), ("model", model)])


def _class_profiles(frame: pd.DataFrame) -> dict:
    """Per class: share, numeric mean and covariance, categorical frequencies, missing rates."""
    profiles = {}
    for label, group in frame.groupby(TARGET):
        numeric = group[NUMERIC].dropna()
        profiles[label] = {
            "share": len(group) / len(frame),
            "mean": numeric.mean().to_numpy(),
            "cov": numeric.cov().to_numpy(),
            "categories": {
                c: group[c][group[c] != ""].value_counts(normalize=True) for c in CATEGORICAL
            },
        }
    return profiles


def synthesize(n_rows: int, seed: int | tuple[int, ...] = SEED, missing_rate: float = 0.01) -> pd.DataFrame:
    """Generate a penguin-like table of any size from the real one's per-class statistics.

    Numeric features follow each species' mean and covariance (multivariate normal);
    categorical ones follow each species' frequencies; ``missing_rate`` of the values are
    blanked. The same ``seed`` gives the same table.

    Returns
    -------
    frame : DataFrame of shape (n_rows, 7)
        The six features and ``species``.
    """
    if not isinstance(n_rows, (int, np.integer)) or n_rows < 1:
        raise ValueError(f"n_rows={n_rows!r} must be a positive integer, e.g. 1_000_000.")
    if not 0 <= missing_rate < 1:
        raise ValueError(f"missing_rate={missing_rate!r} must be in [0, 1), e.g. 0.01.")
    rng = np.random.default_rng(seed)
    profiles = _class_profiles(load_penguins())
    labels = np.array(list(profiles))
    shares = np.array([p["share"] for p in profiles.values()])
    species = rng.choice(labels, size=n_rows, p=shares / shares.sum())
    columns: dict[str, np.ndarray] = {c: np.empty(n_rows) for c in NUMERIC}
    columns |= {c: np.empty(n_rows, dtype=object) for c in CATEGORICAL}
    for label in labels:
        rows = np.flatnonzero(species == label)
        profile = profiles[label]
        values = rng.multivariate_normal(profile["mean"], profile["cov"], size=len(rows))
        for j, col in enumerate(NUMERIC):
            columns[col][rows] = values[:, j].round(1)
        for col in CATEGORICAL:
            freq = profile["categories"][col]
            columns[col][rows] = rng.choice(freq.index.to_numpy(), size=len(rows), p=freq.to_numpy())
    frame = pd.DataFrame(columns)
    for col in FEATURES:
        blank = rng.random(n_rows) < missing_rate
        frame.loc[blank, col] = np.nan if col in NUMERIC else ""
    frame[TARGET] = species
    return frame


def drift(
    frame: pd.DataFrame,
    shift: dict[str, float] | None = None,
    categories: dict[str, dict[str, float]] | None = None,
    seed: int = SEED,
) -> pd.DataFrame:
    """Return a drifted copy: numeric features shifted, categorical frequencies changed.

    Parameters
    ----------
    frame : DataFrame
        The reference data (e.g. the training features).
    shift : dict, optional
        Numeric feature → shift in units of that feature's standard deviation.
        Default ``{"body_mass_g": 1.0, "flipper_length_mm": 0.5}``.
    categories : dict, optional
        Categorical feature → new frequencies, e.g. ``{"island": {"Biscoe": 0.8, "Dream": 0.2}}``;
        values are resampled with them.
    seed : int
        Seed of the resampling and of the noise added to shifted values.
    """
    shift = {"body_mass_g": 1.0, "flipper_length_mm": 0.5} if shift is None else shift
    categories = categories or {}
    unknown = sorted(set(shift) - set(NUMERIC)) + sorted(set(categories) - set(CATEGORICAL))
    if unknown:
        raise ValueError(
            f"Cannot drift {unknown}: shift takes numeric features {NUMERIC}, "
            f"categories takes categorical features {CATEGORICAL}."
        )
    rng = np.random.default_rng(seed)
    out = coerce(frame)
    for col, amount in shift.items():
        std = out[col].std()
        out[col] = (out[col] + amount * std + rng.normal(0, 0.05 * std, len(out))).round(1)
    for col, freq in categories.items():
        total = sum(freq.values())
        if total <= 0 or any(v < 0 for v in freq.values()):
            raise ValueError(
                f"Frequencies for {col!r} must be non-negative with a positive sum; got {freq}."
            )
        values = np.array(list(freq))
        p = np.array(list(freq.values()), dtype=float) / total
        keep = out[col] == ""
        out[col] = np.where(keep, "", rng.choice(values, size=len(out), p=p))
    return out


def write_synthetic(
    path: str | os.PathLike, n_rows: int, seed: int = SEED, chunk_rows: int = 250_000
) -> Path:
    """Write a synthetic table of ``n_rows`` to a CSV file in chunks, atomically.

    Chunk ``i`` draws from the seed sequence ``(seed, i)``: memory stays bounded for millions of
    rows, seeds never share chunks, and the file is the same for the same arguments. The file
    appears only when complete.
    """
    if not isinstance(n_rows, (int, np.integer)) or n_rows < 1:
        raise ValueError(f"n_rows={n_rows!r} must be a positive integer, e.g. 1_000_000.")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows={chunk_rows!r} must be a positive integer, e.g. 250_000.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w", newline="") as fh:
        for i, start in enumerate(range(0, n_rows, chunk_rows)):
            size = min(chunk_rows, n_rows - start)
            synthesize(size, seed=(seed, i)).to_csv(fh, index=False, header=(i == 0))
    return path


def write_batch_input(
    path: str | os.PathLike, n_rows: int, seed: int = SEED, bad_lines: Sequence[int] = (),
    chunk_rows: int = 250_000,
) -> Path:
    """Write a batch-transform input: header-less CSV lines of the six features, atomically.

    Rows come from :func:`synthesize` (chunk ``i`` seeded with ``(seed, i)``, like
    :func:`write_synthetic`), without the target, in feature order, missing values as empty
    fields. Each 1-based line number in ``bad_lines`` is replaced by a bad line, taking turns:
    too few fields, a number that is not one, too many fields.
    """
    if not isinstance(n_rows, (int, np.integer)) or n_rows < 0:
        raise ValueError(f"n_rows={n_rows!r} must be a non-negative integer, e.g. 100_000.")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows={chunk_rows!r} must be a positive integer, e.g. 250_000.")
    outside = [n for n in bad_lines if not 1 <= n <= n_rows]
    if outside:
        raise ValueError(f"bad_lines {outside} are outside lines 1..{n_rows}.")
    kinds = ["39.1,18.7,181.0", "39.1,not-a-number,181.0,3750.0,Torgersen,male",
             "39.1,18.7,181.0,3750.0,Torgersen,male,2007"]
    bad = {n: kinds[i % len(kinds)] for i, n in enumerate(sorted(set(bad_lines)))}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w", newline="") as fh:
        for i, start in enumerate(range(0, n_rows, chunk_rows)):
            size = min(chunk_rows, n_rows - start)
            text = synthesize(size, seed=(seed, i))[FEATURES].to_csv(
                index=False, header=False, lineterminator="\n")
            if any(start < n <= start + size for n in bad):
                lines = text.split("\n")
                for n in bad:
                    if start < n <= start + size:
                        lines[n - start - 1] = bad[n]
                text = "\n".join(lines)
            fh.write(text)
    return path
