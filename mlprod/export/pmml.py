"""Export a fitted pipeline to PMML and score the document, both in one Java virtual machine.

Path 2 of the three paths to deployment: a standard markup. PMML (Predictive Model Markup Language,
an XML standard of the Data Mining Group) describes the preprocessing and the model declaratively;
an evaluator in the production environment (JPMML-Evaluator on the JVM, Spark, databases, SAS,
KNIME) scores it.

- Converter: **sklearn2pmml** (JPMML-SkLearn, Java). ``make_pmml_pipeline`` wraps the fitted
  pipeline; the Java converter reads its pickle with its own unpickler (no Python code runs) and
  writes the XML.
- Evaluator: **jpmml-evaluator** (JPMML-Evaluator through JPype). A missing categorical is passed
  as ``""``, as everywhere in mlprod (with ``None`` a forest's PMML answers no prediction).

Both need a Java 11+ runtime. JPype can start one JVM per process, once: :func:`start_jvm` starts
it with both libraries' classes and options that favour start-up time, and everything here reuses
it. The conversion runs in that JVM rather than in a ``java`` subprocess, which saves a second
JVM start and skips the command-line launcher's crash report to a remote telemetry endpoint
(mlprod runs offline); the converter's own expiry check (360 days after its build) still applies.
:mod:`mlprod.export.pmml_converter` holds what that reaches inside sklearn2pmml.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlprod.export.parity import check_parity
from mlprod.export.pmml_converter import ConversionError, classpath, convert, converter_build_date

__all__ = ["JVM_OPTIONS", "PMMLModel", "converter_build_date", "start_jvm", "to_pmml",
           "unavailable"]

#: Start-up over peak speed: the C1 compiler only and the serial collector (2 shared cores).
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss4m")
#: sklearn2pmml's converter refuses to run this many days after its build date.
CONVERTER_LIFETIME = timedelta(days=360)
INSTALL_JAVA = ("install a Java 11+ runtime (Debian/Ubuntu: apt-get install -y "
                "openjdk-17-jre-headless) or set JAVA_HOME")


def unavailable() -> str | None:
    """Return why PMML cannot run here (no Java, a library missing, the converter expired), or None."""
    try:
        import jpmml_evaluator  # noqa: F401
        import jpype
        import sklearn2pmml
    except ImportError as exc:
        return (f"{exc.name} is not installed; install mlprod's dependencies "
                "(sklearn2pmml, jpmml-evaluator, jpype1)")
    built = converter_build_date()
    if built is not None and datetime.now(UTC) - built > CONVERTER_LIFETIME:
        return (f"sklearn2pmml {sklearn2pmml.__version__}'s converter (built {built:%Y-%m-%d}) "
                f"has expired: it refuses to run {CONVERTER_LIFETIME.days} days after its build; "
                "upgrade sklearn2pmml (and scikit-learn to a version it supports)")
    if jpype.isJVMStarted():
        if not _has_converter():
            return ("the Java VM in this process was started without sklearn2pmml's classes "
                    "(JPype starts one per process); restart the kernel and call "
                    "mlprod.export.pmml.start_jvm() before other Java use")
        return None
    try:
        jpype.getDefaultJVMPath()
    except Exception:  # JPype's JVMNotFoundException
        return f"no Java runtime found: {INSTALL_JAVA}"
    return None


def _has_converter() -> bool:
    import jpype

    try:
        jpype.JClass("com.sklearn2pmml.Main")
    except Exception:  # NoClassDefFoundError surfaces as a JPype exception
        return False
    return True


def start_jvm() -> None:
    """Start the process's Java VM with the converter's and the evaluator's classes, once.

    Raises
    ------
    RuntimeError
        When PMML cannot run here, saying what to install (see :func:`unavailable`).
    """
    import jpype

    reason = unavailable()
    if reason:
        raise RuntimeError(f"PMML is not available: {reason}.")
    if jpype.isJVMStarted():
        return
    jpype.startJVM(*JVM_OPTIONS, classpath=classpath(), convertStrings=False)
    # The converter logs every run on stderr: its class set-up installs a console handler, so
    # initialise the class first, then remove the handlers (failures reach Python as exceptions).
    jpype.JClass("com.sklearn2pmml.Main")()
    manager = jpype.JClass("java.util.logging.LogManager").getLogManager()
    manager.reset()
    manager.getLogger("").setLevel(jpype.JClass("java.util.logging.Level").OFF)


def to_pmml(pipeline: Any, path: str | os.PathLike, X: pd.DataFrame | None = None,
            target: str = "species") -> Path:
    """Convert a fitted pipeline to a PMML document at ``path`` with sklearn2pmml.

    Only ``X``'s verification records are checked here (by the evaluator, on load);
    :meth:`PMMLModel.from_pipeline` also checks parity with scikit-learn on the rows it is given.

    Parameters
    ----------
    pipeline : fitted Pipeline
        Fitted on a DataFrame; its columns become the PMML's active fields.
    path : path
        Where the ``.pmml`` file goes (written to a temporary name first, then renamed).
    X : DataFrame, optional
        A few rows to embed as verification data: the evaluator checks them on load.
    target : str
        Name of the target field.

    Raises
    ------
    RuntimeError
        When Java or the libraries are missing, or the converter fails, with its message.
    """
    import joblib
    from sklearn2pmml import make_pmml_pipeline

    start_jvm()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [str(c) for c in pipeline.feature_names_in_]
    pmml_pipeline = make_pmml_pipeline(pipeline, active_fields=columns, target_fields=[target])
    if X is not None:
        pmml_pipeline.verify(X[columns], precision=1e-13, zeroThreshold=1e-13)
    workdir = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        pickle_path, out = workdir / "pipeline.pkl", workdir / path.name
        joblib.dump(pmml_pipeline, pickle_path)
        try:
            convert(pickle_path, out)
        except ConversionError as exc:
            raise RuntimeError(f"sklearn2pmml could not convert {type(pipeline[-1]).__name__}: "
                               f"{exc}. See sklearn2pmml's list of supported transformers and "
                               "models.") from None
        os.replace(out, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return path


class PMMLModel:
    """A PMML document and the JPMML evaluator scoring it.

    Parameters
    ----------
    path : path
        The ``.pmml`` file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        from jpmml_evaluator import make_evaluator

        start_jvm()
        self.path = Path(path)
        self.evaluator = make_evaluator(str(self.path), backend="jpype").verify()
        self.target = str(self.evaluator.getTargetFields()[0].getName())
        self.inputs = [str(f.getName()) for f in self.evaluator.getInputFields()]
        self.classes = [str(f.getName())[len("probability("):-1]
                        for f in self.evaluator.getOutputFields()
                        if str(f.getName()).startswith("probability(")]

    @classmethod
    def from_pipeline(cls, pipeline: Any, X: pd.DataFrame | None = None,
                      workdir: str | os.PathLike | None = None, *, X_check: pd.DataFrame,
                      label_agreement: float = 1.0, max_prob_diff: float | None = None
                      ) -> PMMLModel:
        """Convert ``pipeline`` to ``<workdir>/model.pmml``, load it and check it for parity.

        ``X_check``, ``label_agreement`` and ``max_prob_diff`` go to
        :func:`~mlprod.export.parity.check_parity` (by default every label must agree and
        |Δ probability| stay ≤ 1e-4: the evaluator computes in double precision), whose ParityError
        says where the evaluator disagrees with scikit-learn.

        Parameters
        ----------
        pipeline : fitted Pipeline
        X : DataFrame, optional
            Its first ten rows become the document's verification records.
        workdir : path, optional
            Where ``model.pmml`` goes (a temporary folder by default).

        Raises
        ------
        RuntimeError
            When Java or the libraries are missing, or the converter fails.
        """
        folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mlprod-pmml-"))
        sample = None if X is None else X.iloc[:10]
        model = cls(to_pmml(pipeline, folder / "model.pmml", X=sample))
        check_parity("PMML", pipeline, X_check, model, label_agreement, max_prob_diff)
        return model

    def __repr__(self) -> str:
        return f"PMMLModel({str(self.path)!r}, classes={self.classes})"

    def summary(self) -> str:
        """Describe the document: its data fields, its model element and derived fields."""
        import xml.etree.ElementTree as ET

        root = ET.parse(self.path).getroot()
        ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        local = lambda el: el.tag[len(ns):]  # noqa: E731
        lines = [f"PMML {root.get('version')} document, {len(list(root.iter()))} XML elements",
                 "DataDictionary:"]
        for field in root.find(f"{ns}DataDictionary"):
            values = [v.get("value") for v in field.findall(f"{ns}Value")]
            lines.append(f"  {field.get('name')}: {field.get('optype')} {field.get('dataType')}"
                         + (f" {values}" if values else ""))
        model = next(el for el in root if local(el).endswith("Model"))
        attributes = {k: v for k, v in model.attrib.items() if k in ("functionName",
                                                                      "algorithmName")}
        derived = sum(1 for el in model.iter() if local(el) == "DerivedField")
        inner = sum(1 for el in model.iter() if local(el).endswith("Model")) - 1
        lines.append(f"{local(model)} {attributes}: {derived} derived fields, "
                     f"{inner} nested models")
        return "\n".join(lines)

    def predict(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Score rows; return ``(labels, probabilities)`` with classes in :attr:`classes` order.

        A missing categorical must be ``""`` (mlprod's convention); ``None``/NaN become ``""``.
        """
        missing = [c for c in self.inputs if c not in X.columns]
        if missing:
            raise ValueError(f"Columns {missing} are missing; the PMML model needs {self.inputs}.")
        frame = X[self.inputs].copy()
        for col in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[col]):
                frame[col] = frame[col].astype(object).where(frame[col].notna(), "")
        out = self.evaluator.evaluateAll(frame)
        labels = out[self.target].astype(object).where(out[self.target].notna(), "")
        proba = out[[f"probability({c})" for c in self.classes]].to_numpy(dtype=float)
        return labels.astype(str).to_numpy(), proba
