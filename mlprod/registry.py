"""Keep versioned ONNX models in a folder that Triton, KServe and the mlprod server all read.

The layout is Triton's model repository, which KServe and the mlprod server read too::

    <root>/<model>/config.pbtxt            platform, inputs and outputs, every version served
    <root>/<model>/aliases.json            {"production": 1, "candidate": 2}
    <root>/<model>/aliases.history.json    every alias move, for rollback (the server ignores it)
    <root>/<model>/routing.json            variants and a shadow (mlprod.rollout writes it)
    <root>/<model>/.next-version           the next version number (never decreases)
    <root>/<model>/<version>/model.onnx    the model, its metadata inside (metadata_props)
    <root>/<model>/<version>/model.sha256  checksum, verified on every load

A version is written to a temporary folder in the same repository and renamed into place, so it
appears complete or not at all; versions are never overwritten, and a number is never given
twice, even after its folder is deleted. All versions of a model share one input/output
signature, since ``config.pbtxt`` serves them all. What the files may hold is decided by
:mod:`server.layout`, the one reader the server and the container build use too. This module
reads ONNX files only: it does not import scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import onnx

from mlprod.files import atomic_write
from mlprod.triton import config_pbtxt
from server import layout

__all__ = ["Registry", "RegistryError", "NotFoundError", "ChecksumError", "InvalidModelError",
           "InvalidNameError", "SignatureError", "check_name", "config_pbtxt"]

NAME_PATTERN = layout.NAME
#: The file in a model's folder holding the next version number (a high-water mark).
NEXT_VERSION = ".next-version"
#: Every alias move, oldest first: ``[{"alias", "version", "at"}, ...]`` (rollback reads it).
HISTORY = "aliases.history.json"
#: The metadata the mlprod server needs from every model (``metadata_props``).
REQUIRED_METADATA = ("features", "classes")

class RegistryError(Exception):
    """Base class of the repository's errors; also a file that breaks the format (server.layout)."""


class NotFoundError(RegistryError, LookupError):
    """No such model, version or alias in the repository."""


class ChecksumError(RegistryError):
    """A model file no longer matches the checksum written when it was registered."""


class InvalidModelError(RegistryError, ValueError):
    """A file or object is not a valid ONNX model."""


class InvalidNameError(RegistryError, ValueError):
    """A model or alias name is not safe to use as a folder or key."""


class SignatureError(RegistryError, ValueError):
    """A model's inputs or outputs differ from those of the versions already registered."""


def check_name(name: Any, what: str = "model name") -> str:
    """Return ``name`` if it matches ``[A-Za-z0-9][A-Za-z0-9_.-]{0,63}``, else raise.

    Raises
    ------
    InvalidNameError
        Naming the value and the allowed pattern (no path separators, no leading dot).
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidNameError(
            f"Invalid {what} {name!r}: use 1 to 64 letters, digits, '_', '.' or '-', starting "
            "with a letter or digit (pattern [A-Za-z0-9][A-Za-z0-9_.-]{0,63}), e.g. 'penguins'."
        )
    return name


def read_metadata(model: onnx.ModelProto) -> dict[str, Any]:
    """Return the model's ``metadata_props`` with every JSON value decoded (other values as text)."""
    out = {}
    for prop in model.metadata_props:
        try:
            out[prop.key] = json.loads(prop.value)
        except json.JSONDecodeError:
            out[prop.key] = prop.value
    return out


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    """Parse ONNX bytes, raising :class:`InvalidModelError` naming ``where`` when they are not."""
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise InvalidModelError(f"{where} is not an ONNX model ({exc}). Register a model "
                                "exported with mlprod.export.to_onnx.") from None
    if not model.graph.node and not model.graph.output:
        raise InvalidModelError(f"{where} is not an ONNX model (no graph). Register a model "
                                "exported with mlprod.export.to_onnx.")
    return model


