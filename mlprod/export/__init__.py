"""Take a fitted pipeline out of the notebook: ONNX, PMML or generated code, each checked for parity.

The three paths to deployment:

1. re-code the model in the production language (:mod:`mlprod.export.recode`: C, Java);
2. a standard markup (:mod:`mlprod.export.pmml`: PMML, scored by a Java evaluator);
3. automatic conversion to a portable format (:mod:`mlprod.export.onnx`: ONNX, the main path).

:mod:`mlprod.export.parity` compares every path with scikit-learn; :mod:`mlprod.export.speed`
measures them; :mod:`mlprod.export.pickles` shows why a pickle is no deployment format.

:mod:`mlprod.export.parity` (the comparison) imports no path; each path imports it, and
:mod:`mlprod.export.paths` (every path at once, and their table) imports them all.
"""

from mlprod.export.onnx import (
    ONNXModel,
    convert,
    metadata,
    onnx_inputs,
    onnx_predict,
    session,
    to_onnx,
)
from mlprod.export.parity import ParityError, agreement, check_parity, default_tolerance
from mlprod.export.paths import PATHS, build_paths, describe, parity_table
from mlprod.export.pickles import malicious_pickle, pickle_imports
from mlprod.export.pmml import PMMLModel, to_pmml
from mlprod.export.recode import CModel, JavaModel, generate_c
from mlprod.export.speed import median_seconds, plot_speed, speed_table

__all__ = [
    "PATHS", "CModel", "JavaModel", "ONNXModel", "PMMLModel", "ParityError", "agreement",
    "build_paths", "check_parity", "convert", "default_tolerance", "describe", "generate_c",
    "malicious_pickle", "median_seconds", "metadata", "onnx_inputs", "onnx_predict", "parity_table",
    "pickle_imports", "plot_speed", "session", "speed_table", "to_onnx", "to_pmml",
]
