"""Tests of mlprod.doctor: the environment report and its fixes."""

from __future__ import annotations

from importlib import import_module

doc = import_module("mlprod.doctor")  # the module; `mlprod.doctor` is the function


def test_report_lists_python_packages_and_tools():
    report = doc.doctor()
    assert list(report.columns) == ["name", "found", "version", "needed_for", "fix"]
    assert {"python", *doc.PACKAGES, *doc.TOOLS} == set(report.name)
    packages = report[report.name.isin(["python", *doc.PACKAGES])]
    assert packages.found.all(), packages[~packages.found]
    assert (report.fix[~report.found] != "").all()  # everything missing says how to fix it


def test_missing_package_and_tool_say_how_to_fix(monkeypatch):
    monkeypatch.setitem(doc.PACKAGES, "no-such-package-xyz", "testing")
    monkeypatch.setitem(doc.TOOLS, "no-such-tool-xyz", ("testing", "apt-get install -y xyz"))
    report = doc.doctor().set_index("name")
    assert not report.loc["no-such-package-xyz", "found"]
    assert "make lab" in report.loc["no-such-package-xyz", "fix"]
    assert report.loc["no-such-tool-xyz", "fix"] == "apt-get install -y xyz"


def test_engine_without_daemon_is_not_counted(monkeypatch, tmp_path):
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\n[ \"$1\" = info ] && exit 1\necho 'Docker version 28'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}")
    check = doc._tool("docker", "building the image", "install Docker")
    assert not check.found and "docker info" in check.fix


def test_tools_can_be_skipped():
    assert set(doc.doctor(tools=False).name) == {"python", *doc.PACKAGES}


def test_podman_is_asked_with_the_kits_settings(monkeypatch, tmp_path):
    # A podman that fails unless it is run the way mlprod.container runs it: with the kit's
    # storage flag and its containers.conf.
    fake = tmp_path / "podman"
    fake.write_text('#!/bin/sh\n[ "$1" = --storage-driver=vfs ] && [ "$2" = info ] && '
                    '[ -f "$CONTAINERS_CONF" ] || exit 1\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}")
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    assert doc._tool("podman", "building the image", "apt-get install -y podman").found
