"""The platforms' proof: one image, run under each platform's environment, called in its format.

Each run is read from the files ``make context`` wrote for that platform where they say it (the
KServe container's args, the Procfile's command, the Paperspace spec's command, env and health
checks, the Vertex AI routes) and from the platform's documented container contract otherwise
(SageMaker unpacks ``model.tar.gz`` into /opt/ml/model and sets ``SAGEMAKER_BIND_TO_PORT``; KServe
puts the model in /mnt/models and Knative sets ``PORT``; Vertex AI sets ``AIP_*``). The port is
always one picked free here: with host networking the container shares the host's ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mlprod.container.engines import Engine
from mlprod.container.image import build_image, wait_healthy
from mlprod.container.model import choose_model, served_version
from mlprod.files import write_json
from mlprod.platforms.files import PLATFORMS, VERTEX_HEALTH_ROUTE, VERTEX_PREDICT_ROUTE

#: The tolerance on probabilities against ONNX Runtime in process.
TOLERANCE = 1e-5


@dataclass
class Run:
    """How one platform starts the image: environment, command, mounts, health route, calls.

    ``port_variables`` get the port picked for the run; ``calls`` name the requests sent:
    ``"invocations"`` (CSV to /invocations), ``"v2"`` (V2 infer), ``"vertex"`` (the predict
    route with ``instances`` as records and as lists).
    """

    platform: str
    port_variables: tuple[str, ...]
    health: str
    calls: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: str | None = None
    args: list[str] = field(default_factory=lambda: ["serve"])
    volumes: dict[str, str] = field(default_factory=dict)  # host folder → container folder
    workdir: str | None = None


def runs(context: str | os.PathLike, scratch: str | os.PathLike) -> list[Run]:
    """Return the five platforms' runs for a build context; ``scratch`` receives unpacked models."""
    import yaml

    context, scratch = Path(context), Path(scratch)
    out = context / "platforms"
    unpacked = scratch / "opt-ml-model"
    unpacked.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out / "sagemaker" / "model.tar.gz") as tar:
        tar.extractall(unpacked, filter="data")
    _readable(scratch)
    model = str((context / "model").resolve())
    isvc = yaml.safe_load((out / "kserve" / "inferenceservice.yaml").read_text())
    box = isvc["spec"]["predictor"]["containers"][0]
    procfile = (out / "cloudfoundry" / "Procfile").read_text().strip()
    cf = shlex.split(procfile.removeprefix("web:"))
    spec = yaml.safe_load((out / "paperspace" / "deployment.yaml").read_text())
    return [
        Run("sagemaker", ("SAGEMAKER_BIND_TO_PORT",), "/ping", ("invocations",),
            volumes={str(unpacked): "/opt/ml/model"}),
        Run("vertex", ("AIP_HTTP_PORT",), VERTEX_HEALTH_ROUTE, ("vertex",),
            env={"AIP_HEALTH_ROUTE": VERTEX_HEALTH_ROUTE,
                 "AIP_PREDICT_ROUTE": VERTEX_PREDICT_ROUTE, "AIP_MODE": "PREDICTION",
                 "AIP_STORAGE_URI": "gs://mlprod-example-bucket/penguins"}),
        Run("kserve", ("PORT",), "/v2/health/ready", ("v2",),
            env={e["name"]: e["value"] for e in box.get("env", [])}, args=box["args"],
            volumes={model: "/mnt/models"}),
        Run("cloudfoundry", ("PORT",), "/ping", ("v2", "invocations"),
            env={"VCAP_APPLICATION": json.dumps({"application_name": "mlprod"})},
            entrypoint=cf[0], args=cf[1:], volumes={model: "/home/vcap/app/model"},
            workdir="/home/vcap/app"),
        Run("paperspace", tuple(e["name"] for e in spec["env"] if e["name"] == "PORT"),
            spec["healthChecks"]["readiness"]["path"], ("v2", "invocations"),
            env={e["name"]: str(e["value"]) for e in spec["env"] if e["name"] != "PORT"},
            entrypoint=spec["command"][0], args=spec["command"][1:]),
    ]


