"""``python -m mlprod.container``: the context written, and a missing engine or base image named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlprod import container
from mlprod.container import cli

ROOT = Path(__file__).resolve().parent.parent


def test_command_line_writes_the_context(repository, tmp_path):
    out = tmp_path / "context"
    done = subprocess.run([sys.executable, "-m", "mlprod.container", "--repository",
                           str(repository), "--out", str(out), "--wheels", "no"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert (out / "Dockerfile").is_file() and (out / "k8s" / "inferenceservice.yaml").is_file()
    assert "no wheelhouse" in done.stdout and not (out / "wheels").exists()


def test_command_line_without_an_engine_says_which_to_install(repository, tmp_path):
    # No docker or podman on PATH: the context is written, the build is refused plainly.
    out = tmp_path / "context"
    done = subprocess.run([sys.executable, "-m", "mlprod.container", "--repository",
                           str(repository), "--out", str(out), "--wheels", "no",
                           "--image", "mlprod-penguins:latest", "--prove"],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PATH": str(tmp_path / "empty")})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "No container engine" in done.stderr and "Install Docker" in done.stderr
    assert ".ci/container-setup.sh" in done.stderr and "make test" in done.stderr
    assert (out / "Dockerfile").is_file()


def test_command_line_names_a_missing_base_image(repository, tmp_path, monkeypatch, capsys):
    calls = []

    def fake_run(self, *args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, 1, "", "")

    monkeypatch.setattr(cli.engines, "engine", lambda: "podman")
    monkeypatch.setattr(container.Engine, "run", fake_run)
    code = container.main(["--repository", str(repository), "--out", str(tmp_path / "ctx"),
                           "--wheels", "no", "--prove"])
    assert code == 1
    assert calls == [("image", "exists", container.LOCAL_BASE_IMAGE)], "nothing built"
    assert "podman has no base image localhost/py-base:bookworm" in capsys.readouterr().err
