"""Tests of mlprod.quickstart: the cached course artefacts later lessons rebuild from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import pytest

from mlprod import quickstart


def test_model_repository_holds_the_course_models():
    repo = quickstart.model_repository()
    model_dir = repo / quickstart.MODEL_NAME
    assert sorted(p.name for p in model_dir.iterdir() if p.is_dir()) == ["1", "2"]
    assert json.loads((model_dir / "aliases.json").read_text()) == {"production": 1, "candidate": 2}
    for version in (1, 2):
        model = onnx.load(model_dir / str(version) / "model.onnx")
        assert model.model_version == version
        assert model.producer_name == "mlprod"
    assert quickstart.model_repository() == repo  # cached: the same folder again


def test_build_models_is_idempotent_and_complete(tmp_path):
    out = tmp_path / "models"
    assert quickstart.build_models(out) is True
    assert quickstart.build_models(out) is False
    assert (out / ".mlprod-key").read_text() == quickstart.cache_key()
    assert (out / "penguins" / "config.pbtxt").exists()
    (out / ".mlprod-key").write_text("stale")
    assert quickstart.build_models(out) is True  # a stale stamp rebuilds
    assert [p.name for p in tmp_path.iterdir()] == ["models"]  # no temporary folder left


def test_cache_is_built_once_under_concurrency(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPROD_CACHE", str(tmp_path))
    calls = []

    def build(path):
        calls.append(path)
        path.write_text("done")

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: quickstart._cached_file("thing", build), range(4)))
    assert len(set(results)) == 1 and results[0].read_text() == "done"
    assert not [p for p in results[0].parent.iterdir() if p.name.startswith(".")]


def test_failed_build_leaves_no_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPROD_CACHE", str(tmp_path))

    def build(path):
        path.write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        quickstart._cached_file("thing", build)
    assert list((tmp_path / quickstart.cache_key()).iterdir()) == []


def test_tuned_pipeline_is_the_lesson_02_model(split):
    from mlprod import tuning

    cached, fresh = quickstart.tuned_pipeline(), tuning.search_best_pipeline()
    assert list(cached.named_steps) == ["preprocess", "model"]
    assert cached.named_steps["model"].get_params() == fresh.named_steps["model"].get_params()
    np.testing.assert_allclose(cached.predict_proba(split.X_test), fresh.predict_proba(split.X_test))


def test_command_line_builds_models(tmp_path):
    out = tmp_path / "m"
    cmd = [sys.executable, "-m", "mlprod.quickstart", "models", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), check=True)
    assert "built" in done.stdout and (out / "penguins" / "1" / "model.onnx").exists()