def _readable(root: Path) -> None:
    """Let the image's unprivileged user read what is mounted (temporary folders start 0700)."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def run_command(tag: str, name: str, run: Run, port: int, engine_name: str) -> list[str]:
    """Return the engine's arguments that start ``tag`` as ``run`` says, answering on ``port``."""
    env = {**run.env, **{variable: str(port) for variable in run.port_variables}}
    if engine_name == "podman":
        net = ["--network=host"]  # the server listens on the port its platform variable names
    else:
        net = ["-p", f"127.0.0.1:{port}:{port}"]
    args = ["run", "-d", "--name", name, *net]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    for host, inside in run.volumes.items():
        args += ["-v", f"{host}:{inside}:ro"]
    if run.workdir:
        args += ["--workdir", run.workdir]
    if run.entrypoint:
        args += ["--entrypoint", run.entrypoint]
    return [*args, tag, *run.args]


@contextlib.contextmanager
def started(tag: str, todo: list[Run], eng: Engine, timeout: float = 180
            ) -> Iterator[dict[str, tuple[str, float] | RuntimeError]]:
    """Start a container of ``tag`` for each run at once; yield platform → (URL, ready seconds).

    All start together, so the engine's work before each start (podman's vfs storage copies the
    image's files for every container) overlaps. A run whose container exits, or whose health
    route does not answer 200 within ``timeout`` seconds, maps to a RuntimeError holding the
    container's log. Every container is stopped and removed on the way out.
    """
    from mlprod.serving import free_port

    boxes, ports = {}, set()
    for run in todo:
        port = free_port()
        while port in ports:
            port = free_port()
        ports.add(port)
        boxes[run.platform] = (run, f"mlprod-{os.getpid()}-{run.platform}-{port}",
                               f"http://127.0.0.1:{port}", port)
    start = time.perf_counter()
    try:
        for run, name, _, port in boxes.values():
            eng.run(*run_command(tag, name, run, port, eng.name), timeout=120)
        waited = wait_healthy(eng, {name: url + run.health for run, name, url, _
                                    in boxes.values()}, start, timeout)
        found: dict[str, tuple[str, float] | RuntimeError] = {}
        for platform, (_, name, url, _) in boxes.items():
            result = waited[name]
            found[platform] = (RuntimeError(f"{platform}: {result}")
                               if isinstance(result, RuntimeError) else (url, result))
        yield found
    finally:
        names = [name for _, name, _, _ in boxes.values()]
        eng.run("stop", "-t", "5", *names, check=False, timeout=120)
        eng.run("rm", "-f", *names, check=False, timeout=120)


def call(url: str, kind: str, model: str, rows) -> dict:
    """Send ``rows`` in one platform format; return the request's description, labels, probabilities."""
    import numpy as np
    import requests

    from mlprod import data
    from mlprod.client import Client

    if kind == "v2":
        with Client(url, retries=0) as client:
            answer = client.predict(rows, model)
        return {"request": f"POST /v2/models/{model}/infer (V2 JSON)",
                "labels": [str(x) for x in answer["label"]],
                "probabilities": answer.drop(columns="label").to_numpy(float).tolist()}
    if kind == "invocations":
        response = requests.post(url + "/invocations", data=rows.to_csv(index=False, header=False),
                                 headers={"Content-Type": "text/csv",
                                          "Accept": "application/json"}, timeout=10)
        request = "POST /invocations (header-less CSV)"
        predictions = [response.json()["predictions"]] if response.status_code == 200 else []
    else:
        records = rows.astype(object).where(rows.notna(), None).to_dict("records")
        lists = [[r[c] for c in data.FEATURES] for r in records]
        predictions = []
        for instances in (records, lists):
            response = requests.post(url + VERTEX_PREDICT_ROUTE, timeout=10,
                                     json={"instances": instances, "parameters": {}})
            if response.status_code != 200:
                break
            predictions.append(response.json()["predictions"])
        request = f"POST {VERTEX_PREDICT_ROUTE} {{instances: records, then lists}}"
    if response.status_code != 200:
        raise RuntimeError(f"{request} answered {response.status_code}: {response.text[:500]}")
    classes = list(predictions[0][0]["probabilities"])
    labels = [[p["label"] for p in answer] for answer in predictions]
    probabilities = [[[p["probabilities"][c] for c in classes] for p in answer]
                     for answer in predictions]
    if any(x != labels[0] for x in labels) or not np.allclose(probabilities, probabilities[0]):
        raise RuntimeError(f"{request}: records and lists got different answers")
    return {"request": request, "labels": labels[0], "probabilities": probabilities[0]}


