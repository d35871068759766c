"""Run sklearn2pmml's Java converter inside this process's JVM: the one adapter over its internals.

sklearn2pmml's public entry point, ``sklearn2pmml(pipeline, path)``, starts ``java`` as a
subprocess: a second JVM start per export, and the command-line launcher reports crashes to a
remote telemetry endpoint (mlprod runs offline). So mlprod drives the converter's ``Main`` class
in its own JVM, as ``Main.main`` does minus its exit and telemetry: it sets the private fields
``inputFile`` and ``outputFile`` by reflection, registers it with ``Application.setInstance``, and
calls the private ``validate`` and ``run``. It also finds the jars through the Python packages'
private ``_package_classpath()``. :func:`check_converter` says, naming sklearn2pmml's version,
when any of that changed.
"""

from __future__ import annotations

import os
import zipfile
from datetime import datetime
from pathlib import Path


class ConversionError(RuntimeError):
    """The converter refused a pipeline; the message is the converter's own."""


#: What :func:`convert` reaches by reflection in ``com.sklearn2pmml.Main``.
FIELDS = ("inputFile", "outputFile")
METHODS = ("validate", "run")


def classpath() -> list[str]:
    """Return the jars of the converter (sklearn2pmml) and the evaluator (jpmml-evaluator)."""
    import jpmml_evaluator
    import sklearn2pmml

    # The converter's jars first: where both ship a library (pmml-converter, pmml-python, serpent),
    # the converter's is the newer one.
    return _jars(sklearn2pmml) + _jars(jpmml_evaluator)


def _jars(package) -> list[str]:
    try:
        return list(package._package_classpath())
    except AttributeError as exc:
        raise _changed(f"{package.__name__}._package_classpath() is gone ({exc})") from exc


def converter_build_date() -> datetime | None:
    """Return the build date of sklearn2pmml's Java converter, read from its jar's manifest."""
    import sklearn2pmml

    for jar in _jars(sklearn2pmml):
        if not Path(jar).name.startswith("sklearn2pmml-"):
            continue
        with zipfile.ZipFile(jar) as zf:
            for line in zf.read("META-INF/MANIFEST.MF").decode().splitlines():
                if line.startswith("Build-Timestamp:"):
                    stamp = line.split(":", 1)[1].strip().replace("Z", "+00:00")
                    return datetime.fromisoformat(stamp)
    return None


def check_converter() -> None:
    """Raise, naming sklearn2pmml's version, when ``Main`` no longer has what :func:`convert` uses.

    Needs the JVM started with :func:`classpath` (``mlprod.export.pmml.start_jvm()``).
    """
    import jpype

    try:
        main = jpype.JClass("com.sklearn2pmml.Main")
        application = jpype.JClass("org.jpmml.converter.Application")
    except Exception as exc:  # JPype surfaces a missing class as its own exception types
        raise _changed(f"a class is missing ({exc})") from exc
    if not hasattr(application, "setInstance"):
        raise _changed("org.jpmml.converter.Application.setInstance is missing")
    cls = main.class_
    fields = {str(f.getName()): str(f.getType().getName()) for f in cls.getDeclaredFields()}
    methods = {str(m.getName()) for m in cls.getDeclaredMethods() if m.getParameterCount() == 0}
    wrong = [f for f in FIELDS if fields.get(f) != "java.io.File"]
    missing = [m for m in METHODS if m not in methods]
    if wrong or missing:
        raise _changed(f"com.sklearn2pmml.Main lacks the File fields {wrong} or the no-argument "
                       f"methods {missing}")


def convert(pickle_path: str | os.PathLike, out: str | os.PathLike) -> None:
    """Convert a pickled ``PMMLPipeline`` to a PMML file with the converter's ``Main``.

    Raises
    ------
    ConversionError
        With the converter's own message when it refuses the pipeline.
    RuntimeError
        When the converter's internals changed (see :func:`check_converter`).
    """
    import jpype

    check_converter()
    main = jpype.JClass("com.sklearn2pmml.Main")()
    File = jpype.JClass("java.io.File")
    for field, value in zip(FIELDS, (File(str(pickle_path)), File(str(out))), strict=True):
        handle = main.getClass().getDeclaredField(field)
        handle.setAccessible(True)
        handle.set(main, value)
    application = jpype.JClass("org.jpmml.converter.Application")
    application.setInstance(main)
    try:
        for step in METHODS:
            method = main.getClass().getDeclaredMethod(step)
            method.setAccessible(True)
            method.invoke(main)
    except jpype.JException as exc:
        cause = exc.getCause() if exc.getCause() is not None else exc
        raise ConversionError(f"{cause.getClass().getName()}: {cause.getMessage()}") from None
    finally:
        application.setInstance(None)


def _changed(what: str) -> RuntimeError:
    from importlib import metadata

    return RuntimeError(
        f"sklearn2pmml {metadata.version('sklearn2pmml')} changed what mlprod reaches inside it: "
        f"{what}. mlprod.export.pmml_converter drives its Java converter in this process; update "
        "that adapter, or pin sklearn2pmml to the version requirements.lock names.")
