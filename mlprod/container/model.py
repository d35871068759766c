"""The model the image serves: which one, which version, and its checked copy into the context."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def _registry(repository: Path):
    """Return a :class:`mlprod.registry.Registry` on ``repository`` (imported on use: onnx)."""
    from mlprod.registry import Registry

    return Registry(repository)


def choose_model(repository: str | os.PathLike, model: str | None = None) -> str:
    """Return ``model`` after checking it is in ``repository``, or the repository's only model.

    Raises
    ------
    FileNotFoundError
        If ``repository`` is not a folder.
    ValueError
        If the model is absent, or none is named and there are several, listing those there.
    """
    repo = Path(repository)
    if not repo.is_dir():
        raise FileNotFoundError(f"No model repository at {repo}: run `make models`, or pass the "
                                "folder mlprod.quickstart.model_repository() returns.")
    names = _registry(repo).models()
    if model is None:
        if len(names) != 1:
            raise ValueError(f"Repository {repo} holds models {names}: name one with model=... "
                             "(--model NAME).")
        return names[0]
    if model not in names:
        raise ValueError(f"No model {model!r} in repository {repo}; available: {names}.")
    return model


def served_version(model_dir: str | os.PathLike) -> int:
    """Return the version a request without one gets: the ``production`` alias, else the latest.

    Raises
    ------
    ValueError
        If ``aliases.json`` cannot be read as aliases, saying how to fix it.
    """
    from mlprod.registry import RegistryError

    model_dir = Path(model_dir)
    registry = _registry(model_dir.parent)
    try:
        production = registry.aliases(model_dir.name).get("production")
    except RegistryError as err:
        raise ValueError(str(err)) from None
    return production if production is not None else registry.versions(model_dir.name)[-1]


def _check_digest(repository: Path, model: str, version: int) -> None:
    """Raise ValueError if a version's ``model.onnx`` is unverified or differs from its checksum."""
    from mlprod.registry import ChecksumError

    try:
        _registry(repository).read_bytes(model, version)
    except ChecksumError as err:
        raise ValueError(f"{err} A context is not built from it: register it again as a new "
                         "version.") from None


def copy_model(repository: Path, model: str, dest: Path) -> list[int]:
    """Copy one model's config, aliases, routing and complete versions to ``dest/<model>``.

    Returns the versions copied.

    Raises
    ------
    ValueError
        If ``aliases.json`` or ``routing.json`` breaks the format (server.layout's message), or
        a version's file differs from its checksum.
    """
    from server import layout

    source = repository / model
    versions = _registry(repository).versions(model)
    try:
        layout.read_routing(source, versions, layout.read_aliases(source, versions))
    except layout.FormatError as err:
        raise ValueError(f"{err} A context is not built from it.") from None
    target = dest / model
    target.mkdir(parents=True)
    for name in ("config.pbtxt", layout.ALIASES, layout.ROUTING):
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    for version in versions:
        _check_digest(repository, model, version)
        shutil.copytree(source / str(version), target / str(version),
                        ignore=shutil.ignore_patterns(".*"), copy_function=shutil.copyfile)
    return versions
