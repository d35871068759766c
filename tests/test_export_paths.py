"""Tests of the other export paths: PMML, generated C and Java, the parity and speed tables, pickles.

PMML needs a Java runtime and the C and Java paths a compiler: where one is missing, those tests
skip with the message that says what to install. JPype starts one JVM per process, so every PMML
test here shares it.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from copy import deepcopy
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from mlprod import data, export
from mlprod.export import pmml, recode, speed
from mlprod.export.parity import LINEAR_TOLERANCE
from mlprod.export.paths import PATHS

FAMILIES = {
    "logistic_regression": None,
    "random_forest": RandomForestClassifier(n_estimators=50, random_state=data.SEED),
    "gradient_boosting": GradientBoostingClassifier(n_estimators=30, max_depth=2,
                                                    random_state=data.SEED),
}


def skip_unless(reason: str | None) -> None:
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module", params=list(FAMILIES))
def fitted(request, split):
    return request.param, data.make_pipeline(FAMILIES[request.param]).fit(
        split.X_train, split.y_train)


@pytest.fixture(scope="module")
def hard_rows(split) -> pd.DataFrame:
    """Held-out rows plus missing numerics, missing and unseen categories."""
    rows = split.X_test.iloc[:6].copy()
    rows.iloc[0, 0] = np.nan
    rows.loc[rows.index[1], "sex"] = ""
    rows.loc[rows.index[2], "island"] = "Atlantis"
    rows.loc[rows.index[3], data.NUMERIC] = np.nan
    rows.loc[rows.index[4], data.CATEGORICAL] = ""
    return pd.concat([split.X_test, rows], ignore_index=True)


def assert_exact(pipeline, model, X) -> None:
    labels, proba = model.predict(X)
    assert (np.asarray(labels) == pipeline.predict(X)).all()
    assert np.abs(proba - pipeline.predict_proba(X)).max() <= LINEAR_TOLERANCE


# -- PMML ------------------------------------------------------------------------------------------
def test_pmml_scores_like_scikit_learn(fitted, hard_rows, tmp_path):
    skip_unless(pmml.unavailable())
    _, pipeline = fitted
    model = pmml.PMMLModel.from_pipeline(pipeline, hard_rows, workdir=tmp_path, X_check=hard_rows)
    assert model.path == tmp_path / "model.pmml"
    assert b"<PMML" in model.path.read_bytes()[:400]
    assert model.classes == data.CLASSES
    assert set(model.inputs) <= set(data.FEATURES)  # PMML drops fields the model never uses
    assert_exact(pipeline, model, hard_rows)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pmml"]  # no pickle left behind


def test_pmml_reports_an_expired_converter(monkeypatch):
    monkeypatch.setattr(pmml, "converter_build_date",
                        lambda: datetime.now(UTC) - timedelta(days=400))
    reason = pmml.unavailable()
    assert reason is not None and "has expired" in reason and "upgrade sklearn2pmml" in reason


def test_pmml_reports_missing_java():
    # A fresh process: JPype starts one JVM per process, and this check applies before it starts.
    code = ("import jpype\n"
            "def no_jvm():\n"
            "    raise jpype.JVMNotFoundException('No JVM shared library file (libjvm.so) found')\n"
            "jpype.getDefaultJVMPath = no_jvm\n"
            "from mlprod.export import pmml\n"
            "print(pmml.unavailable())\n"
            "try:\n"
            "    pmml.start_jvm()\n"
            "except RuntimeError as exc:\n"
            "    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    reason, error = result.stdout.splitlines()
    assert reason.startswith("no Java runtime found") and "apt-get install" in reason
    assert error == f"PMML is not available: {reason}."


# -- generated C -----------------------------------------------------------------------------------
def test_generated_c_scores_like_scikit_learn(fitted, hard_rows, tmp_path):
    skip_unless(recode.c_unavailable())
    _, pipeline = fitted
    model = recode.CModel.from_pipeline(pipeline, workdir=tmp_path, X_check=hard_rows)
    assert "mlprod_predict" in model.source and model.executable.exists()
    assert_exact(pipeline, model, hard_rows)


def test_generated_c_tree_compares_float32_inputs(split, tmp_path):
    skip_unless(recode.c_unavailable())
    pipeline = data.make_pipeline(FAMILIES["random_forest"]).fit(split.X_train, split.y_train)
    source = recode.generate_c(pipeline)
    assert "if ((float)z[" in source
    model = recode.CModel.from_pipeline(pipeline, workdir=tmp_path, X_check=split.X_test)
    # Without the float32 rounding the same source disagrees on rows next to a threshold.
    (tmp_path / "model.c").write_text(source.replace("(float)z[", "z["))
    recode.compile_c(tmp_path)
    X = data.synthesize(3000, seed=7)[data.FEATURES]
    _, proba = model.predict(X)
    assert np.abs(proba - pipeline.predict_proba(X)).max() > 0


def test_generated_c_benchmark_reports_medians(fitted_pipeline, split, tmp_path):
    skip_unless(recode.c_unavailable())
    model = recode.CModel.from_pipeline(fitted_pipeline, workdir=tmp_path, X_check=split.X_test)
    timings = model.bench(split.X_test, repeats=3)
    assert timings["rows"] == len(split.X_test)
    assert timings["single_seconds"] > 0 and timings["batch_seconds"] > 0


def scaler_pipeline(split, **scaler):
    """The course's logistic regression with a StandardScaler configured by ``scaler``."""
    pipeline = data.make_pipeline()
    pipeline.set_params(preprocess__numeric__scale=StandardScaler(**scaler))
    return pipeline.fit(split.X_train, split.y_train)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # unscaled inputs
