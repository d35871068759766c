"""Each platform's deployment files, written into a build context under ``platforms/<name>/``."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import shutil
import tarfile
from importlib import resources
from pathlib import Path

from mlprod.container.templates import render, template

#: The platforms, in the order the lesson and the proof take them (the keys of platforms.json).
PLATFORMS = ("sagemaker", "vertex", "kserve", "cloudfoundry", "paperspace")
#: Template (in mlprod/templates/container/platforms/) → the file written under platforms/.
FILES = {
    "sagemaker-deploy.py.in": "sagemaker/deploy.py",
    "vertex-deploy.sh.in": "vertex/deploy.sh",
    "vertex-deploy.py.in": "vertex/deploy_aiplatform.py",
    "kserve-inferenceservice.yaml": "kserve/inferenceservice.yaml",
    "cloudfoundry-manifest.yml": "cloudfoundry/manifest.yml",
    "cloudfoundry-Procfile": "cloudfoundry/Procfile",
    "paperspace-deployment.yaml": "paperspace/deployment.yaml",
}
#: The routes Vertex AI is told to call (it passes them as AIP_HEALTH_ROUTE / AIP_PREDICT_ROUTE).
VERTEX_HEALTH_ROUTE = "/health"
VERTEX_PREDICT_ROUTE = "/predict"
#: The container port every platform is told about (the image's EXPOSE).
PORT = 8080
#: Cloud Foundry's start command: the droplet holds the pushed folder, so the model is ./model.
CF_COMMAND = "python -m server serve --model-repository model"


def example_row(model_dir: Path) -> dict[str, float | str]:
    """Return one penguin as a record in the model's input order (from ``config.pbtxt``).

    The first complete row of the course's data set: the scripts send it as their one example
    request. Read with the standard library, so ``make context`` imports no data stack.
    """
    config = (model_dir / "config.pbtxt").read_text()
    block = config[config.index("input ["):config.index("output [")]
    inputs = re.findall(r'name:\s*"([^"]+)"\s*data_type:\s*(\w+)', block)
    with (resources.files("mlprod") / "datasets" / "penguins.csv").open() as fh:
        row = next(r for r in csv.DictReader(fh) if all(r[name] for name, _ in inputs))
    return {name: row[name] if kind == "TYPE_STRING" else float(row[name])
            for name, kind in inputs}


def platform_values(model_dir: Path, values: dict, *, canary_percent: int = 10,
                    paperspace_machine_type: str = "C5",
                    sagemaker_instance_type: str = "ml.m5.large",
                    vertex_machine_type: str = "n1-standard-2") -> dict:
    """Return the values the platform templates need, on top of the context's ``values``."""
    record = example_row(model_dir)
    csv_row = ",".join(str(v) for v in record.values())
    weights = (90, 10)
    return {
        **values, "canary_percent": canary_percent, "cf_command": CF_COMMAND,
        "csv_row": csv_row, "vertex_instance": repr(record), "vertex_name": values["name"],
        "vertex_port": PORT, "vertex_health_route": VERTEX_HEALTH_ROUTE,
        "vertex_predict_route": VERTEX_PREDICT_ROUTE, "vertex_machine_type": vertex_machine_type,
        "sagemaker_endpoint": values["name"], "sagemaker_instance_type": sagemaker_instance_type,
        "production_weight": weights[0], "candidate_weight": weights[1],
        "paperspace_port": PORT, "paperspace_machine_type": paperspace_machine_type,
    }


def write_platform_files(ctx: str | Path, values: dict, **options) -> list[Path]:
    """Write every platform's files into ``ctx/platforms/``; return the files written.

    Parameters
    ----------
    ctx : path
        A build context being written: its ``model/`` folder is a model repository.
    values : dict
        The context's template values (``model``, ``name``, ``image``, ``version``,
        ``replicas``, ``max_replicas``, ``storage_uri``).
    **options
        ``canary_percent``, ``paperspace_machine_type``, ``sagemaker_instance_type``,
        ``vertex_machine_type`` (see :func:`platform_values`).
    """
    ctx = Path(ctx)
    out = ctx / "platforms"
    model_dir = ctx / "model" / values["model"]
    filled = platform_values(model_dir, values, **options)
    written = []
    for name, target in FILES.items():
        path = out / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(template(f"platforms/{name}"), filled))
        written.append(path)
    calls = out / "sagemaker" / "sagemaker_calls.py"
    shutil.copyfile(Path(__file__).with_name("sagemaker.py"), calls)
    aliases = json.loads((model_dir / "aliases.json").read_text()) \
        if (model_dir / "aliases.json").is_file() else {}
    production = aliases.get("production", int(values["version"]))
    candidate = aliases.get("candidate", production)
    for file, version in (("model.tar.gz", production), ("candidate.tar.gz", candidate)):
        path = out / "sagemaker" / file
        path.write_bytes(model_tarball(ctx / "model", values["model"], version))
        written.append(path)
    return [*written, calls]


def model_tarball(repository: str | Path, model: str, production: int) -> bytes:
    """Return a ``model.tar.gz`` that SageMaker unpacks into /opt/ml/model as a model repository.

    The archive's root is the repository's root (``<model>/config.pbtxt``,
    ``<model>/<version>/model.onnx`` ...), which is what ``python -m server serve`` reads in
    /opt/ml/model. ``aliases.json`` names ``production`` as the version this variant serves;
    ``routing.json`` is left out, because SageMaker splits traffic between variants itself. The
    bytes depend on the files alone (no times or owners), so the same model gives the same archive.
    """
    repository = Path(repository)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, content: bytes | None) -> None:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if content is None else 0o644
            if content is None:
                info.type = tarfile.DIRTYPE
            else:
                info.size = len(content)
            tar.addfile(info, None if content is None else io.BytesIO(content))

        root = repository / model
        add(model, None)
        for path in sorted(root.rglob("*")):
            name = path.relative_to(repository).as_posix()
            if path.name in ("routing.json", "aliases.json", "aliases.history.json"):
                continue
            add(name, None if path.is_dir() else path.read_bytes())
        add(f"{model}/aliases.json", json.dumps({"production": production}).encode())
    return buffer.getvalue()
