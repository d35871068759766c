"""mlprod.widgets.explorer: what a slider move computes, the debouncing, and the panel's wiring."""

from __future__ import annotations

import base64
import threading

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, cross_validate

from mlprod import data
from mlprod.widgets import Explorer, ExplorerPanel, hyperparameter_explorer
from mlprod.widgets.explorer import Debouncer

PNG = b"\x89PNG\r\n\x1a\n"


class ManualTimer:
    """Stands in for threading.Timer: records each timer; the test fires the one it wants."""

    made: list[ManualTimer] = []

    def __init__(self, wait, fn, args=(), kwargs=None):
        self.wait, self.fn, self.args, self.kwargs = wait, fn, args, kwargs or {}
        self.started = self.cancelled = False
        self.daemon = False
        ManualTimer.made.append(self)

    def start(self):
        self.started = True

    def cancel(self):
        self.cancelled = True

    def fire(self):
        assert self.started and not self.cancelled
        self.fn(*self.args, **self.kwargs)


@pytest.fixture
def timers():
    ManualTimer.made = []
    return ManualTimer.made


@pytest.fixture(scope="module")
def tree():
    return Explorer("decision_tree")


def test_evaluate_matches_scikit_learn_cross_validation(tree, split):
    result = tree.evaluate(max_depth=3)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=data.SEED)
    X = split.X_train[["bill_length_mm", "bill_depth_mm"]]
    expected = cross_validate(tree.pipeline(max_depth=3, min_samples_leaf=1), X, split.y_train,
                              cv=folds, return_train_score=True)
    assert result.cv_score == pytest.approx(expected["test_score"].mean())
    assert result.cv_std == pytest.approx(expected["test_score"].std())
    assert result.train_score == pytest.approx(expected["train_score"].mean())
    assert result.hyperparameters == {"max_depth": 3, "min_samples_leaf": 1}
    assert result.confusion.sum() == len(split.y_train)
    # Out-of-fold predictions: the diagonal is the rows each held-out fold got right.
    assert np.trace(result.confusion) / len(split.y_train) == pytest.approx(
        result.cv_score, abs=0.01)
    assert result.png.startswith(PNG)


def test_verdicts_follow_the_scores(tree):
    stump, deep = tree.evaluate(max_depth=1), tree.evaluate(max_depth=None)
    assert stump.verdict == "underfitting" and stump.cv_score < tree.floor
    assert deep.train_score - deep.cv_score > tree.gap and deep.verdict == "overfitting"
    assert tree.verdict(0.95, 0.94) == "good fit"
    assert "overfitting" in deep.html() and f"{round(deep.train_score, 3)}" in deep.html()


def test_all_features_give_the_course_pipeline_and_a_confusion_matrix(split):
    knn = Explorer("k_neighbors", features=data.FEATURES, cv=3)
    assert not knn.regions
    assert [name for name, _ in knn.pipeline().steps] == ["preprocess", "model"]
    result = knn.evaluate(n_neighbors=1)
    assert result.png.startswith(PNG) and result.train_score == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: Explorer("neural_net"), r"No sliders for family 'neural_net'.*decision_tree"),
        (lambda: Explorer(features=("beak",)), r"Unknown features \['beak'\]"),
        (lambda: Explorer(features=("island", "bill_length_mm")).pipeline(),
         "pick numeric ones"),
        (lambda: Explorer().pipeline(depth=3), r"\['depth'\] have no slider.*max_depth"),
        (lambda: hyperparameter_explorer(start={"max_depth": 7}),
         r"Cannot start max_depth=7: the sliders offer"),
        (lambda: Explorer(X=data.split().X_train),
         r"X was given \(a DataFrame of shape \(275, 6\)\) but y was not. Pass both"),
        (lambda: hyperparameter_explorer(y=data.split().y_train),
         r"y was given \(a Series of shape \(275,\)\) but X was not. Pass both"),
    ],
    ids=["family", "feature", "categorical-pair", "slider", "start", "X-only", "y-only"],
)
def test_clear_errors(make, expected):
    with pytest.raises(ValueError, match=expected):
        make()


def test_building_fits_nothing_and_loads_no_data(monkeypatch, timers):
    loads = []
    real_split = data.split
    monkeypatch.setattr(data, "split", lambda **kw: loads.append(kw) or real_split(**kw))
    panel = ExplorerPanel(Explorer("decision_tree"), timer=ManualTimer)
    assert loads == [] and panel.evaluations == 0 and panel.score.value == ""
    assert "refresh()" in panel.status.value
    panel.refresh()
    panel.refresh()
    assert len(loads) == 1 and panel.evaluations == 2 and "CV score" in panel.score.value


