"""mlprod.tuning: the results table, seeding, halving, the Dask path, errors, plots and lesson 02's choice."""

from __future__ import annotations

import json
import socket

import joblib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy.stats import loguniform
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate

from mlprod import data, tuning
from mlprod.export.parity import LINEAR_TOLERANCE, default_tolerance

SMALL = {"C": [0.01, 1.0, 100.0]}


def _independent_scores(split, model, cv=3, seed=data.SEED):
    """Cross-validate the pipeline directly with scikit-learn, on the folds the search uses."""
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    scores = cross_validate(data.make_pipeline(model), split.X_train, split.y_train, cv=folds,
                            return_train_score=True)
    return scores["test_score"], scores["train_score"]


@pytest.fixture(scope="module")
def lr_grid():
    return tuning.search("logistic_regression", SMALL, cv=3, progress=False)


def test_results_table_has_one_row_per_candidate_best_first(lr_grid, split):
    table = lr_grid.results
    assert list(table.columns) == ["family", "C", "mean_score", "std_score", "mean_train_score",
                                   "fit_time", "n_resources", "rank"]
    assert sorted(table.C) == SMALL["C"]
    assert table["rank"].tolist() == [1, 2, 3]
    assert table.mean_score.is_monotonic_decreasing
    assert (table.fit_time > 0).all() and (table.n_resources == len(split.X_train)).all()
    assert set(table.family) == {"logistic_regression"}
    assert lr_grid.n_fits == 9 and lr_grid.method == "grid" and lr_grid.scoring == "accuracy"
    assert lr_grid.rows_used == 9 * len(split.X_train)


def test_scores_match_scikit_learn_cross_validation(lr_grid, split):
    for row in lr_grid.results.itertuples():
        test, train = _independent_scores(split, LogisticRegression(C=row.C, max_iter=1000))
        assert row.mean_score == pytest.approx(test.mean())
        assert row.std_score == pytest.approx(test.std())
        assert row.mean_train_score == pytest.approx(train.mean())


def test_best_pipeline_is_the_best_candidate_refitted(lr_grid, split):
    best = lr_grid.results.iloc[0]
    assert lr_grid.best_params == {"family": "logistic_regression", "C": best.C}
    assert lr_grid.best_score == pytest.approx(best.mean_score)
    pipe = lr_grid.best_pipeline
    assert [name for name, _ in pipe.steps] == ["preprocess", "model"]
    assert pipe.named_steps["model"].C == best.C
    expected = data.make_pipeline(LogisticRegression(C=best.C, max_iter=1000))
    expected.fit(split.X_train, split.y_train)
    np.testing.assert_allclose(pipe.predict_proba(split.X_test),
                               expected.predict_proba(split.X_test))


def test_compare_marks_hyperparameters_a_family_does_not_have():
    result = tuning.compare({"logistic_regression": {"C": [1.0]},
                             "random_forest": {"max_depth": [2, None], "n_estimators": [10]}},
                            cv=3, progress=False)
    table = result.results.set_index("family", append=True)
    assert set(result.results.family) == {"logistic_regression", "random_forest"}
    lr = result.results[result.results.family == "logistic_regression"].iloc[0]
    assert pd.isna(lr.max_depth) and lr.max_depth is not None  # not searched: NaN
    forests = result.results[result.results.family == "random_forest"]
    assert any(v is None for v in forests.max_depth)  # searched value None: kept as None
    assert forests.C.isna().all() and len(table) == 3


def test_random_search_is_reproducible_with_a_seed_and_varies_without():
    space = {"C": loguniform(1e-3, 1e3)}

    def run(seed):
        result = tuning.search("logistic_regression", space, method="random", n_iter=4, cv=3,
                               seed=seed, progress=False)
        return result.results.drop(columns="fit_time")

    first, again, other = run(1), run(1), run(2)
    pd.testing.assert_frame_equal(first, again)
    assert sorted(first.C) != sorted(other.C)
    assert len(first) == 4


def test_seed_reaches_estimators_without_a_random_state():
    a = tuning.search("random_forest", {"n_estimators": [5]}, cv=3, seed=3, progress=False)
    b = tuning.search("random_forest", {"n_estimators": [5]}, cv=3, seed=3, progress=False)
    assert a.best_pipeline.named_steps["model"].random_state == 3
    assert a.best_score == b.best_score


