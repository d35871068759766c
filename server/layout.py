"""The model repository's format, read and checked in one place (the server and mlprod.registry).

Triton's layout with this kit's extensions::

    <repo>/<model>/config.pbtxt            Triton's configuration (inputs, outputs, every version)
    <repo>/<model>/<version>/model.onnx    the model; a version is a positive integer folder
    <repo>/<model>/<version>/model.sha256  its SHA-256, checked on every read (required)
    <repo>/<model>/aliases.json            {"production": 1, "candidate": 2}   (this kit's)
    <repo>/<model>/routing.json            variants, weights and a shadow        (this kit's)
    <repo>/<model>/.next-version           the next version number               (this kit's)

Triton and KServe ignore the files marked as this kit's. Every rule about what those files may
hold lives here, so the server, the registry and the container build agree on each edge case: a
missing checksum, an alias naming a deleted or non-integer version, a corrupt JSON file. This
module needs only the standard library; it never imports mlprod.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
VERSION = re.compile(r"[1-9][0-9]{0,17}")  # a positive integer, no leading zero, fits int64
NAME_RULE = ("1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit "
             "(pattern [A-Za-z0-9][A-Za-z0-9_.-]{0,63})")
ALIASES = "aliases.json"
ROUTING = "routing.json"
CHECKSUM = "model.sha256"
MODEL_FILE = "model.onnx"
#: SageMaker's name for the one variant of an endpoint without production variants.
ALL_TRAFFIC = "AllTraffic"
SHADOW = "shadow"


class FormatError(ValueError):
    """A repository file breaks the format: the message names the file, the field and the fix."""


class ChecksumError(FormatError):
    """A ``model.onnx`` is missing its ``model.sha256`` or no longer matches it."""


def is_name(text: object) -> bool:
    """Return whether ``text`` is a valid model, alias or variant name."""
    return isinstance(text, str) and NAME.fullmatch(text) is not None


def is_version(text: str) -> bool:
    """Return whether ``text`` (a folder name or path segment) is a version number."""
    return VERSION.fullmatch(text) is not None


def version_folders(model_dir: Path, complete: bool = True) -> list[int]:
    """Return a model's version numbers, ascending.

    With ``complete`` only folders holding ``model.onnx`` count: an empty or partial folder is
    not a version. Other names (``.incoming-*``, ``01``, ``v2``) are never versions.
    """
    return sorted(int(p.name) for p in model_dir.iterdir()
                  if p.is_dir() and is_version(p.name)
                  and (not complete or (p / MODEL_FILE).is_file()))


def read_verified(version_dir: Path) -> tuple[bytes, str]:
    """Return a version's ONNX bytes and SHA-256 once they match its ``model.sha256``.

    Raises
    ------
    ChecksumError
        If ``model.sha256`` is missing, empty or differs from the file's hash.
    """
    path = version_dir / MODEL_FILE
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    sums = version_dir / CHECKSUM
    try:
        expected = (sums.read_text().split() or [""])[0].lower()
    except FileNotFoundError:
        raise ChecksumError(
            f"{sums} is missing, so {path} cannot be verified. Register the model again "
            f"(mlprod.registry), or write its checksum: sha256sum model.onnx > model.sha256."
        ) from None
    if expected != digest:
        raise ChecksumError(
            f"{path} does not match {sums} (sha256 {digest[:12]}…, expected "
            f"{expected[:12] or 'nothing'}…): the file changed after it was registered "
            f"(copy error, edit, truncation). Register the model again.")
    return data, digest


def _read_json(path: Path, example: str):
    """Return a JSON file's value, or None when the file does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FormatError(f"{path} is not valid JSON ({exc}). Fix it, e.g. {example}, or delete "
                          f"it and write it again with mlprod.registry.") from None


def parse_aliases(path: Path) -> dict[str, int]:
    """Read ``aliases.json``: a flat object of alias name → version number (JSON integers).

    Checks the syntax only; :func:`read_aliases` also checks each version exists.

    Raises
    ------
    FormatError
        Bad JSON, not an object, an alias that is not a name (or is all digits, or ``latest``),
        or a value that is not a positive JSON integer (``1.9``, ``true``, ``"1"``).
    """
    example = '{"production": 1, "candidate": 2}'
    aliases = _read_json(path, example)
    if aliases is None:
        return {}
    if not isinstance(aliases, dict):
        raise FormatError(f"{path} must map alias names to versions, like {example}; it holds "
                          f"{type(aliases).__name__} {_short(aliases)}.")
    out = {}
    for alias, value in aliases.items():
        if not is_name(alias) or alias.isdigit() or alias == "latest":
            raise FormatError(f"{path}: alias {_short(alias)} is not an alias name: use "
                              f"{NAME_RULE}, not all digits and not 'latest'.")
        if type(value) is not int or value < 1:
            raise FormatError(f"{path}: alias {alias!r} has value {_short(value)}, which is not "
                              f"a version number (a positive JSON integer, like {example}). "
                              f"Set it again with Registry.set_alias.")
        out[alias] = value
    return out


