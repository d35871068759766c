"""Re-code a fitted pipeline in C (mlprod's generator) or Java (m2cgen), compile it and run it.

Path 1 of the three paths to deployment: the model becomes source code in the production
environment's language, with no runtime library at all. mlprod's generator writes C for the whole
pipeline the course uses: imputation, scaling and one-hot encoding, then a logistic regression
(softmax) or tree models (nested ``if``/``else``). A small harness reads CSV rows on stdin and
prints a label and the probabilities per row, or times the model (``bench``).

Trees compare ``(float)z[j] <= threshold``: scikit-learn rounds a tree's inputs to float32 before
comparing them with its (float64) thresholds, and the generated code must do the same to agree.

m2cgen (a maintained code generator) covers the estimator alone, not the preprocessing: the Java
demo transforms rows in Python and scores the result with the generated class.

One idea per module: :mod:`~.c_generator` writes the C, :mod:`~.c_model` compiles and runs it,
:mod:`~.java_model` is the m2cgen demo, :mod:`~.core` loads the harnesses (``main.c`` and
``Main.java`` in ``mlprod/templates/recode/``) and runs commands, and :mod:`~.gradient_boosting`
is the adapter over scikit-learn's private ``_raw_predict_init``.
"""

from mlprod.export.recode.c_generator import generate_c
from mlprod.export.recode.c_model import CModel, c_unavailable, compile_c
from mlprod.export.recode.java_model import JavaModel, java_unavailable

__all__ = ["CModel", "JavaModel", "c_unavailable", "compile_c", "generate_c", "java_unavailable"]
