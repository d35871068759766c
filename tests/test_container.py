"""The container build context: requirements, Dockerfile (hadolint), model copy, manifests."""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement

from mlprod import container, files, quickstart

ROOT = Path(__file__).resolve().parent.parent
HADOLINT = Path(sys.executable).parent / "hadolint"
K8S_VERSION = "1.30.0"
INSTRUCTIONS = ("ARG", "FROM", "ENV", "WORKDIR", "COPY", "RUN", "LABEL", "USER", "EXPOSE",
                "HEALTHCHECK", "ENTRYPOINT", "CMD")

# A small schema for a KServe InferenceService, written from KServe's API reference
# (serving.kserve.io/v1beta1: InferenceServiceSpec, PredictorSpec and its
# ComponentExtensionSpec, ModelSpec, ModelFormat): only the fields the kit writes, with the
# types and values the reference gives them.
STORAGE_URI = r"^(gs|s3|pvc|hdfs|webhdfs|https?|oci|hf)://\S*$"
QUANTITY = {"type": ["string", "integer"], "pattern": r"^[0-9.]+([eE][0-9]+|[numkMGTPE]i?)?$"}
RESOURCES = {"type": "object", "additionalProperties": False, "properties": {
    "requests": {"type": "object", "additionalProperties": QUANTITY},
    "limits": {"type": "object", "additionalProperties": QUANTITY}}}
INFERENCE_SERVICE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "serving.kserve.io/v1beta1"},
        "kind": {"const": "InferenceService"},
        "metadata": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "maxLength": 63,
                     "pattern": r"^[a-z]([-a-z0-9]*[a-z0-9])?$"}}},
        "spec": {"type": "object", "required": ["predictor"], "additionalProperties": False,
                 "properties": {"predictor": {"$ref": "#/$defs/predictor"},
                                "transformer": {"type": "object"},
                                "explainer": {"type": "object"}}},
    },
    "$defs": {
        "predictor": {"type": "object", "required": ["model"], "properties": {
            "minReplicas": {"type": "integer", "minimum": 0},
            "maxReplicas": {"type": "integer", "minimum": 0},
            "scaleMetric": {"enum": ["cpu", "memory", "concurrency", "rps"]},
            "scaleTarget": {"type": "integer", "minimum": 1},
            "canaryTrafficPercent": {"type": "integer", "minimum": 0, "maximum": 100},
            "containerConcurrency": {"type": "integer", "minimum": 0},
            "timeout": {"type": "integer", "minimum": 1},
            "model": {"$ref": "#/$defs/model"}}},
        "model": {"type": "object", "required": ["modelFormat", "storageUri"], "properties": {
            "modelFormat": {"type": "object", "required": ["name"], "additionalProperties": False,
                            "properties": {"name": {"type": "string", "minLength": 1},
                                           "version": {"type": "string"}}},
            "protocolVersion": {"enum": ["v1", "v2", "grpc-v1", "grpc-v2"]},
            "runtime": {"type": "string"},
            "storageUri": {"type": "string", "pattern": STORAGE_URI},
            "resources": RESOURCES}},
    },
}


@pytest.fixture(scope="module")
def repository() -> Path:
    """The course's cached model repository (penguins, versions 1 and 2)."""
    return quickstart.model_repository()


@pytest.fixture(scope="module")
def context(repository, tmp_path_factory) -> Path:
    """A build context written from the course repository."""
    return container.build_context(repository, tmp_path_factory.mktemp("ctx") / "context")


def load(path: Path) -> dict:
    """Load one YAML document."""
    return yaml.safe_load(path.read_text())


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """Return ``(instruction line, line before it)`` for each instruction, continuations joined."""
    found, previous, joined = [], "", None
    for line in dockerfile.splitlines():
        if joined is not None:
            joined[0] += " " + line.strip().rstrip("\\")
            if not line.rstrip().endswith("\\"):
                found.append(tuple(joined))
                joined = None
        elif line.split(" ")[0] in INSTRUCTIONS:
            if line.rstrip().endswith("\\"):
                joined = [line.rstrip("\\").strip(), previous]
            else:
                found.append((line, previous))
        if line.strip():
            previous = line
    return found


# --- requirements ------------------------------------------------------------------------------