def read_aliases(model_dir: Path, versions: list[int]) -> dict[str, int]:
    """Read ``aliases.json`` and check that each alias names one of ``versions``.

    Raises
    ------
    FormatError
        As :func:`parse_aliases`, or an alias naming a version that does not exist (deleted):
        nothing silently serves another version in its place.
    """
    path = model_dir / ALIASES
    aliases = parse_aliases(path)
    for alias, number in aliases.items():
        if number not in versions:
            raise FormatError(f"{path}: alias {alias!r} names version {number}, which does not "
                              f"exist (versions {versions}). Point it at one that does with "
                              f"Registry.set_alias, or remove it.")
    return aliases


@dataclass(frozen=True)
class Variant:
    """One production variant of ``routing.json``: a name, a version (number or alias), a weight."""

    name: str
    version: int | str
    weight: float


@dataclass(frozen=True)
class Shadow:
    """The shadow of ``routing.json``: a version scored on ``percent`` % of routed requests."""

    version: int | str
    percent: float


@dataclass(frozen=True)
class Routing:
    """The parsed ``routing.json``: variants (share = weight / sum of weights), an optional shadow."""

    variants: tuple[Variant, ...]
    shadow: Shadow | None = None

    def to_json(self) -> dict:
        """Return the file's content as a JSON-ready dict."""
        out: dict = {"variants": [{"name": v.name, "version": v.version, "weight": v.weight}
                                  for v in self.variants]}
        if self.shadow is not None:
            out["shadow"] = {"version": self.shadow.version, "percent": self.shadow.percent}
        return out


ROUTING_EXAMPLE = ('{"variants": [{"name": "production", "version": 1, "weight": 90}, '
                   '{"name": "candidate", "version": 2, "weight": 10}], '
                   '"shadow": {"version": 3, "percent": 100}}')


def routing_from_json(value: object, where: str) -> Routing:
    """Check a ``routing.json`` value and return it as :class:`Routing` (versions unresolved).

    Raises
    ------
    FormatError
        Naming ``where`` and the field: variants missing or empty, a bad or repeated name, a
        version that is neither a positive integer nor an alias name, a weight that is negative,
        not a number or infinite, all weights zero, a bad shadow, or an unknown key.
    """
    def fail(field: str, problem: str) -> FormatError:
        return FormatError(f"{where}: {field} {problem}. Example: {ROUTING_EXAMPLE}.")

    if not isinstance(value, dict):
        raise fail("the file", f"holds {type(value).__name__} {_short(value)}, not an object")
    unknown = sorted(set(value) - {"variants", "shadow"})
    if unknown:
        raise fail(f"key {_short(unknown[0])}", "is not part of the format (variants, shadow)")
    items = value.get("variants")
    if not isinstance(items, list) or not items:
        raise fail("'variants'", "must be a non-empty list of {name, version, weight}")
    variants = []
    for i, item in enumerate(items):
        field = f"variants[{i}]"
        if not isinstance(item, dict) or set(item) != {"name", "version", "weight"}:
            raise fail(field, f"must be an object with name, version and weight; got "
                              f"{_short(item)}")
        name = item["name"]
        if not is_name(name) or name == SHADOW:
            raise fail(f"{field}.name", f"{_short(name)} is not a variant name: use {NAME_RULE}"
                                        f", other than '{SHADOW}'")
        if any(v.name == name for v in variants):
            raise fail(f"{field}.name", f"{name!r} is given twice; variant names are unique")
        variants.append(Variant(name, _version_ref(item["version"], f"{field}.version", fail),
                                _number(item["weight"], f"{field}.weight", fail)))
    if sum(v.weight for v in variants) <= 0:
        raise fail("'variants'", "have weights that are all zero; give at least one a "
                                 "positive weight (share = weight / sum of weights)")
    shadow = None
    if value.get("shadow") is not None:
        item = value["shadow"]
        if not isinstance(item, dict) or set(item) != {"version", "percent"}:
            raise fail("'shadow'", f"must be an object with version and percent; got "
                                   f"{_short(item)}")
        percent = _number(item["percent"], "shadow.percent", fail)
        if percent > 100:
            raise fail("shadow.percent", f"is {percent}; give a share from 0 to 100")
        shadow = Shadow(_version_ref(item["version"], "shadow.version", fail), percent)
    return Routing(tuple(variants), shadow)