@pytest.mark.parametrize("scaler", [{"with_mean": False}, {"with_std": False},
                                    {"with_mean": False, "with_std": False}])
def test_generated_c_honours_the_scaler_options(scaler, hard_rows, split, tmp_path):
    skip_unless(recode.c_unavailable())
    pipeline = scaler_pipeline(split, **scaler)
    model = recode.CModel.from_pipeline(pipeline, workdir=tmp_path, X_check=hard_rows)
    assert_exact(pipeline, model, hard_rows)


def test_generated_c_that_disagrees_is_refused(split, tmp_path, monkeypatch):
    skip_unless(recode.c_unavailable())
    pipeline = scaler_pipeline(split, with_mean=False)
    # The generator as it was: it subtracted mean_ although with_mean=False.
    wrong = deepcopy(pipeline)
    wrong.named_steps["preprocess"].named_transformers_["numeric"][-1].with_mean = True
    generate = recode.generate_c
    monkeypatch.setattr(recode.c_model, "generate_c", lambda _: generate(wrong))
    with pytest.raises(export.ParityError, match=r"^C export refused: labels agree on \d+ of "
                       rf"{len(split.X_test)} rows .* largest \|Δ probability\| is .* rows differ"
                       ) as info:
        recode.CModel.from_pipeline(pipeline, workdir=tmp_path, X_check=split.X_test)
    assert info.value.path == "C" and info.value.report["label_agreement"] < 1
    assert info.value.tolerance == LINEAR_TOLERANCE
    # A tolerance given knowingly is honoured.
    recode.CModel.from_pipeline(pipeline, workdir=tmp_path, X_check=split.X_test,
                                label_agreement=0.0, max_prob_diff=1.0)


@pytest.mark.parametrize("key", ["pmml", "java"])
def test_other_paths_that_disagree_are_refused(key, fitted_pipeline, split, tmp_path,
                                               monkeypatch):
    cls, unavailable = {"pmml": (pmml.PMMLModel, pmml.unavailable),
                        "java": (recode.JavaModel, recode.java_unavailable)}[key]
    skip_unless(unavailable())
    predict = cls.predict

    def rolled(self, X):
        labels, proba = predict(self, X)
        return labels, np.roll(proba, 1, axis=1)

    monkeypatch.setattr(cls, "predict", rolled)
    with pytest.raises(export.ParityError, match=rf"^{key.upper() if key == 'pmml' else 'Java'} "
                       r"export refused: .* largest \|Δ probability\| is"):
        export.build_paths(fitted_pipeline, split.X_test, tmp_path, paths=[key])


def test_c_generator_names_what_it_does_not_cover(split):
    knn = data.make_pipeline(KNeighborsClassifier()).fit(split.X_train, split.y_train)
    with pytest.raises(NotImplementedError, match="KNeighborsClassifier.*mlprod.export.to_onnx"):
        recode.generate_c(knn)
    scaled = data.make_pipeline()
    scaled.set_params(preprocess__numeric__scale=MinMaxScaler())
    scaled.fit(split.X_train, split.y_train)
    with pytest.raises(NotImplementedError, match="MinMaxScaler"):
        recode.generate_c(scaled)
    grouped = data.make_pipeline()
    grouped.set_params(preprocess__categorical__onehot=OneHotEncoder(
        handle_unknown="ignore", min_frequency=5))
    grouped.fit(split.X_train, split.y_train)
    with pytest.raises(NotImplementedError, match="infrequent categories"):
        recode.generate_c(grouped)


