"""mlprod.tuning's search runner: the results table, seeding, halving, errors and lesson 02's winner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
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


def test_validation_curve_matches_cross_validation(split):
    curve = tuning.validation_curve("decision_tree", "max_depth", [1, None], cv=3)
    assert curve.value.tolist() == [1, None]
    assert curve.attrs == {"name": "max_depth", "family": "decision_tree", "scoring": "accuracy"}
    test, train = _independent_scores(split, tuning.estimator("decision_tree", max_depth=None))
    assert curve.cv_mean.iloc[1] == pytest.approx(test.mean())
    assert curve.train_mean.iloc[1] == pytest.approx(train.mean()) == pytest.approx(1.0)
    assert curve.train_mean.iloc[0] < curve.train_mean.iloc[1]  # a stump underfits


def test_search_best_pipeline_is_the_default_searchs_winner_and_deterministic(split):
    pipe = tuning.search_best_pipeline()
    again = tuning.search_best_pipeline()
    winner = tuning.default_search(progress=False)
    assert [name for name, _ in pipe.steps] == ["preprocess", "model"]
    assert isinstance(pipe.named_steps["preprocess"], ColumnTransformer)
    model = pipe.named_steps["model"]
    assert type(model).__name__ == type(winner.best_pipeline.named_steps["model"]).__name__
    assert model.get_params() == winner.best_pipeline.named_steps["model"].get_params()
    np.testing.assert_array_equal(pipe.predict_proba(split.X_test),
                                  again.predict_proba(split.X_test))
    assert winner.results.family.nunique() == 3  # the lesson compares three families


def test_search_best_pipeline_converts_to_onnx_with_parity(split):
    import onnxruntime as ort
    from skl2onnx import to_onnx

    pipe = tuning.search_best_pipeline()
    X = split.X_test.astype({c: np.float32 for c in data.NUMERIC})
    onx = to_onnx(pipe, X[:1], options={"zipmap": False})
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {c: X[[c]].to_numpy() for c in data.FEATURES})
    np.testing.assert_array_equal(labels, pipe.predict(split.X_test))
    # A logistic regression is held to the linear tolerance the export lesson applies.
    tolerance = default_tolerance(pipe)
    assert tolerance == LINEAR_TOLERANCE == 1e-4
    assert np.abs(probabilities - pipe.predict_proba(split.X_test)).max() <= tolerance