def test_halving_keeps_each_candidates_last_round(split):
    space = {"C": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]}
    result = tuning.search("logistic_regression", space, method="halving", progress=False)
    table = result.results
    assert len(table) == len(space["C"]) and sorted(table.C) == space["C"]
    assert table.n_resources.iloc[0] == table.n_resources.max() <= len(split.X_train)
    assert table.n_resources.min() < table.n_resources.max()
    assert result.best_params["C"] == table.C.iloc[0]
    # Every candidate runs in round 1; a round's survivors are those whose last round is later.
    rounds = sorted(table.n_resources.unique())
    assert result.n_fits == 5 * sum(int((table.n_resources >= r).sum()) for r in rounds)
    assert result.rows_used == 5 * sum(r * int((table.n_resources >= r).sum()) for r in rounds)
    assert result.rows_used < 5 * len(space["C"]) * len(split.X_train)  # less than a grid


def test_progress_bar_counts_every_fit(capsys):
    result = tuning.search("logistic_regression", SMALL, cv=3, progress=True, n_jobs=1)
    err = capsys.readouterr().err
    assert f"{result.n_fits}/{result.n_fits}" in err


def test_progress_bar_grows_with_each_halving_round(capsys):
    space = {"C": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]}
    result = tuning.search("logistic_regression", space, method="halving", progress=True)
    assert result.n_fits > 5 * len(space["C"])  # later rounds refit the survivors
    assert f"{result.n_fits}/{result.n_fits}" in capsys.readouterr().err


def test_n_jobs_and_an_explicit_joblib_backend_do_not_change_the_result(lr_grid):
    # Worker processes receive the search by pickling; its progress bar must stay here.
    with joblib.parallel_config(backend="loky", n_jobs=2):
        other = tuning.search("logistic_regression", SMALL, cv=3, progress=True)
    serial = tuning.search("logistic_regression", SMALL, cv=3, progress=False, n_jobs=1)
    for result in (other, serial):
        pd.testing.assert_frame_equal(result.results.drop(columns="fit_time"),
                                      lr_grid.results.drop(columns="fit_time"))


_FITTED_ON: list[str] = []


class _WhereLR(LogisticRegression):
    """A logistic regression that notes where it was fitted: a Dask worker's address or "here"."""

    def fit(self, X, y, **params):
        from dask.distributed import get_worker

        try:
            _FITTED_ON.append(get_worker().address)
        except ValueError:
            _FITTED_ON.append("here")
        return super().fit(X, y, **params)


def test_dask_path_fits_on_the_cluster_and_gives_the_local_result(lr_grid):
    from dask.distributed import Client, LocalCluster

    _FITTED_ON.clear()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        worker = next(iter(cluster.workers.values())).address
        result = tuning.search(_WhereLR(max_iter=1000), SMALL, cv=3, progress=False,
                               cluster=client)
    # Every cross-validation fit ran on the worker; only the final refit ran here.
    assert _FITTED_ON.count(worker) == result.n_fits == 9
    assert _FITTED_ON.count("here") == 1 and len(_FITTED_ON) == 10
    columns = ["C", "mean_score", "std_score", "mean_train_score", "rank"]
    pd.testing.assert_frame_equal(result.results[columns], lr_grid.results[columns])


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: tuning.search("random_forest", {"max_dept": [2]}),
         r"Unknown hyperparameter\(s\) \['max_dept'\].*Did you mean 'max_depth'.*Valid ones:"),
        (lambda: tuning.search("logistic_regression", {}), "search space for .* is empty"),
        (lambda: tuning.search("logistic_regression", {"C": []}), "'C' has no values"),
        (lambda: tuning.compare({}), "search space is empty"),
        (lambda: tuning.search("logistic_regression", SMALL, scoring="acuracy"),
         r"Unknown scoring 'acuracy'. Did you mean \['accuracy'"),
        (lambda: tuning.search("forest", SMALL), r"Unknown model family 'forest'.*random_forest"),
        (lambda: tuning.search("logistic_regression", SMALL, method="bayes"),
         r"Unknown search method 'bayes'.*'grid', 'random', 'halving'"),
        (lambda: tuning.search("logistic_regression", {"C": loguniform(0.1, 10)}),
         "is a distribution; a grid search needs a list"),
        (lambda: tuning.search("logistic_regression", {"C": 1.0}), "give a list"),
        (lambda: tuning.search("logistic_regression", SMALL, cluster="my cluster"),
         "'my cluster' is not a Dask scheduler address"),
        (lambda: tuning.validation_curve("decision_tree", "depth", [1, 2]),
         r"Unknown hyperparameter\(s\) \['depth'\].*Valid ones: \[.*'max_depth'"),
    ],
    ids=["hyperparameter", "empty-space", "empty-values", "no-family", "scoring", "family",
         "method", "distribution-in-grid", "scalar", "cluster-address", "curve-name"],
)
def test_clear_errors(call, expected):
    with pytest.raises(ValueError, match=expected):
        call()


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda split: tuning.compare({"logistic_regression": SMALL}, split.X_train),
         r"X was given \(a DataFrame of shape \(275, 6\)\) but y was not"),
        (lambda split: tuning.search("logistic_regression", SMALL, y=split.y_train),
         r"y was given \(a Series of shape \(275,\)\) but X was not"),
        (lambda split: tuning.validation_curve("decision_tree", "max_depth", [1], split.X_train),
         "X was given .* but y was not"),
    ],
    ids=["compare-X", "search-y", "curve-X"],
)
def test_half_the_training_data_is_refused_not_replaced(call, expected, split):
    with pytest.raises(ValueError, match=expected) as raised:
        call(split)
    assert "Pass both X (the feature rows) and y (their labels), or neither" in str(raised.value)


