"""Tests of mlprod.export.onnx and parity: the ONNX contract, metadata, and refusing bad exports."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier

from mlprod import data, export
from mlprod.export.parity import LINEAR_TOLERANCE, TREE_TOLERANCE

FAMILIES = {
    "logistic_regression": None,
    "random_forest": RandomForestClassifier(n_estimators=50, random_state=data.SEED),
    "gradient_boosting": GradientBoostingClassifier(n_estimators=30, random_state=data.SEED),
}


@pytest.fixture(scope="module", params=list(FAMILIES))
def fitted(request, split):
    return request.param, data.make_pipeline(FAMILIES[request.param]).fit(
        split.X_train, split.y_train)


@pytest.fixture(scope="module")
def exported(fitted, split):
    _, pipeline = fitted
    return export.to_onnx(pipeline, split.X_train, split.y_train,
                          X_test=split.X_test, y_test=split.y_test)


def tensor(value_info) -> tuple[str, int, list]:
    t = value_info.type.tensor_type
    return value_info.name, t.elem_type, [d.dim_value if d.HasField("dim_value") else -1
                                          for d in t.shape.dim]


def test_inputs_and_outputs_follow_the_contract(exported):
    inputs = [tensor(i) for i in exported.graph.input]
    assert inputs == (
        [(c, onnx.TensorProto.FLOAT, [-1, 1]) for c in data.NUMERIC]
        + [(c, onnx.TensorProto.STRING, [-1, 1]) for c in data.CATEGORICAL])
    assert [tensor(o) for o in exported.graph.output] == [
        ("label", onnx.TensorProto.STRING, [-1]),
        ("probabilities", onnx.TensorProto.FLOAT, [-1, 3])]
    assert exported.producer_name == "mlprod"
    assert "species" in exported.doc_string
    onnx.checker.check_model(exported)


def test_metadata_travels_inside_the_file(exported, fitted, split):
    name, pipeline = fitted
    props = {p.key: p.value for p in exported.metadata_props}
    assert set(props) >= set(export.onnx.METADATA_KEYS)
    meta = {k: json.loads(v) for k, v in props.items()}  # every value is JSON
    assert meta["features"] == data.schema()
    assert meta["target"] == "species"
    assert meta["classes"] == data.CLASSES
    expected = float((pipeline.predict(split.X_test) == split.y_test).mean())
    assert meta["metrics"]["accuracy"] == pytest.approx(expected, abs=1e-6)
    assert meta["metrics"]["on"] == "test" and meta["metrics"]["rows"] == len(split.X_test)
    assert meta["metrics"]["parity"]["labels_agree"] == len(split.X_test)
    assert len(meta["training_data_sha256"]) == 64
    assert {"scikit-learn", "skl2onnx", "onnx", "onnxruntime", "python"} <= set(meta["libraries"])
    created = datetime.fromisoformat(meta["created"].replace("Z", "+00:00"))
    assert created.tzinfo is not None and created.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - created).total_seconds()) < 3600


def test_metadata_round_trips_through_onnx_runtime(exported, tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(exported, path)
    meta = export.session(path.read_bytes()).get_modelmeta()
    assert meta.producer_name == "mlprod"
    assert meta.description == exported.doc_string
    assert json.loads(meta.custom_metadata_map["classes"]) == data.CLASSES
    assert export.metadata(onnx.load(path)) == export.metadata(exported)


def test_onnx_predictions_match_scikit_learn(exported, fitted, split):
    name, pipeline = fitted
    labels, proba = export.ONNXModel(exported).predict(split.X_test)
    assert (labels == pipeline.predict(split.X_test)).all()
    tolerance = LINEAR_TOLERANCE if name == "logistic_regression" else TREE_TOLERANCE
    assert np.abs(proba - pipeline.predict_proba(split.X_test)).max() <= tolerance


def test_training_data_hash_names_the_data(fitted_pipeline, split):
    a = export.to_onnx(fitted_pipeline, split.X_train, split.y_train)
    b = export.to_onnx(fitted_pipeline, split.X_train.iloc[:-1], split.y_train.iloc[:-1])
    assert export.metadata(a)["training_data_sha256"] != export.metadata(b)["training_data_sha256"]
    assert export.metadata(a)["metrics"]["on"] == "train"


def test_missing_values_and_unseen_categories_score_like_scikit_learn(fitted, split):
    name, pipeline = fitted
    rows = split.X_test.iloc[:4].copy()
    rows.iloc[0, 0] = np.nan
    rows.loc[rows.index[1], "sex"] = ""
    rows.loc[rows.index[2], "island"] = "Atlantis"  # never seen in training
    rows.loc[rows.index[3], data.NUMERIC] = np.nan
    labels, proba = export.ONNXModel(export.convert(pipeline, split.X_train)).predict(rows)
    assert (labels == pipeline.predict(rows)).all()
    tolerance = LINEAR_TOLERANCE if name == "logistic_regression" else TREE_TOLERANCE
    assert np.abs(proba - pipeline.predict_proba(rows)).max() <= tolerance


def test_export_refuses_beyond_the_tolerance(split):
    forest = data.make_pipeline(FAMILIES["random_forest"]).fit(split.X_train, split.y_train)
    report = export.agreement(*_reference(forest, split.X_test),
                              *export.ONNXModel(export.convert(forest, split.X_train))
                              .predict(split.X_test))
    assert report["max_abs_dp"] > 0  # float32 thresholds move a few votes
    with pytest.raises(export.ParityError, match=r"ONNX export refused.*rows differ") as info:
        export.to_onnx(forest, split.X_train, split.y_train, X_test=split.X_test,
                       y_test=split.y_test, max_prob_diff=report["max_abs_dp"] / 2)
    assert info.value.report["max_abs_dp"] == pytest.approx(report["max_abs_dp"])
    assert info.value.report["rows_differ"] >= 1


def test_export_refuses_when_labels_disagree(split, monkeypatch):
    pipeline = data.make_pipeline().fit(split.X_train, split.y_train)

    predict = export.ONNXModel.predict

    def one_label_wrong(self, X):
        labels, proba = predict(self, X)
        labels[0] = "Gentoo" if labels[0] != "Gentoo" else "Adelie"
        return labels, proba

    monkeypatch.setattr(export.ONNXModel, "predict", one_label_wrong)
    with pytest.raises(export.ParityError, match=r"labels agree on 68 of 69 rows"):
        export.to_onnx(pipeline, split.X_train, split.y_train, X_test=split.X_test,
                       y_test=split.y_test)


def test_default_tolerances_by_family():
    assert export.default_tolerance(data.make_pipeline()) == LINEAR_TOLERANCE
    assert export.default_tolerance(FAMILIES["random_forest"]) == TREE_TOLERANCE
    assert export.default_tolerance(FAMILIES["gradient_boosting"]) == TREE_TOLERANCE


def test_clear_errors_for_wrong_inputs(fitted_pipeline, split):
    with pytest.raises(TypeError, match="pandas DataFrame"):
        export.convert(fitted_pipeline, split.X_train.to_numpy())
    with pytest.raises(ValueError, match=r"\['sex'\] are missing"):
        export.onnx_inputs(split.X_test.drop(columns="sex"), data.schema())
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        export.convert(data.make_pipeline(), split.X_train)


def test_agreement_counts_rows():
    ref = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    got = ref + np.array([[0, 0], [0.3, -0.3], [1e-6, -1e-6]])
    report = export.agreement(["a", "b", "a"], ref, ["a", "a", "a"], got)
    assert report == {"rows": 3, "labels_agree": 2, "label_agreement": pytest.approx(2 / 3),
                      "max_abs_dp": pytest.approx(0.3), "rows_differ": 1}
    with pytest.raises(ValueError, match="shape"):
        export.agreement(["a"], ref[:1], ["a"], ref[:1, :1])


def test_other_estimators_convert_with_the_strict_tolerance(split):
    knn = data.make_pipeline(KNeighborsClassifier()).fit(split.X_train, split.y_train)
    model = export.to_onnx(knn, split.X_train, split.y_train, X_test=split.X_test,
                           y_test=split.y_test)
    assert export.metadata(model)["metrics"]["parity"]["max_abs_dp"] <= LINEAR_TOLERANCE


def _reference(pipeline, X: pd.DataFrame):
    proba = pipeline.predict_proba(X)
    return pipeline.classes_[proba.argmax(axis=1)], proba
