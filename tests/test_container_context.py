"""The build context: what it holds, the model copied in, the Dockerfile and the manifests it renders."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml
from _schemas import with_value

from mlprod import container

ROOT = Path(__file__).resolve().parent.parent
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


# --- what the context holds --------------------------------------------------------------------

def test_context_holds_what_the_image_needs(context):
    names = {p.name for p in context.iterdir()}
    assert {"Dockerfile", ".dockerignore", "requirements.txt", "server", "model", "k8s",
            "docker-compose.yml"} <= names
    assert "wheels" not in names
    served = sorted(p.relative_to(context / "server") for p in (context / "server").rglob("*.py"))
    source = sorted(p.relative_to(ROOT / "server") for p in (ROOT / "server").rglob("*.py"))
    assert served == source
    assert not list(context.rglob("__pycache__")) and not list(context.rglob("*.pyc"))
    # requirements.txt is uv's server lock, copied as it is.
    assert (context / "requirements.txt").read_bytes() == container.SERVER_LOCK.read_bytes()


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


def test_a_failed_build_leaves_the_old_context_and_no_temporary_folder(repository, tmp_path):
    out = tmp_path / "context"
    out.mkdir()
    (out / "stale.txt").write_text("from an older context")
    container.build_context(repository, out)
    assert not (out / "stale.txt").exists() and (out / "Dockerfile").is_file()
    with pytest.raises(ValueError, match=r"No model 'absent'.*\['penguins'\]"):
        container.build_context(repository, out, model="absent")
    with pytest.raises(FileNotFoundError, match="make lock"):
        container.build_context(repository, out, lock=tmp_path / "absent.lock")
    assert (out / "Dockerfile").is_file(), "a failed build must leave the old context in place"
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


def test_dockerignore_keeps_manifests_and_caches_out(context):
    ignored = (context / ".dockerignore").read_text().splitlines()
    assert {"k8s/", "**/__pycache__", "docker-compose.yml"} <= set(ignored)
    assert not {"server", "model", "wheels", "requirements.txt"} & {i.strip("/") for i in ignored}


# --- the manifests -----------------------------------------------------------------------------

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
    isvc = with_value(load(context / "k8s" / "inferenceservice.yaml"), path, value)
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


def test_a_template_placeholder_without_a_value_is_named():
    assert container.render("image {{image}}", {"image": "x:1"}) == "image x:1"
    with pytest.raises(KeyError, match=r"\{\{tag\}\} has no value; given: \['image'\]"):
        container.render("{{tag}}", {"image": "x:1"})
