"""mlprod.monitoring.read_capture on capture files written here in the layout of CONTRACTS §11.

Bodies in the three formats the server captures (V2 JSON, /invocations JSON, CSV with and
without header lines); corrupt and mis-shaped records reported with file and line; the join of
late labels by inferenceId and accuracy per hour and variant.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlprod import data, monitoring

START = datetime(2026, 12, 1, 9, 58, tzinfo=UTC)


def _json_value(v):
    return None if isinstance(v, float) and np.isnan(v) else v


def v2_input(rows: pd.DataFrame) -> str:
    return json.dumps({"inputs": [
        {"name": f["name"], "shape": [len(rows), 1],
         "datatype": "FP32" if f["kind"] == "numeric" else "BYTES",
         "data": [[_json_value(v)] for v in rows[f["name"]]]} for f in data.schema()]})


def v2_output(labels, probs: np.ndarray) -> str:
    return json.dumps({"model_name": "penguins", "model_version": "1", "outputs": [
        {"name": "label", "shape": [len(labels)], "datatype": "BYTES", "data": list(labels)},
        {"name": "probabilities", "shape": list(probs.shape), "datatype": "FP32",
         "data": probs.ravel().tolist()}]})


def split_input(rows: pd.DataFrame) -> str:
    return json.dumps({"dataframe_split": {"columns": data.FEATURES, "data": [
        [_json_value(v) for v in row] for row in rows[data.FEATURES].itertuples(index=False)]}})


def records_input(rows: pd.DataFrame) -> str:
    return json.dumps({"instances": [{k: _json_value(v) for k, v in r.items()}
                                     for r in rows[data.FEATURES].to_dict("records")]})


def predictions_output(labels, probs: np.ndarray) -> str:
    return json.dumps({"predictions": [
        {"label": label, "probabilities": dict(zip(data.CLASSES, p.tolist(), strict=True))}
        for label, p in zip(labels, probs, strict=True)]})


def csv_input(rows: pd.DataFrame, header: bool) -> str:
    return rows[data.FEATURES].to_csv(index=False, header=header, lineterminator="\n")


def csv_output(labels, probs: np.ndarray, header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(["label", *data.CLASSES])
    writer.writerows([label, *p.tolist()] for label, p in zip(labels, probs, strict=True))
    return out.getvalue()


def record(inp: str, out: str, itype: str, otype: str, when: datetime,
           inference_id: str | None = None, event_id: str = "e") -> dict:
    def part(body, ctype, mode):
        return {"observedContentType": ctype, "mode": mode, "data": body,
                "encoding": "CSV" if "csv" in ctype else "JSON"}

    meta = {"eventId": event_id, "inferenceTime": when.isoformat().replace("+00:00", "Z")}
    if inference_id is not None:
        meta["inferenceId"] = inference_id
    return {"captureData": {"endpointInput": part(inp, itype, "INPUT"),
                            "endpointOutput": part(out, otype, "OUTPUT")},
            "eventMetadata": meta, "eventVersion": "0"}


def write_records(root: Path, model: str, variant: str, when: datetime, lines: list,
                  name: str = "capture.jsonl") -> Path:
    folder = root / model / variant / when.strftime("%Y/%m/%d/%H")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with path.open("a") as fh:
        for line in lines:
            fh.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


@pytest.fixture(scope="module")
def scored(fitted_pipeline):
    """Twelve synthetic rows (some values missing) with the model's labels and probabilities."""
    rows = data.synthesize(12, seed=5, missing_rate=0.1)[data.FEATURES]
    return rows, fitted_pipeline.predict(rows), fitted_pipeline.predict_proba(rows)