def test_c_harness_refuses_commas_in_categories(fitted_pipeline, split, tmp_path):
    skip_unless(recode.c_unavailable())
    model = recode.CModel.from_pipeline(fitted_pipeline, workdir=tmp_path, X_check=split.X_test)
    rows = split.X_test.iloc[:1].copy()
    rows["island"] = "Biscoe, north"
    with pytest.raises(ValueError, match="comma"):
        model.predict(rows)


def test_missing_compiler_is_named(split):
    reason = recode.c_unavailable("no-such-cc")
    assert "no C compiler 'no-such-cc'" in reason and "apt-get install" in reason
    with pytest.raises(RuntimeError, match="Cannot compile"):
        recode.CModel.from_pipeline(None, compiler="no-such-cc", X_check=split.X_test)


# -- Java (m2cgen) ---------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["logistic_regression", "random_forest"])
def test_java_scores_like_scikit_learn(family, split, tmp_path):
    skip_unless(recode.java_unavailable())
    pipeline = data.make_pipeline(FAMILIES[family]).fit(split.X_train, split.y_train)
    model = recode.JavaModel.from_pipeline(pipeline, workdir=tmp_path, X_check=split.X_test)
    assert "public class Model" in model.source
    assert_exact(pipeline, model, split.X_test)


def test_java_names_models_m2cgen_cannot_translate(split, tmp_path):
    skip_unless(recode.java_unavailable())
    pipeline = data.make_pipeline(FAMILIES["gradient_boosting"]).fit(split.X_train, split.y_train)
    with pytest.raises(NotImplementedError, match="m2cgen .* GradientBoostingClassifier"):
        recode.JavaModel.from_pipeline(pipeline, workdir=tmp_path, X_check=split.X_test)


# -- the parity table ------------------------------------------------------------------------------
def test_parity_table_covers_every_path(fitted_pipeline, split, tmp_path):
    models = export.build_paths(fitted_pipeline, split.X_test, tmp_path)
    table = export.parity_table(fitted_pipeline, split.X_test, models)
    assert list(table.index) == list(PATHS.values())
    for title, row in table.iterrows():
        if isinstance(models[title], str):
            assert row["note"].startswith(("skipped:", "not supported:"))
        else:
            assert row["ok"] and row["labels_agree"] == len(split.X_test), title


def test_parity_table_says_why_a_path_was_skipped(fitted_pipeline, split, tmp_path, monkeypatch):
    monkeypatch.setattr(recode, "c_unavailable", lambda: "no C compiler 'gcc' on PATH: install")
    models = export.build_paths(fitted_pipeline, split.X_test, tmp_path, paths=["onnx", "c"])
    table = export.parity_table(fitted_pipeline, split.X_test, models)
    assert table.loc[PATHS["c"], "note"] == "skipped: no C compiler 'gcc' on PATH: install"
    assert bool(table.loc[PATHS["onnx"], "ok"])
    with pytest.raises(ValueError, match="Unknown path 'r'"):
        export.build_paths(fitted_pipeline, split.X_test, tmp_path, paths=["r"])


def test_parity_table_flags_a_path_that_disagrees(fitted_pipeline, split):
    class OffByOne:
        def predict(self, X):
            proba = fitted_pipeline.predict_proba(X)
            return fitted_pipeline.predict(X), np.roll(proba, 1, axis=1)

    table = export.parity_table(fitted_pipeline, split.X_test, {"broken": OffByOne()})
    assert not table.loc["broken", "ok"] and table.loc["broken", "max_abs_dp"] > 0.5
    assert table.loc["broken", "tolerance"] == LINEAR_TOLERANCE
    loose = export.parity_table(fitted_pipeline, split.X_test, {"broken": OffByOne()},
                                max_prob_diff=1.0)
    assert loose.loc["broken", "ok"] and loose.loc["broken", "tolerance"] == 1.0
    strict = export.parity_table(fitted_pipeline, split.X_test, {"broken": OffByOne()},
                                 label_agreement=1.01, max_prob_diff=1.0)
    assert not strict.loc["broken", "ok"]


