"""One repository format: the registry, the server and the container build agree on each edge case.

Every case damages a copy of the course repository one way; all three readers must refuse it
with the same message, the one server.layout writes, and accept the pristine copy.
"""

from __future__ import annotations

import json
import shutil

import pytest

from mlprod import rollout
from mlprod.container import build_context
from mlprod.registry import Registry, RegistryError
from server import layout
from server.repository import Repository, RepositoryError


def write(path, value) -> None:
    path.write_text(value if isinstance(value, str) else json.dumps(value))


def routing(*variants, shadow=None):
    value = {"variants": [{"name": n, "version": v, "weight": w} for n, v, w in variants]}
    if shadow is not None:
        value["shadow"] = shadow
    return value


# (id, damage(model folder), fragment every reader's message holds)
CASES = [
    ("missing checksum", lambda m: (m / "2" / "model.sha256").unlink(),
     "model.sha256 is missing"),
    ("altered model", lambda m: (m / "1" / "model.onnx").write_bytes(
        (m / "1" / "model.onnx").read_bytes()[:-4]), "does not match"),
    ("alias 1.9", lambda m: write(m / "aliases.json", {"production": 1.9}),
     "alias 'production' has value 1.9, which is not a version number"),
    ("alias true", lambda m: write(m / "aliases.json", {"production": True}),
     "alias 'production' has value True, which is not a version number"),
    ("alias as text", lambda m: write(m / "aliases.json", {"production": "1"}),
     "alias 'production' has value '1', which is not a version number"),
    ("alias of a deleted version", lambda m: shutil.rmtree(m / "2"),
     "alias 'candidate' names version 2, which does not exist"),
    ("aliases not JSON", lambda m: write(m / "aliases.json", "{production: 1"),
     "aliases.json is not valid JSON"),
    ("aliases a list", lambda m: write(m / "aliases.json", [1, 2]),
     "must map alias names to versions"),
    ("routing not JSON", lambda m: write(m / "routing.json", "{"),
     "routing.json is not valid JSON"),
    ("routing unknown version", lambda m: write(m / "routing.json", routing(("a", 1, 1),
                                                                            ("b", 7, 1))),
     "variants[1].version is 7, which does not exist"),
    ("routing unknown alias", lambda m: write(m / "routing.json", routing(("a", "staging", 1))),
     "variants[0].version is 'staging', which is not an alias"),
    ("routing negative weight", lambda m: write(m / "routing.json",
                                                routing(("a", 1, 90), ("b", 2, -10))),
     "variants[1].weight is -10; give a non-negative number"),
    ("routing zero weights", lambda m: write(m / "routing.json", routing(("a", 1, 0),
                                                                         ("b", 2, 0))),
     "weights that are all zero"),
    ("routing weight true", lambda m: write(m / "routing.json", routing(("a", 1, True))),
     "variants[0].weight is True"),
    ("routing repeated name", lambda m: write(m / "routing.json", routing(("a", 1, 1),
                                                                          ("a", 2, 1))),
     "variants[1].name 'a' is given twice"),
    ("routing shadow over 100", lambda m: write(m / "routing.json", routing(
        ("a", 1, 1), shadow={"version": 2, "percent": 101})), "shadow.percent is 101"),
    ("routing unknown key", lambda m: write(m / "routing.json", {**routing(("a", 1, 1)),
                                                                 "sticky": True}),
     "key 'sticky' is not part of the format"),
]


def refusals(repo, tmp_path) -> dict[str, str]:
    """Read the repository as each part does; return each reader's error message."""
    messages = {}
    registry = Registry(repo)
    try:
        for version in registry.versions("penguins"):
            registry.read_bytes("penguins", version)
        registry.aliases("penguins")
        rollout.routing(registry, "penguins")
        messages["registry"] = ""
    except RegistryError as exc:
        messages["registry"] = str(exc)
    try:
        Repository(repo).load()
        messages["server"] = ""
    except RepositoryError as exc:
        messages["server"] = str(exc)
    try:
        build_context(repo, tmp_path / "context", "penguins")
        messages["container"] = ""
    except ValueError as exc:
        messages["container"] = str(exc)
    return messages


def test_the_pristine_repository_is_read_alike(repo, tmp_path):
    write(repo / "penguins" / "routing.json", routing(("production", "production", 90),
                                                      ("candidate", 2, 10),
                                                      shadow={"version": 2, "percent": 50}))
    assert refusals(repo, tmp_path) == {"registry": "", "server": "", "container": ""}
    model = Repository(repo).load().models["penguins"]
    assert [(r.name, r.version.version, r.weight) for r in model.routes] == [
        ("production", 1, 90), ("candidate", 2, 10)]
    assert (model.shadow.version, model.shadow_share) == (2, 0.5)
    assert (tmp_path / "context" / "model" / "penguins" / "routing.json").is_file()


@pytest.mark.parametrize("damage, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_reader_refuses_the_same_damage_alike(repo, tmp_path, damage, fragment):
    damage(repo / "penguins")
    messages = refusals(repo, tmp_path)
    for reader in ("registry", "server", "container"):
        assert fragment in messages[reader], (reader, messages)
    assert not (tmp_path / "context").exists()  # nothing half written


def test_a_variant_naming_an_alias_follows_it(repo):
    folder = repo / "penguins"
    write(folder / "routing.json", routing(("production", "production", 1)))
    repository = Repository(repo).load()
    assert repository.models["penguins"].routes[0].version.version == 1
    Registry(repo).set_alias("penguins", "production", 2)
    moved = repository.load_model("penguins", repository.models["penguins"])
    assert moved.routes[0].version.version == 2
    # Versions whose bytes did not change keep their ONNX Runtime session.
    assert moved.versions[1].session is repository.models["penguins"].versions[1].session


def test_a_version_is_a_positive_integer_without_leading_zero():
    assert [layout.is_version(t) for t in ("1", "10", "01", "0", "²", "1e3", "9" * 19)] == [
        True, True, False, False, False, False, False]
