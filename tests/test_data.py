"""Tests of mlprod.data: schema, loading, split, preprocessing and the generators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlprod import data


def test_schema_lists_features_in_input_order():
    assert [f["name"] for f in data.schema()] == data.FEATURES
    assert {f["kind"] for f in data.schema()} == {"numeric", "categorical"}
    assert data.FEATURES == data.NUMERIC + data.CATEGORICAL
    assert "year" not in data.FEATURES


def test_load_penguins_types_and_missing_values():
    frame = data.load_penguins()
    assert frame.shape == (344, 8)
    assert sorted(frame[data.TARGET].unique()) == data.CLASSES
    for col in data.NUMERIC:
        assert frame[col].dtype == np.float64
    assert frame[data.NUMERIC].isna().sum().sum() > 0  # the real table has holes
    for col in data.CATEGORICAL:
        assert frame[col].map(type).eq(str).all()
    assert (frame["sex"] == "").sum() == 11  # as published: 11 birds without a recorded sex
    assert set(frame["island"]) == {"Biscoe", "Dream", "Torgersen"}


def test_coerce_names_missing_columns():
    with pytest.raises(ValueError, match=r"\['sex'\] are missing"):
        data.coerce(data.load_penguins().drop(columns="sex"))


def test_split_is_reproducible_and_stratified():
    a, b, c = data.split(seed=1), data.split(seed=1), data.split(seed=2)
    assert a.X_test.index.equals(b.X_test.index)
    assert not a.X_test.index.equals(c.X_test.index)
    assert len(a.X_test) == 69 and len(a.X_train) == 275
    shares = a.y_test.value_counts(normalize=True)
    overall = data.load_penguins()[data.TARGET].value_counts(normalize=True)
    assert (shares - overall).abs().max() < 0.02
    assert list(a.X_train.columns) == data.FEATURES


def test_split_without_a_target_says_so():
    with pytest.raises(ValueError, match="No target column 'species'"):
        data.split(data.load_penguins().drop(columns=data.TARGET))


def test_synthetic_chunks_of_neighbouring_seeds_differ(tmp_path):
    a = data.write_synthetic(tmp_path / "a.csv", n_rows=20, seed=5, chunk_rows=10)
    b = data.write_synthetic(tmp_path / "b.csv", n_rows=20, seed=6, chunk_rows=10)
    rows_a, rows_b = a.read_text().splitlines()[1:], b.read_text().splitlines()[1:]
    assert rows_a[10:] != rows_b[:10]  # chunk 1 of seed 5 is not chunk 0 of seed 6
    assert oct(a.stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("size", [0, 1, -0.1, 1.5])
def test_split_rejects_bad_test_size(size):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        data.split(test_size=size)


def test_preprocessor_handles_missing_and_unseen_values(split):
    pre = data.make_preprocessor().fit(split.X_train)
    odd = split.X_test.head(2).copy()
    odd.loc[odd.index[0], "bill_length_mm"] = np.nan
    odd.loc[odd.index[1], "island"] = "Anvers"
    odd.loc[odd.index[1], "sex"] = ""
    out = pre.transform(odd)
    assert out.shape == (2, 9)
    assert not np.isnan(out).any()
    assert out[0, 0] == pytest.approx(0.0)  # imputed with the mean, then centred
    assert out[1, 4:7].sum() == 0  # unseen island → all-zero one-hot


def test_pipeline_learns(split, fitted_pipeline):
    assert fitted_pipeline.score(split.X_test, split.y_test) > 0.95


def test_synthesize_size_seed_and_realism():
    a = data.synthesize(5_000, seed=3)
    assert a.shape == (5_000, 7)
    pd.testing.assert_frame_equal(a, data.synthesize(5_000, seed=3))
    assert not a.equals(data.synthesize(5_000, seed=4))
    real = data.load_penguins()
    for col in data.NUMERIC:
        for label in data.CLASSES:
            synth_mean = a.loc[a[data.TARGET] == label, col].mean()
            real_mean = real.loc[real[data.TARGET] == label, col].mean()
            assert synth_mean == pytest.approx(real_mean, rel=0.03)
    assert 0.003 < a["body_mass_g"].isna().mean() < 0.02
    assert set(a["island"]) <= {"Biscoe", "Dream", "Torgersen", ""}
    assert set(a.loc[a[data.TARGET] == "Gentoo", "island"]) <= {"Biscoe", ""}


@pytest.mark.parametrize("n_rows", [0, -5, 2.5])
def test_synthesize_rejects_bad_sizes(n_rows):
    with pytest.raises(ValueError, match="positive integer"):
        data.synthesize(n_rows)


def test_drift_shifts_means_and_frequencies(split):
    ref = split.X_train
    shifted = data.drift(ref, shift={"body_mass_g": 1.0},
                         categories={"island": {"Biscoe": 1.0}}, seed=0)
    delta = shifted["body_mass_g"].mean() - ref["body_mass_g"].mean()
    assert delta == pytest.approx(ref["body_mass_g"].std(), rel=0.05)
    assert shifted["bill_depth_mm"].equals(ref["bill_depth_mm"])
    assert set(shifted["island"]) <= {"Biscoe", ""}
    pd.testing.assert_frame_equal(
        shifted, data.drift(ref, shift={"body_mass_g": 1.0},
                            categories={"island": {"Biscoe": 1.0}}, seed=0))


def test_drift_rejects_unknown_features_and_bad_frequencies(split):
    with pytest.raises(ValueError, match=r"Cannot drift \['island'\]"):
        data.drift(split.X_train, shift={"island": 1.0})
    with pytest.raises(ValueError, match="non-negative"):
        data.drift(split.X_train, shift={}, categories={"island": {"Biscoe": -1}})


def test_write_synthetic_chunks_and_atomicity(tmp_path):
    path = data.write_synthetic(tmp_path / "big.csv", n_rows=2_500, seed=5, chunk_rows=1_000)
    back = pd.read_csv(path, keep_default_na=False, na_values=[""])
    assert len(back) == 2_500
    assert list(back.columns) == data.FEATURES + [data.TARGET]
    assert [p.name for p in tmp_path.iterdir()] == ["big.csv"]  # no temporary file left
    again = data.write_synthetic(tmp_path / "again.csv", n_rows=2_500, seed=5, chunk_rows=1_000)
    assert again.read_bytes() == path.read_bytes()


def test_write_synthetic_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(ValueError):
        data.write_synthetic(tmp_path / "bad.csv", n_rows=-1, chunk_rows=10)
    with pytest.raises(ValueError):
        data.write_synthetic(tmp_path / "bad.csv", n_rows=10, chunk_rows=0)
    assert list(tmp_path.iterdir()) == []
