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

from mlprod.files import write_json
from mlprod.registry import NotFoundError, Registry, RegistryError
from server import layout

__all__ = ["routing", "set_routing", "set_weights", "add_shadow", "remove_shadow",
           "clear_routing", "promote", "Rollout", "shadow_records", "collect_shadow"]


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
    write_json(path, written)
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


def shadow_records(log: str):
    """Read the shadow lines of a server's log (``LocalServer.log()``) into a DataFrame.

    Returns
    -------
    DataFrame
        One row per shadowed request: ``request_id``, ``model``, ``variant``, ``version``,
        ``shadow_version``, ``labels`` (the shadow's, a list per request) and ``error``.
    """
    import pandas as pd

    records = [json.loads(line.split(" shadow ", 1)[1]) for line in log.splitlines()
               if " shadow {" in line]
    return pd.DataFrame.from_records(records, columns=[
        "request_id", "model", "variant", "version", "shadow_version", "labels", "error"])


def collect_shadow(server, expected: int, timeout: float = 10.0):
    """Wait until a :class:`~mlprod.serving.LocalServer`'s log holds ``expected`` shadow lines.

    The server writes its log in batches (at most every half second); this polls it.

    Returns
    -------
    DataFrame
        As :func:`shadow_records` (fewer rows if ``timeout`` passed first).
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        records = shadow_records(server.log())
        if len(records) >= expected or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def _current(registry: Registry, name: str) -> dict[str, Any]:
    current = routing(registry, name)
    if current is None:
        raise NotFoundError(f"Model {name!r} has no routing.json; write one with "
                            f"set_routing(registry, {name!r}, variants=[...]).")
    return current


class Rollout:
    """Shift a model's traffic to its candidate in steps, watching guards; roll back on the first trip.

    Each step writes ``routing.json`` (production and candidate variants following their
    aliases), makes the server re-read it (``Client.load``), sends real requests and judges
    the candidate's answers against production's: error rate, median latency and, with labels,
    accuracy. A guard that trips sends all traffic back to production, and the rollout stops;
    when the last step passes, the candidate is promoted.

    Parameters
    ----------
    registry : Registry
        The repository the server reads.
    model : str
        The model's name.
    client : mlprod.client.Client
        For the server that serves ``registry`` (its ``base_url`` and token).
    rows : DataFrame
        Feature rows to send; labels (``labels``) enable the accuracy guard.
    steps : sequence of float
        The candidate's share, in percent, at each step.
    requests_per_step : int
        Requests sent at each step.
    max_error_rate : float
        The candidate's share of non-200 answers that trips the rollout.
    max_latency_ratio : float
        The candidate's p50 over production's that trips it.
    max_accuracy_drop : float
        Trips when the top of the candidate's 95 % accuracy interval is below production's
        accuracy minus this: a difference inside the noise never trips it.
    """

    def __init__(self, registry: Registry, model: str, client, rows, labels=None, *,
                 steps: Sequence[float] = (10, 50, 100), requests_per_step: int = 200,
                 max_error_rate: float = 0.01, max_latency_ratio: float = 5.0,
                 max_accuracy_drop: float = 0.05, concurrency: int = 2,
                 production: str = "production", candidate: str = "candidate"):
        self.registry, self.model, self.client = registry, model, client
        self.rows, self.labels = rows, labels
        self.steps, self.requests_per_step = list(steps), requests_per_step
        self.max_error_rate, self.max_latency_ratio = max_error_rate, max_latency_ratio
        self.max_accuracy_drop, self.concurrency = max_accuracy_drop, concurrency
        self.production, self.candidate = production, candidate

    def run(self, progress: bool = True):
        """Run the steps; return one row per step (shares, figures, verdict) as a DataFrame.

        With ``progress``, each step prints a line as it ends: what it did and why.
        """
        import pandas as pd

        from mlprod import traffic

        baseline: dict[str, float] = {}
        records = []
        say = print if progress else (lambda *args, **kwargs: None)
        for step, percent in enumerate(self.steps, 1):
            where = f"step {step}/{len(self.steps)}, candidate at {percent:g} %"
            self._route(percent)
            answers = traffic.send(self.client.base_url, self.model, self.rows,
                                   self.requests_per_step, labels=self.labels,
                                   concurrency=self.concurrency, token=self.client.token)
            summary = traffic.shares(answers)
            if self.labels is not None:  # accuracy with its interval, from distinct answers
                summary = summary.join(traffic.compare(answers)[0][["low", "high"]])
            if self.production in summary.index:  # production's figures, kept for step 100 %
                baseline = summary.loc[self.production].to_dict()
            seen = (summary.loc[self.candidate].to_dict()
                    if self.candidate in summary.index else {})
            reason = self._trip(seen, baseline)
            records.append({"candidate_percent": percent,
                            "candidate_requests": int(seen.get("requests", 0)),
                            "candidate_errors": int(seen.get("errors", 0)),
                            "candidate_accuracy": seen.get("accuracy"),
                            "production_accuracy": baseline.get("accuracy"),
                            "verdict": "rolled back" if reason else "passed"})
            if reason:
                self._route(0)
                version = self.registry.resolve(self.model, self.production)
                say(f"{where}: {reason} → rolled back: all traffic to {self.production} "
                    f"(version {version})")
                return pd.DataFrame(records)
            say(f"{where}: the candidate answered {int(seen.get('requests', 0))} requests, "
                f"guards held")
        number = promote(self.registry, self.model, self.candidate, self.production)
        self.client.load(self.model)
        say(f"promoted: {self.production} is now version {number}")
        return pd.DataFrame(records)

    def _route(self, percent: float) -> None:
        set_routing(self.registry, self.model, [
            {"name": self.production, "version": self.production, "weight": 100 - percent},
            {"name": self.candidate, "version": self.candidate, "weight": percent}])
        self.client.load(self.model)

    def _trip(self, seen: dict, baseline: dict) -> str | None:
        """Return why the candidate fails a guard at this step, or None."""
        if not seen.get("requests"):
            return None
        rate = seen["errors"] / seen["requests"]
        if rate > self.max_error_rate:
            return f"error rate {rate:.3g} > {self.max_error_rate:g}"
        if baseline.get("p50_ms") and seen["p50_ms"] > self.max_latency_ratio * baseline["p50_ms"]:
            return (f"p50 latency {seen['p50_ms']:.3g} ms > {self.max_latency_ratio:g}× "
                    f"production's {baseline['p50_ms']:.3g} ms")
        # Accuracy trips only when even the top of the candidate's 95 % interval is too low:
        # a few wrong answers out of a dozen are noise, not evidence.
        if (seen.get("high") is not None and baseline.get("accuracy") is not None
                and seen["high"] < baseline["accuracy"] - self.max_accuracy_drop):
            return (f"accuracy {seen['accuracy']:.3g} (95 % interval up to {seen['high']:.3g}) "
                    f"< production's {baseline['accuracy']:.3g} - {self.max_accuracy_drop:g}")
        return None
