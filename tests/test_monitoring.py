"""mlprod.monitoring: the baseline round trip and the drift report's flags on drifted data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlprod import data, monitoring

SEEDS = (1, 2, 3)
MOVED = ["flipper_length_mm", "body_mass_g"]  # data.drift's default shift


@pytest.fixture(scope="module")
def baseline(split) -> monitoring.Baseline:
    """The lesson's baseline: the training features (275 rows)."""
    return monitoring.suggest_baseline(split.X_train)


def traffic(seed: int, n: int = 1000) -> pd.DataFrame:
    """Normal traffic: synthetic rows like the training data, seeded apart from it."""
    return data.synthesize(n, seed=(seed, 7))[data.FEATURES]


def test_baseline_files_follow_model_monitor_and_round_trip(baseline, tmp_path):
    paths = baseline.write(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["constraints.json", "statistics.json"]
    stats = json.loads(paths["statistics"].read_text())
    assert stats["dataset"]["item_count"] == 275
    body = monitoring.Baseline(stats, {}).feature("body_mass_g")
    assert body["inferred_type"] == "Fractional"
    numeric = body["numerical_statistics"]
    assert numeric["common"]["num_present"] + numeric["common"]["num_missing"] == 275
    assert set(numeric) >= {"mean", "std_dev", "min", "max", "distribution"}
    assert sum(b["count"] for b in numeric["distribution"]["buckets"]) == 273
    island = next(f for f in stats["features"] if f["name"] == "island")
    assert {b["value"] for b in island["string_statistics"]["distribution"]["categorical"]
            ["buckets"]} == {"Biscoe", "Dream", "Torgersen"}
    constraints = json.loads(paths["constraints"].read_text())
    sex = next(f for f in constraints["features"] if f["name"] == "sex")
    assert sex["string_constraints"]["domains"] == ["female", "male"]
    assert 0.9 < sex["completeness"] < 1
    back = monitoring.read_baseline(tmp_path)
    assert back == baseline
    assert back.features == data.schema()
    current = data.drift(traffic(1))
    pd.testing.assert_frame_equal(monitoring.drift_report(back, current),
                                  monitoring.drift_report(baseline, current))


def test_read_baseline_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="statistics.json.*suggest_baseline"):
        monitoring.read_baseline(tmp_path)


def test_thresholds_are_stored_and_overridden(split, tmp_path):
    stored = monitoring.suggest_baseline(split.X_train, thresholds={"psi": 5.0})
    stored.write(tmp_path)
    assert monitoring.read_baseline(tmp_path).thresholds["psi"] == 5.0
    report = monitoring.drift_report(stored, data.drift(traffic(1)))
    psi = report[report["statistic"] == "psi"]
    assert not psi["violated"].any() and (psi["threshold"] == 5.0).all()
    report = monitoring.drift_report(stored, data.drift(traffic(1)), psi=0.2)
    assert report[report["statistic"] == "psi"]["violated"].sum() == 2
    with pytest.raises(ValueError, match="Unknown thresholds.*'psl'"):
        monitoring.suggest_baseline(split.X_train, thresholds={"psl": 1})


@pytest.mark.parametrize("n", [1000, 2000])
@pytest.mark.parametrize("seed", SEEDS)
def test_drift_flags_the_moved_features_and_only_them(baseline, seed, n):
    normal = traffic(seed, n)
    report = monitoring.drift_report(baseline, normal)
    assert monitoring.flagged_features(report, check=None) == [], report[report["violated"]]
    drifted = data.drift(normal, seed=seed)
    report = monitoring.drift_report(baseline, drifted)
    assert monitoring.flagged_features(report, check=None) == MOVED
    moved = report[report["feature"].isin(MOVED) & report["statistic"].isin(["psi", "ks"])]
    assert moved["violated"].all() and len(moved) == 4  # both statistics agree
    assert (moved["value"] > 2 * moved["threshold"]).all()  # with room to spare
    assert (moved["p_value"] < 1e-10).all()
    still = report[~report["feature"].isin(MOVED) & report["statistic"].isin(["psi", "ks"])]
    assert (still["value"] < still["threshold"] / 1.5).all()


def test_drift_against_reference_rows_equals_against_their_baseline(split):
    current = data.drift(traffic(2))
    pd.testing.assert_frame_equal(
        monitoring.drift_report(split.X_train, current),
        monitoring.drift_report(monitoring.suggest_baseline(split.X_train), current))


def test_categorical_drift_and_unseen_categories(baseline):
    current = data.drift(traffic(1), shift={}, categories={"island": {"Biscoe": 0.9,
                                                                      "Dream": 0.1}})
    report = monitoring.drift_report(baseline, current)
    assert monitoring.flagged_features(report, check=None) == ["island"]
    row = report[(report["feature"] == "island") & (report["statistic"] == "linf")].iloc[0]
    assert row["value"] > 0.3 and row["p_value"] < 1e-10
    current.loc[:9, "sex"] = "unknown"
    report = monitoring.drift_report(baseline, current)
    unseen = report[report["check"] == "categorical_values_check"].set_index("feature")
    assert unseen.loc["sex", "violated"] and unseen.loc["sex", "value"] == pytest.approx(0.01, abs=1e-3)
    assert "'unknown'" in unseen.loc["sex", "description"]
    assert not unseen.loc["island", "violated"]


def test_completeness_data_type_and_missing_column(baseline, tmp_path):
    current = traffic(3)
    current.loc[:299, "bill_depth_mm"] = np.nan
    current["bill_length_mm"] = current["bill_length_mm"].astype(object)
    current.loc[:4, "bill_length_mm"] = "n/a"
    current = current.drop(columns="sex")
    report = monitoring.drift_report(baseline, current)
    hits = report[report["violated"]]
    assert set(zip(hits["feature"], hits["check"], strict=True)) == {
        ("bill_depth_mm", "completeness_check"), ("bill_length_mm", "data_type_check"),
        ("sex", "missing_column_check")}
    found = monitoring.violations(report)
    assert {v["constraint_check_type"] for v in found} == set(hits["check"])
    assert all(v["description"].startswith(v["feature_name"]) for v in found)
    path = monitoring.write_violations(report, tmp_path / "constraint_violations.json")
    assert json.loads(path.read_text()) == {"violations": found}


def test_psi_of_equal_shares_is_zero_and_grows_with_the_move():
    even = np.full(10, 0.1)
    assert monitoring.psi(even, even) == 0
    tilted = np.r_[np.full(5, 0.05), np.full(5, 0.15)]
    assert 0 < monitoring.psi(even, tilted) < monitoring.psi(even, np.r_[np.zeros(9), 1.0])


def test_small_windows_of_normal_traffic_rarely_raise_drift(baseline):
    """PSI on 100 rows is noisy; the tests behind each distance keep false flags rare."""
    rows = data.synthesize(2000, seed=99)[data.FEATURES]
    flagged = [monitoring.flagged_features(monitoring.drift_report(baseline, rows[i:i + 100]))
               for i in range(0, 2000, 100)]
    assert sum(map(bool, flagged)) <= 2, flagged
