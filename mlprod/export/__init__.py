"""Take a fitted pipeline out of the notebook: ONNX, PMML or generated code, each checked for parity.

The three paths to deployment:

1. re-code the model in the production language (:mod:`mlprod.export.recode`: C, Java);
2. a standard markup (:mod:`mlprod.export.pmml`: PMML, scored by a Java evaluator);
3. automatic conversion to a portable format (:mod:`mlprod.export.onnx`: ONNX, the main path).

:mod:`mlprod.export.parity` compares every path with scikit-learn; :mod:`mlprod.export.speed`
measures them; :mod:`mlprod.export.pickles` shows why a pickle is no deployment format.
"""

from mlprod.export.onnx import convert, metadata, onnx_inputs, onnx_predict, session, to_onnx
from mlprod.export.parity import ParityError, agreement, default_tolerance, parity_table

__all__ = [
    "ParityError", "agreement", "convert", "default_tolerance", "metadata", "onnx_inputs",
    "onnx_predict", "parity_table", "session", "to_onnx",
]
