"""Model control ``poll`` (Triton's name): re-read each model folder that changed on disk.

Every worker process runs its own poller, so all workers of a ``--workers N`` server converge on
the same versions, aliases and routing within one period. A folder is re-read only when its
:func:`server.layout.fingerprint` changed; versions whose bytes did not change keep their
session. The new model replaces the old in one assignment: a request is scored wholly by the
old or wholly by the new, and one already running finishes on the version it started with. A
folder that cannot be served is reported once (naming the file and the field) and the model
keeps serving what it served before.
"""

from __future__ import annotations

import asyncio
import sys

from server import layout
from server.repository import Repository, RepositoryError


class Poller:
    """Check the repository every ``seconds`` and swap in the models whose folders changed.

    Parameters
    ----------
    repository : Repository
        The loaded models, updated in place (one dict assignment per changed model).
    seconds : float
        The period (``--repository-poll-secs``).
    """

    def __init__(self, repository: Repository, seconds: float = 1.0):
        self.repository = repository
        self.seconds = seconds
        self._failed: dict[str, tuple] = {}  # model → the fingerprint that could not be served

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await asyncio.sleep(self.seconds)
            await self.check()

    async def check(self) -> list[str]:
        """Re-read every changed model folder now; return the names of the models swapped."""
        root = self.repository.root
        try:
            names = {p.name for p in root.iterdir() if p.is_dir() and layout.is_name(p.name)}
        except OSError as exc:
            self._report("*", (), f"cannot list {root}: {exc}")
            return []
        swapped = []
        for name in sorted(names | set(self.repository.models)):
            stamp = layout.fingerprint(root / name) if name in names else ()
            old = self.repository.models.get(name)
            if (old is not None and old.stamp == stamp) or self._failed.get(name) == stamp:
                continue
            if old is None and not stamp:
                continue  # a folder with no version yet
            try:
                new = await asyncio.to_thread(self.repository.load_model, name, old)
            except RepositoryError as exc:
                kept = (f"still serving versions {list(old.versions)}" if old is not None
                        else "not served")
                self._report(name, stamp, f"model '{name}' not reloaded ({kept}): {exc}")
                continue
            self._failed.pop(name, None)
            if new is None:
                self.repository.models.pop(name, None)
            else:
                self.repository.models[name] = new
            swapped.append(name)
        return swapped

    def _report(self, name: str, stamp: tuple, message: str) -> None:
        self._failed[name] = stamp
        print(f"poll: {message}", file=sys.stderr, flush=True)
