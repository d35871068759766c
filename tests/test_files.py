"""Replacing a folder: the new content in place at once, the old one back on failure, no leftovers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mlprod import files


def _folder(path: Path, name: str) -> Path:
    """A folder at ``path`` holding one file called ``name``."""
    path.mkdir()
    (path / name).write_text(name)
    return path


def _can_exchange(tmp_path: Path) -> bool:
    """Whether this system swaps two paths in one step; the two probe folders are removed."""
    a, b = _folder(tmp_path / "probe-a", "from-a"), _folder(tmp_path / "probe-b", "from-b")
    try:
        return files._exchange(a, b)
    finally:
        shutil.rmtree(a)
        shutil.rmtree(b)


def test_exchange_swaps_two_folders(tmp_path):
    a, b = _folder(tmp_path / "a", "from-a"), _folder(tmp_path / "b", "from-b")
    if not files._exchange(a, b):
        pytest.skip("this system cannot swap two paths in one step (renameat2)")
    assert [p.name for p in a.iterdir()] == ["from-b"]
    assert [p.name for p in b.iterdir()] == ["from-a"]


def test_a_missing_target_is_created(tmp_path):
    new = _folder(tmp_path / "new", "fresh.txt")
    target = tmp_path / "target"
    files.replace_dir(new, target)
    assert [p.name for p in target.iterdir()] == ["fresh.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]


@pytest.mark.parametrize("swap", [True, False], ids=["exchange", "rename-aside"])
def test_the_old_content_is_replaced_and_removed(tmp_path, monkeypatch, swap):
    if swap and not _can_exchange(tmp_path):
        pytest.skip("this system cannot swap two paths in one step (renameat2)")
    if not swap:
        monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    target = _folder(tmp_path / "target", "stale.txt")
    files.replace_dir(_folder(tmp_path / "new", "fresh.txt"), target)
    assert [p.name for p in target.iterdir()] == ["fresh.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"], "the old content was left"


def test_the_target_is_never_missing_where_the_system_swaps(tmp_path, monkeypatch):
    if not _can_exchange(tmp_path):
        pytest.skip("this system cannot swap two paths in one step (renameat2)")
    target = _folder(tmp_path / "target", "stale.txt")
    new = _folder(tmp_path / "new", "fresh.txt")
    rename = os.rename

    def watched(src, dst, *args, **kwargs):
        assert target.is_dir(), f"{target} was missing before renaming {src} to {dst}"
        return rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", watched)
    files.replace_dir(new, target)
    assert [p.name for p in target.iterdir()] == ["fresh.txt"]


@pytest.mark.parametrize("step", ["second rename", "swap"])
def test_a_failed_replacement_restores_the_old_folder(tmp_path, monkeypatch, step):
    target = _folder(tmp_path / "target", "stale.txt")
    new = _folder(tmp_path / "new", "fresh.txt")
    rename = os.rename

    def failing_rename(src, dst, *args, **kwargs):
        if Path(dst) == target and Path(src) == new:  # the new one; restoring may pass
            raise OSError(28, "No space left on device", str(dst))
        return rename(src, dst, *args, **kwargs)

    def failing_exchange(a, b):
        raise OSError(28, "No space left on device", str(b))

    monkeypatch.setattr(files, "_exchange", (lambda a, b: False) if step == "second rename"
                        else failing_exchange)
    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError, match="No space left"):
        files.replace_dir(new, target)
    assert [p.name for p in target.iterdir()] == ["stale.txt"], "the old folder was lost"
    assert [p.name for p in new.iterdir()] == ["fresh.txt"], "the new folder was lost"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "target"]
