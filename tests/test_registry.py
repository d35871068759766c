"""Tests of mlprod.registry: layout, versions, atomic writes, aliases, checksums, names."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from mlprod import export
from mlprod.registry import (
    ChecksumError,
    InvalidModelError,
    InvalidNameError,
    NotFoundError,
    Registry,
    RegistryError,
    SignatureError,
    check_name,
)


@pytest.fixture(scope="module")
def model(split, fitted_pipeline) -> onnx.ModelProto:
    return export.to_onnx(fitted_pipeline, split.X_train, split.y_train,
                          X_test=split.X_test, y_test=split.y_test)


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(tmp_path / "models")


def leftovers(folder: Path) -> list[str]:
    """Names of temporary files or folders left in a model folder."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name.startswith(".") and p.name != ".next-version")


def test_register_writes_the_triton_layout(registry, model):
    assert registry.register("penguins", model) == 1
    folder = registry.root / "penguins"
    assert sorted(p.name for p in folder.iterdir()) == [".next-version", "1", "config.pbtxt"]
    data = (folder / "1" / "model.onnx").read_bytes()
    digest = (folder / "1" / "model.sha256").read_text().split()[0]
    assert digest == hashlib.sha256(data).hexdigest()
    config = (folder / "config.pbtxt").read_text()
    assert 'name: "penguins"' in config
    assert 'platform: "onnxruntime_onnx"' in config
    assert "max_batch_size: 0" in config
    assert "version_policy: { all: {} }" in config
    for name in ("bill_length_mm", "body_mass_g"):
        assert f'name: "{name}"\n    data_type: TYPE_FP32\n    dims: [ -1, 1 ]' in config
    assert 'name: "island"\n    data_type: TYPE_STRING\n    dims: [ -1, 1 ]' in config
    assert 'name: "label"\n    data_type: TYPE_STRING\n    dims: [ -1 ]' in config
    assert 'name: "probabilities"\n    data_type: TYPE_FP32\n    dims: [ -1, 3 ]' in config


def test_repository_is_readable_by_other_users(registry, model):
    registry.register("penguins", model)
    registry.set_alias("penguins", "production", 1)
    folder = registry.root / "penguins"
    modes = {p.relative_to(folder).as_posix(): p.stat().st_mode & 0o777 for p in folder.rglob("*")}
    assert modes == {".next-version": 0o644, "config.pbtxt": 0o644, "aliases.json": 0o644, "1": 0o755,
                     "aliases.history.json": 0o644,
                     "1/model.onnx": 0o644, "1/model.sha256": 0o644}


def test_versions_count_up_and_set_model_version(registry, model):
    assert [registry.register("penguins", model) for _ in range(3)] == [1, 2, 3]
    assert registry.versions("penguins") == [1, 2, 3]
    assert [registry.load("penguins", v).model_version for v in (1, 2, 3)] == [1, 2, 3]
    assert model.model_version == 0  # the caller's object is left as it was
    assert registry.resolve("penguins") == 3
    assert registry.resolve("penguins", "latest") == 3
    assert registry.resolve("penguins", "2") == 2


