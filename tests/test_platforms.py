"""Each platform's files in build/context/platforms/: parsed, and checked against a small schema.

The schemas are written here from each platform's public reference (no CRD or vendor file copied
in), for the fields the kit writes: KServe's API reference (InferenceService, PredictorSpec with
containers), Cloud Foundry's app manifest attributes and Procfile format, Paperspace's deployment
spec reference, the gcloud ai and google-cloud-aiplatform references for Vertex AI. The SageMaker
script's calls are checked by botocore itself (its own API model validates every parameter) when
the script runs against moto.
"""

from __future__ import annotations

import ast
import io
import json
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import jsonschema
import pytest
import yaml
from _schemas import with_value

from mlprod import container, platforms, quickstart
from server.repository import Repository

STORAGE_URI = r"^(gs|s3|pvc|hdfs|webhdfs|https?|oci|hf)://\S*$"
DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

# KServe v1beta1 InferenceService with a custom container: PredictorSpec inlines a PodSpec
# (containers) beside ComponentExtensionSpec (replicas, canaryTrafficPercent); each container is a
# Kubernetes core/v1 Container, which kubernetes-validate checks below.
CUSTOM_INFERENCE_SERVICE = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "serving.kserve.io/v1beta1"},
        "kind": {"const": "InferenceService"},
        "metadata": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "maxLength": 63, "pattern": DNS_LABEL}}},
        "spec": {"type": "object", "required": ["predictor"], "additionalProperties": False,
                 "properties": {"predictor": {"$ref": "#/$defs/predictor"},
                                "transformer": {"type": "object"},
                                "explainer": {"type": "object"}}},
    },
    "$defs": {"predictor": {
        "type": "object", "required": ["containers"], "not": {"required": ["model"]},
        "properties": {
            "minReplicas": {"type": "integer", "minimum": 0},
            "maxReplicas": {"type": "integer", "minimum": 0},
            "canaryTrafficPercent": {"type": "integer", "minimum": 0, "maximum": 100},
            "containerConcurrency": {"type": "integer", "minimum": 0},
            "timeout": {"type": "integer", "minimum": 1},
            "containers": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["name", "image"],
                "properties": {"name": {"const": "kserve-container"},
                               "image": {"type": "string", "minLength": 1}}}}}}},
}

# Cloud Foundry app manifest (v3 attributes used by `cf push`), application level.
MEMORY = {"type": "string", "pattern": r"^[0-9]+(M|G|MB|GB)$"}
CF_MANIFEST = {
    "type": "object", "required": ["applications"],
    "properties": {"version": {"const": 1}, "applications": {
        "type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "path": {"type": "string"}, "buildpacks": {"type": "array",
                                                           "items": {"type": "string"}},
                "command": {"type": "string", "minLength": 1},
                "instances": {"type": "integer", "minimum": 0},
                "memory": MEMORY, "disk_quota": MEMORY, "log-rate-limit-per-second": {},
                "health-check-type": {"enum": ["http", "port", "process"]},
                "health-check-http-endpoint": {"type": "string", "pattern": "^/"},
                "health-check-invocation-timeout": {"type": "integer", "minimum": 1},
                "readiness-health-check-type": {"enum": ["http", "port", "process"]},
                "readiness-health-check-http-endpoint": {"type": "string", "pattern": "^/"},
                "timeout": {"type": "integer", "minimum": 1, "maximum": 600},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "stack": {"type": "string"}, "docker": {"type": "object"},
                "routes": {"type": "array"}, "random-route": {"type": "boolean"},
                "no-route": {"type": "boolean"}, "services": {"type": "array"},
                "processes": {"type": "array"}, "sidecars": {"type": "array"},
                "metadata": {"type": "object"}}}}},
}
PROCFILE_LINE = re.compile(r"^(?P<process>[A-Za-z0-9_-]+):\s*(?P<command>\S.*)$")

