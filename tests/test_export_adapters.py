"""The private APIs the export paths reach into, each behind one adapter that names its library's version.

Each adapter has a check run here against the installed library: after an upgrade that changes the
private API, the check fails with a message naming the library and its version, and the simulated
changes below show that message.
"""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest
import sklearn
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from mlprod import data
from mlprod.export import pmml, pmml_converter, recode
from mlprod.export.recode import gradient_boosting


# -- scikit-learn's GradientBoostingClassifier._raw_predict_init (the C generator) ---------------
def test_raw_predict_init_adds_up_to_the_public_decision_function():
    gradient_boosting.check_raw_predict_init()


def test_a_changed_raw_predict_init_is_named_with_the_scikit_learn_version(monkeypatch):
    # A plausible change: one row's starting scores come back as a flat array.
    monkeypatch.setattr(GradientBoostingClassifier, "_raw_predict_init",
                        lambda self, X: np.zeros(len(X)), raising=False)
    with pytest.raises(RuntimeError, match=rf"^scikit-learn {sklearn.__version__} changed "
                       r"GradientBoostingClassifier's private _raw_predict_init: .*to_onnx"):
        gradient_boosting.check_raw_predict_init()


def test_a_row_dependent_init_is_refused_by_the_c_generator(split):
    model = GradientBoostingClassifier(n_estimators=3, init=LogisticRegression(max_iter=1000),
                                       random_state=data.SEED)
    pipeline = data.make_pipeline(model).fit(split.X_train, split.y_train)
    with pytest.raises(NotImplementedError, match=r"init=LogisticRegression.*mlprod.export.to_onnx"):
        recode.generate_c(pipeline)


# -- sklearn2pmml's converter, driven by reflection in this process's JVM ------------------------
def test_sklearn2pmml_converter_has_what_the_adapter_reaches():
    reason = pmml.unavailable()
    if reason:
        pytest.skip(reason)
    pmml.start_jvm()
    pmml_converter.check_converter()
    assert any("sklearn2pmml-" in jar for jar in pmml_converter.classpath())


def test_a_changed_converter_is_named_with_the_sklearn2pmml_version(monkeypatch):
    import sklearn2pmml

    version = metadata.version("sklearn2pmml")
    monkeypatch.delattr(sklearn2pmml, "_package_classpath")
    with pytest.raises(RuntimeError, match=rf"^sklearn2pmml {version} changed what mlprod reaches "
                       r"inside it: sklearn2pmml._package_classpath\(\) is gone"):
        pmml_converter.classpath()
    monkeypatch.undo()
    reason = pmml.unavailable()
    if reason:
        pytest.skip(reason)
    pmml.start_jvm()
    monkeypatch.setattr(pmml_converter, "FIELDS", ("inputFile", "sourceFile"))
    with pytest.raises(RuntimeError, match=rf"^sklearn2pmml {version} changed .*'sourceFile'"):
        pmml_converter.check_converter()
