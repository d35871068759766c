"""Property-based fuzzing of the running server: no request of any shape gets a 5xx.

Two parts: schemathesis generates requests for every operation of ``/openapi.json`` and checks
each answer against the document (no server error, the documented response schema); hypothesis
mutates valid V2 and ``/invocations`` bodies at the byte level (bad UTF-8, lone surrogates, huge
numbers, deep nesting, wrong shapes, NaN anywhere). Seeded and bounded for ``make test``;
``FUZZ_EXAMPLES=2000`` runs longer.
"""

from __future__ import annotations

import json
import os

import pytest
import requests
import schemathesis
from _server_fixtures import ServerProcess, copy_repository, records, v2_body
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture()
def server(tmp_path):
    """A server of its own for each test: the schema test may unload the model, as documented."""
    repo = copy_repository(tmp_path / "models")
    with ServerProcess(repo, args=["--no-access-log"]) as running:
        yield running


def test_every_operation_answers_as_documented(server):
    """Positive and negative cases for each operation, checked against the document."""
    api = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 20
    session = requests.Session()
    calls = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @FUZZ
            def check(case):
                nonlocal calls
                calls += 1
                case.call_and_validate(base_url=server.url, session=session, checks=[
                    not_a_server_error, response_schema_conformance])

            try:
                check()
            except Unsatisfiable:  # an operation with nothing to get wrong (GET /ping)
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert calls >= len(operations)
    assert server.process.poll() is None  # still up


@pytest.fixture(scope="module")
def seeds(split) -> list[bytes]:
    frame = split.X_test.head(3)
    return [json.dumps(v2_body(frame)).encode(), json.dumps(records(frame)).encode(),
            json.dumps({"dataframe_split": {"columns": list(frame.columns),
                                             "data": frame.astype(object).where(
                                                 frame.notna(), None).values.tolist()}}).encode(),
            frame.to_csv(index=False, header=False).encode()]


POISON = [b"NaN", b"-Infinity", b"1e400", b"9" * 5000, b'"\\ud800"', b'"\\udfff\\ud800"',
          b"\xff\xfe", b"\xed\xa0\x80", b"[" * 3000 + b"]" * 3000, b"{}", b"[]", b"null",
          b'"' + b"x" * 70000 + b'"', b"true", b"-0", b",,,,", b"\x00"]


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A valid body with a few byte-level edits: poison spliced in, bytes cut or flipped."""
    body = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        action = draw(st.sampled_from(["poison", "cut", "flip", "repeat"]))
        if action == "poison":
            body[at:at + draw(st.integers(0, 8))] = draw(st.sampled_from(POISON))
        elif action == "cut":
            del body[at:at + draw(st.integers(1, 40))]
        elif action == "flip" and at < len(body):
            body[at] = draw(st.integers(0, 255))
        else:
            body[at:at] = body[at:at + draw(st.integers(1, 200))] * draw(st.integers(2, 5))
    return bytes(body)


ROUTES = [("/v2/models/penguins/infer", "application/json"),
          ("/v2/models/penguins/versions/1/infer", "application/json"),
          ("/invocations", "application/json"), ("/invocations", "text/csv")]


def test_mutated_bodies_never_get_a_server_error(server, seeds):
    session = requests.Session()
    seen: dict[int, int] = {}

    @given(body=mutated(seeds), route=st.sampled_from(ROUTES),
           accept=st.sampled_from(["application/json", "text/csv", "*/*",
                                   "text/csv; header=present"]))
    @FUZZ
    def check(body, route, accept):
        path, content_type = route
        answer = session.post(f"{server.url}{path}", data=body, timeout=30,
                              headers={"Content-Type": content_type, "Accept": accept})
        seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
        assert answer.status_code < 500, (answer.status_code, answer.text[:300], body[:200])
        if answer.status_code >= 400:
            assert set(answer.json()) == {"error"}, answer.text[:300]

    check()
    assert sum(seen.values()) >= EXAMPLES and any(400 <= s < 500 for s in seen), seen
    assert server.process.poll() is None  # still up
