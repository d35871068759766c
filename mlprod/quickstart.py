"""Rebuild what a lesson needs from the earlier ones, cached on disk, so every notebook runs alone.

``trained_pipeline()`` fits the lesson-01 pipeline; ``tuned_pipeline()`` runs lesson 02's
default search; ``model_repository()`` exports both to ONNX and registers them as versions 1 and 2
of model ``penguins``. Results are cached under ``build/cache/`` (or ``$MLPROD_CACHE``), keyed by
the library versions and the kit's source, and written atomically so notebooks running in parallel
never see a half-written cache.

``python -m mlprod.quickstart models --out build/models`` is what ``make models`` runs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from mlprod.files import replace_dir

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

MODEL_NAME = "penguins"
ROOT = Path(__file__).resolve().parent.parent
_SOURCES = ("data.py", "tuning", "export", "registry.py", "quickstart.py")


def cache_dir() -> Path:
    """Return the cache folder: ``$MLPROD_CACHE`` if set, else ``build/cache`` in the checkout."""
    return Path(os.environ.get("MLPROD_CACHE", ROOT / "build" / "cache"))


def cache_key() -> str:
    """Hash the library versions, the data and the kit's model-building source into a short key."""
    h = hashlib.sha256()
    for package in ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy"):
        h.update(f"{package}=={metadata.version(package)}".encode())
    here = Path(__file__).resolve().parent
    h.update((here / "datasets" / "penguins.csv").read_bytes())
    for name in _SOURCES:
        for source in sorted((here / name).rglob("*.py")) if (here / name).is_dir() else [here / name]:
            if source.exists():
                h.update(source.read_bytes())
    return h.hexdigest()[:16]


def _cached_file(name: str, build: Callable[[Path], None]) -> Path:
    """Return ``cache_dir()/<key>/<name>``, building it with ``build(tmp_path)`` when absent."""
    final = cache_dir() / cache_key() / name
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{name}."))
    try:
        build(tmp / name)
        try:
            os.rename(tmp / name, final)
        except OSError:
            if not final.exists():  # lost a race only if the winner's copy is there
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def trained_pipeline(model=None) -> Pipeline:
    """Fit the lesson-01 pipeline (default: logistic regression) on the seeded training split."""
    from mlprod import data

    split = data.split()
    return data.make_pipeline(model).fit(split.X_train, split.y_train)


def tuned_pipeline() -> Pipeline:
    """Return lesson 02's tuned pipeline from the cache (built once by ``tuning.search_best_pipeline``)."""

    def build(path: Path) -> None:
        from mlprod import tuning

        with open(path, "wb") as fh:
            pickle.dump(tuning.search_best_pipeline(), fh)

    # The cache is the kit's own file, written by this function; never unpickle anything else.
    with open(_cached_file("tuned.pkl", build), "rb") as fh:
        return pickle.load(fh)


def shuffled_label_model(seed: int = 0):
    """Return a deliberately bad model as ONNX: the lesson-01 pipeline fitted on shuffled labels.

    It runs, answers fast and has the same inputs and outputs as the good ones, yet learned
    nothing: what a rollout's accuracy guard must catch.
    """
    import numpy as np

    from mlprod import data, export

    split = data.split()
    shuffled = split.y_train.sample(frac=1.0, random_state=np.random.RandomState(seed))
    shuffled.index = split.y_train.index
    pipeline = data.make_pipeline().fit(split.X_train, shuffled)
    return export.to_onnx(pipeline, split.X_train, shuffled, X_test=split.X_test,
                          y_test=split.y_test, doc_string="trained on shuffled labels")


def write_model_repository(root: str | os.PathLike) -> Path:
    """Register model ``penguins`` in a repository at ``root``: 1 = logistic, 2 = tuned.

    Aliases: ``production`` → 1, ``candidate`` → 2.
    """
    from mlprod import data, export
    from mlprod.registry import Registry

    split = data.split()
    registry = Registry(root)
    for pipeline in (trained_pipeline(), tuned_pipeline()):
        model = export.to_onnx(pipeline, split.X_train, split.y_train,
                               X_test=split.X_test, y_test=split.y_test)
        registry.register(MODEL_NAME, model)
    registry.set_alias(MODEL_NAME, "production", 1)
    registry.set_alias(MODEL_NAME, "candidate", 2)
    return Path(root)


def model_repository() -> Path:
    """Return a cached repository holding the course's model ``penguins`` (versions 1 and 2).

    Treat it as read-only: copy it (``shutil.copytree``) before registering more versions.
    """
    return _cached_file("models", write_model_repository)


def build_models(out: str | os.PathLike) -> bool:
    """Make ``out`` a copy of the course repository; return False when it was already up to date."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp = out / ".mlprod-key"
    key = cache_key()
    if stamp.exists() and stamp.read_text() == key:
        return False
    source = model_repository()
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        shutil.copytree(source, work / "repo")
        (work / "repo" / ".mlprod-key").write_text(key)
        replace_dir(work / "repo", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlprod.quickstart")
    sub = parser.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="train and register the course models")
    models.add_argument("--out", default=str(ROOT / "build" / "models"))
    args = parser.parse_args(argv)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    built = build_models(args.out)
    print(f"{args.out}: {'built' if built else 'up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
