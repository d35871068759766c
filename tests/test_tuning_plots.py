"""mlprod.tuning: validation curves, figures, rounded tables and saving lesson 02's choice."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pytest
from matplotlib.figure import Figure

from mlprod import tuning

SMALL = {"C": [0.01, 1.0, 100.0]}


@pytest.fixture(scope="module")
def lr_grid():
    return tuning.search("logistic_regression", SMALL, cv=3, progress=False)


def test_plots_draw_what_they_are_given(lr_grid):
    curve = tuning.validation_curve("k_neighbors", "n_neighbors", [1, 5, 25], cv=3)
    fig = tuning.plot_validation_curve(curve)
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and ax.get_xlabel() == "n_neighbors"
    assert fig._repr_png_().startswith(b"\x89PNG")  # a notebook shows it without pyplot
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "5", "25"]
    grid = tuning.search("svm", {"C": [1.0, 10.0], "gamma": [0.1, 1.0]}, cv=3, progress=False)
    heat = tuning.plot_heatmap(grid, "C", "gamma")
    texts = sorted(t.get_text() for t in heat.axes[0].texts)
    assert texts == sorted(f"{s:.3f}" for s in grid.results.mean_score)
    table = tuning.score_table(grid, "C", "gamma")
    assert list(table.columns) == [1.0, 10.0] and list(table.index) == [0.1, 1.0]
    for row in grid.results.itertuples():
        assert table.loc[row.gamma, row.C] == row.mean_score
    # The heatmap draws the table: row 0 at the bottom, column 0 on the left.
    np.testing.assert_array_equal(heat.axes[0].images[0].get_array(), table.to_numpy())
    with pytest.raises(ValueError, match=r"\['kernel'\] not searched"):
        tuning.plot_heatmap(grid, "C", "kernel")
    families = tuning.plot_families(lr_grid)
    assert [t.get_text() for t in families.axes[0].get_yticklabels()] == ["logistic_regression"]


def test_best_per_family_and_top_round_scores(lr_grid):
    top = lr_grid.top(2)
    assert len(top) == 2 and "fit_time" not in top
    assert top.mean_score.iloc[0] == tuning.round_sig(lr_grid.results.mean_score.iloc[0])
    best = tuning.best_per_family(lr_grid)
    assert best.family.tolist() == ["logistic_regression"] and best["rank"].tolist() == [1]
    assert tuning.round_sig(0.0123456) == 0.0123 and tuning.round_sig(987.65) == 988
    assert lr_grid.cost()["fits"] == 9


def test_save_choice_writes_the_pipeline_and_the_choice(lr_grid, split, tmp_path):
    folder = tuning.save_choice(lr_grid, tmp_path / "choice", test_score=0.5)
    choice = json.loads((folder / "choice.json").read_text())
    assert choice["params"] == lr_grid.best_params and choice["test_score"] == 0.5
    loaded = joblib.load(folder / "model.joblib")
    np.testing.assert_array_equal(loaded.predict(split.X_test),
                                  lr_grid.best_pipeline.predict(split.X_test))
    assert sorted(p.name for p in folder.iterdir()) == ["choice.json", "model.joblib"]
    # Readable by others like any file a notebook writes, not private as a temporary file is.
    assert {(folder / n).stat().st_mode & 0o777 for n in ("choice.json", "model.joblib")} == {0o644}


def test_save_choice_that_fails_leaves_no_partial_file(lr_grid, tmp_path, monkeypatch):
    def full_disk(value, fh):
        fh.write(b"half a pickle")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(joblib, "dump", full_disk)
    with pytest.raises(OSError, match="No space left"):
        tuning.save_choice(lr_grid, tmp_path / "choice")
    assert list((tmp_path / "choice").iterdir()) == []