def _check(run: Run, ready: tuple[str, float] | RuntimeError, model: str, rows,
           expected: dict) -> dict:
    """Call one started platform in its formats; return its entry of the record."""
    from mlprod.container.proof import max_abs_diff

    entry = {"ok": False, "max_abs_diff": None, "request": None,
             "env": {**run.env, **{v: "<free port>" for v in run.port_variables}},
             "command": [c for c in (run.entrypoint,) if c] + run.args,
             "volumes": list(run.volumes.values()), "health": run.health}
    try:
        if isinstance(ready, RuntimeError):
            raise ready
        url, seconds = ready
        answers = [call(url, kind, model, rows) for kind in run.calls]
    except RuntimeError as err:
        return {**entry, "error": str(err)[-2000:]}
    gap = max(max_abs_diff(a, expected) for a in answers)
    equal = all(a["labels"] == expected["labels"] for a in answers)
    return {**entry, "ok": equal and gap <= TOLERANCE, "max_abs_diff": gap,
            "request": "; ".join(a["request"] for a in answers), "labels_equal": equal,
            "labels": answers[0]["labels"], "ready_seconds": round(seconds, 2)}


def prove(context: str | os.PathLike, *, out: str | os.PathLike | None = None,
          engine_name: str | None = None, base_image: str | None = None,
          keep_image: bool = False, tag: str = "mlprod-model-server:platforms") -> dict:
    """Build the image of ``context`` once, run it under each platform's contract, record the result.

    ``context`` is a context written by ``mlprod.container.build_context`` (with ``platforms/``);
    ``out``, if given, receives the record as JSON (atomically), e.g. ``build/proof/platforms.json``;
    ``engine_name``, ``base_image``, ``keep_image`` and ``tag`` are as in
    ``mlprod.container.prove``.

    Returns
    -------
    dict
        Platform → ``{"ok", "max_abs_diff", "request", "labels_equal", "env", "args",
        "volumes", "ready_seconds", ...}``; ``ok`` when every call's labels equal ONNX
        Runtime's in process and its probabilities are within 1e-5. ``ready_seconds`` runs
        from the first of the five run commands (all start together) to that platform's first
        health answer.
    """
    from mlprod.container.proof import onnx_answers, sample_rows

    context = Path(context)
    eng = Engine.detect(engine_name)
    model = choose_model(context / "model")
    version = served_version(context / "model" / model)
    rows = sample_rows()
    expected = onnx_answers(context / "model" / model / str(version) / "model.onnx", rows)
    record = {}
    scratch = Path(tempfile.mkdtemp(prefix="mlprod-platforms-"))
    try:
        built = build_image(context, tag, engine_name=eng.name, base_image=base_image)
        todo = runs(context, scratch)
        with started(tag, todo, eng) as ready:
            for run in todo:
                record[run.platform] = _check(run, ready[run.platform], model, rows, expected)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if not keep_image:
            eng.run("rmi", "-f", tag, check=False, timeout=120)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    for entry in record.values():
        entry.update(engine=eng.name, image_id=built["image_id"],
                     build_seconds=built["build_seconds"], model=model, version=version,
                     created=created)
    record = {name: record[name] for name in PLATFORMS}
    if out is not None:
        write_json(out, record)
    return record


def summary(record: dict) -> str:
    """Return one line per platform of a proof's record (as ``prove`` writes it)."""
    lines = []
    for name, entry in record.items():
        gap = entry.get("max_abs_diff")
        lines.append(f"{name:13} {'ok' if entry['ok'] else 'FAILED':6} "
                     + (f"max |dp| {gap:.1e}  " if gap is not None else "")
                     + (entry.get("request") or entry.get("error", "")[:200]))
    return "\n".join(lines)