def test_reads_every_body_format_back(scored, tmp_path):
    rows, labels, probs = scored
    parts = [slice(0, 3), slice(3, 5), slice(5, 7), slice(7, 9), slice(9, 10), slice(10, 12)]
    bodies = [
        (v2_input, v2_output, "application/json", "application/json"),
        (split_input, predictions_output, "application/json", "application/json"),
        (records_input, predictions_output, "application/json", "application/json"),
        (lambda r: csv_input(r, False), lambda lab, p: csv_output(lab, p, False),
         "text/csv", "text/csv"),
        (lambda r: csv_input(r, True), lambda lab, p: csv_output(lab, p, True),
         "text/csv", "text/csv; header=present"),
        (lambda r: csv_input(r, False), v2_output, "text/csv", "application/json"),
    ]
    for i, (part, (enc_in, enc_out, itype, otype)) in enumerate(zip(parts, bodies, strict=True)):
        when = START + timedelta(minutes=i)  # crosses 10:00, so two hour folders
        variant = "production" if i % 2 == 0 else "candidate"
        write_records(tmp_path, "penguins", variant, when, [record(
            enc_in(rows[part]), enc_out(labels[part], probs[part]), itype, otype, when,
            inference_id=f"id-{i}", event_id=f"ev-{i}")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = monitoring.read_capture(tmp_path)
    assert got.attrs["problems"] == ()
    assert list(got.columns) == (monitoring.capture.META_COLUMNS + data.FEATURES + ["label"]
                                 + data.CLASSES)
    got = got.sort_values(["time", "row"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[data.FEATURES], rows.reset_index(drop=True))
    assert got["label"].tolist() == labels.tolist()
    np.testing.assert_allclose(got[data.CLASSES].to_numpy(), probs, rtol=1e-12)
    assert got["row"].tolist() == [0, 1, 2, 0, 1, 0, 1, 0, 1, 0, 0, 1]
    assert got["inference_id"].tolist()[:4] == ["id-0", "id-0", "id-0", "id-1"]
    assert got["time"].dt.tz is not None and got["time"].iloc[0] == pd.Timestamp(START)
    assert set(got["variant"]) == {"production", "candidate"} and set(got["model"]) == {"penguins"}
    only = monitoring.read_capture(tmp_path, "penguins", variant="candidate")
    assert set(only["variant"]) == {"candidate"} and len(only) == 6
    assert monitoring.read_capture(tmp_path, variant="production")["row"].size == 6


def test_corrupt_lines_are_skipped_and_named_with_file_and_line(scored, tmp_path):
    rows, labels, probs = scored
    good = record(csv_input(rows[:2], False), csv_output(labels[:2], probs[:2], False),
                  "text/csv", "text/csv", START, "ok")
    no_output = json.loads(json.dumps(good))
    del no_output["captureData"]["endpointOutput"]
    short = record(csv_input(rows[:2], False), csv_output(labels[:1], probs[:1], False),
                   "text/csv", "text/csv", START)
    bad_body = record('{"rows": []}', csv_output(labels[:1], probs[:1], False),
                      "application/json", "text/csv", START)
    path = write_records(tmp_path, "penguins", "AllTraffic", START,
                         [good, "{not json", no_output, "", short, bad_body, good])
    with path.open("a") as fh:
        fh.write(json.dumps(good)[:40])  # a record cut off mid-write
    stray = tmp_path / "penguins" / "AllTraffic" / "stray.jsonl"
    stray.write_text(json.dumps(good) + "\n")
    with pytest.warns(monitoring.CaptureWarning) as caught:
        got = monitoring.read_capture(tmp_path)
    assert len(got) == 4 and got["inference_id"].tolist() == ["ok"] * 4
    problems = got.attrs["problems"]
    assert got[got["row"] == 0].attrs["problems"] is problems  # shared, not deep-copied
    assert [(p.file.name, p.line) for p in problems] == [
        ("capture.jsonl", 2), ("capture.jsonl", 3), ("capture.jsonl", 5),
        ("capture.jsonl", 6), ("capture.jsonl", 8), ("stray.jsonl", 0)]
    reasons = [p.reason for p in problems]
    assert "not a JSON record" in reasons[0]
    assert "endpointOutput" in reasons[1]
    assert "2 rows but the response 1" in reasons[2]
    assert "endpointInput" in reasons[3] and "'rows'" in reasons[3]
    assert "still be appending" in reasons[4]
    assert "layout" in reasons[5]
    message = str(caught[0].message)
    assert f"{path}:2: not a JSON record" in message and "6 capture record(s)" in message


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="--capture-dir"):
        monitoring.read_capture(tmp_path / "nowhere")
    (tmp_path / "penguins").mkdir()
    got = monitoring.read_capture(tmp_path, "penguins")
    assert len(got) == 0 and "body_mass_g" in got.columns


def test_late_labels_give_accuracy_per_hour_and_variant(scored, tmp_path):
    rows, labels, probs = scored
    truth, expected = {}, []
    for i in range(12):
        when = START + timedelta(minutes=i)  # 09:58, 09:59, then 10:00 onwards
        variant = "production" if i < 8 else "candidate"
        answer = labels[i] if i % 3 else "Chinstrap" if labels[i] != "Chinstrap" else "Gentoo"
        write_records(tmp_path, "penguins", variant, when, [record(
            v2_input(rows[i:i + 1]), v2_output([answer], probs[i:i + 1]),
            "application/json", "application/json", when, inference_id=f"id-{i}")])
        if i != 11:  # one label never arrives
            truth[f"id-{i}"] = labels[i]
            expected.append((when.replace(minute=0), variant, answer == labels[i]))
    capture = monitoring.read_capture(tmp_path)
    joined = monitoring.join_ground_truth(capture, truth)
    assert joined["truth"].isna().sum() == 1 and joined["correct"].isna().sum() == 1
    quality = monitoring.model_quality(joined)
    frame = pd.DataFrame(expected, columns=["time", "variant", "correct"])
    want = frame.groupby(["time", "variant"])["correct"].agg(["size", "mean"]).reset_index()
    assert quality[["n", "accuracy"]].to_numpy().tolist() == want[["size", "mean"]].to_numpy(
        ).tolist()
    assert [t.hour for t in quality["time"]] == [9, 10, 10]
    assert ((quality["low"] <= quality["accuracy"]) & (quality["accuracy"] <= quality["high"])).all()
    overall = monitoring.model_quality(joined, freq="D", by=None)
    assert overall["n"].tolist() == [11]


def test_a_request_of_several_rows_takes_a_list_of_labels(scored, tmp_path):
    rows, labels, probs = scored
    write_records(tmp_path, "penguins", "AllTraffic", START, [record(
        split_input(rows[:3]), predictions_output(labels[:3], probs[:3]), "application/json",
        "application/json", START, inference_id="batch-1")])
    truth = {"batch-1": [labels[0], labels[1], "Nope"]}
    joined = monitoring.join_ground_truth(monitoring.read_capture(tmp_path), truth)
    assert joined["correct"].tolist() == [True, True, False]


def test_base64_bodies_and_bodies_without_a_content_type(scored, tmp_path):
    rows, labels, probs = scored
    plain = record(v2_input(rows[:2]), v2_output(labels[:2], probs[:2]), "", "", START, "a")
    del plain["captureData"]["endpointInput"]["observedContentType"]  # tritonclient sends none
    coded = record(csv_input(rows[2:4], False), csv_output(labels[2:4], probs[2:4], False),
                   "text/csv", "text/csv", START, "b")
    for part in coded["captureData"].values():
        part["data"] = base64.b64encode(part["data"].encode()).decode()
        part["encoding"] = "BASE64"
    npy = record("\x93NUMPY", "", "application/x-npy", "application/json", START, "c")
    write_records(tmp_path, "penguins", "AllTraffic", START, [plain, coded, npy])
    with pytest.warns(monitoring.CaptureWarning, match=":3: .*'application/x-npy'"):
        got = monitoring.read_capture(tmp_path)
    pd.testing.assert_frame_equal(got[data.FEATURES], rows[:4].reset_index(drop=True))
    assert got["inference_id"].tolist() == ["a", "a", "b", "b"]