def test_given_training_rows_are_the_ones_evaluated(split):
    rows, labels = split.X_train.iloc[:150], split.y_train.iloc[:150]
    result = Explorer("decision_tree", X=rows, y=labels).evaluate(max_depth=2)
    assert result.confusion.sum() == 150


def test_debouncer_runs_once_with_the_last_arguments(timers):
    calls = []
    debounced = Debouncer(lambda *a, **k: calls.append((a, k)), wait=0.5, timer=ManualTimer)
    for depth in range(10):
        debounced(depth, key="x")
    assert len(timers) == 10 and all(t.wait == 0.5 and t.started for t in timers)
    assert [t.cancelled for t in timers] == [True] * 9 + [False]
    timers[-1].fire()
    assert calls == [((9,), {"key": "x"})]


def test_debouncer_with_real_timers_coalesces_a_burst():
    done = threading.Event()
    calls = []

    def record(value):
        calls.append(value)
        if value == 4:
            done.set()

    debounced = Debouncer(record, wait=0.2)
    for value in range(5):
        debounced(value)
    assert done.wait(timeout=10)
    assert calls[-1] == 4 and len(calls) < 5


def test_panel_refits_once_per_burst_and_shows_the_new_scores(timers):
    panel = ExplorerPanel(Explorer("decision_tree"), start={"max_depth": 2}, timer=ManualTimer)
    panel.refresh()
    first_score, first_png = panel.score.value, bytes(panel.picture.value)
    assert panel.evaluations == 1 and first_png.startswith(PNG)
    slider = panel.sliders["max_depth"]
    assert slider.value == "2" and slider.continuous_update is False
    for label in ("3", "4", "5", "None"):  # a drag: four value changes
        slider.value = label
    assert panel.status.value and panel.evaluations == 1  # nothing refitted yet
    timers[-1].fire()
    assert panel.evaluations == 2 and sum(not t.cancelled for t in timers) == 1
    assert panel.setting() == {"max_depth": None, "min_samples_leaf": 1}
    assert panel.score.value != first_score and bytes(panel.picture.value) != first_png
    assert "overfitting" in panel.score.value and panel.status.value == ""


def test_panel_shows_an_error_instead_of_losing_it(timers):
    panel = ExplorerPanel(Explorer("decision_tree"), timer=ManualTimer)

    def broken(**hyperparameters):
        raise RuntimeError("no memory left")

    panel.explorer.evaluate = broken
    panel.sliders["max_depth"].value = "3"
    timers[-1].fire()
    assert "Could not refit" in panel.status.value and "no memory left" in panel.status.value


def test_builder_returns_a_widget_it_does_not_display(monkeypatch, capsys):
    import IPython.core.display_functions
    import IPython.display
    import ipywidgets.widgets.interaction

    from mlprod.widgets import explorer

    shown = []
    record = lambda *objects, **kwargs: shown.append(objects)  # noqa: E731
    for module in (IPython.display, IPython.core.display_functions,
                   ipywidgets.widgets.interaction):
        monkeypatch.setattr(module, "display", record)
    monkeypatch.setattr(IPython.core.display_functions, "publish_display_data", record)
    # Should the module hold its own reference to display, replace that too.
    monkeypatch.setattr(explorer, "display", record, raising=False)
    monkeypatch.setattr(ExplorerPanel, "_repr_mimebundle_", record)
    panel = hyperparameter_explorer("logistic_regression", start={"C": 0.01})
    assert shown == []
    assert capsys.readouterr().out == ""  # display() outside a kernel prints instead
    assert isinstance(panel, ExplorerPanel) and panel.evaluations == 1
    assert list(panel.sliders) == ["C"] and panel.sliders["C"].value == "0.01"
    assert panel.children[0].children[-1] is panel.picture and "CV score" in panel.score.value


def test_the_picture_sits_beside_the_controls_at_its_own_size_and_is_the_fallback():
    panel = hyperparameter_explorer("logistic_regression", start={"C": 0.01})
    row = panel.children[0]
    assert type(row).__name__ == "HBox" and row.children[1] is panel.picture
    assert (panel.picture.layout.width, panel.picture.layout.height) == ("520px", "380px")
    bundle = panel._repr_mimebundle_()
    assert bundle["text/plain"].startswith("The hyperparameter explorer: an interactive widget")
    assert base64.b64decode(bundle["image/png"]) == bytes(panel.picture.value)
