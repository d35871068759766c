"""Container engines and their command lines: podman with the kit's settings, Docker as it is."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlprod import container
from mlprod.container import engines, templates


def test_engine_commands_fit_each_engine():
    podman = container.build_command("ctx", "t:1", "podman", container.LOCAL_BASE_IMAGE)
    assert {"--format", "docker", "--isolation=chroot", "--network=host"} <= set(podman)
    assert podman[-3:] == ["--build-arg", f"BASE_IMAGE={container.LOCAL_BASE_IMAGE}", "ctx"]
    docker = container.build_command("ctx", "t:1", "docker")
    assert docker == ["build", "-t", "t:1", "ctx"]
    run = container.run_command("t:1", "n", 5000, "podman")
    assert "--network=host" in run and "SAGEMAKER_BIND_TO_PORT=5000" in run and run[-1] == "serve"
    assert "127.0.0.1:5000:8080" in container.run_command("t:1", "n", 5000, "docker")
    with pytest.raises(RuntimeError, match="container-setup"):
        container.Engine.detect("none")


def test_podman_settings_live_in_containers_conf_not_in_flags(monkeypatch):
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    conf = templates.template("containers.conf")
    env = container.podman_env()
    assert Path(env["CONTAINERS_CONF"]).read_text() == conf
    for setting in ('cgroup_manager = "cgroupfs"', 'events_logger = "file"', 'runtime = "runc"'):
        assert setting in conf
    # Only the storage driver, which containers.conf cannot hold, is a flag; the setup script
    # runs podman the same way.
    assert container.PODMAN == ("podman", "--storage-driver=vfs")
    setup = (container.ROOT / ".ci" / "container-setup.sh").read_text()
    assert f"P=({' '.join(container.PODMAN)})" in setup
    assert "templates/container/containers.conf" in setup
    monkeypatch.setenv("CONTAINERS_CONF", os.devnull)
    assert container.podman_env()["CONTAINERS_CONF"] == os.devnull


def test_podman_is_asked_with_the_kits_settings(monkeypatch, tmp_path):
    calls = []

    def works(command, env=None, timeout=60):
        calls.append((list(command), env))
        return True

    fake = tmp_path / "podman"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    monkeypatch.setattr(engines, "_works", works)
    assert container.engine_works("podman") and not container.engine_works("docker")
    assert container.engine() == "podman"
    command, env = calls[0]
    assert command == [*container.PODMAN, "info"]
    assert Path(env["CONTAINERS_CONF"]).read_text() == templates.template("containers.conf")
    with pytest.raises(ValueError, match="'docker' or 'podman'"):
        container.engine_works("lxc")


def test_engine_run_raises_with_the_engines_output():
    eng = container.Engine("fake", ("sh", "-c", "echo out; echo err >&2; exit 3", "sh"), {})
    with pytest.raises(RuntimeError, match=r"(?s)`fake image inspect x` exited 3:\nout\nerr"):
        eng.run("image", "inspect", "x")
    assert eng.run("x", check=False).returncode == 3


@pytest.mark.parametrize("text, expected", [
    ('"2026-12-01T08:18:19.123456789Z"\n', datetime(2026, 12, 1, 8, 18, 19, 123456, UTC)),
    ("2026-12-01T08:18:19Z", datetime(2026, 12, 1, 8, 18, 19, tzinfo=UTC)),
    ("2026-12-01T09:18:19.5+01:00", datetime(2026, 12, 1, 8, 18, 19, 500000, UTC)),
])
def test_engine_times_are_read_to_the_microsecond(text, expected):
    assert container.image.parse_time(text) == expected
    with pytest.raises(ValueError, match="Not an RFC 3339 time"):
        container.image.parse_time("2026-12-01 08:18:19 +0000 UTC")


def test_ready_seconds_run_from_the_containers_start():
    eng = container.Engine("docker", ("docker",), {})
    started = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)
    box = container.Running("http://127.0.0.1:1", "n", eng, started,
                            started.replace(second=1, microsecond=250000), 9.5)
    assert box.ready_seconds == 1.25 and box.run_seconds == 9.5
    assert container.Running("u", "n", eng).ready_seconds is None
    assert box.healthcheck() == "unchecked", "Docker runs the health check on its own schedule"


def test_base_image_bytes_are_none_when_the_engine_lacks_the_image():
    eng = container.Engine("fake", ("sh", "-c", 'echo "$FAKE_SIZE"; exit "$FAKE_CODE"', "sh"),
                           {"FAKE_SIZE": "183000000", "FAKE_CODE": "0"})
    assert container.image.image_bytes(eng, "base") == 183000000
    missing = container.Engine("fake", eng.command, {"FAKE_SIZE": "", "FAKE_CODE": "125"})
    assert container.image.image_bytes(missing, "base") is None
