"""mlprod.traffic's judging arithmetic, on answers made by hand (no server)."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy import stats

from mlprod import traffic


def answers(counts: dict[str, tuple[int, int]], extra: tuple = ()) -> pd.DataFrame:
    """Answers per variant: (right, wrong), all status 200; then the ``extra`` records."""
    rows = []
    for variant, (right, wrong) in counts.items():
        rows += [{"status": 200, "variant": variant, "correct": True, "latency_ms": 1.0}] * right
        rows += [{"status": 200, "variant": variant, "correct": False, "latency_ms": 3.0}] * wrong
    return pd.DataFrame([*rows, *extra]).reindex(columns=traffic.COLUMNS)


def test_68_of_69_against_69_of_69_decides_nothing():
    table, p_value = traffic.compare(answers({"a": (69, 0), "b": (68, 1)}))
    assert table.loc["b", "accuracy"] == pytest.approx(68 / 69)
    assert table.loc["a", "low"] < table.loc["b", "high"]  # the intervals overlap
    assert p_value == pytest.approx(1.0)


def test_a_real_difference_on_enough_traffic_is_found():
    table, p_value = traffic.compare(answers({"a": (990, 10), "b": (900, 100)}))
    assert table.loc["b", "high"] < table.loc["a", "low"] and p_value < 1e-6
    wilson = stats.binomtest(900, 1000).proportion_ci(0.95, method="wilson")
    assert (table.loc["b", "low"], table.loc["b", "high"]) == pytest.approx(
        (wilson.low, wilson.high))


def test_shares_count_errors_and_unrouted_answers():
    frame = answers({"a": (3, 1)}, [{"status": 503, "variant": None, "latency_ms": 9.0}])
    summary = traffic.shares(frame)
    assert summary.loc["AllTraffic", "errors"] == 1 and summary.loc["a", "errors"] == 0
    assert summary.loc["a", "share"] == pytest.approx(0.8)
    assert summary.loc["a", "accuracy"] == pytest.approx(0.75)


def test_compare_without_labels_says_what_to_do():
    with pytest.raises(ValueError, match="labels="):
        traffic.compare(answers({"a": (1, 0)}).assign(correct=None))


def test_labelled_rows_go_one_a_request_with_their_inference_id(server, split):
    from mlprod.client import Client

    frame = split.X_test.head(4).assign(species=split.y_test.head(4).to_numpy())
    with Client(server.url) as client:
        truth = traffic.send_labelled(client, frame, "normal")
        sent = dict(client.last.request_headers)
    assert truth == dict(zip([f"normal-{i:04d}" for i in range(4)], frame["species"],
                             strict=True))
    assert sent["X-Amzn-SageMaker-Inference-Id"] == "normal-0003"
    assert client.last.status == 200
