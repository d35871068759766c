"""Build an image from a context and run it: the engines' command lines, and a running container."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mlprod.container.defaults import DEFAULT_BASE_IMAGE, PORT
from mlprod.container.engines import Engine

_RFC3339 = re.compile(r"(?P<base>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d+))?"
                      r"(?P<zone>Z|[+-]\d\d:\d\d)?")


def build_command(context: str | os.PathLike, tag: str, engine_name: str,
                  base_image: str | None = None) -> list[str]:
    """Return the arguments that build ``context`` as ``tag`` with ``engine_name``."""
    args = ["build", "-t", tag]
    if engine_name == "podman":
        # OCI images drop HEALTHCHECK; chroot isolation and host networking suit the sandbox; the
        # vfs storage copies every layer in full, so one commit per stage (--layers=false) saves
        # a full copy per instruction, at the price of no layer cache between builds.
        args += ["--format", "docker", "--isolation=chroot", "--network=host", "--layers=false"]
    if base_image:
        args += ["--build-arg", f"BASE_IMAGE={base_image}"]
    return [*args, str(context)]


def image_bytes(eng: Engine, image: str) -> int | None:
    """Return the size the engine reports for ``image``, or None if it does not have it."""
    done = eng.run("image", "inspect", "--format", "{{.Size}}", image, check=False)
    return int(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None


def build_image(context: str | os.PathLike, tag: str, *, engine_name: str | None = None,
                base_image: str | None = None) -> dict:
    """Build the image of ``context`` as ``tag``; return its build seconds, size, id and config.

    ``image_bytes`` is the image's size and ``base_image_bytes`` its base's (the base counts
    in the image's size, so growth of the base is not this build's). ``user`` and
    ``healthcheck`` come from the built image's configuration, so they show what the builder
    kept (an OCI-format podman build would drop the health check).
    """
    eng = Engine.detect(engine_name)
    start = time.perf_counter()
    eng.run(*build_command(context, tag, eng.name, base_image), timeout=1800)
    seconds = time.perf_counter() - start
    info = json.loads(eng.run("image", "inspect", tag).stdout)[0]
    config = info.get("Config") or {}
    # Docker keeps the health check in Config; podman reports it beside Config.
    health = config.get("Healthcheck") or info.get("Healthcheck") or {}
    return {"engine": eng.name, "tag": tag, "build_seconds": round(seconds, 1),
            "image_bytes": int(info["Size"]),
            "base_image_bytes": image_bytes(eng, base_image or DEFAULT_BASE_IMAGE),
            "image_id": info["Id"].removeprefix("sha256:")[:12],
            "user": config.get("User"), "healthcheck": health.get("Test"),
            "labels": {k: v for k, v in (config.get("Labels") or {}).items()
                       if k.startswith("mlprod.")}}


def run_command(tag: str, name: str, port: int, engine_name: str) -> list[str]:
    """Return the arguments that start ``tag`` as container ``name``, answering on 127.0.0.1:port."""
    if engine_name == "podman":
        # Host networking (no bridge in the sandbox): the server itself must listen on ``port``.
        net = ["--network=host", "-e", f"SAGEMAKER_BIND_TO_PORT={port}"]
    else:
        net = ["-p", f"127.0.0.1:{port}:{PORT}"]
    return ["run", "-d", "--name", name, *net, tag, "serve"]


def parse_time(text: str) -> datetime:
    """Return an engine's RFC 3339 time (nanoseconds, ``Z`` or an offset) as an aware datetime.

    Raises
    ------
    ValueError
        If ``text`` is not such a time, quoting it.
    """
    found = _RFC3339.fullmatch(text.strip().strip('"'))
    if found is None:
        raise ValueError(f"Not an RFC 3339 time: {text!r}")
    fraction = (found["fraction"] or "")[:6].ljust(6, "0")  # Python keeps microseconds
    zone = "+00:00" if found["zone"] in (None, "Z") else found["zone"]
    return datetime.fromisoformat(f"{found['base']}.{fraction}{zone}")


@dataclass(frozen=True)
class Running:
    """A started container: its base URL, its name, the engine running it, and when it got ready.

    ``started`` is the engine's ``State.StartedAt``; ``ready`` when ``/ping`` first answered 200;
    ``run_seconds`` the wait from the run command to that answer (it also holds the engine's
    work before the start, e.g. copying the image's files with podman's vfs storage).
    """

    url: str
    name: str
    engine: Engine
    started: datetime | None = None
    ready: datetime | None = None
    run_seconds: float | None = None

    @property
    def ready_seconds(self) -> float | None:
        """Seconds from the container's start to the first ``/ping`` 200."""
        if self.started is None or self.ready is None:
            return None
        return (self.ready - self.started).total_seconds()

    def healthcheck(self) -> str:
        """Run the image's HEALTHCHECK now: ``"healthy"``, ``"unhealthy"``, or ``"unchecked"``.

        Only podman runs a health check on demand; Docker runs it on its own schedule.
        """
        if self.engine.name != "podman":
            return "unchecked"
        done = self.engine.run("healthcheck", "run", self.name, check=False, timeout=60)
        return "healthy" if done.returncode == 0 else "unhealthy"


