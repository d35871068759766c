"""The real proof: build the image, run it, call it, compare with ONNX Runtime; the calls it makes,
against the server outside a container; and the address the container's command binds.

The container test runs when ``CI=true`` or a container engine works here (``podman info`` with
the kit's settings, or ``docker info``), and skips otherwise, saying how to enable it. Under
``CI=true`` a missing engine or base image is a failure.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from _server_fixtures import ENABLE

from mlprod import container, quickstart
from mlprod.serving import LocalServer, server_command

ROOT = Path(__file__).resolve().parent.parent
PROOF = ROOT / "build" / "proof" / "container.json"
TAG = f"mlprod-model-server:proof-{os.getpid()}"


def _listening(pid: int) -> set[tuple[str, int]]:
    """Return the TCP ``(address, port)`` pairs process ``pid`` listens on."""
    return {(c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections("tcp")
            if c.status == psutil.CONN_LISTEN}


@pytest.mark.parametrize("mode, address", [(["serve"], "0.0.0.0"), ([], "127.0.0.1")])
def test_serve_mode_binds_every_interface(mode, address, repository):
    # With --network=host a container's server is reached only if it binds beyond loopback; the
    # default mode is the contrast that shows this check tells the two apart.
    command = server_command(*mode, "--model-repository", repository,
                             *([] if mode else ["--port", "{port}"]))
    with LocalServer(command=command, env={"SAGEMAKER_BIND_TO_PORT": "{port}"}, cwd=ROOT,
                     ready_path="/ping") as server:
        assert (address, server.port) in _listening(server.pid)


def test_the_proofs_calls_answer_like_onnxruntime_outside_a_container():
    # The same calls the proof makes to the container, through mlprod.client, against the server
    # run here: so a failing proof points at the image, not at the calls.
    repo = quickstart.model_repository()
    rows = container.sample_rows()
    with LocalServer(repo) as server:
        answers = container.call_server(server.url, "penguins", rows)
    assert answers["ping"] == 200
    for route in ("v2", "invocations"):
        got = answers[route]
        expected = container.onnx_answers(repo / "penguins" / got["version"] / "model.onnx", rows)
        assert got["labels"] == expected["labels"]
        np.testing.assert_allclose(got["probabilities"], expected["probabilities"], atol=1e-6)
    assert answers["invocations"]["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    # The V2 body the client sends is the proof's request, less its id.
    body = container.v2_request(rows)
    assert body.pop("id") == "mlprod-proof"
    assert [i["name"] for i in body["inputs"]] == list(rows.columns)
    assert body["inputs"][3]["data"][2] is None  # body_mass_g missing: JSON null
    assert body["inputs"][5]["data"][1] == ""  # sex missing: ""


def test_summary_reads_new_records_and_old_ones():
    figures = {"engine": "podman", "base_image": container.LOCAL_BASE_IMAGE, "build_seconds": 49.2,
               "image_mb": 385.7, "base_image_mb": 183.4, "ready_seconds": 0.71,
               "run_seconds": 3.38, "user": "10001", "healthcheck": ["CMD", "python"],
               "health": "healthy", "ping": 200, "v2": {"version": "1", "labels": ["Adelie"]},
               "invocations": {"version": "1", "labels": ["Adelie"]},
               "onnxruntime": {"v2": {"max_abs_dp": 1e-8}}, "matches_onnxruntime": True,
               "created": "2026-12-01T08:36:15+00:00"}
    assert ("build 49 s, image 386 MB (base 183 MB), ready 0.7 s after start (3.4 s after the "
            "run command)") in container.summary(figures)
    # A record written before the base image's size and the run time were recorded.
    old = {k: v for k, v in figures.items() if k not in ("base_image_mb", "run_seconds")}
    assert "image 386 MB, ready 0.7 s after start\n" in container.summary(old)


@pytest.mark.container
def test_image_builds_serves_and_answers_like_onnxruntime(engine_and_base, wheel_context):
    found, base = engine_and_base
    context = wheel_context
    figures = container.prove(context, engine_name=found, tag=TAG, base_image=base, out=PROOF)

    assert figures["ping"] == 200
    assert figures["user"] == "10001"
    assert "/ping" in " ".join(figures["healthcheck"]), "the image lost its HEALTHCHECK"
    assert figures["health"] == ("healthy" if found == "podman" else "unchecked")
    rows = container.sample_rows()
    served = container.served_version(context / "model" / "penguins")
    assert figures["labels"]["mlprod.model.version"] == str(served)
    for route in ("v2", "invocations"):
        got = figures[route]
        assert got["version"] == str(served)
        expected = container.onnx_answers(
            context / "model" / "penguins" / got["version"] / "model.onnx", rows)
        assert got["labels"] == expected["labels"]
        np.testing.assert_allclose(got["probabilities"], expected["probabilities"], atol=1e-5)
    assert figures["invocations"]["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert figures["matches_onnxruntime"] is True
    assert figures["image_bytes"] > 50e6, "an image holding Python and ONNX Runtime"
    assert 0 < figures["base_image_bytes"] < figures["image_bytes"]
    # Timed from the container's State.StartedAt to the first /ping 200 (issue 16: <= 2 s); the
    # wait from the run command also holds the engine's work before the start.
    assert 0 < figures["ready_seconds"] <= 2, figures["ready_seconds"]
    assert figures["run_seconds"] >= figures["ready_seconds"]
    recorded = json.loads(PROOF.read_text())
    assert recorded["image_id"] == figures["image_id"] and recorded["engine"] == found
    eng = container.Engine.detect(found)
    assert eng.run("image", "inspect", TAG, check=False).returncode != 0, "image left behind"


@pytest.mark.container
def test_a_recorded_proof_is_there_for_lesson_05_under_ci():
    # Moved out of lesson 05: `make test` runs this file before the notebooks, and the lesson shows
    # the recorded proof. Under CI=true it must be there, for the version the course serves, and
    # agree with ONNX Runtime; elsewhere a recorded proof is checked the same way.
    if os.environ.get("CI") != "true" and not PROOF.is_file():
        pytest.skip(f"No recorded proof at {PROOF}. {ENABLE}")
    assert PROOF.is_file(), f"CI=true but no proof at {PROOF}: run `make container` first"
    proof = json.loads(PROOF.read_text())
    served = container.served_version(quickstart.model_repository() / "penguins")
    assert proof["labels"]["mlprod.model.version"] == str(served), (proof["labels"], served)
    assert proof["matches_onnxruntime"], proof["onnxruntime"]


def test_the_health_waiter_times_each_container_and_names_one_that_exited(repository):
    # Two "containers": a real server (answers /ping) and one the engine reports exited, whose
    # port nobody listens on. The waiter times the first and returns the second's log.
    from types import SimpleNamespace

    from mlprod.container.image import wait_healthy
    from mlprod.serving import free_port

    asked = []

    class Engine:
        def run(self, *args, check=True, timeout=None):
            asked.append(args)
            # As Docker answers: one line per container, the name with a leading slash.
            out = ("\n".join(f"/{name} false" for name in args[3:]) if args[0] == "inspect"
                   else "Traceback: model.onnx is missing")
            return SimpleNamespace(stdout=out, stderr="", returncode=0)

    with LocalServer(repository) as server:
        start = time.perf_counter()
        found = wait_healthy(Engine(), {"up": f"{server.url}/ping",
                                        "gone": f"http://127.0.0.1:{free_port()}/ping"},
                             start, timeout=30)
    assert isinstance(found["up"], float) and 0 <= found["up"] < 30
    assert isinstance(found["gone"], RuntimeError)
    assert "container gone did not answer" in str(found["gone"])
    assert "(running: false)" in str(found["gone"]) and "model.onnx is missing" in str(found["gone"])
    assert [a[0] for a in asked].count("logs") == 1  # only the exited one's log is read
    assert all(a[3:] == ("gone",) for a in asked if a[0] == "inspect")  # not the one that is up
