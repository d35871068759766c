"""A hyperparameter explorer: move a slider, watch the model refit and its scores and picture change.

:class:`Explorer` is the logic — what one setting of the sliders computes (cross-validated and
training scores, a verdict on over/under-fitting, a picture) — and needs no widget or browser.
:func:`hyperparameter_explorer` builds the panel around it; it does not display it. A slider
change is debounced (:class:`Debouncer`): dragging fires one refit, with the last value, once
the slider rests, and refits run one at a time off the kernel's main thread.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from sklearn.metrics import confusion_matrix, get_scorer
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlprod import data, tuning
from mlprod.explore import figure_png
from mlprod.widgets.fallback import Fallback

#: The sliders each family offers: hyperparameter → the values a slider steps through.
KNOBS: dict[str, dict[str, tuple]] = {
    "decision_tree": {"max_depth": (1, 2, 3, 4, 5, 6, 8, 10, None),
                      "min_samples_leaf": (1, 2, 5, 10, 20, 50)},
    "k_neighbors": {"n_neighbors": (1, 2, 3, 5, 8, 13, 21, 34, 55, 89)},
    "logistic_regression": {"C": (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)},
    "random_forest": {"n_estimators": (5, 10, 25, 50, 100),
                      "max_depth": (1, 2, 3, 4, 6, 8, None)},
    "gradient_boosting": {"n_estimators": (5, 10, 25, 50, 100),
                          "learning_rate": (0.01, 0.03, 0.1, 0.3, 1.0),
                          "max_depth": (1, 2, 3, 5)},
    "svm": {"C": (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0),
            "gamma": (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)},
}
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c")


@dataclass(frozen=True)
class Evaluation:
    """What one setting of the hyperparameters gives.

    Attributes
    ----------
    hyperparameters : dict
        The setting evaluated.
    cv_score, cv_std : float
        Mean and standard deviation of the score on the held-out folds.
    train_score : float
        Mean score on the folds' own training rows.
    verdict : str
        ``"overfitting"``, ``"underfitting"`` or ``"good fit"``.
    confusion : ndarray of shape (3, 3)
        Out-of-fold confusion matrix (rows: true class, columns: predicted), in ``data.CLASSES``.
    png : bytes
        The picture: decision regions on two numeric features, else the confusion matrix.
    """

    hyperparameters: dict[str, Any]
    cv_score: float
    cv_std: float
    train_score: float
    verdict: str
    confusion: np.ndarray
    png: bytes

    def _parts(self) -> tuple[str, str, str]:
        r = tuning.round_sig
        gap = self.train_score - self.cv_score
        return (f"CV score {r(self.cv_score)}",
                f"± {r(self.cv_std)} · train {r(self.train_score)} · gap {round(gap, 3)}",
                self.verdict)

    def text(self) -> str:
        """Describe the scores in one plain line (3 significant digits), as a notebook prints."""
        score, rest, verdict = self._parts()
        return f"{score} {rest} → {verdict}"

    def html(self) -> str:
        """The same line for the panel, the score and the verdict in bold."""
        score, rest, verdict = self._parts()
        return f"<b>{score}</b> {rest} → <b>{verdict}</b>"


class Explorer:
    """Cross-validate one model family on chosen features for any setting of its hyperparameters.

    Parameters
    ----------
    family : str
        A family of :data:`KNOBS`.
    features : sequence of str, optional
        Feature columns to use. Two numeric ones (default: bill length and depth) give a
        decision-region picture; any other choice (e.g. ``data.FEATURES``) a confusion matrix.
    X, y : DataFrame, Series, optional
        Training data, both or neither; default the training part of
        :func:`mlprod.data.split`, loaded on the first evaluation.
    scoring : str
        A scikit-learn scorer name.
    cv : int
        Stratified folds, shuffled with ``seed``.
    gap : float
        Train minus CV score above which the verdict is "overfitting".
    floor : float
        CV score below which (with a small gap) the verdict is "underfitting".
    """

    def __init__(self, family: str = "decision_tree",
                 features: Sequence[str] = ("bill_length_mm", "bill_depth_mm"),
                 X: pd.DataFrame | None = None, y: pd.Series | None = None, *,
                 scoring: str = "accuracy", cv: int = 5, seed: int = data.SEED,
                 gap: float = 0.04, floor: float = 0.9):
        if family not in KNOBS:
            raise ValueError(f"No sliders for family {family!r}; choose one of {sorted(KNOBS)}.")
        unknown = [f for f in features if f not in data.FEATURES]
        if unknown or not features:
            raise ValueError(f"Unknown features {unknown or list(features)}; choose from "
                             f"{data.FEATURES}, e.g. ('bill_length_mm', 'bill_depth_mm').")
        if (X is None) != (y is None):
            tuning.training_data(X, y, seed)  # raises, naming the one given
        self.family, self.features = family, list(features)
        self._data = None if X is None else (X, y)
        self.scorer = get_scorer(scoring)
        self.scoring, self.cv, self.seed, self.gap, self.floor = scoring, cv, seed, gap, floor
        self.knobs = KNOBS[family]
        self.regions = len(self.features) == 2 and all(f in data.NUMERIC for f in self.features)

    @property
    def X(self) -> pd.DataFrame:
        """The training rows (loaded on first use when none were given)."""
        return self._training()[0]

    @property
    def y(self) -> pd.Series:
        """The training labels (loaded on first use when none were given)."""
        return self._training()[1]

    def _training(self) -> tuple[pd.DataFrame, pd.Series]:
        if self._data is None:
            self._data = tuning.training_data(None, None, self.seed)
        return self._data

    def defaults(self) -> dict[str, Any]:
        """Return the slider values to start from: the family's default where it is offered."""
        model = tuning.estimator(self.family)
        out = {}
        for name, values in self.knobs.items():
            default = model.get_params()[name]
            out[name] = default if default in values else values[len(values) // 2]
        return out

    def pipeline(self, **hyperparameters: Any) -> Pipeline:
        """Build the pipeline for one setting: preprocessing for the features, then the model."""
        unknown = sorted(set(hyperparameters) - set(self.knobs))
        if unknown:
            raise ValueError(f"{unknown} have no slider for {self.family}; "
                             f"the sliders are {sorted(self.knobs)}.")
        model = tuning.estimator(self.family, self.seed, **hyperparameters)
        if self.features == data.FEATURES:
            return data.make_pipeline(model)
        if not all(f in data.NUMERIC for f in self.features):
            raise ValueError(f"Features {self.features}: pick numeric ones {data.NUMERIC} "
                             f"or all of data.FEATURES.")
        numeric = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
        return Pipeline([("preprocess", numeric), ("model", model)])

    def evaluate(self, **hyperparameters: Any) -> Evaluation:
        """Refit on each fold and on all rows; return the scores, the verdict and the picture."""
        setting = {**self.defaults(), **hyperparameters}
        pipe = self.pipeline(**setting)
        rows, y = self._training()
        X = rows[self.features]
        folds = StratifiedKFold(n_splits=self.cv, shuffle=True, random_state=self.seed)
        train, test = [], []
        predicted = pd.Series("", index=y.index, dtype=object)
        for fit_rows, held_out in folds.split(X, y):
            fitted = clone(pipe).fit(X.iloc[fit_rows], y.iloc[fit_rows])
            train.append(self.scorer(fitted, X.iloc[fit_rows], y.iloc[fit_rows]))
            test.append(self.scorer(fitted, X.iloc[held_out], y.iloc[held_out]))
            predicted.iloc[held_out] = fitted.predict(X.iloc[held_out])
        cv_score, train_score = float(np.mean(test)), float(np.mean(train))
        confusion = confusion_matrix(y, predicted, labels=data.CLASSES)
        if self.regions:
            png = _regions_png(clone(pipe).fit(X, y), X, y, setting)
        else:
            png = _confusion_png(confusion, setting)
        return Evaluation(setting, cv_score, float(np.std(test)), train_score,
                          self.verdict(train_score, cv_score), confusion, png)

    def verdict(self, train_score: float, cv_score: float) -> str:
        """Name the fit: overfitting (train well above CV), underfitting (both low) or good."""
        if train_score - cv_score > self.gap:
            return "overfitting"
        if cv_score < self.floor:
            return "underfitting"
        return "good fit"


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _title(setting: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items())


def _regions_png(fitted: Pipeline, X: pd.DataFrame, y: pd.Series,
                 setting: Mapping[str, Any]) -> bytes:
    """Draw the classes the model predicts over a grid of two features, training rows on top."""
    a, b = X.columns
    xs = np.linspace(X[a].min() - 1, X[a].max() + 1, 150)
    ys = np.linspace(X[b].min() - 1, X[b].max() + 1, 150)
    gx, gy = np.meshgrid(xs, ys)
    mesh = pd.DataFrame({a: gx.ravel(), b: gy.ravel()})
    codes = pd.Categorical(fitted.predict(mesh), categories=data.CLASSES).codes
    fig = Figure(figsize=(5.2, 3.8), layout="constrained")
    ax = fig.subplots()
    ax.contourf(gx, gy, codes.reshape(gx.shape), levels=[-0.5, 0.5, 1.5, 2.5],
                cmap=ListedColormap(COLORS), alpha=0.3)
    for label, color in zip(data.CLASSES, COLORS, strict=True):
        rows = y == label
        ax.scatter(X.loc[rows, a], X.loc[rows, b], s=10, color=color, label=label)
    ax.set_xlabel(a)
    ax.set_ylabel(b)
    ax.set_title(_title(setting), fontsize=9)
    ax.legend(loc="upper right", fontsize=8)
    return figure_png(fig)


def _confusion_png(confusion: np.ndarray, setting: Mapping[str, Any]) -> bytes:
    """Draw the out-of-fold confusion matrix with counts."""
    fig = Figure(figsize=(4.2, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.imshow(confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > confusion.max() / 2 else "black")
    ax.set_xticks(range(len(data.CLASSES)), data.CLASSES)
    ax.set_yticks(range(len(data.CLASSES)), data.CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(_title(setting), fontsize=9)
    return figure_png(fig)


class Debouncer:
    """Call ``fn`` once calls stop arriving for ``wait`` seconds, with the last call's arguments.

    Calls run one at a time on a timer thread, so a slow refit never runs twice at once and
    never blocks the kernel from receiving the next slider move. ``timer`` is injectable
    (tests pass a timer they fire by hand).
    """

    def __init__(self, fn: Callable[..., Any], wait: float = 0.25,
                 timer: Callable[..., Any] = threading.Timer):
        self.fn, self.wait, self.timer = fn, wait, timer
        self._pending = None
        self._lock = threading.Lock()
        self._running = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            if self._pending is not None:
                self._pending.cancel()
            self._pending = self.timer(self.wait, self._fire, args=args, kwargs=kwargs)
            self._pending.daemon = True
            self._pending.start()

    def _fire(self, *args: Any, **kwargs: Any) -> None:
        with self._running:
            self.fn(*args, **kwargs)


class ExplorerPanel(Fallback, widgets.VBox):
    """The explorer's widgets: one slider per hyperparameter, the scores and the picture.

    Building the panel fits nothing; :meth:`refresh` evaluates the sliders' setting and shows it
    (:func:`hyperparameter_explorer` calls it once, so the panel opens with its scores).
    """

    what = "hyperparameter explorer"

    def __init__(self, explorer: Explorer, start: Mapping[str, Any] | None = None,
                 wait: float = 0.25, timer: Callable[..., Any] = threading.Timer):
        self.explorer = explorer
        start = {**explorer.defaults(), **(start or {})}
        for name, value in start.items():
            if name not in explorer.knobs or value not in explorer.knobs[name]:
                raise ValueError(f"Cannot start {name}={value!r}: the sliders offer "
                                 f"{ {k: list(v) for k, v in explorer.knobs.items()} }.")
        self.sliders = {
            # Options are labels: a value of None (e.g. max_depth=None) would read as "nothing
            # selected" to the slider.
            name: widgets.SelectionSlider(
                options=[_label(v) for v in values], value=_label(start[name]),
                description=name, continuous_update=False,
                style={"description_width": "initial"},
                layout=widgets.Layout(width="420px"))
            for name, values in explorer.knobs.items()
        }
        # The first evaluation is a full cross-validation: refresh() runs it, not the constructor.
        self.status = widgets.HTML("<i>not evaluated yet: move a slider or call refresh()</i>")
        self.score = widgets.HTML()
        self.picture = widgets.Image(format="png")
        self.evaluations = 0
        self.update = Debouncer(self._refresh_shown, wait=wait, timer=timer)
        for slider in self.sliders.values():
            slider.observe(self._moved, names="value")
        title = widgets.HTML(f"<b>{explorer.family}</b> on {', '.join(explorer.features)} "
                             f"— {explorer.cv}-fold CV {explorer.scoring}")
        # The picture beside the controls at its own size (520 × 380 px), never stretched: both
        # fit together on a 1280 × 800 projector.
        self.picture.layout = widgets.Layout(width="520px", height="380px",
                                             object_fit="contain", flex="0 0 auto")
        controls = widgets.VBox([title, *self.sliders.values(), self.status, self.score],
                                layout=widgets.Layout(width="440px", flex="0 0 auto"))
        super().__init__([widgets.HBox([controls, self.picture])])
        # CSS classes name the parts for a page script or a browser test.
        self.add_class("mlprod-explorer")
        self.score.add_class("mlprod-explorer-score")
        self.picture.add_class("mlprod-explorer-picture")

    def picture_png(self) -> bytes | None:
        """The picture the panel shows now (its fallback where no kernel runs)."""
        return self.picture.value or None

    def setting(self) -> dict[str, Any]:
        """Return the sliders' current values."""
        return {name: dict(zip(map(_label, values), values, strict=True))[self.sliders[name].value]
                for name, values in self.explorer.knobs.items()}

    def _moved(self, change: Mapping[str, Any]) -> None:
        self.status.value = "<i>refitting…</i>"
        self.update()

    def _refresh_shown(self) -> None:
        # Runs on the timer thread: an error goes to the panel, not to a thread's stderr.
        try:
            self.refresh()
        except Exception as error:  # noqa: BLE001 - shown to the learner instead
            self.status.value = f"<b>Could not refit:</b> {html.escape(str(error))}"

    def refresh(self) -> Evaluation:
        """Evaluate the sliders' setting now and show it (what a debounced slider move runs)."""
        evaluation = self.explorer.evaluate(**self.setting())
        self.evaluations += 1
        self.score.value = evaluation.html()
        self.picture.value = evaluation.png
        self.status.value = ""
        return evaluation


def hyperparameter_explorer(family: str = "decision_tree",
                            features: Sequence[str] = ("bill_length_mm", "bill_depth_mm"),
                            start: Mapping[str, Any] | None = None, wait: float = 0.25,
                            **options: Any) -> ExplorerPanel:
    """Build the explorer panel for a model family, evaluated once (display it as a cell's value).

    Parameters
    ----------
    family, features
        As for :class:`Explorer`.
    start : mapping, optional
        Slider values to start from, e.g. ``{"max_depth": 2}``; default the family's defaults.
    wait : float
        Seconds a slider must rest before the model refits.
    **options
        Passed to :class:`Explorer` (``X``, ``y``, ``scoring``, ``cv``, ``gap``, ``floor``).
    """
    panel = ExplorerPanel(Explorer(family, features, **options), start=start, wait=wait)
    panel.refresh()
    return panel
