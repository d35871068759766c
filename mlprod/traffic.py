"""Send real single-row traffic to a model server and record what each answer says.

One request per row over V2 (``POST /v2/models/{name}/infer``, no version: routed), from a few
threads at once. Each answer's status, variant (``X-Amzn-Invoked-Production-Variant``), version
(``X-Model-Version``), label and latency becomes a row of a DataFrame; with labels, whether it was
right. The routing lesson's shares, zero-downtime updates, rollouts and comparisons all read it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import requests

from mlprod.client import Client

__all__ = ["send", "send_each", "shares", "compare", "plot_comparison"]

COLUMNS = ["status", "variant", "version", "label", "truth", "correct", "latency_ms",
           "request_id"]


def send(url: str, model: str, rows: pd.DataFrame, n: int | None = None, *,
         labels: Sequence[str] | pd.Series | None = None, concurrency: int = 1,
         headers: Mapping[str, str] | None = None, token: str | None = None,
         timeout: float = 10.0) -> pd.DataFrame:
    """Send ``n`` single-row requests (cycling through ``rows``) and return one row per answer.

    Parameters
    ----------
    url : str
        The server, e.g. ``LocalServer.url``.
    model : str
        The model's name; no version in the path, so the server routes each request.
    rows : DataFrame
        Feature rows; request ``i`` sends row ``i % len(rows)``.
    n : int, optional
        Requests to send; default one per row.
    labels : sequence of str, optional
        The true class of each row: fills ``truth`` and ``correct``.
    concurrency : int
        Requests in flight at once (one thread and connection each).
    headers : dict, optional
        Sent with every request, e.g. ``{"X-Amzn-SageMaker-Target-Variant": "candidate"}``.
    token : str, optional
        The server's bearer token.

    Returns
    -------
    DataFrame
        In request order: ``status`` (int; 0 when no answer came), ``variant`` (None without
        routing), ``version`` (int), ``label``, ``truth``, ``correct`` (bool, or None without
        labels), ``latency_ms`` and ``request_id``.
    """
    if len(rows) == 0:
        raise ValueError("rows is empty: pass at least one feature row to send.")
    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"labels has {len(labels)} values for {len(rows)} rows; give one label "
                         f"per row.")
    n = len(rows) if n is None else n
    with Client(url, token=token) as client:
        whole = client.infer_body(rows, model)["inputs"]  # encoded once, then cut into rows
    bodies = [json.dumps({"inputs": [{**tensor, "shape": [1, 1], "data": [tensor["data"][i]]}
                                     for tensor in whole]}).encode() for i in range(len(rows))]
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    target = f"{url.rstrip('/')}/v2/models/{model}/infer"
    local = threading.local()
    truths = None if labels is None else list(labels)

    def one(i: int) -> dict:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        start = time.perf_counter()
        try:
            answer = local.session.post(target, data=bodies[i % len(bodies)], headers=sent,
                                        timeout=timeout)
        except requests.RequestException:
            return {"status": 0, "latency_ms": (time.perf_counter() - start) * 1000}
        latency = (time.perf_counter() - start) * 1000
        record = {"status": answer.status_code, "latency_ms": latency,
                  "variant": answer.headers.get("X-Amzn-Invoked-Production-Variant"),
                  "version": int(answer.headers.get("X-Model-Version", 0)) or None,
                  "request_id": answer.headers.get("X-Request-Id")}
        if answer.status_code == 200:
            outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
            record["label"] = outputs["label"][0] if "label" in outputs else None
        if truths is not None:
            record["truth"] = truths[i % len(truths)]
        return record

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        records = list(pool.map(one, range(n)))
    frame = pd.DataFrame.from_records(records).reindex(columns=COLUMNS)
    if truths is not None:  # only answered requests are right or wrong
        frame["correct"] = (frame["label"] == frame["truth"]).astype(object).where(
            frame["status"] == 200, None)
    return frame


def send_each(url: str, model: str, rows: pd.DataFrame, variants: Sequence[str], *,
              labels: Sequence[str] | pd.Series | None = None, concurrency: int = 1,
              token: str | None = None) -> pd.DataFrame:
    """Send every row to each of ``variants`` (forced with the target-variant header); one frame.

    The same rows through each variant: the fair way to compare them with :func:`compare`.
    """
    return pd.concat([send(url, model, rows, labels=labels, concurrency=concurrency, token=token,
                           headers={"X-Amzn-SageMaker-Target-Variant": variant})
                      for variant in variants], ignore_index=True)


def shares(answers: pd.DataFrame) -> pd.DataFrame:
    """Summarise answers per variant: requests, share, errors, p50/p99 latency, accuracy.

    Returns
    -------
    DataFrame
        Indexed by variant (``AllTraffic`` for unrouted answers), sorted by name.
    """
    frame = answers.assign(variant=answers["variant"].fillna("AllTraffic"),
                           error=answers["status"] != 200)
    grouped = frame.groupby("variant", sort=True)
    out = pd.DataFrame({
        "requests": grouped.size(),
        "share": grouped.size() / len(frame),
        "errors": grouped["error"].sum(),
        "p50_ms": grouped["latency_ms"].median(),
        "p99_ms": grouped["latency_ms"].quantile(0.99),
    })
    if answers["correct"].notna().any():
        out["accuracy"] = grouped["correct"].apply(lambda c: c.dropna().astype(float).mean())
    return out


def compare(answers: pd.DataFrame, confidence: float = 0.95) -> tuple[pd.DataFrame, float | None]:
    """Judge variants on labelled answers: accuracy with a Wilson interval, and a test between two.

    Parameters
    ----------
    answers : DataFrame
        From :func:`send` with ``labels``.
    confidence : float
        Of each interval.

    Returns
    -------
    table : DataFrame
        Per variant: ``n``, ``correct``, ``accuracy``, ``low``, ``high``.
    p_value : float or None
        Fisher's exact test that two variants are equally accurate (None unless exactly two).
        A large p-value means the data cannot tell them apart, whatever the accuracies say.
    """
    from scipy import stats

    labelled = answers[answers["correct"].notna()].assign(
        variant=lambda f: f["variant"].fillna("AllTraffic"),
        correct=lambda f: f["correct"].astype(bool))
    if labelled.empty:
        raise ValueError("No labelled answer: call send(..., labels=...) so each answer can be "
                         "judged right or wrong.")
    rows = {}
    for variant, group in labelled.groupby("variant", sort=True):
        k, n = int(group["correct"].sum()), len(group)
        interval = stats.binomtest(k, n).proportion_ci(confidence, method="wilson")
        rows[variant] = {"n": n, "correct": k, "accuracy": k / n, "low": interval.low,
                         "high": interval.high}
    table = pd.DataFrame.from_dict(rows, orient="index")
    p_value = None
    if len(table) == 2:
        (k1, n1), (k2, n2) = table[["correct", "n"]].to_numpy().tolist()
        p_value = float(stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]])[1])
    return table, p_value


def plot_comparison(tables: Mapping[str, pd.DataFrame], ax=None):
    """Draw each variant's accuracy with its interval, one group per table of :func:`compare`.

    Parameters
    ----------
    tables : dict
        A label (e.g. ``"69 test rows"``) → a table from :func:`compare`.
    ax : matplotlib Axes, optional
        Where to draw; default a new figure's.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        ax = plt.subplots(figsize=(6.4, 0.9 + 0.45 * sum(len(t) for t in tables.values())))[1]
    y, ticks = 0, []
    for label, table in tables.items():
        for variant, row in table.iterrows():
            ax.errorbar(row["accuracy"], y, xerr=[[row["accuracy"] - row["low"]],
                                                  [row["high"] - row["accuracy"]]],
                        fmt="o", capsize=4, color="#4a7ab5" if y % 2 == 0 else "#c0504d")
            ticks.append(f"{variant} ({label}: {int(row['correct'])}/{int(row['n'])})")
            y += 1
    ax.set_yticks(range(len(ticks)), ticks)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy, with its 95 % interval")
    return ax


def send_labelled(client, frame: pd.DataFrame, phase: str, target: str = "species",
                  features: Sequence[str] | None = None) -> dict[str, str]:
    """Send each row as its own CSV ``/invocations`` request carrying an inference id.

    The id (``X-Amzn-SageMaker-Inference-Id``, SageMaker's header) is ``<phase>-<row number>``:
    it lands in the data capture, where the true labels are joined later, as they arrive.

    Returns
    -------
    dict
        Inference id → the row's true label (``frame[target]``).
    """
    from mlprod import data

    columns = list(features or data.FEATURES)
    lines = frame[columns].to_csv(header=False, index=False).splitlines()
    ids = [f"{phase}-{i:04d}" for i in range(len(lines))]
    for line, inference_id in zip(lines, ids, strict=True):
        client.invocations(line, "text/csv",
                           headers={"X-Amzn-SageMaker-Inference-Id": inference_id})
    return dict(zip(ids, frame[target], strict=True))