def test_register_accepts_bytes_and_paths(registry, model, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    assert registry.register("penguins", model.SerializeToString()) == 1
    assert registry.register("penguins", path) == 2
    assert registry.register("penguins", str(path)) == 3
    assert registry.load("penguins", 3).graph == model.graph


def test_metadata_round_trips_through_the_repository(registry, model):
    registry.register("penguins", model)
    info = registry.info("penguins", 1)
    assert info["features"][0] == {"name": "bill_length_mm", "kind": "numeric"}
    assert info["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert info["target"] == "species"
    assert info["metrics"]["on"] == "test"
    assert info["producer"].startswith("mlprod ")
    assert info["model_version"] == 1
    assert info["sha256"] == hashlib.sha256(registry.path("penguins", 1).read_bytes()).hexdigest()
    assert registry.catalog()[0]["classes"] == info["classes"]
    session = export.session(registry.read_bytes("penguins", 1))
    meta = session.get_modelmeta()
    assert meta.version == 1 and meta.producer_name == "mlprod"
    assert json.loads(meta.custom_metadata_map["classes"]) == info["classes"]


def test_a_version_is_never_overwritten_when_another_writer_wins_the_race(
        registry, model, monkeypatch):
    registry.register("penguins", model)
    first = registry.path("penguins", 1).read_bytes()
    original, calls = Registry._next_version, []

    def next_version(folder):  # the first answer is 1, as if read just before version 1 appeared
        calls.append(folder)
        return 1 if len(calls) == 1 else original(folder)

    monkeypatch.setattr(Registry, "_next_version", staticmethod(next_version))
    assert registry.register("penguins", model) == 2
    assert len(calls) >= 2  # it lost the race for version 1 and took the next number
    assert registry.path("penguins", 1).read_bytes() == first
    assert leftovers(registry.root / "penguins") == []


def test_a_failed_write_leaves_no_half_version(registry, model, monkeypatch):
    registry.register("penguins", model)

    def broken_rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", broken_rename)
    with pytest.raises(OSError, match="No space left"):
        registry.register("penguins", model)
    monkeypatch.undo()
    assert registry.versions("penguins") == [1]
    assert leftovers(registry.root / "penguins") == []
    assert registry.register("penguins", model) == 2


def test_a_failure_while_writing_the_file_leaves_nothing(registry, model, monkeypatch):
    def broken_write(self, data):
        Path.write_text(self, "half")  # some bytes hit the disk, then the write fails
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Path, "write_bytes", broken_write)
    with pytest.raises(OSError, match="Input/output"):
        registry.register("penguins", model)
    monkeypatch.undo()
    assert registry.models() == []
    assert leftovers(registry.root / "penguins") == []


def test_aliases_point_at_versions_and_move(registry, model):
    registry.register("penguins", model)
    registry.register("penguins", model)
    registry.set_alias("penguins", "production", 1)
    registry.set_alias("penguins", "candidate", 2)
    path = registry.root / "penguins" / "aliases.json"
    assert json.loads(path.read_text()) == {"production": 1, "candidate": 2}
    assert registry.load("penguins", "candidate").model_version == 2
    registry.set_alias("penguins", "production", "candidate")  # promote
    assert registry.aliases("penguins") == {"production": 2, "candidate": 2}
    assert registry.info("penguins", 2)["aliases"] == ["candidate", "production"]
    registry.remove_alias("penguins", "candidate")
    assert registry.aliases("penguins") == {"production": 2}
    assert leftovers(registry.root / "penguins") == []


def test_alias_writes_are_atomic(registry, model, monkeypatch):
    registry.register("penguins", model)
    registry.set_alias("penguins", "production", 1)
    before = (registry.root / "penguins" / "aliases.json").read_text()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        registry.set_alias("penguins", "candidate", 1)
    monkeypatch.undo()
    assert (registry.root / "penguins" / "aliases.json").read_text() == before
    assert leftovers(registry.root / "penguins") == []


def test_alias_errors(registry, model):
    registry.register("penguins", model)
    with pytest.raises(NotFoundError, match=r"no version 5; versions: \[1\]"):
        registry.set_alias("penguins", "production", 5)
    with pytest.raises(NotFoundError, match=r"no alias 'production'.*Registry.set_alias"):
        registry.load("penguins", "production")
    for bad in ("2", "latest", "../up", ""):
        with pytest.raises(InvalidNameError):
            registry.set_alias("penguins", bad, 1)
    with pytest.raises(NotFoundError):
        registry.remove_alias("penguins", "nope")


def test_unknown_model_and_version_list_what_exists(registry, model):
    registry.register("penguins", model)
    with pytest.raises(NotFoundError, match=r"No model 'iris'.*available: \['penguins'\]"):
        registry.load("iris")
    with pytest.raises(NotFoundError, match=r"no version 9; versions: \[1\]"):
        registry.load("penguins", 9)
    with pytest.raises(NotFoundError, match=r"available: \[\]"):
        Registry(registry.root / "nowhere").versions("penguins")
    assert Registry(registry.root / "nowhere").models() == []


def test_checksum_mismatch_is_refused(registry, model):
    registry.register("penguins", model)
    path = registry.path("penguins", 1)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="does not match.*Register the model again"):
        registry.load("penguins", 1)
    path.with_name("model.sha256").unlink()
    with pytest.raises(ChecksumError, match="missing"):
        registry.load("penguins", 1)


def test_a_file_that_is_not_onnx_is_refused(registry, model, tmp_path):
    with pytest.raises(InvalidModelError, match="not an ONNX model"):
        registry.register("penguins", b"\x00\x01 certainly not protobuf \xff")
    with pytest.raises(InvalidModelError, match="No ONNX file"):
        registry.register("penguins", tmp_path / "missing.onnx")
    with pytest.raises(InvalidModelError, match="Cannot register a dict"):
        registry.register("penguins", {"model": 1})
    assert registry.models() == []
    registry.register("penguins", model)
    path = registry.path("penguins", 1)
    garbage = b"<html>not a model</html>"
    path.write_bytes(garbage)  # a corrupt file whose checksum was updated to match
    path.with_name("model.sha256").write_text(hashlib.sha256(garbage).hexdigest() + "\n")
    with pytest.raises(InvalidModelError, match="not an ONNX model"):
        registry.load("penguins", 1)