class Registry:
    """A model repository on disk: register ONNX versions, move aliases, load them back.

    Parameters
    ----------
    root : path
        The repository folder; created on the first :meth:`register`.

    Examples
    --------
    >>> registry = Registry("build/notebooks/03-export-three-paths/models")  # doctest: +SKIP
    >>> registry.register("penguins", model)                                 # doctest: +SKIP
    1
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    # -- reading -------------------------------------------------------------------------------
    def models(self) -> list[str]:
        """Return the names of the models that have at least one version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and NAME_PATTERN.fullmatch(p.name) and layout.version_folders(p))

    def versions(self, name: str) -> list[int]:
        """Return the versions of a model, ascending.

        Raises
        ------
        NotFoundError
            If there is no such model, listing the models there are.
        """
        folder = self.root / check_name(name)
        versions = layout.version_folders(folder) if folder.is_dir() else []
        if not versions:
            raise NotFoundError(
                f"No model {name!r} in repository {self.root}/; available: {self.models()}. "
                "Register one with Registry.register(name, model).")
        return versions

    def aliases(self, name: str) -> dict[str, int]:
        """Return the model's aliases, e.g. ``{"production": 1, "candidate": 2}``.

        Raises
        ------
        RegistryError
            If ``aliases.json`` breaks the format or names a version that does not exist (the
            server refuses such a folder too, with the same message).
        """
        versions = self.versions(name)
        try:
            return layout.read_aliases(self.root / name, versions)
        except layout.FormatError as exc:
            raise RegistryError(str(exc)) from None

    def resolve(self, name: str, version: int | str | None = None) -> int:
        """Turn a version, an alias, ``"latest"`` or ``None`` (the latest) into a version number.

        Raises
        ------
        NotFoundError
            If the model, version or alias does not exist, listing what does.
        """
        versions = self.versions(name)
        if version is None or version == "latest":
            return versions[-1]
        if isinstance(version, str) and layout.is_version(version):
            version = int(version)
        if isinstance(version, int) and not isinstance(version, bool):
            if version not in versions:
                raise NotFoundError(f"Model {name!r} has no version {version}; versions: "
                                    f"{versions}, aliases: {self.aliases(name)}.")
            return version
        if isinstance(version, str):
            aliases = self.aliases(name)
            if version not in aliases:
                raise NotFoundError(f"Model {name!r} has no alias {version!r}; aliases: {aliases}"
                                    f", versions: {versions}. Set one with Registry.set_alias.")
            return self.resolve(name, aliases[version])
        raise NotFoundError(f"Version {version!r} of model {name!r} must be an integer, an alias or"
                            f" 'latest'; versions: {versions}, aliases: {self.aliases(name)}.")

    def path(self, name: str, version: int | str | None = None) -> Path:
        """Return the path of a version's ``model.onnx`` (version, alias or latest)."""
        return self._file(name, self.resolve(name, version))

    def _file(self, name: str, number: int) -> Path:
        return self.root / name / str(number) / "model.onnx"

    def read_bytes(self, name: str, version: int | str | None = None) -> bytes:
        """Return a version's ONNX bytes after verifying its checksum.

        Raises
        ------
        ChecksumError
            If ``model.onnx`` does not hash to the value in ``model.sha256`` (or that is missing).
        """
        return self._verified(self.path(name, version))[0]

    def load(self, name: str, version: int | str | None = None) -> onnx.ModelProto:
        """Load a version (number, alias, ``"latest"`` or ``None`` for the latest), verified.

        Raises
        ------
        NotFoundError, ChecksumError, InvalidModelError
        """
        path = self.path(name, version)
        return _parse(self._verified(path)[0], str(path))

    def info(self, name: str, version: int | str | None = None) -> dict[str, Any]:
        """Return what a version's ONNX file says about it: metadata, producer, checksum, aliases."""
        number = self.resolve(name, version)
        path = self._file(name, number)
        data, digest = self._verified(path)
        model = _parse(data, str(path))
        meta = read_metadata(model)
        return {
            "model": name, "version": number,
            "aliases": sorted(a for a, v in self.aliases(name).items() if v == number),
            "producer": f"{model.producer_name} {model.producer_version}".strip(),
            "model_version": model.model_version, "doc_string": model.doc_string,
            "sha256": digest,
            **meta,
        }

    @staticmethod
    def _verified(path: Path) -> tuple[bytes, str]:
        """Return a ``model.onnx``'s bytes and SHA-256 once they match its ``model.sha256``."""
        try:
            return layout.read_verified(path.parent)
        except layout.ChecksumError as exc:
            raise ChecksumError(str(exc)) from None

    def catalog(self) -> list[dict[str, Any]]:
        """Return one summary per model version: name, version, aliases, created, classes, metrics.

        A version that cannot be read (checksum mismatch, corrupt file) is listed with its
        ``error`` (None for the others) and empty fields; the other versions are still listed.
        """
        keys = ("model", "version", "aliases", "created", "classes", "metrics", "doc_string")
        rows = []
        for name in self.models():
            for number in self.versions(name):
                try:
                    info = self.info(name, number)
                except (RegistryError, OSError) as exc:  # one bad version must not hide the rest
                    info = {"model": name, "version": number, "error": str(exc)}
                rows.append({key: info.get(key) for key in keys} | {"error": info.get("error")})
        return rows

    # -- writing -------------------------------------------------------------------------------
    def register(self, name: str, model: onnx.ModelProto | bytes | str | os.PathLike) -> int:
        """Add a model as the next version; return its number (1 for the first).

        The version is written to a temporary folder inside the repository and renamed into place,
        so a failed write leaves nothing behind and readers never see half a version. The file's
        ``model_version`` is set to the registry version. Numbers are never given twice: the
        next one is kept in ``.next-version`` and exceeds every version folder there has been.

        Parameters
        ----------
        name : str
            Model name, e.g. ``"penguins"``.
        model : onnx.ModelProto, bytes or path
            The model or its serialized bytes or file.

        Raises
        ------
        InvalidNameError, InvalidModelError
            An unsafe name; not an ONNX model, or one without ``features``/``classes`` metadata.
        SignatureError
            When the model's inputs or outputs differ from the registered versions' (Triton
            serves every version with one ``config.pbtxt``): register it under a new name.
        """
        check_name(name)
        model = self._as_model(model)
        folder = self.root / name
        try:
            config = config_pbtxt(name, model)
        except ValueError as exc:
            raise InvalidModelError(str(exc)) from None
        config_path = folder / "config.pbtxt"
        if config_path.exists() and layout.version_folders(folder):
            old, new = (layout.config_signature(c) for c in (config_path.read_text(), config))
            if old != new:
                raise SignatureError(
                    f"Model {name!r} is served with {old}, but the new model has {new}. Triton "
                    f"serves every version with one config.pbtxt, so the older versions would no "
                    f"longer be served; register this model under a new name, e.g. "
                    f"{name + '-v2'!r}.")
        folder.mkdir(parents=True, exist_ok=True)
        if not config_path.exists() or config_path.read_text() != config:
            atomic_write(config_path, config.encode())  # before the version appears
        while True:
            number = self._next_version(folder)
            copy = onnx.ModelProto()
            copy.CopyFrom(model)
            copy.model_version = number
            data = copy.SerializeToString()
            tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".incoming-"))
            os.chmod(tmp, 0o755)  # mkdtemp makes it private; a served version must be readable
            try:
                (tmp / "model.onnx").write_bytes(data)
                (tmp / "model.sha256").write_text(
                    f"{hashlib.sha256(data).hexdigest()}  model.onnx\n")
                for child in ("model.onnx", "model.sha256"):
                    with open(tmp / child, "rb") as fh:
                        os.fsync(fh.fileno())
                try:
                    os.rename(tmp, folder / str(number))
                except OSError:
                    if (folder / str(number)).exists():  # another writer took this number
                        continue
                    raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            break
        # The high-water mark: above this version and any other there has been, kept if a
        # version folder is deleted later.
        atomic_write(folder / NEXT_VERSION, f"{self._next_version(folder)}\n".encode())
        return number

    def set_alias(self, name: str, alias: str, version: int | str, *,
                  rolled_back_from: int | None = None) -> int:
        """Point ``alias`` (e.g. ``"production"``) at a version; return its number.

        ``aliases.json`` is replaced atomically, and the move is appended to
        ``aliases.history.json`` (what :meth:`rollback` reads).

        Raises
        ------
        InvalidNameError
            If the alias is not a safe name, is all digits or is ``"latest"``.
        NotFoundError
            If the model or version does not exist.
        """
        check_name(alias, "alias")
        if alias.isdigit() or alias == "latest":
            raise InvalidNameError(f"Invalid alias {alias!r}: it would be read as a version; use "
                                   "a word such as 'production' or 'candidate'.")
        number = self.resolve(name, version)
        self._write_aliases(name, self._raw_aliases(name) | {alias: number})
        entry = {"alias": alias, "version": number,
                 "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if rolled_back_from is not None:
            entry["rolled_back_from"] = rolled_back_from
        atomic_write(self.root / name / HISTORY,
                     (json.dumps([*self.history(name), entry], indent=1) + "\n").encode())
        return number

    def remove_alias(self, name: str, alias: str) -> None:
        """Delete an alias; the versions stay.

        Raises
        ------
        NotFoundError
            If the alias does not exist.
        """
        aliases = self._raw_aliases(name)
        if alias not in aliases:
            raise NotFoundError(f"Model {name!r} has no alias {alias!r}; aliases: {aliases}.")
        del aliases[alias]
        self._write_aliases(name, aliases)

    def history(self, name: str) -> list[dict[str, Any]]:
        """Return every alias move of a model, oldest first: ``{"alias", "version", "at"}``."""
        path = self.root / check_name(name) / HISTORY
        try:
            entries = json.loads(path.read_text())
        except FileNotFoundError:
            return []
        except ValueError as exc:
            raise RegistryError(f"{path} is not valid JSON ({exc}); delete it to start the "
                                "history again (rollback then has nothing to go back to).") from None
        if not isinstance(entries, list):
            raise RegistryError(f"{path} must hold a list of alias moves; delete it to start the "
                                "history again.")
        return entries

    def rollback(self, name: str, alias: str = "production") -> int:
        """Move ``alias`` back to the version it named before its current one; return it.

        Rollbacks stack: two in a row go two versions back, as the history is walked like a
        stack (a move pushes a version, a rollback pops one).

        Raises
        ------
        NotFoundError
            If the history holds no earlier version of ``alias``.
        """
        stack: list[int] = []
        for entry in self.history(name):
            if entry.get("alias") != alias:
                continue
            if "rolled_back_from" in entry and len(stack) > 1:
                stack.pop()
            elif not stack or stack[-1] != entry.get("version"):
                stack.append(entry.get("version"))
        current = self.aliases(name).get(alias)
        if len(stack) < 2 or current is None:
            raise NotFoundError(f"Alias {alias!r} of model {name!r} has no earlier version to go "
                                f"back to (history: {stack}). Set it with Registry.set_alias.")
        return self.set_alias(name, alias, stack[-2], rolled_back_from=current)

    # -- internals -----------------------------------------------------------------------------
    def _raw_aliases(self, name: str) -> dict[str, int]:
        """Return ``aliases.json`` checked for syntax only, so a move can mend a dangling alias."""
        self.versions(name)
        try:
            return layout.parse_aliases(self.root / name / layout.ALIASES)
        except layout.FormatError as exc:
            raise RegistryError(str(exc)) from None

    def _write_aliases(self, name: str, aliases: dict[str, int]) -> None:
        atomic_write(self.root / name / layout.ALIASES,
                     (json.dumps(aliases, indent=2, sort_keys=True) + "\n").encode())

    @staticmethod
    def _next_version(folder: Path) -> int:
        """Return the next version number: above the high-water mark and every numeric folder."""
        try:
            return layout.read_next_version(folder)
        except layout.FormatError as exc:
            raise RegistryError(str(exc)) from None

    @staticmethod
    def _as_model(model: onnx.ModelProto | bytes | str | os.PathLike) -> onnx.ModelProto:
        if isinstance(model, onnx.ModelProto):
            parsed = model
        elif isinstance(model, bytes):
            parsed = _parse(model, "The bytes given")
        elif isinstance(model, (str, os.PathLike)):
            path = Path(model)
            if not path.is_file():
                raise InvalidModelError(f"No ONNX file at {path}; pass a ModelProto, its bytes or"
                                        " the path of a .onnx file.")
            parsed = _parse(path.read_bytes(), str(path))
        else:
            raise InvalidModelError(f"Cannot register a {type(model).__name__}: pass an "
                                    "onnx.ModelProto, its bytes or the path of a .onnx file.")
        try:
            onnx.checker.check_model(parsed)
        except onnx.checker.ValidationError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
            raise InvalidModelError(f"The model fails ONNX's checker: {first}. Export it again "
                                    "with mlprod.export.to_onnx.") from None
        meta = read_metadata(parsed)
        missing = [key for key in REQUIRED_METADATA if not isinstance(meta.get(key), list)]
        if missing:
            raise InvalidModelError(
                f"The model has no {' or '.join(repr(k) for k in missing)} metadata "
                f"(metadata_props holds {sorted(meta)}); the server needs the feature order and "
                "the class labels. Export it with mlprod.export.to_onnx, which writes them.")
        return parsed
