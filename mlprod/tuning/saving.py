"""Keep lesson 02's choice: the chosen pipeline and what was chosen, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlprod.files import atomic_open, write_json
from mlprod.tuning.results import SearchResult


def save_choice(result: SearchResult, folder: str | Path, test_score: float | None = None) -> Path:
    """Save the chosen pipeline (``model.joblib``) and what was chosen (``choice.json``), atomically.

    The copy is for inspection on this machine; later lessons rebuild the same pipeline with
    ``mlprod.quickstart.tuned_pipeline()`` and deploy it as ONNX, never as a pickle.

    Returns
    -------
    folder : Path
        The folder holding both files.
    """
    import joblib

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    choice = {"params": {k: _jsonable(v) for k, v in result.best_params.items()},
              "cv_score": result.best_score, "scoring": result.scoring,
              "test_score": test_score, "method": result.method}
    with atomic_open(folder / "model.joblib", "wb") as fh:
        joblib.dump(result.best_pipeline, fh)
    write_json(folder / "choice.json", choice)
    return folder


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