# Paperspace (Gradient) deployment spec, from its deployment spec and health check references.
PROBE = {"type": "object", "required": ["path"], "additionalProperties": False, "properties": {
    "path": {"type": "string", "pattern": "^/"}, "port": {"type": "integer"},
    "initialDelaySeconds": {"type": "integer", "minimum": 0},
    "periodSeconds": {"type": "integer", "minimum": 1},
    "timeoutSeconds": {"type": "integer", "minimum": 1},
    "failureThreshold": {"type": "integer", "minimum": 1},
    "headers": {"type": "array"}, "useHttps": {"type": "boolean"}}}
PAPERSPACE_SPEC = {
    "type": "object", "required": ["name", "image", "resources"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "v1"}, "name": {"type": "string", "minLength": 1},
        "image": {"type": "string", "minLength": 1}, "enabled": {"type": "boolean"},
        "containerRegistry": {"type": "string"},
        "command": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "env": {"type": "array", "items": {
            "type": "object", "required": ["name", "value"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                           "value": {"type": "string"}}}},
        "resources": {"type": "object", "required": ["replicas", "machineType"],
                      "additionalProperties": False, "properties": {
                          "replicas": {"type": "integer", "minimum": 0},
                          "machineType": {"type": "string", "pattern": r"^[A-Za-z0-9-]+$"},
                          "ports": {"type": "array", "minItems": 1, "items": {
                              "type": "integer", "minimum": 1, "maximum": 65535}},
                          "autoscaling": {"type": "object"}}},
        "healthChecks": {"type": "object", "additionalProperties": False, "properties": {
            "startup": PROBE, "readiness": PROBE, "liveness": PROBE}},
        "integrations": {"type": "array"},
    },
}

# gcloud ai (Vertex AI) commands and the flags the reference gives each, as used here.
GCLOUD_FLAGS = {"--project", "--region", "--format", "--filter", "--quiet"}
GCLOUD = {
    ("models", "upload"): {"--display-name", "--container-image-uri", "--container-args",
                           "--container-ports", "--container-health-route",
                           "--container-predict-route", "--container-env-vars",
                           "--artifact-uri"},
    ("models", "list"): set(), ("models", "delete"): set(),
    ("endpoints", "create"): {"--display-name"}, ("endpoints", "list"): set(),
    ("endpoints", "describe"): set(), ("endpoints", "delete"): set(),
    ("endpoints", "deploy-model"): {"--model", "--display-name", "--machine-type",
                                    "--min-replica-count", "--max-replica-count",
                                    "--traffic-split", "--accelerator"},
    ("endpoints", "undeploy-model"): {"--deployed-model-id"},
}
# google-cloud-aiplatform: Model.upload and Model.deploy keyword arguments (as used here).
AIPLATFORM = {
    "upload": {"display_name", "serving_container_image_uri", "serving_container_args",
               "serving_container_ports", "serving_container_health_route",
               "serving_container_predict_route", "serving_container_environment_variables",
               "artifact_uri"},
    "deploy": {"endpoint", "deployed_model_display_name", "machine_type", "min_replica_count",
               "max_replica_count", "traffic_percentage", "accelerator_type",
               "accelerator_count"},
}


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    """A build context written by make context's code (so the hook is tested too)."""
    return container.build_context(quickstart.model_repository(),
                                   tmp_path_factory.mktemp("ctx") / "context")


def load(path: Path):
    """Load one YAML document."""
    return yaml.safe_load(path.read_text())


def test_context_holds_each_platforms_files(context):
    found = sorted(p.relative_to(context / "platforms").as_posix()
                   for p in (context / "platforms").rglob("*") if p.is_file())
    expected = sorted([*platforms.FILES.values(), "sagemaker/model.tar.gz",
                       "sagemaker/candidate.tar.gz", "sagemaker/sagemaker_calls.py"])
    assert found == expected
    assert sorted(p.name for p in (context / "platforms").iterdir()) == sorted(platforms.PLATFORMS)
    for path in (context / "platforms").rglob("*.*"):
        assert "{{" not in (path.read_bytes().decode("latin-1")), f"placeholder left in {path}"


