"""read_capture on what the real server captured: every body format it accepts, read back exact.

One server with ``--capture-dir`` at 100 %, sent V2 JSON, /invocations JSON (records and
``dataframe_split``) and CSV (without and with a header line, answered as CSV with and without
``header=present``); stopped with SIGTERM; then the capture is read back row for row and joined
with labels by ``X-Amzn-SageMaker-Inference-Id``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import requests
from _server_fixtures import ServerProcess, copy_repository, records, reference, v2_body

from mlprod import data, monitoring

INVOCATIONS = "/invocations"


def test_the_servers_capture_reads_back_row_for_row(tmp_path, split):
    repo, capture = copy_repository(tmp_path / "models"), tmp_path / "capture"
    rows = split.X_test.iloc[:12].reset_index(drop=True)
    parts = [rows.iloc[0:3], rows.iloc[3:5], rows.iloc[5:7], rows.iloc[7:9], rows.iloc[9:12]]
    csv = {"Content-Type": "text/csv", "Accept": "text/csv"}
    with ServerProcess(repo, args=["--capture-dir", str(capture), "--no-access-log"]) as server:
        sends = [
            ("/v2/models/penguins/infer", {"json": v2_body(parts[0])}, {}),
            (INVOCATIONS, {"json": records(parts[1])}, {}),
            (INVOCATIONS, {"json": {"dataframe_split": {
                "columns": data.FEATURES, "data": [list(r.values()) for r in records(parts[2])]}}},
             {"Accept": "text/csv"}),
            (INVOCATIONS, {"data": parts[3].to_csv(index=False, header=False)}, csv),
            (INVOCATIONS, {"data": parts[4].to_csv(index=False)},
             csv | {"Accept": "text/csv; header=present"}),
        ]
        for i, (path, body, headers) in enumerate(sends):
            answer = requests.post(f"{server.url}{path}", **body, timeout=10, headers=headers | {
                "X-Amzn-SageMaker-Inference-Id": f"request-{i}"})
            assert answer.status_code == 200, answer.text
        assert server.stop() == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = monitoring.read_capture(capture, "penguins")
    assert got.attrs["problems"] == () and set(got["variant"]) == {"AllTraffic"}
    got = got.sort_values(["inference_id", "row"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[data.FEATURES], rows)
    labels, probabilities, classes = reference(repo, rows)
    assert got["label"].tolist() == labels
    np.testing.assert_allclose(got[classes].to_numpy(), probabilities, atol=1e-6)
    assert got["inference_id"].tolist() == [f"request-{i}" for i, p in enumerate(parts)
                                            for _ in range(len(p))]
    truth = {f"request-{i}": split.y_test.iloc[p.index].tolist() for i, p in enumerate(parts)}
    joined = monitoring.join_ground_truth(got, truth)
    accuracy = (np.array(labels) == split.y_test.iloc[:12].to_numpy()).mean()
    assert monitoring.model_quality(joined, by=None)["accuracy"].item() == accuracy
