"""The platforms' proof: the image under each platform's environment, called in that platform's format.

The container test (marker ``container``) builds the image once and runs it five times, as
SageMaker, Vertex AI, KServe, Cloud Foundry and Paperspace would start it; it records
build/proof/platforms.json. It runs when ``CI=true`` or a container engine works here, and skips
otherwise, saying how to enable it; under ``CI=true`` a missing engine or base image fails.

The other tests check, without a container, that each run is read from the platform's files,
and that the same environments and calls work against the server started here, so a failing
proof points at the image.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from mlprod import container, platforms
from mlprod.serving import LocalServer

ROOT = Path(__file__).resolve().parent.parent
PROOF = ROOT / "build" / "proof" / "platforms.json"
TAG = f"mlprod-model-server:platforms-{os.getpid()}"


@pytest.fixture(scope="module")
def runs(context, tmp_path_factory) -> dict[str, platforms.Run]:
    """Each platform's run, read from the context's files."""
    return {r.platform: r for r in platforms.runs(context, tmp_path_factory.mktemp("scratch"))}


def test_each_run_comes_from_its_platforms_files(runs):
    assert list(runs) == list(platforms.PLATFORMS)
    assert runs["sagemaker"].port_variables == ("SAGEMAKER_BIND_TO_PORT",)
    assert list(runs["sagemaker"].volumes.values()) == ["/opt/ml/model"]
    unpacked = Path(next(iter(runs["sagemaker"].volumes)))
    assert (unpacked / "penguins" / "config.pbtxt").is_file(), "model.tar.gz unpacked"
    assert runs["vertex"].env["AIP_PREDICT_ROUTE"] == platforms.VERTEX_PREDICT_ROUTE
    assert runs["vertex"].env["AIP_STORAGE_URI"].startswith("gs://"), "served from the image"
    assert runs["kserve"].args == ["serve", "--model-repository", "/mnt/models"]
    assert list(runs["kserve"].volumes.values()) == ["/mnt/models"]
    assert [runs["cloudfoundry"].entrypoint, *runs["cloudfoundry"].args] == \
        platforms.CF_COMMAND.split()
    assert runs["cloudfoundry"].workdir == "/home/vcap/app"
    assert runs["paperspace"].port_variables == ("PORT",)
    assert runs["paperspace"].health == "/v2/health/ready"


def test_run_command_sets_the_port_variables_mounts_and_command(runs):
    args = platforms.run_command("img:1", "box", runs["cloudfoundry"], 18123, "podman")
    assert args[:5] == ["run", "-d", "--name", "box", "--network=host"]
    assert "PORT=18123" in args and "8080" not in " ".join(args)
    assert args[args.index("--entrypoint") + 1] == "python"
    assert args[args.index("img:1"):] == ["img:1", "-m", "server", "serve",
                                          "--model-repository", "model"]
    assert any(a.endswith(":/home/vcap/app/model:ro") for a in args)
    docker = platforms.run_command("img:1", "box", runs["sagemaker"], 18123, "docker")
    assert "127.0.0.1:18123:18123" in docker and "SAGEMAKER_BIND_TO_PORT=18123" in docker


def _outside(run: platforms.Run, root: Path, model: Path, port: int) -> tuple[list[str], dict, Path]:
    """Return the command, environment and folder that start ``run`` as a local process.

    The container's folders become folders under ``root`` (a link to each mounted one); the
    model baked into the image is the context's model/ folder.
    """
    mounts = {inside: Path(host) for host, inside in run.volumes.items()}
    mounts.setdefault("/opt/ml/model", model)  # baked into the image
    for inside, host in mounts.items():
        link = root / inside.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(host, target_is_directory=True)
    command = [run.entrypoint, *run.args] if run.entrypoint else ["python", "-m", "server",
                                                                  *run.args]
    command = [str(root / c.lstrip("/")) if c.startswith("/mnt/") else c for c in command]
    if "--model-repository" not in command:
        command += ["--model-repository", str(root / "opt/ml/model")]
    command[0] = sys.executable if command[0] == "python" else command[0]
    env = {**os.environ, **run.env, **{v: str(port) for v in run.port_variables},
           "PYTHONPATH": str(ROOT)}
    env.pop("AIP_STORAGE_URI", None)  # gs:// means "the baked model": --model-repository here
    cwd = root / run.workdir.lstrip("/") if run.workdir else ROOT
    return command, env, cwd


@pytest.mark.parametrize("platform", platforms.PLATFORMS)
def test_each_platforms_environment_and_calls_work_outside_a_container(platform, runs, context,
                                                                       tmp_path):
    run = runs[platform]
    command, env, cwd = _outside(run, tmp_path, context / "model", "{port}")
    cwd.mkdir(parents=True, exist_ok=True)
    rows = container.sample_rows()
    expected = container.onnx_answers(context / "model" / "penguins" / "1" / "model.onnx", rows)
    with LocalServer(command=[*command, "--parent-pid", "{parent_pid}"], env=env, cwd=cwd,
                     ready_path=run.health, ready_timeout=60) as server:
        for kind in run.calls:
            answer = platforms.call(server.url, kind, "penguins", rows)
            assert answer["labels"] == expected["labels"], answer["request"]
            np.testing.assert_allclose(answer["probabilities"], expected["probabilities"],
                                       atol=platforms.TOLERANCE)


def test_summary_names_each_platform():
    record = {"sagemaker": {"ok": True, "max_abs_diff": 1.3e-8,
                            "request": "POST /invocations (header-less CSV)"},
              "vertex": {"ok": False, "max_abs_diff": None, "request": None,
                         "error": "vertex: container did not answer"}}
    assert platforms.summary(record).splitlines() == [
        "sagemaker     ok     max |dp| 1.3e-08  POST /invocations (header-less CSV)",
        "vertex        FAILED vertex: container did not answer"]


@pytest.mark.container
def test_one_image_answers_under_every_platforms_contract(engine_and_base, wheel_context):
    found, base = engine_and_base
    context = wheel_context
    record = platforms.prove(context, engine_name=found, tag=TAG, base_image=base, out=PROOF)

    assert list(record) == list(platforms.PLATFORMS)
    failed = {name: entry.get("error") for name, entry in record.items() if not entry["ok"]}
    assert not failed, failed
    for name, entry in record.items():
        assert entry["labels_equal"] and entry["max_abs_diff"] <= 1e-5, (name, entry)
        assert entry["request"], name
    assert "/invocations" in record["sagemaker"]["request"]
    assert platforms.VERTEX_PREDICT_ROUTE in record["vertex"]["request"]
    assert "/v2/models/penguins/infer" in record["kserve"]["request"]
    for name in ("cloudfoundry", "paperspace"):
        assert "/v2/" in record[name]["request"] and "/invocations" in record[name]["request"]
    assert json.loads(PROOF.read_text()) == record
    eng = container.Engine.detect(found)
    assert eng.run("image", "inspect", TAG, check=False).returncode != 0, "image left behind"