def test_given_training_data_is_used_as_given(split):
    rows = split.X_train.iloc[:120]
    result = tuning.search("logistic_regression", {"C": [1.0]}, rows, split.y_train.iloc[:120],
                           cv=3, progress=False)
    assert (result.results.n_resources == 120).all() and result.rows_used == 3 * 120
    assert tuning.training_data(rows, split.y_train)[0] is rows


def test_an_unreachable_scheduler_is_named_with_the_fix(monkeypatch):
    monkeypatch.setattr(tuning, "CONNECT_TIMEOUT", 1.0)
    with socket.socket() as sock:  # a port nothing listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(ConnectionError, match=r"No Dask scheduler answered at .*cluster='local'"):
            tuning.compare({"logistic_regression": SMALL}, cluster=address, progress=False)


def test_validation_curve_matches_cross_validation(split):
    curve = tuning.validation_curve("decision_tree", "max_depth", [1, None], cv=3)
    assert curve.value.tolist() == [1, None]
    assert curve.attrs == {"name": "max_depth", "family": "decision_tree", "scoring": "accuracy"}
    test, train = _independent_scores(split, tuning.estimator("decision_tree", max_depth=None))
    assert curve.cv_mean.iloc[1] == pytest.approx(test.mean())
    assert curve.train_mean.iloc[1] == pytest.approx(train.mean()) == pytest.approx(1.0)
    assert curve.train_mean.iloc[0] < curve.train_mean.iloc[1]  # a stump underfits


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


def test_tuned_pipeline_is_the_default_searchs_winner_and_deterministic(split):
    pipe = tuning.tuned_pipeline()
    again = tuning.tuned_pipeline()
    winner = tuning.default_search(progress=False)
    assert [name for name, _ in pipe.steps] == ["preprocess", "model"]
    assert isinstance(pipe.named_steps["preprocess"], ColumnTransformer)
    model = pipe.named_steps["model"]
    assert type(model).__name__ == type(winner.best_pipeline.named_steps["model"]).__name__
    assert model.get_params() == winner.best_pipeline.named_steps["model"].get_params()
    np.testing.assert_array_equal(pipe.predict_proba(split.X_test),
                                  again.predict_proba(split.X_test))
    assert winner.results.family.nunique() == 3  # the lesson compares three families


def test_tuned_pipeline_converts_to_onnx_with_parity(split):
    import onnxruntime as ort
    from skl2onnx import to_onnx

    pipe = tuning.tuned_pipeline()
    X = split.X_test.astype({c: np.float32 for c in data.NUMERIC})
    onx = to_onnx(pipe, X[:1], options={"zipmap": False})
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {c: X[[c]].to_numpy() for c in data.FEATURES})
    np.testing.assert_array_equal(labels, pipe.predict(split.X_test))
    # A logistic regression is held to the linear tolerance the export lesson applies.
    tolerance = default_tolerance(pipe)
    assert tolerance == LINEAR_TOLERANCE == 1e-4
    assert np.abs(probabilities - pipe.predict_proba(split.X_test)).max() <= tolerance
