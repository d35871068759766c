"""Tests of mlprod.explore: the tables and figures of lesson 01."""

from __future__ import annotations

import pytest

from mlprod import data, explore


@pytest.fixture(scope="module")
def frame():
    return data.load_penguins()


def test_overview_counts_missing_values_of_both_kinds(frame):
    table = explore.overview(frame)
    assert list(table.index) == data.FEATURES + [data.TARGET]
    assert table.loc["sex", "missing"] == (frame["sex"] == "").sum() == 11
    assert table.loc["sex", "distinct"] == 2  # male, female; "" is missing, not a category
    for col in data.NUMERIC:
        assert table.loc[col, "missing"] == frame[col].isna().sum()
        assert table.loc[col, "kind"] == "numeric"
    assert table.loc["species", "kind"] == "target"


def test_class_balance_follows_the_class_order_and_sums_to_one(frame):
    table = explore.class_balance(frame[data.TARGET])
    assert list(table.index) == data.CLASSES
    assert table["count"].sum() == len(frame)
    assert table["share"].sum() == pytest.approx(1, abs=0.002)


def test_island_species_table_shows_gentoo_only_on_biscoe(frame):
    table = explore.island_species(frame)
    assert table.loc[["Dream", "Torgersen"], "Gentoo"].sum() == 0
    assert table.loc["Biscoe", "Gentoo"] == (frame[data.TARGET] == "Gentoo").sum()


def test_plots_return_closed_figures_with_their_panels(frame):
    import matplotlib.pyplot as plt

    figures = [explore.plot_distributions(frame), explore.plot_relation(frame),
               explore.plot_workflow()]
    assert [len(f.axes) for f in figures] == [6, 1, 1]
    assert plt.get_fignums() == []  # closed in pyplot: displayed once, by the returned object


def test_plot_relation_refuses_non_numeric_features(frame):
    with pytest.raises(ValueError, match=r"\['island'\] are not numeric"):
        explore.plot_relation(frame, "island", "bill_depth_mm")


@pytest.mark.parametrize(("value", "rounded"), [(4211.3, 4210.0), (44.149, 44.1), (0.012345, 0.0123)])
def test_round3_keeps_three_significant_digits(value, rounded):
    assert explore.round3(value) == rounded
