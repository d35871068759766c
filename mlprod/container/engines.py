"""Container engines: which one this machine has (Docker, podman or none), and how to call it.

podman's settings live in one place, the shipped ``containers.conf`` (runtime, cgroup manager,
events logger, ulimits), which ``.ci/container-setup.sh`` installs and :func:`podman_env` points
podman at. The storage driver is the one setting that file cannot hold (it belongs to
``storage.conf``, whose paths differ between root and rootless podman), so it is the one flag.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlprod.container.templates import template
from mlprod.files import atomic_write

#: How the kit runs podman: the command and the one flag ``containers.conf`` cannot hold.
PODMAN = ("podman", "--storage-driver=vfs")


def podman_env() -> dict[str, str]:
    """Return the environment for podman: the kit's containers.conf unless one is set already."""
    env = dict(os.environ)
    if "CONTAINERS_CONF" not in env:
        conf = Path(tempfile.gettempdir()) / "mlprod-containers.conf"
        # Machines without systemd or setrlimit (CI's sandbox) need these settings; the same file
        # is what .ci/container-setup.sh installs.
        wanted = template("containers.conf")
        if not conf.is_file() or conf.read_text() != wanted:
            atomic_write(conf, wanted)
        env["CONTAINERS_CONF"] = str(conf)
    return env


def _works(command: Sequence[str], env: dict[str, str] | None = None, timeout: float = 60
           ) -> bool:
    """Return True if ``command`` exits 0 within ``timeout`` seconds."""
    try:
        return subprocess.run(list(command), capture_output=True, env=env,
                              timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def engine_works(name: str, timeout: float = 60) -> bool:
    """Return True if engine ``name`` ("docker" or "podman") is installed and ``info`` succeeds.

    ``docker info`` must reach a running engine (a docker client alone does not count); podman
    is asked with the kit's settings, as every other podman call here.
    """
    if name == "docker":
        return bool(shutil.which("docker")) and _works(["docker", "info"], timeout=timeout)
    if name == "podman":
        return bool(shutil.which("podman")) and _works([*PODMAN, "info"], podman_env(), timeout)
    raise ValueError(f"engine {name!r}: use 'docker' or 'podman'.")


def engine() -> str:
    """Return which container engine this machine has: ``"docker"``, ``"podman"`` or ``"none"``.

    ``docker info`` must reach a running engine (a docker client alone does not count);
    podman counts when ``podman info`` succeeds with the kit's settings.
    """
    for name in ("docker", "podman"):
        if engine_works(name):
            return name
    return "none"


@dataclass(frozen=True)
class Engine:
    """A container engine's command line: the argv prefix, its environment, and how it runs."""

    name: str
    command: tuple[str, ...]
    env: dict[str, str]

    @classmethod
    def detect(cls, name: str | None = None) -> Engine:
        """Return the engine called ``name`` (default: what ``engine()`` finds).

        Raises
        ------
        RuntimeError
            If there is none, saying how to get one.
        """
        name = name or engine()
        if name == "docker":
            return cls("docker", ("docker",), dict(os.environ))
        if name == "podman":
            return cls("podman", PODMAN, podman_env())
        raise RuntimeError(f"No container engine (got {name!r}): start Docker (`docker info` must "
                           "succeed) or install podman (`bash .ci/container-setup.sh`).")

    def run(self, *args: str, timeout: float = 600, check: bool = True
            ) -> subprocess.CompletedProcess:
        """Run the engine with ``args``; raise RuntimeError with its output if it fails."""
        done = subprocess.run([*self.command, *args], capture_output=True, text=True,
                              env=self.env, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"`{self.name} {' '.join(args)}` exited {done.returncode}:\n"
                               f"{done.stdout[-2000:]}{done.stderr[-4000:]}")
        return done