@pytest.mark.parametrize("name", ["../evil", ".hidden", "a/b", "a b", "", "x" * 65, "-dash",
                                  "penguins\n", 7, None])
def test_unsafe_names_are_refused(registry, model, name):
    with pytest.raises(InvalidNameError, match=r"\[A-Za-z0-9\]\[A-Za-z0-9_.-\]\{0,63\}"):
        registry.register(name, model)
    assert not registry.root.exists() or registry.models() == []


def test_safe_names_are_accepted():
    for name in ("penguins", "p", "Model_2.v-1", "9" * 64):
        assert check_name(name) == name


def test_foreign_folders_are_not_versions(registry, model):
    registry.register("penguins", model)
    folder = registry.root / "penguins"
    for name in ("01", "draft", ".incoming-x"):
        (folder / name).mkdir()
    (registry.root / "empty").mkdir()
    assert registry.versions("penguins") == [1]
    assert registry.models() == ["penguins"]
    assert registry.register("penguins", model) == 2


def test_registry_reads_onnx_without_scikit_learn():
    code = ("import sys, mlprod.registry; "
            "found = sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'); "
            "print(found); sys.exit(1 if found else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_deleted_version_number_is_never_reused(registry, model):
    assert [registry.register("penguins", model) for _ in range(3)] == [1, 2, 3]
    folder = registry.root / "penguins"
    for child in (folder / "3").iterdir():
        child.unlink()
    (folder / "3").rmdir()
    assert registry.versions("penguins") == [1, 2]
    assert registry.register("penguins", model) == 4
    assert (folder / ".next-version").read_text() == "5\n"
    (folder / ".next-version").unlink()  # without the mark the folders still count
    assert registry.register("penguins", model) == 5
    (folder / ".next-version").write_text("many\n")
    with pytest.raises(RegistryError, match=r"\.next-version holds 'many'.*so none is reused"):
        registry.register("penguins", model)


def test_a_model_with_another_signature_is_refused(registry, model):
    registry.register("penguins", model)
    config = (registry.root / "penguins" / "config.pbtxt").read_text()
    other = onnx.ModelProto()
    other.CopyFrom(model)
    other.graph.output[1].type.tensor_type.shape.dim[1].dim_value = 4  # four classes
    with pytest.raises(SignatureError, match=r"served with inputs \(bill_length_mm FP32 \[-1, 1\]"
                       r".*probabilities FP32 \[-1, 3\]\).*probabilities FP32 \[-1, 4\]"
                       r".*under a new name, e\.g\. 'penguins-v2'"):
        registry.register("penguins", other)
    assert (registry.root / "penguins" / "config.pbtxt").read_text() == config
    assert registry.versions("penguins") == [1]
    assert registry.register("penguins-v2", other) == 1
    assert "dims: [ -1, 4 ]" in (registry.root / "penguins-v2" / "config.pbtxt").read_text()


def test_an_empty_version_folder_is_not_a_version(registry, model):
    registry.register("penguins", model)
    (registry.root / "penguins" / "2").mkdir()  # copied by hand, half done
    assert registry.versions("penguins") == [1]
    assert registry.load("penguins").model_version == 1
    with pytest.raises(NotFoundError, match=r"no version 2; versions: \[1\]"):
        registry.load("penguins", 2)
    assert registry.register("penguins", model) == 3  # the folder's number is not taken


def test_a_model_without_features_or_classes_is_refused(registry, split, fitted_pipeline):
    bare = export.convert(fitted_pipeline, split.X_train)
    with pytest.raises(InvalidModelError, match=r"no 'features' or 'classes' metadata.*"
                       r"mlprod\.export\.to_onnx"):
        registry.register("penguins", bare)
    assert registry.models() == []


@pytest.mark.parametrize("value", ['"one"', "0", "null", "1.5", "true"])
def test_a_corrupt_alias_names_the_file_alias_and_value(registry, model, value):
    registry.register("penguins", model)
    path = registry.root / "penguins" / "aliases.json"
    path.write_text(f'{{"production": {value}}}')
    with pytest.raises(RegistryError, match=r"aliases\.json: alias 'production' has value "
                       r".*not a version number.*Registry\.set_alias"):
        registry.aliases("penguins")


def test_catalog_lists_the_other_versions_when_one_is_corrupt(registry, model):
    for name in ("penguins", "penguins", "gentoo"):
        registry.register(name, model)
    path = registry.path("penguins", 1)
    path.write_bytes(path.read_bytes()[:-10])
    rows = registry.catalog()
    assert [(r["model"], r["version"]) for r in rows] == [("gentoo", 1), ("penguins", 1),
                                                         ("penguins", 2)]
    assert "does not match" in rows[1]["error"] and rows[1]["classes"] is None
    assert rows[0]["error"] is None and rows[2]["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
