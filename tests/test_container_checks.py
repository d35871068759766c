"""Checks of a context before a build: hadolint on the Dockerfile, Kubernetes' schemas on k8s/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from mlprod import container, quickstart
from mlprod.container import wheels

HADOLINT = Path(sys.executable).parent / "hadolint"
K8S_VERSION = "1.30.0"


def test_hadolint_passes_with_and_without_a_wheelhouse(context, tmp_path, monkeypatch):
    def fake_wheelhouse(requirements, dest):  # the wheels' content does not matter to hadolint
        Path(dest).mkdir()
        return Path(dest)

    monkeypatch.setattr(wheels, "wheelhouse", fake_wheelhouse)
    monkeypatch.setattr(wheels, "wheels_misfit", lambda base_image: None)
    with_wheels = container.build_context(quickstart.model_repository(), tmp_path / "ctx",
                                          wheels=True)
    text = (with_wheels / "Dockerfile").read_text()
    assert "COPY wheels/ ./wheels/" in text and "--no-index --find-links wheels -r" in text
    for dockerfile in (context / "Dockerfile", with_wheels / "Dockerfile"):
        done = subprocess.run([str(HADOLINT), "--no-color", str(dockerfile)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        assert container.hadolint(dockerfile) == ""


def test_hadolint_is_live(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nUSER app\nCMD python -m server\n")
    done = subprocess.run([str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True)
    assert done.returncode != 0 and "DL3006" in done.stdout
    assert "DL3025" in container.hadolint(bad)


@pytest.mark.parametrize("name", ["deployment.yaml", "service.yaml", "hpa.yaml"])
def test_kubernetes_manifests_validate(context, name):
    manifest = yaml.safe_load((context / "k8s" / name).read_text())
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_kubernetes_validation_is_live(context, tmp_path):
    broken = yaml.safe_load((context / "k8s" / "deployment.yaml").read_text())
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    verdicts = container.validate_manifests(context)
    assert all(v.endswith(f"valid for Kubernetes {K8S_VERSION}") for name, v in verdicts.items()
               if name != "inferenceservice.yaml"), verdicts
    shutil.copytree(context / "k8s", tmp_path / "k8s")
    (tmp_path / "k8s" / "deployment.yaml").write_text(yaml.safe_dump(broken))
    assert "INVALID: 'two'" in container.validate_manifests(tmp_path)["deployment.yaml"]