def metadata_closure(roots) -> set[str]:
    """Follow installed packages' requirements (extras honoured) from ``roots``; return names."""
    seen: dict[str, set[str]] = {}
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name = container.canonical(req.name)
        if name in seen and set(req.extras) <= seen[name]:
            continue
        seen.setdefault(name, set()).update(req.extras)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            sub = Requirement(text)
            extras = seen[name] | {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return set(seen)


def test_requirements_are_the_servers_closure_as_installed():
    lines = container.server_requirements()
    here = {container.canonical(line.split("==")[0]) for line in lines
            if ";" not in line or Marker(line.split(";", 1)[1]).evaluate()}
    assert here == metadata_closure(container.SERVER_DEPENDENCIES)


def imported_distributions(package: Path) -> set[str]:
    """Return the distributions that the modules of ``package`` import (outside the stdlib)."""
    modules = set()
    for file in package.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    modules -= set(sys.stdlib_module_names) | {"__future__", package.name}
    owners = metadata.packages_distributions()
    return {container.canonical(owners[m][0]) for m in modules}


def test_server_dependencies_are_what_the_server_imports():
    roots = {container.canonical(r.split("[")[0]) for r in container.SERVER_DEPENDENCIES}
    assert roots == imported_distributions(ROOT / "server")
    # The extra brings the loop and parser the server asks uvicorn for by name.
    main = (ROOT / "server" / "__main__.py").read_text()
    assert '"loop": "uvloop"' in main and '"http": "httptools"' in main
    assert "uvicorn[standard]" in container.SERVER_DEPENDENCIES


def test_requirements_are_lock_lines_with_markers_and_nothing_of_training_or_jupyter():
    lines = container.server_requirements()
    lock = {line.strip() for line in (ROOT / "requirements.lock").read_text().splitlines()}
    assert set(lines) <= lock
    assert any(";" in line for line in lines), "environment markers were dropped"
    names = {container.canonical(line.split("==")[0]) for line in lines}
    assert {"onnxruntime", "starlette", "uvicorn", "uvloop", "httptools", "orjson"} <= names
    assert not names & {"scikit-learn", "pandas", "skl2onnx", "jupyterlab", "ipykernel",
                        "notebook", "matplotlib", "dask", "prometheus-client"}
    assert not any(n.startswith("jupyter") for n in names)


def test_requirements_name_a_root_missing_from_the_lock(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("numpy==2.0.0\n    # via mlprod (pyproject.toml)\n")
    with pytest.raises(ValueError, match=r"\['onnxruntime'\].*make lock"):
        container.server_requirements(lock, roots=["numpy", "onnxruntime"])
    with pytest.raises(FileNotFoundError, match="make lock"):
        container.server_requirements(tmp_path / "absent.lock")


def test_read_lock_follows_via_lists(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("a==1\n    # via mlprod (pyproject.toml)\nb==2 ; sys_platform == 'linux'\n"
                    "    # via\n    #   a\n    #   z\nc==3\n    # via b\nz==9\n    # via y\n")
    assert container.server_requirements(lock, roots=["a"]) == [
        "a==1", "b==2 ; sys_platform == 'linux'", "c==3"]


# --- the context -------------------------------------------------------------------------------

def test_context_holds_what_the_image_needs(context, repository):
    names = {p.name for p in context.iterdir()}
    assert {"Dockerfile", ".dockerignore", "requirements.txt", "server", "model", "k8s",
            "docker-compose.yml"} <= names
    assert "wheels" not in names
    served = sorted(p.relative_to(context / "server") for p in (context / "server").rglob("*.py"))
    source = sorted(p.relative_to(ROOT / "server") for p in (ROOT / "server").rglob("*.py"))
    assert served == source
    assert not list(context.rglob("__pycache__")) and not list(context.rglob("*.pyc"))
    assert (context / "requirements.txt").read_text().splitlines()[1:] == \
        container.server_requirements()


def test_model_is_a_repository_with_checked_versions(context, repository):
    model = context / "model" / "penguins"
    assert (model / "config.pbtxt").read_bytes() == \
        (repository / "penguins" / "config.pbtxt").read_bytes()
    assert json.loads((model / "aliases.json").read_text())["production"] == 1
    versions = sorted(int(p.name) for p in model.iterdir() if p.is_dir())
    assert versions == [1, 2]
    for v in versions:
        blob = (model / str(v) / "model.onnx").read_bytes()
        assert blob == (repository / "penguins" / str(v) / "model.onnx").read_bytes()
        assert hashlib.sha256(blob).hexdigest() in (model / str(v) / "model.sha256").read_text()


def test_files_are_readable_by_the_images_unprivileged_user(context):
    for path in context.rglob("*"):
        mode = path.stat().st_mode & 0o777
        assert mode == (0o755 if path.is_dir() else 0o644), path


def test_context_is_replaced_whole_and_leaves_no_temporary_folder(repository, tmp_path):
    out = tmp_path / "context"
    out.mkdir()
    (out / "stale.txt").write_text("from an older context")
    container.build_context(repository, out)
    assert not (out / "stale.txt").exists() and (out / "Dockerfile").is_file()
    with pytest.raises(ValueError, match=r"No model 'absent'.*\['penguins'\]"):
        container.build_context(repository, out, model="absent")
    assert (out / "Dockerfile").is_file(), "a failed build must leave the old context in place"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["context"]


def _stale_context(tmp_path: Path) -> Path:
    """An existing context folder holding one file of an older build."""
    out = tmp_path / "context"
    out.mkdir()
    (out / "stale.txt").write_text("from an older context")
    return out


def test_the_old_context_stays_in_place_until_the_new_one_replaces_it(repository, tmp_path,
                                                                      monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "from-a").touch()
    if not files._exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("this system cannot swap two paths in one step (renameat2)")
    shutil.rmtree(tmp_path / "a")
    shutil.rmtree(tmp_path / "b")
    out = _stale_context(tmp_path)
    rename = os.rename

    def watched(src, dst, *args, **kwargs):
        assert out.is_dir(), f"{out} was missing before renaming {src} to {dst}"
        return rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", watched)
    container.build_context(repository, out)
    assert (out / "Dockerfile").is_file() and not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["context"]


def test_a_changed_model_file_is_refused(repository, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(repository, repo)
    with open(repo / "penguins" / "2" / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ValueError, match=r"sha256.*register it again"):
        container.build_context(repo, tmp_path / "context")


def test_several_models_need_a_name(repository, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(repository / "penguins", repo / "penguins")
    shutil.copytree(repository / "penguins", repo / "other")
    with pytest.raises(ValueError, match=r"\['other', 'penguins'\].*model="):
        container.build_context(repo, tmp_path / "context")
    out = container.build_context(repo, tmp_path / "context", model="other")
    assert [p.name for p in (out / "model").iterdir()] == ["other"]
    with pytest.raises(FileNotFoundError, match="make models"):
        container.build_context(tmp_path / "absent", tmp_path / "context")


# --- the Dockerfile ----------------------------------------------------------------------------

def test_dockerfile_follows_the_contract(context):
    text = (context / "Dockerfile").read_text()
    lines = [line for line, _ in instructions(text)]
    assert lines[0] == "ARG BASE_IMAGE=python:3.11-slim-bookworm"
    assert [line for line in lines if line.startswith("FROM")] == [
        "FROM ${BASE_IMAGE} AS build", "FROM ${BASE_IMAGE}"]
    assert "python3 -m venv /opt/venv" in text and "PATH=/opt/venv/bin:$PATH" in text
    assert lines[-4:] == [
        "EXPOSE 8080", lines[-3], 'ENTRYPOINT ["python", "-m", "server"]', 'CMD ["serve"]']
    assert lines[-3].startswith("HEALTHCHECK") and "/ping" in lines[-3] and \
        '"python", "-c"' in lines[-3]
    assert lines[-5] == "USER 10001"
    order = [next(i for i, line in enumerate(lines) if line.startswith(prefix))
             for prefix in ("COPY requirements.txt", "RUN python3 -m venv", "COPY server/",
                            "COPY model/ /opt/ml/model/")]
    assert order == sorted(order), "dependencies must install before the code is copied"
    assert "--no-cache-dir" in text and "--no-index" not in text
    label = next(line for line in lines if line.startswith("LABEL"))
    assert 'mlprod.model.name="penguins"' in label
    assert f'mlprod.model.version="{container.served_version(context / "model/penguins")}"' \
        in label


def test_every_dockerfile_instruction_is_explained(context):
    for line, before in instructions((context / "Dockerfile").read_text()):
        assert before.startswith("#"), f"no comment above {line!r}"


def test_hadolint_passes_with_and_without_a_wheelhouse(repository, context, tmp_path,
                                                       monkeypatch):
    def fake_wheelhouse(requirements, dest):  # the wheels' content does not matter to hadolint
        Path(dest).mkdir()
        return Path(dest)

    monkeypatch.setattr(container, "wheelhouse", fake_wheelhouse)
    monkeypatch.setattr(container, "wheels_misfit", lambda base_image: None)
    with_wheels = container.build_context(repository, tmp_path / "ctx", wheels=True)
    text = (with_wheels / "Dockerfile").read_text()
    assert "COPY wheels/ ./wheels/" in text and "--no-index --find-links wheels -r" in text
    for dockerfile in (context / "Dockerfile", with_wheels / "Dockerfile"):
        done = subprocess.run([str(HADOLINT), "--no-color", str(dockerfile)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        assert container.hadolint(dockerfile) == ""


def test_hadolint_is_live(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nUSER app\nCMD python -m server\n")
    done = subprocess.run([str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True)
    assert done.returncode != 0 and "DL3006" in done.stdout
    assert "DL3025" in container.hadolint(bad)


def test_dockerignore_keeps_manifests_and_caches_out(context):
    ignored = (context / ".dockerignore").read_text().splitlines()
    assert {"k8s/", "**/__pycache__", "docker-compose.yml"} <= set(ignored)
    assert not {"server", "model", "wheels", "requirements.txt"} & {i.strip("/") for i in ignored}


# --- the manifests -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["deployment.yaml", "service.yaml", "hpa.yaml"])
def test_kubernetes_manifests_validate(context, name):
    manifest = load(context / "k8s" / name)
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_kubernetes_validation_is_live(context, tmp_path):
    broken = load(context / "k8s" / "deployment.yaml")
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    verdicts = container.validate_manifests(context)
    assert all(v.endswith(f"valid for Kubernetes {K8S_VERSION}") for name, v in verdicts.items()
               if name != "inferenceservice.yaml"), verdicts
    shutil.copytree(context / "k8s", tmp_path / "k8s")
    (tmp_path / "k8s" / "deployment.yaml").write_text(yaml.safe_dump(broken))
    assert "INVALID: 'two'" in container.validate_manifests(tmp_path)["deployment.yaml"]


def test_deployment_probes_resources_and_service_agree(context):
    deployment = load(context / "k8s" / "deployment.yaml")
    service = load(context / "k8s" / "service.yaml")
    hpa = load(context / "k8s" / "hpa.yaml")
    pod = deployment["spec"]["template"]
    (server,) = pod["spec"]["containers"]
    assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert {"cpu", "memory"} <= set(server["resources"]["requests"])
    assert server["ports"][0]["containerPort"] == container.PORT
    assert server["args"] == ["serve"]
    assert pod["spec"]["securityContext"]["runAsUser"] == 10001
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"][0]["targetPort"] == server["ports"][0]["name"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] == deployment["spec"]["replicas"]
    compose = load(context / "docker-compose.yml")
    (svc,) = compose["services"].values()
    assert svc["image"] == server["image"] and svc["build"]["context"] == "."
    assert all(p.startswith("127.0.0.1:") for p in svc["ports"])


def test_inference_service_matches_kserves_api(context):
    isvc = load(context / "k8s" / "inferenceservice.yaml")
    jsonschema.validate(isvc, INFERENCE_SERVICE)
    model = isvc["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] == "onnx" and model["protocolVersion"] == "v2"
    predictor = isvc["spec"]["predictor"]
    assert predictor["minReplicas"] <= predictor["maxReplicas"]


@pytest.mark.parametrize("path, value", [
    (("spec", "predictor", "model", "protocolVersion"), "v3"),
    (("spec", "predictor", "model", "storageUri"), "/data/models"),
    (("apiVersion",), "serving.kserve.io/v1alpha1"),
    (("spec", "predictor", "model", "modelFormat"), {"type": "onnx"}),
])
def test_inference_service_schema_rejects_mistakes(context, path, value):
    isvc = copy.deepcopy(load(context / "k8s" / "inferenceservice.yaml"))
    node = isvc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(isvc, INFERENCE_SERVICE)


def test_manifest_options_reach_the_files(repository, tmp_path):
    out = container.build_context(repository, tmp_path / "ctx", image="registry.local/pg:7",
                                  storage_uri="s3://bucket/models", replicas=3, max_replicas=9)
    deployment = load(out / "k8s" / "deployment.yaml")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/pg:7"
    isvc = load(out / "k8s" / "inferenceservice.yaml")
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://bucket/models"
    assert load(out / "k8s" / "hpa.yaml")["spec"]["maxReplicas"] == 9
    with pytest.raises(ValueError, match="replicas"):
        container.build_context(repository, tmp_path / "bad", replicas=4, max_replicas=2)


# --- the command line and the engines ----------------------------------------------------------

def test_command_line_writes_the_context(repository, tmp_path):
    out = tmp_path / "context"
    done = subprocess.run([sys.executable, "-m", "mlprod.container", "--repository",
                           str(repository), "--out", str(out), "--wheels", "no"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert (out / "Dockerfile").is_file() and (out / "k8s" / "inferenceservice.yaml").is_file()
    assert "no wheelhouse" in done.stdout and not (out / "wheels").exists()


def test_command_line_without_an_engine_says_which_to_install(repository, tmp_path):
    # No docker or podman on PATH: the context is written, the build is refused plainly.
    out = tmp_path / "context"
    done = subprocess.run([sys.executable, "-m", "mlprod.container", "--repository",
                           str(repository), "--out", str(out), "--wheels", "no",
                           "--image", "mlprod-penguins:latest", "--prove"],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PATH": str(tmp_path / "empty")})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "No container engine" in done.stderr and "Install Docker" in done.stderr
    assert ".ci/container-setup.sh" in done.stderr and "make test" in done.stderr
    assert (out / "Dockerfile").is_file()


def test_command_line_names_a_missing_base_image(repository, tmp_path, monkeypatch, capsys):
    calls = []

    def fake_run(self, *args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, 1, "", "")

    monkeypatch.setattr(container, "engine", lambda: "podman")
    monkeypatch.setattr(container.Engine, "run", fake_run)
    code = container.main(["--repository", str(repository), "--out", str(tmp_path / "ctx"),
                           "--wheels", "no", "--prove"])
    assert code == 1
    assert calls == [("image", "exists", container.LOCAL_BASE_IMAGE)], "nothing built"
    assert "podman has no base image localhost/py-base:bookworm" in capsys.readouterr().err


@pytest.mark.parametrize("host, base, fits", [
    (("linux", "x86_64", "cpython", (3, 11)), container.DEFAULT_BASE_IMAGE, True),
    (("linux", "x86_64", "cpython", (3, 11)), container.LOCAL_BASE_IMAGE, True),
    (("linux", "x86_64", "cpython", (3, 11)), "docker.io/library/python:3.11.9-slim", True),
    (("linux", "x86_64", "cpython", (3, 11)), "python:3.12-slim-bookworm", False),
    (("linux", "x86_64", "cpython", (3, 11)), "python:3.11-alpine", False),
    (("linux", "aarch64", "cpython", (3, 11)), container.DEFAULT_BASE_IMAGE, False),
    (("darwin", "arm64", "cpython", (3, 11)), container.DEFAULT_BASE_IMAGE, False),
    (("linux", "x86_64", "cpython", (3, 12)), container.DEFAULT_BASE_IMAGE, False),
    (("win32", "AMD64", "cpython", (3, 11)), container.DEFAULT_BASE_IMAGE, False),
])
def test_wheels_fit_a_linux_x86_64_cpython_311_host_and_base(host, base, fits):
    reason = container.wheels_misfit(base, host=host)
    assert (reason is None) == fits, reason
    host_fits = host == ("linux", "x86_64", "cpython", (3, 11))
    if not fits:
        assert f"this machine is {host[0]} {host[1]}" in reason if not host_fits \
            else base in reason


def test_wheels_auto_leaves_out_a_misfit_or_a_failed_fetch(repository, tmp_path, monkeypatch):
    monkeypatch.setattr(container, "wheels_misfit", lambda base_image: "this machine is darwin")
    with pytest.raises(ValueError, match="would not fit the image: this machine is darwin"):
        container.build_context(repository, tmp_path / "a", wheels=True)
    with pytest.warns(UserWarning, match="No wheelhouse: this machine is darwin"):
        out = container.build_context(repository, tmp_path / "a", wheels="auto")
    assert not (out / "wheels").exists()
    assert "--no-index" not in (out / "Dockerfile").read_text()

    def offline(requirements, dest):
        raise subprocess.CalledProcessError(1, ["pip", "download"])

    monkeypatch.setattr(container, "wheels_misfit", lambda base_image: None)
    monkeypatch.setattr(container, "wheelhouse", offline)
    with pytest.warns(UserWarning, match="fetching it failed"):
        out = container.build_context(repository, tmp_path / "b", wheels="auto")
    assert not (out / "wheels").exists()
    assert "--no-index" not in (out / "Dockerfile").read_text()
    with pytest.raises(subprocess.CalledProcessError):
        container.build_context(repository, tmp_path / "c", wheels=True)
    with pytest.raises(ValueError, match="wheels='maybe'"):
        container.build_context(repository, tmp_path / "d", wheels="maybe")


def test_wheelhouse_fetches_binary_wheels_for_the_image_once(tmp_path, monkeypatch):
    commands = []
    run = subprocess.run

    def fake_pip(command, **kwargs):
        if "download" not in command:
            return run(command, **kwargs)
        commands.append(command)
        dest = Path(command[command.index("-d") + 1])
        (dest / "orjson-3.13.0-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"wheel")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(container, "_pip", lambda: ["pip"])
    monkeypatch.setattr(quickstart, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(subprocess, "run", fake_pip)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("orjson==3.13.0\n")
    for n in (1, 2):
        got = container.wheelhouse(requirements, tmp_path / f"wheels{n}")
        assert [p.name for p in got.iterdir()] == [
            "orjson-3.13.0-cp311-cp311-manylinux_2_17_x86_64.whl"]
    (command,) = commands
    assert {"--only-binary=:all:", "--no-deps"} <= set(command)
    platforms = {command[i + 1] for i, arg in enumerate(command) if arg == "--platform"}
    assert {"manylinux_2_36_x86_64", "manylinux_2_28_x86_64", "manylinux2014_x86_64"} <= platforms
    assert "manylinux_2_37_x86_64" not in platforms, "newer than the image's glibc"
    assert command[command.index("--python-version") + 1] == "3.11"
    assert command[command.index("--abi") + 1] == "cp311"


def test_engine_reports_one_of_three_cases_and_needs_a_running_docker():
    found = container.engine()
    assert found in {"docker", "podman", "none"}
    docker_runs = shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True, timeout=60).returncode == 0
    assert (found == "docker") == docker_runs


def test_engine_commands_fit_each_engine():
    podman = container.build_command("ctx", "t:1", "podman", container.LOCAL_BASE_IMAGE)
    assert {"--format", "docker", "--isolation=chroot", "--network=host"} <= set(podman)
    assert podman[-3:] == ["--build-arg", f"BASE_IMAGE={container.LOCAL_BASE_IMAGE}", "ctx"]
    docker = container.build_command("ctx", "t:1", "docker")
    assert docker == ["build", "-t", "t:1", "ctx"]
    run = container.run_command("t:1", "n", 5000, "podman")
    assert "--network=host" in run and "SAGEMAKER_BIND_TO_PORT=5000" in run and run[-1] == "serve"
    assert "127.0.0.1:5000:8080" in container.run_command("t:1", "n", 5000, "docker")
    with pytest.raises(RuntimeError, match="container-setup"):
        container.Engine.detect("none")


def test_podman_gets_the_kits_configuration(monkeypatch):
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    env = container._podman_env()
    assert Path(env["CONTAINERS_CONF"]).read_text() == container._template("containers.conf")
    monkeypatch.setenv("CONTAINERS_CONF", os.devnull)
    assert container._podman_env()["CONTAINERS_CONF"] == os.devnull


def test_installed_sizes_count_each_packages_files():
    import onnxruntime

    library = max(Path(onnxruntime.__file__).parent.rglob("*.so*"), key=lambda p: p.stat().st_size)
    sizes = container.installed_sizes(["onnxruntime", "orjson", "no-such-package"])
    assert set(sizes) == {"onnxruntime", "orjson"}
    assert sizes["onnxruntime"] > library.stat().st_size / 1e6 > 1
    assert container.installed_megabytes(["onnxruntime", "orjson"]) == \
        pytest.approx(sum(sizes.values()))
    assert container.installed_megabytes() > sum(sizes.values())