# --- SageMaker ----------------------------------------------------------------------------------

def unpack(blob: bytes, into: Path) -> Path:
    """Unpack a model.tar.gz as SageMaker does into /opt/ml/model; return the folder."""
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into


def test_model_tarball_is_a_repository_the_server_loads(context, tmp_path):
    sm = context / "platforms" / "sagemaker"
    for file, production in (("model.tar.gz", 1), ("candidate.tar.gz", 2)):
        root = unpack((sm / file).read_bytes(), tmp_path / file)
        with tarfile.open(sm / file) as tar:
            names = tar.getnames()
        assert all(n == "penguins" or n.startswith("penguins/") for n in names), names
        repo = Repository(root).load()
        model = repo.models["penguins"]
        assert sorted(model.versions) == [1, 2] and model.aliases == {"production": production}
        for version in (1, 2):
            assert (root / "penguins" / str(version) / "model.onnx").read_bytes() == \
                (context / "model" / "penguins" / str(version) / "model.onnx").read_bytes()


def test_model_tarball_is_reproducible_and_leaves_routing_to_sagemaker(tmp_path):
    repo = shutil.copytree(quickstart.model_repository(), tmp_path / "repo")
    (repo / "penguins" / "routing.json").write_text(json.dumps({"variants": [
        {"name": "a", "version": 1, "weight": 1}, {"name": "b", "version": 2, "weight": 1}]}))
    first = platforms.model_tarball(repo, "penguins", 1)
    assert first == platforms.model_tarball(repo, "penguins", 1)
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert "penguins/routing.json" not in tar.getnames()
        assert {m.mtime for m in tar.getmembers()} == {0}