@contextlib.contextmanager
def running(tag: str, *, engine_name: str | None = None, port: int | None = None,
            timeout: float = 60) -> Iterator[Running]:
    """Run image ``tag`` until the block ends; yield it once ``/ping`` answers 200.

    The container is stopped and removed on the way out, also when the block raises.

    Raises
    ------
    RuntimeError
        If the container exits, or ``/ping`` does not answer 200 within ``timeout`` seconds;
        the message holds the container's log.
    """
    from mlprod.serving import free_port  # mlprod.serving pulls in pandas

    eng = Engine.detect(engine_name)
    port = port or free_port()
    name = f"mlprod-{os.getpid()}-{port}"
    url = f"http://127.0.0.1:{port}"
    try:
        start = time.perf_counter()
        eng.run(*run_command(tag, name, port, eng.name), timeout=120)
        waited = wait_healthy(eng, {name: f"{url}/ping"}, start, timeout)[name]
        if isinstance(waited, RuntimeError):
            raise RuntimeError(f"{tag}: {waited}") from None
        ready = datetime.now(UTC) - timedelta(seconds=time.perf_counter() - start - waited)
        started = eng.run("inspect", "--format", "{{json .State.StartedAt}}", name,
                          check=False).stdout
        yield Running(url, name, eng, parse_time(started) if started.strip() else None, ready,
                      waited)
    finally:
        eng.run("stop", "-t", "5", name, check=False, timeout=60)
        eng.run("rm", "-f", name, check=False, timeout=60)


def wait_healthy(eng: Engine, health: dict[str, str], start: float,
                 timeout: float) -> dict[str, float | RuntimeError]:
    """Wait until each started container's health URL answers 200.

    Parameters
    ----------
    eng : Engine
        The engine running the containers.
    health : dict
        Container name → its health URL (``http://127.0.0.1:<port>/ping``).
    start : float
        ``time.perf_counter()`` when the first run command was given.
    timeout : float
        Seconds from ``start`` a container has to answer.

    Returns
    -------
    dict
        Container name → seconds from ``start`` to its first 200, or a RuntimeError holding the
        container's log where it exited or did not answer within ``timeout``. The URLs are
        polled every 20 ms, so the ready time is exact; the engine (a slower call) is asked
        whether the waiting containers still run once a second, in one call.
    """
    import requests

    found: dict[str, float | RuntimeError] = {}
    checked = time.perf_counter()
    while len(found) < len(health):
        for name, url in health.items():
            if name not in found:
                with contextlib.suppress(requests.RequestException):
                    if requests.get(url, timeout=2).status_code == 200:
                        found[name] = time.perf_counter() - start
        now = time.perf_counter()
        if now - checked > 1 or now - start > timeout:
            checked = now
            waiting = [name for name in health if name not in found]
            states = running_states(eng, waiting)
            for name in waiting:
                url, state = health[name], states.get(name, "gone")
                if state != "true" or now - start > timeout:
                    logs = eng.run("logs", name, check=False)
                    found[name] = RuntimeError(
                        f"container {name} did not answer {url} (running: {state}):\n"
                        f"{logs.stdout[-3000:]}{logs.stderr[-3000:]}")
        if len(found) < len(health):
            time.sleep(0.02)
    return found


def running_states(eng: Engine, names: list[str]) -> dict[str, str]:
    """Return container name → ``"true"`` or ``"false"`` (``State.Running``), in one engine call;
    a container the engine does not know is left out."""
    if not names:
        return {}
    done = eng.run("inspect", "--format", "{{.Name}} {{.State.Running}}", *names, check=False)
    states = {}
    for line in done.stdout.splitlines():
        name, _, state = line.strip().rpartition(" ")
        states[name.lstrip("/")] = state  # Docker writes the name with a leading slash
    return states
