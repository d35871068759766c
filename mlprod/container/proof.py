"""The proof that an image serves: build it, run it, call it, compare with ONNX Runtime, record it."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from mlprod.container.defaults import DEFAULT_BASE_IMAGE
from mlprod.container.engines import Engine
from mlprod.container.image import build_image, running
from mlprod.container.model import choose_model
from mlprod.files import write_json


def sample_rows(n: int = 3):
    """Return ``n`` ≥ 3 held-out penguins, one missing its sex and one its body mass.

    The missing values travel as JSON ``null`` / ``""`` and as empty CSV fields, so the proof
    covers them on both routes.
    """
    import numpy as np

    from mlprod import data

    rows = data.split().X_test.head(n).reset_index(drop=True)
    rows.loc[1, "sex"] = ""
    rows.loc[2, "body_mass_g"] = np.nan
    return rows


def v2_request(rows) -> dict:
    """Return an Open Inference Protocol request body for a DataFrame of the course's features."""
    from mlprod import data
    from mlprod.client import encode_v2

    return {"id": "mlprod-proof", **encode_v2(rows, data.schema())}


def onnx_answers(model_file: str | os.PathLike, rows) -> dict:
    """Return ONNX Runtime's labels and probabilities for ``rows``, in process."""
    from mlprod import export

    session = export.session(Path(model_file).read_bytes())
    labels, probabilities = export.onnx_predict(session, rows)
    return {"labels": [str(x) for x in labels], "probabilities": probabilities.tolist()}


def call_server(url: str, model: str, rows) -> dict:
    """Call ``/ping``, one V2 infer and one CSV ``/invocations``; return what each answered.

    Raises
    ------
    RuntimeError
        If the V2 or the ``/invocations`` call answers an error status, with the server's text.
    """
    from mlprod.client import Client, ServerError

    with Client(url) as client:
        ping = client.send("GET", "/ping", check=False).status_code
        try:
            predictions = client.predict(rows, model)
        except ServerError as err:
            raise RuntimeError(f"V2 infer answered {err}") from None
        v2 = {"version": client.last.response_header("X-Model-Version"),
              "labels": [str(x) for x in predictions["label"]],
              "probabilities": predictions.drop(columns="label").to_numpy(float).tolist()}
        try:
            response = client.invocations(rows.to_csv(index=False), content_type="text/csv",
                                          model=model)
        except ServerError as err:
            raise RuntimeError(f"/invocations answered {err}") from None
    answer = response.json()["predictions"]
    classes = list(answer[0]["probabilities"])
    invocations = {"version": response.headers.get("X-Model-Version"), "classes": classes,
                   "labels": [p["label"] for p in answer],
                   "probabilities": [[p["probabilities"][c] for c in classes] for p in answer]}
    return {"ping": ping, "v2": v2, "invocations": invocations}


def max_abs_diff(got: dict, expected: dict) -> float:
    """Return the largest |Δ probability| between two answers (``{"probabilities": [[...]]}``)."""
    import numpy as np

    return float(np.max(np.abs(np.asarray(got["probabilities"], dtype=float)
                               - np.asarray(expected["probabilities"], dtype=float))))


def _round(values, digits: int = 6):
    """Round nested lists of floats for a readable record."""
    if isinstance(values, list):
        return [_round(v, digits) for v in values]
    return round(values, digits)


def prove(context: str | os.PathLike, *, engine_name: str | None = None,
          tag: str = "mlprod-model-server:proof", base_image: str | None = None,
          out: str | os.PathLike | None = None, keep_image: bool = False) -> dict:
    """Build ``context``, run it, call it, compare with ONNX Runtime, stop it; return the figures.

    Parameters
    ----------
    context : path
        A context written by ``build_context``.
    engine_name : {"docker", "podman"}, optional
        Default: what ``engine()`` finds.
    tag : str
        Image tag; removed afterwards unless ``keep_image``.
    base_image : str, optional
        ``BASE_IMAGE`` build argument (podman here: ``LOCAL_BASE_IMAGE``).
    out : path, optional
        Where to write the figures as JSON (atomically), e.g. ``build/proof/container.json``.

    Returns
    -------
    dict
        Engine, build seconds, image and base image bytes, seconds from the container's start
        (``State.StartedAt``) to the first ``/ping`` 200 (``ready_seconds``) and from the run
        command to it (``run_seconds``), the answers, and whether they equal ONNX Runtime's
        (labels equal, max |Δp| ≤ 1e-5).
    """
    context = Path(context)
    eng = Engine.detect(engine_name)
    model = choose_model(context / "model")
    rows = sample_rows()
    try:
        built = build_image(context, tag, engine_name=eng.name, base_image=base_image)
        with running(tag, engine_name=eng.name) as box:
            answers = call_server(box.url, model, rows)
            answers["health"] = box.healthcheck()
    finally:
        if not keep_image:
            eng.run("rmi", "-f", tag, check=False, timeout=120)
    matches = {}
    for route in ("v2", "invocations"):
        got = answers[route]
        expected = onnx_answers(context / "model" / model / str(got["version"]) / "model.onnx",
                                rows)
        matches[route] = {"labels_equal": got["labels"] == expected["labels"],
                          "max_abs_dp": max_abs_diff(got, expected)}
        got["probabilities"] = _round(got["probabilities"])
    base_bytes = built["base_image_bytes"]
    figures = {
        **built, "base_image": base_image or DEFAULT_BASE_IMAGE, "model": model,
        "image_mb": round(built["image_bytes"] / 1e6, 1),
        "base_image_mb": None if base_bytes is None else round(base_bytes / 1e6, 1),
        "ready_seconds": None if box.ready_seconds is None else round(box.ready_seconds, 2),
        "run_seconds": round(box.run_seconds, 2),
        **answers, "onnxruntime": matches,
        "matches_onnxruntime": all(m["labels_equal"] and m["max_abs_dp"] <= 1e-5
                                   for m in matches.values()),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if out is not None:
        write_json(out, figures)
    return figures


def summary(figures: dict) -> str:
    """Return a few readable lines about a proof's figures (as ``prove`` returns them)."""
    gaps = max(m["max_abs_dp"] for m in figures["onnxruntime"].values())
    base, ready, run = (figures.get(k) for k in ("base_image_mb", "ready_seconds", "run_seconds"))
    return "\n".join([
        f"engine {figures['engine']}, base image {figures['base_image']}",
        f"build {figures['build_seconds']:.0f} s, image {figures['image_mb']:.0f} MB"
        + (f" (base {base:.0f} MB)" if base is not None else "")
        + (f", ready {ready:.1f} s after start" if ready is not None else "")
        + (f" ({run:.1f} s after the run command)" if run is not None else ""),
        f"runs as user {figures['user']}; HEALTHCHECK kept: {bool(figures['healthcheck'])}, "
        f"{figures['health']} when run",
        f"GET /ping -> {figures['ping']}",
        f"V2 infer (version {figures['v2']['version']}) -> {figures['v2']['labels']}",
        f"/invocations (version {figures['invocations']['version']}) -> "
        f"{figures['invocations']['labels']}",
        f"same as ONNX Runtime in process: {figures['matches_onnxruntime']} "
        f"(max |dp| {gaps:.1e})",
        f"recorded {figures['created']}",
    ])
