"""One rule for a float32 value's range, whatever the number of values in a request."""

from __future__ import annotations

import pytest
from _server_fixtures import v2_body

INFER = "/v2/models/penguins/infer"


def error(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text[:300])
    return response.json()["error"]


@pytest.mark.parametrize("rows", [1, 40], ids=["few-values", "many-values"])
def test_float32_range_is_one_rule_whatever_the_batch_size(app_client, split, rows):
    """3.4028235e38 is just above float32's largest value: refused alike in both code paths."""
    frame = split.X_test.sample(rows, replace=True, random_state=0)
    body = v2_body(frame)
    body["inputs"][0]["data"][-1] = 3.4028235e38
    assert "out of range for float32" in error(app_client.post(INFER, json=body), 400)
    lines = frame.to_csv(index=False, header=False).splitlines()
    lines[-1] = "3.4028235e38," + lines[-1].split(",", 1)[1]
    answer = app_client.post("/invocations", content="\n".join(lines) + "\n",
                             headers={"Content-Type": "text/csv"})
    assert "not finite" in error(answer, 400)
    body["inputs"][0]["data"][-1] = 3.4028234e38  # just inside: scored
    assert app_client.post(INFER, json=body).status_code == 200


def test_a_lone_carriage_return_in_a_csv_header_is_a_400(app_client, split):
    """Found by the fuzzer (FUZZ_EXAMPLES=2000): csv.reader refused the header line with a 500."""
    lines = split.X_test.head(2).to_csv(index=False).splitlines()
    lines[0] = lines[0].replace(",", ",\r", 1)
    answer = app_client.post("/invocations", content="\n".join(lines) + "\n",
                             headers={"Content-Type": "text/csv"})
    assert "CSV header line cannot be parsed" in error(answer, 400)
