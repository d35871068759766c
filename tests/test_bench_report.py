"""The benchmark's report arithmetic: each 0.8x target against the bare endpoint's runs taken in turn."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench  # noqa: E402 - beside the benchmark's own modules, as `make bench` runs it


def figure(rps: float) -> dict:
    return {"requests_per_s": rps}


def test_a_feature_is_judged_against_the_bare_runs_taken_in_turn_with_it():
    report = {"bare": {"one_row_c16": figure(8000)},
              "features": {"routing (one variant)": {"v2_one_row_c16": figure(6200)}},
              "bare_beside": {"routing (one variant)": {"one_row_c16": figure(7200)}}}
    target = bench.feature_target(report, "routing (one variant)")
    # 6,200 / 7,200 = 0.86: met, where the first bare figure (8,000) would give 0.78.
    assert target["met"] and target["measured"].startswith("0.86x (6,200 vs 7,200 req/s")
    report["bare_beside"]["routing (one variant)"]["one_row_c16"] = figure(7800)
    assert not bench.feature_target(report, "routing (one variant)")["met"]  # 0.79x


def test_a_report_without_adjacent_figures_uses_the_first_bare_measurement():
    report = {"bare": {"one_row_c16": figure(7000)},
              "features": {"capture": {"v2_one_row_c16": figure(5700)}}}
    assert bench.feature_target(report, "capture")["measured"].startswith("0.81x")


def test_the_default_configuration_is_judged_against_its_own_turns():
    report = {"bare": {"one_row_c16": figure(8000), "one_row_c1": {"p50_ms": 0.15},
                       "ready_s": 0.3},
              "bare_beside": {"default configuration": {"one_row_c16": figure(7000)}},
              "server": {"v2_one_row_c16": figure(5740), "v2_one_row_c1": {"p50_ms": 0.17},
                         "v2_batch_c4": {"rows_per_s": 1e6}, "csv_batch_c4": {"rows_per_s": 5e5},
                         "ready_s": 0.8},
              "floor": {"threads_1": {"one_row_p50_us": 20.0}}}
    first, p50, *_, ready = bench.targets(report)
    assert first["met"] and first["measured"].startswith("0.82x (5,740 vs 7,000 req/s")
    assert p50["met"] and "1.13x" in p50["measured"]  # 0.17 ms against 1.2 x 0.15 ms
    assert not ready["met"] and "2.7x" in ready["measured"]  # 0.8 s against 2.5 x 0.3 s