def read_routing(model_dir: Path, versions: list[int],
                 aliases: dict[str, int]) -> Routing | None:
    """Read and check ``routing.json``; None when the model has none.

    Each variant's and the shadow's version must exist now: a number among ``versions``, or an
    alias of ``aliases`` (which already names an existing version).

    Raises
    ------
    FormatError
        As :func:`routing_from_json`, or a version or alias that does not exist.
    """
    path = model_dir / ROUTING
    value = _read_json(path, ROUTING_EXAMPLE)
    if value is None:
        return None
    routing = routing_from_json(value, str(path))
    check_routing(routing, str(path), versions, aliases)
    return routing


def check_routing(routing: Routing, where: str, versions: list[int],
                  aliases: dict[str, int]) -> None:
    """Raise :class:`FormatError` if a variant or the shadow names a version or alias not there."""
    refs = [(f"variants[{i}].version", v.version) for i, v in enumerate(routing.variants)]
    if routing.shadow is not None:
        refs.append(("shadow.version", routing.shadow.version))
    for field, ref in refs:
        if isinstance(ref, int) and ref not in versions:
            raise FormatError(f"{where}: {field} is {ref}, which does not exist (versions "
                              f"{versions}). Name an existing version or alias.")
        if isinstance(ref, str) and ref not in aliases:
            raise FormatError(f"{where}: {field} is {ref!r}, which is not an alias (aliases "
                              f"{aliases}). Name an existing version or alias.")


def resolve(ref: int | str, aliases: dict[str, int]) -> int:
    """Return the version number a variant's ``version`` (number or alias) names now."""
    return ref if isinstance(ref, int) else aliases[ref]


def read_next_version(model_dir: Path) -> int:
    """Return the version the next registration gets: above ``.next-version`` and every folder.

    Raises
    ------
    FormatError
        If ``.next-version`` holds something other than a positive integer.
    """
    existing = version_folders(model_dir, complete=False) if model_dir.is_dir() else []
    path, mark = model_dir / ".next-version", 1
    if path.exists():
        text = path.read_text().strip()
        if not is_version(text):
            raise FormatError(f"{path} holds {_short(text)}, not the next version number. Write "
                              f"into it a number above every version this model has ever had, "
                              f"so none is reused.")
        mark = int(text)
    return max([mark, *(v + 1 for v in existing)])


_TENSOR = re.compile(r'name: "([^"]*)"\s*data_type: (\w+)\s*dims: \[([^\]]*)\]')


def config_signature(config: str) -> str:
    """Summarise a ``config.pbtxt``'s tensors: ``inputs (name TYPE [dims], ...) → outputs (...)``.

    Two versions can share a model folder only with the same signature (one config serves all).
    """
    head, _, tail = config.partition("\noutput [")

    def tensors(text: str) -> str:
        found = _TENSOR.findall(text)
        return ", ".join(f"{n} {t.removeprefix('TYPE_')} [{d.strip()}]" for n, t, d in found)

    return f"inputs ({tensors(head)}) → outputs ({tensors(tail)})"


def fingerprint(model_dir: Path) -> tuple:
    """Return what changes when a model folder changes: its versions, checksums and JSON files.

    Cheap (a few ``stat`` calls): the server's ``poll`` model control compares it each period.
    """
    def stamp(path: Path) -> tuple | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    try:
        versions = version_folders(model_dir)
    except OSError:
        return ()
    return (tuple((v, stamp(model_dir / str(v) / CHECKSUM), stamp(model_dir / str(v) / MODEL_FILE))
                  for v in versions),
            stamp(model_dir / ALIASES), stamp(model_dir / ROUTING))


def _version_ref(value: object, field: str, fail) -> int | str:
    if type(value) is int and value >= 1:
        return value
    if is_name(value) and not value.isdigit() and value != "latest":
        return value
    raise fail(field, f"{_short(value)} is neither a version number (a positive JSON integer) "
                      f"nor an alias name")


def _number(value: object, field: str, fail) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise fail(field, f"is {_short(value)}; give a non-negative number")
    return value


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
