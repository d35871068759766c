"""The wheelhouse: when wheels made here fit the image, and how they are fetched (once)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlprod import container, quickstart
from mlprod.container import wheels


@pytest.mark.parametrize("host, base, fits", [
    (("linux", "x86_64", "cpython", (3, 11)), container.DEFAULT_BASE_IMAGE, True),
    (("linux", "x86_64", "cpython", (3, 11)), container.LOCAL_BASE_IMAGE, True),
    (("linux", "x86_64", "cpython", (3, 11)), "docker.io/library/python:3.11.9-slim", True),
    (("linux", "x86_64", "cpython", (3, 11)), "python:3.12-slim-bookworm", False),
    (("linux", "x86_64", "cpython", (3, 11)), "python:3.11-alpine", False),
    (("linux", "aarch64", "cpython", (3, 11)), container.DEFAULT_BASE_IMAGE, False),
    (("darwin", "arm64", "cpython", (3, 11)), container.DEFAULT_BASE_IMAGE, False),
    (("linux", "x86_64", "cpython", (3, 12)), container.DEFAULT_BASE_IMAGE, False),
    (("win32", "AMD64", "cpython", (3, 11)), container.DEFAULT_BASE_IMAGE, False),
])
def test_wheels_fit_a_linux_x86_64_cpython_311_host_and_base(host, base, fits):
    reason = container.wheels_misfit(base, host=host)
    assert (reason is None) == fits, reason
    host_fits = host == ("linux", "x86_64", "cpython", (3, 11))
    if not fits:
        assert f"this machine is {host[0]} {host[1]}" in reason if not host_fits \
            else base in reason


def test_wheels_auto_leaves_out_a_misfit_or_a_failed_fetch(tmp_path, monkeypatch):
    repository = quickstart.model_repository()
    monkeypatch.setattr(wheels, "wheels_misfit", lambda base_image: "this machine is darwin")
    with pytest.raises(ValueError, match="would not fit the image: this machine is darwin"):
        container.build_context(repository, tmp_path / "a", wheels=True)
    with pytest.warns(UserWarning, match="No wheelhouse: this machine is darwin"):
        out = container.build_context(repository, tmp_path / "a", wheels="auto")
    assert not (out / "wheels").exists()
    assert "--no-index" not in (out / "Dockerfile").read_text()

    def offline(requirements, dest):
        raise subprocess.CalledProcessError(1, ["pip", "download"])

    monkeypatch.setattr(wheels, "wheels_misfit", lambda base_image: None)
    monkeypatch.setattr(wheels, "wheelhouse", offline)
    with pytest.warns(UserWarning, match="fetching it failed"):
        out = container.build_context(repository, tmp_path / "b", wheels="auto")
    assert not (out / "wheels").exists()
    assert "--no-index" not in (out / "Dockerfile").read_text()
    with pytest.raises(subprocess.CalledProcessError):
        container.build_context(repository, tmp_path / "c", wheels=True)
    with pytest.raises(ValueError, match="wheels='maybe'"):
        container.build_context(repository, tmp_path / "d", wheels="maybe")


def test_wheelhouse_fetches_binary_wheels_for_the_image_once(tmp_path, monkeypatch):
    commands = []
    run = subprocess.run

    def fake_pip(command, **kwargs):
        if "download" not in command:
            return run(command, **kwargs)
        commands.append(command)
        dest = Path(command[command.index("-d") + 1])
        (dest / "orjson-3.13.0-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"wheel")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(wheels, "_pip", lambda: ["pip"])
    monkeypatch.setattr(quickstart, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(subprocess, "run", fake_pip)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("orjson==3.13.0\n")
    for n in (1, 2):
        got = container.wheelhouse(requirements, tmp_path / f"wheels{n}")
        assert [p.name for p in got.iterdir()] == [
            "orjson-3.13.0-cp311-cp311-manylinux_2_17_x86_64.whl"]
    (command,) = commands
    assert {"--only-binary=:all:", "--no-deps"} <= set(command)
    platforms = {command[i + 1] for i, arg in enumerate(command) if arg == "--platform"}
    assert {"manylinux_2_36_x86_64", "manylinux_2_28_x86_64", "manylinux2014_x86_64"} <= platforms
    assert "manylinux_2_37_x86_64" not in platforms, "newer than the image's glibc"
    assert command[command.index("--python-version") + 1] == "3.11"
    assert command[command.index("--abi") + 1] == "cp311"