def test_java_path_reports_unsupported_models(split, tmp_path):
    skip_unless(recode.java_unavailable())
    pipeline = data.make_pipeline(FAMILIES["gradient_boosting"]).fit(split.X_train, split.y_train)
    models = export.build_paths(pipeline, split.X_test, tmp_path, paths=["java"])
    assert models[PATHS["java"]].startswith("not supported: m2cgen")


def test_each_path_describes_itself(fitted_pipeline, split, tmp_path):
    models = export.build_paths(fitted_pipeline, split.X_test, tmp_path)
    expected = {"onnx": "operators: ", "pmml": "DataDictionary:", "c": "#define MLPROD_N_CLASSES 3",
                "java": "public static double[] score"}
    for key, text in expected.items():
        model = models[PATHS[key]]
        if isinstance(model, str):
            assert export.describe(model) == model  # the reason it was skipped
        else:
            assert text in export.describe(model), key
    if not isinstance(models[PATHS["c"]], str):
        assert 'z[7] = strcmp(s, "female") == 0;' in export.describe(models[PATHS["c"]])


# -- speed and pickles -----------------------------------------------------------------------------
def test_speed_table_times_each_engine(fitted_pipeline, split):
    onnx_model = export.ONNXModel(export.convert(fitted_pipeline, split.X_train))
    table = export.speed_table(fitted_pipeline, split.X_test, onnx_model, batch_rows=50, repeats=2)
    assert list(table.index) == ["scikit-learn", "ONNX Runtime"]
    assert np.isfinite(table.to_numpy(float)).all() and (table > 0).all().all()
    assert table.attrs["batch_rows"] == "50"


def test_speed_table_turns_times_into_rates_and_speed_ups(fitted_pipeline, split, monkeypatch):
    seconds = {("scikit-learn", "one"): 200e-6, ("scikit-learn", "batch"): 0.01,
               ("ONNX Runtime", "one"): 20e-6, ("ONNX Runtime", "batch"): 0.0005}
    monkeypatch.setattr(speed, "median_seconds", lambda calls, repeats: {k: seconds[k] for k in calls})
    onnx_model = export.ONNXModel(export.convert(fitted_pipeline, split.X_train))
    table = export.speed_table(fitted_pipeline, split.X_test, onnx_model, batch_rows=50)
    assert table.loc["ONNX Runtime"].to_dict() == pytest.approx(
        {"one_row_us": 20.0, "batch_rows_per_s": 100_000.0, "one_row_speedup": 10.0,
         "batch_speedup": 20.0})
    assert table.loc["scikit-learn", "batch_rows_per_s"] == pytest.approx(5_000.0)


def test_median_seconds_measures_each_call():
    assert export.median_seconds(lambda: time.sleep(0.001), repeats=3) >= 0.0009
    both = export.median_seconds({"sleep": lambda: time.sleep(0.001), "nothing": lambda: None},
                                 repeats=3)
    assert set(both) == {"sleep", "nothing"}
    assert both["sleep"] >= 0.0009 > both["nothing"]  # each call timed apart, not their average
    with pytest.raises(ValueError, match="repeats"):
        export.median_seconds(lambda: None, repeats=0)


def test_loading_a_pickle_runs_its_code(tmp_path, fitted_pipeline):
    marker = tmp_path / "ran.txt"
    payload = export.malicious_pickle(marker)
    assert export.pickle_imports(payload) == ["builtins.exec"]
    assert not marker.exists()
    pickle.loads(payload)
    assert marker.exists()
    names = export.pickle_imports(pickle.dumps(fitted_pipeline))
    assert "sklearn.pipeline.Pipeline" in names and "builtins.exec" not in names


@pytest.mark.parametrize("payload", [
    b"(S'true'\nios\nsystem\n.",                       # protocol 0: INST imports and calls
    b"\x80\x02U\x02os\x94U\x06system\x94\x93U\x04true\x85R.",  # STACK_GLOBAL of byte strings
    b"\x80\x02T\x02\x00\x00\x00osq\x00X\x06\x00\x00\x00systemq\x01\x93.",
])
def test_pickle_imports_sees_every_way_to_import(payload):
    assert export.pickle_imports(payload) == ["os.system"]