def test_sagemaker_deploy_script_runs_offline_and_tears_down(context, tmp_path, monkeypatch):
    # botocore validates every call's parameters against SageMaker's own API model, so a wrong
    # field name or type in the script fails here, although moto answers it.
    import boto3
    from moto import mock_aws

    folder = shutil.copytree(context / "platforms" / "sagemaker", tmp_path / "sagemaker")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delitem(sys.modules, "sagemaker_calls", raising=False)  # gone again afterwards
    script = runpy.run_path(str(folder / "deploy.py"))
    with mock_aws():
        boto3.client("s3").create_bucket(
            Bucket="mlprod-test", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        assert script["main"](["--bucket", "mlprod-test", "--role-arn",
                               "arn:aws:iam::123456789012:role/sagemaker",
                               "--image", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:1"]) == 0
        sm = boto3.client("sagemaker")
        calls = sys.modules["sagemaker_calls"]
        described = calls.describe(sm, script["ENDPOINT"])
        assert described["status"] == "InService"
        assert described["weights"] == {"production": 90.0, "candidate": 10.0}
        keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(
            Bucket="mlprod-test")["Contents"]}
        assert keys == {"penguins-server/model.tar.gz", "penguins-server/candidate.tar.gz"}
        assert script["main"](["--teardown"]) == 0
        assert calls.leftovers(sm, script["ENDPOINT"]) == {
            "endpoints": [], "endpoint_configs": [], "models": []}
    assert (folder / "sagemaker_calls.py").read_text() == \
        Path(platforms.sagemaker.__file__).read_text()


# --- Vertex AI ----------------------------------------------------------------------------------

def shell_commands(text: str) -> list[list[str]]:
    """Return the ``gcloud ai`` commands of a shell script as argv lists (quotes resolved)."""
    found = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.commenters = "#"
        current = None
        for token in [*lexer, ";"]:
            if current is not None and set(token) <= set("();|&<>"):
                found.append(current)
                current = None
            elif current is not None:
                current.append(token)
            elif token == "gcloud":
                current = [token]
    return [c for c in found if c[1:2] == ["ai"]]


def test_vertex_gcloud_commands_use_documented_flags(context):
    script = context / "platforms" / "vertex" / "deploy.sh"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    commands = shell_commands(script.read_text())
    seen = set()
    for argv in commands:
        assert argv[:2] == ["gcloud", "ai"], argv
        group, verb = argv[2], argv[3]
        assert (group, verb) in GCLOUD, argv
        seen.add((group, verb))
        flags = {a.split("=")[0] for a in argv[4:] if a.startswith("--")}
        assert flags <= GCLOUD[group, verb] | GCLOUD_FLAGS, (argv, flags - GCLOUD[group, verb])
    assert {("models", "upload"), ("endpoints", "deploy-model"), ("endpoints", "delete"),
            ("models", "delete"), ("endpoints", "undeploy-model")} <= seen
    (upload,) = [a for a in commands if a[2:4] == ["models", "upload"]]
    given = dict(a.split("=", 1) for a in upload[4:])
    assert given["--container-ports"] == str(platforms.PORT)
    assert given["--container-health-route"] == platforms.VERTEX_HEALTH_ROUTE
    assert given["--container-predict-route"] == platforms.VERTEX_PREDICT_ROUTE
    assert given["--container-args"] == "serve"


def test_vertex_aiplatform_calls_use_documented_arguments(context):
    tree = ast.parse((context / "platforms" / "vertex" / "deploy_aiplatform.py").read_text())
    calls = {node.func.attr: node for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr in AIPLATFORM}
    assert set(calls) == set(AIPLATFORM)
    for name, node in calls.items():
        keywords = {k.arg for k in node.keywords}
        assert keywords <= AIPLATFORM[name], keywords - AIPLATFORM[name]
    upload = {k.arg: k.value for k in calls["upload"].keywords}
    assert ast.literal_eval(upload["serving_container_ports"]) == [platforms.PORT]
    assert ast.literal_eval(upload["serving_container_predict_route"]) == \
        platforms.VERTEX_PREDICT_ROUTE
    instance = next(ast.literal_eval(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                    and getattr(n.targets[0], "id", "") == "INSTANCE")
    assert list(instance) == ["bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                              "body_mass_g", "island", "sex"]


# --- KServe -------------------------------------------------------------------------------------

def test_kserve_custom_container_matches_kserves_api(context):
    import kubernetes_validate

    isvc = load(context / "platforms" / "kserve" / "inferenceservice.yaml")
    jsonschema.validate(isvc, CUSTOM_INFERENCE_SERVICE)
    predictor = isvc["spec"]["predictor"]
    assert 0 < predictor["canaryTrafficPercent"] < 100
    (box,) = predictor["containers"]
    # The container is a Kubernetes Container: validate it strictly inside a Pod.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"},
           "spec": {"containers": [box]}}
    kubernetes_validate.validate(pod, "1.30.0", strict=True)
    assert box["args"] == ["serve", "--model-repository", "/mnt/models"]
    assert [p["containerPort"] for p in box["ports"]] == [platforms.PORT]
    env = {e["name"]: e["value"] for e in box["env"]}
    assert re.match(STORAGE_URI, env["STORAGE_URI"])
    # Beside lesson 05's, which names the model format and lets KServe choose the runtime.
    builtin = load(context / "k8s" / "inferenceservice.yaml")
    assert builtin["spec"]["predictor"]["model"]["modelFormat"]["name"] == "onnx"
    assert builtin["metadata"]["name"] != isvc["metadata"]["name"]
    assert box["image"] == load(context / "k8s" / "deployment.yaml")[
        "spec"]["template"]["spec"]["containers"][0]["image"]


# --- Cloud Foundry ------------------------------------------------------------------------------

def test_cloud_foundry_manifest_and_procfile(context):
    folder = context / "platforms" / "cloudfoundry"
    manifest = load(folder / "manifest.yml")
    jsonschema.validate(manifest, CF_MANIFEST)
    (app,) = manifest["applications"]
    pushed = (folder / app["path"]).resolve()
    assert pushed == context.resolve(), "cf push uploads the context's folder"
    assert {"server", "model", "requirements.txt"} <= {p.name for p in pushed.iterdir()}
    lines = [PROCFILE_LINE.match(line) for line in (folder / "Procfile").read_text().splitlines()
             if line.strip()]
    assert all(lines), "Procfile lines are `<process type>: <command>`"
    processes = {m["process"]: m["command"] for m in lines}
    assert processes["web"] == app["command"] == platforms.CF_COMMAND
    assert "--model-repository model" in app["command"], "the droplet's model/ folder"
    assert app["health-check-type"] == "http" and app["health-check-http-endpoint"] == "/ping"


# --- Paperspace ---------------------------------------------------------------------------------

def test_paperspace_spec(context):
    spec = load(context / "platforms" / "paperspace" / "deployment.yaml")
    jsonschema.validate(spec, PAPERSPACE_SPEC)
    env = {e["name"]: e["value"] for e in spec["env"]}
    assert spec["resources"]["ports"] == [int(env["PORT"])] == [platforms.PORT]
    assert spec["command"] == ["python", "-m", "server", "serve"]
    assert spec["resources"]["machineType"] == "C5"
    assert spec["image"] == load(context / "platforms" / "kserve" / "inferenceservice.yaml")[
        "spec"]["predictor"]["containers"][0]["image"]


def test_machine_types_and_canary_are_options(tmp_path):
    ctx = tmp_path / "ctx"
    shutil.copytree(quickstart.model_repository(), ctx / "model")
    values = {"model": "penguins", "version": 1, "name": "penguins-server", "image": "pg:1",
              "replicas": 2, "max_replicas": 4, "storage_uri": "s3://bucket/models"}
    platforms.write_platform_files(ctx, values, paperspace_machine_type="A4000",
                                   canary_percent=25)
    spec = load(ctx / "platforms" / "paperspace" / "deployment.yaml")
    assert spec["resources"]["machineType"] == "A4000"
    isvc = load(ctx / "platforms" / "kserve" / "inferenceservice.yaml")
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 25
    assert isvc["spec"]["predictor"]["containers"][0]["env"][0]["value"] == "s3://bucket/models"


# --- the schemas are not toothless --------------------------------------------------------------

@pytest.mark.parametrize("file, schema, path, value", [
    ("kserve/inferenceservice.yaml", CUSTOM_INFERENCE_SERVICE,
     ("spec", "predictor", "canaryTrafficPercent"), 150),
    ("kserve/inferenceservice.yaml", CUSTOM_INFERENCE_SERVICE,
     ("spec", "predictor", "model"), {"modelFormat": {"name": "onnx"}}),
    ("kserve/inferenceservice.yaml", CUSTOM_INFERENCE_SERVICE, ("metadata", "name"), "Penguins"),
    ("cloudfoundry/manifest.yml", CF_MANIFEST, ("applications", 0, "memory"), "512"),
    ("cloudfoundry/manifest.yml", CF_MANIFEST, ("applications", 0, "health-check-type"), "tcp"),
    ("cloudfoundry/manifest.yml", CF_MANIFEST, ("applications", 0, "healthcheck"), "http"),
    ("paperspace/deployment.yaml", PAPERSPACE_SPEC, ("resources", "ports", 0), "8080"),
    ("paperspace/deployment.yaml", PAPERSPACE_SPEC, ("port",), 8080),
    ("paperspace/deployment.yaml", PAPERSPACE_SPEC, ("env", 0, "value"), 8080),
    ("paperspace/deployment.yaml", PAPERSPACE_SPEC, ("healthChecks", "readiness", "path"),
     "health"),
])
def test_schemas_reject_mistakes(context, file, schema, path, value):
    document = load(context / "platforms" / file)
    jsonschema.validate(document, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(with_value(document, path, value), schema)
