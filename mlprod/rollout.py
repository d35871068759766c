"""Route traffic between a model's versions, and roll a new one out in guarded steps.

``routing.json`` (this kit's extension, read by the server's ``server.layout``) splits the
requests for a model between named variants by weight, as SageMaker's production variants do,
and can add a shadow: a version scored on a copy of the traffic whose answers are recorded,
never returned. The functions here write it atomically; a server with model control ``poll``
picks a change up within its period, and ``Client.load(name)`` makes one with ``explicit``
(or ``poll``) re-read it at once.

:class:`Rollout` moves weight to a candidate in steps (10 → 50 → 100 %) while it watches error
rate, latency and, when labels are sent, accuracy; the first guard that trips sends all traffic
back to production. At 100 % it promotes the candidate.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from mlprod.files import atomic_write
from mlprod.registry import NotFoundError, Registry, RegistryError
from server import layout

__all__ = ["routing", "set_routing", "set_weights", "add_shadow", "remove_shadow",
           "clear_routing", "promote"]


def routing(registry: Registry, name: str) -> dict[str, Any] | None:
    """Return a model's ``routing.json`` as a dict, checked as the server checks it; or None.

    Raises
    ------
    RegistryError
        If the file breaks the format (the server's message: file, field and fix).
    """
    versions = registry.versions(name)
    try:
        found = layout.read_routing(registry.root / name, versions, registry.aliases(name))
    except layout.FormatError as exc:
        raise RegistryError(str(exc)) from None
    return None if found is None else found.to_json()


def set_routing(registry: Registry, name: str, variants: Sequence[Mapping[str, Any]],
                shadow: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write ``routing.json``: ``variants`` as ``{"name", "version", "weight"}``, an optional shadow.

    A variant's version is a number (pinned) or an alias (it follows the alias when it moves).
    Checked exactly as the server will read it, before anything is written.

    Returns
    -------
    dict
        The routing written.

    Raises
    ------
    RegistryError
        Naming the field: an unknown version or alias, a negative weight, all weights zero...
    """
    value: dict[str, Any] = {"variants": [dict(v) for v in variants]}
    if shadow is not None:
        value["shadow"] = dict(shadow)
    path = registry.root / name / layout.ROUTING
    versions = registry.versions(name)
    try:
        parsed = layout.routing_from_json(value, str(path))
        layout.check_routing(parsed, str(path), versions, registry.aliases(name))
    except layout.FormatError as exc:
        raise RegistryError(str(exc)) from None
    written = parsed.to_json()
    atomic_write(path, (json.dumps(written, indent=2) + "\n").encode())
    return written


def set_weights(registry: Registry, name: str, weights: Mapping[str, float]) -> dict[str, Any]:
    """Change the weights of existing variants, e.g. ``{"production": 90, "candidate": 10}``.

    Raises
    ------
    NotFoundError
        If the model has no routing, or a name is not one of its variants.
    """
    current = _current(registry, name)
    names = [v["name"] for v in current["variants"]]
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise NotFoundError(f"Model {name!r} has no variant {unknown[0]!r}; variants: {names}. "
                            f"Add it with set_routing.")
    variants = [v | {"weight": weights.get(v["name"], v["weight"])} for v in current["variants"]]
    return set_routing(registry, name, variants, current.get("shadow"))


def add_shadow(registry: Registry, name: str, version: int | str,
               percent: float = 100) -> dict[str, Any]:
    """Score ``percent`` % of routed requests with ``version`` too, recording (not returning) it.

    A model without routing gets one variant, ``production``, following the production alias
    (or the latest version when there is none), so its answers do not change.
    """
    current = routing(registry, name) or {"variants": [
        {"name": "production", "weight": 1,
         "version": "production" if "production" in registry.aliases(name)
         else registry.resolve(name)}]}
    return set_routing(registry, name, current["variants"],
                       {"version": version, "percent": percent})


def remove_shadow(registry: Registry, name: str) -> dict[str, Any]:
    """Stop scoring a shadow; the variants stay."""
    current = _current(registry, name)
    return set_routing(registry, name, current["variants"])


def clear_routing(registry: Registry, name: str) -> None:
    """Delete ``routing.json``: the model answers as without variants again (no variant header)."""
    registry.versions(name)
    (registry.root / name / layout.ROUTING).unlink(missing_ok=True)


def promote(registry: Registry, name: str, source: str = "candidate",
            target: str = "production") -> int:
    """Point ``target`` at the version ``source`` names; send it all routed traffic; return it.

    Variants that follow ``target`` follow it to the new version. Where routing exists, the
    variant following ``target`` gets weight 100 and the others 0. A variant pinned to a version
    number stays where it is: a warning names it.
    """
    number = registry.set_alias(name, target, registry.resolve(name, source))
    current = routing(registry, name)
    if current is not None:
        pinned = [v["name"] for v in current["variants"] if isinstance(v["version"], int)]
        if pinned:
            warnings.warn(f"Variants {pinned} of model {name!r} name version numbers, so they "
                          f"did not move with {target!r} (now version {number}); name the alias "
                          f"instead to have them follow it.", stacklevel=2)
        if any(v["version"] == target for v in current["variants"]):
            set_routing(registry, name, [v | {"weight": 100 if v["version"] == target else 0}
                                         for v in current["variants"]], current.get("shadow"))
    return number


def _current(registry: Registry, name: str) -> dict[str, Any]:
    current = routing(registry, name)
    if current is None:
        raise NotFoundError(f"Model {name!r} has no routing.json; write one with "
                            f"set_routing(registry, {name!r}, variants=[...]).")
    return current
