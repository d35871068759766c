"""The benchmark's report arithmetic: each feature against the bare endpoint measured just before it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench  # noqa: E402 - beside the benchmark's own modules, as `make bench` runs it


def figure(rps: float) -> dict:
    return {"requests_per_s": rps}


def test_a_feature_is_judged_against_the_bare_endpoint_measured_next_to_it():
    report = {"bare": {"one_row_c16": figure(8000)},
              "features": {"routing (one variant)": {"v2_one_row_c16": figure(6200)}},
              "features_bare": {"routing (one variant)": {"one_row_c16": figure(7200)}}}
    target = bench.feature_target(report, "routing (one variant)")
    # 6,200 / 7,200 = 0.86: met, where the first bare figure (8,000) would give 0.78.
    assert target["met"] and target["measured"].startswith("0.86x (6,200 vs 7,200 req/s")
    report["features_bare"]["routing (one variant)"]["one_row_c16"] = figure(7800)
    assert not bench.feature_target(report, "routing (one variant)")["met"]  # 0.79x


def test_a_report_without_adjacent_figures_uses_the_first_bare_measurement():
    report = {"bare": {"one_row_c16": figure(7000)},
              "features": {"capture": {"v2_one_row_c16": figure(5700)}}}
    assert bench.feature_target(report, "capture")["measured"].startswith("0.81x")
