"""Dynamic batching: gathered requests scored in one call, each answered with its own rows."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from _server_fixtures import ServerProcess, feed, reference, v2_body

from mlprod import quickstart
from server.batching import Batcher
from server.repository import Repository


@pytest.fixture(scope="module")
def model():
    return Repository(quickstart.model_repository()).load().models["penguins"].versions[1]


class Counting:
    """Wraps a session: counts its calls and the rows of each."""

    def __init__(self, session):
        self.session, self.calls = session, []

    def run(self, names, inputs):
        self.calls.append(len(next(iter(inputs.values()))))
        return self.session.run(names, inputs)


def gather(batcher, model, feeds):
    async def main():
        return await asyncio.gather(*(batcher.run(model, f) for f in feeds),
                                    return_exceptions=True)
    return asyncio.run(main())


def test_concurrent_requests_share_one_call_and_get_their_own_rows(model, split):
    sizes = [1, 3, 1, 5, 2]
    frames, start = [], 0
    for size in sizes:
        frames.append(split.X_test.iloc[start:start + size])
        start += size
    counting = Counting(model.session)
    model.session = counting
    try:
        answers = gather(Batcher(delay=0.01), model, [feed(f) for f in frames])
    finally:
        model.session = counting.session
    assert counting.calls == [sum(sizes)]  # one call for all
    for frame, answer in zip(frames, answers, strict=True):
        alone = model.run(feed(frame))
        assert len(answer[0]) == len(frame)
        assert list(answer[0]) == list(alone[0])
        np.testing.assert_allclose(answer[1], alone[1], atol=1e-6)


def test_a_request_that_breaks_the_call_fails_alone(model, split):
    good = [feed(split.X_test.iloc[i:i + 2]) for i in range(0, 6, 2)]
    bad = dict(good[0])
    bad["body_mass_g"] = bad["body_mass_g"].astype(np.float64)  # a type the model refuses
    answers = gather(Batcher(delay=0.01), model, [good[0], bad, good[1], good[2]])
    assert isinstance(answers[1], Exception)
    for i, answer in ((0, answers[0]), (1, answers[2]), (2, answers[3])):
        assert list(answer[0]) == list(model.run(good[i])[0])


def test_over_http_a_bad_request_gets_its_400_and_its_neighbours_their_200s(split):
    repo = quickstart.model_repository()
    rows = [split.X_test.iloc[[i]] for i in range(16)]
    bodies = [v2_body(r) for r in rows]
    bodies[5]["inputs"][0]["data"] = [1e39]  # beyond float32: refused with a 400
    with ServerProcess(repo, args=["--max-batch-delay-ms", "20"]) as server:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda b: requests.post(
                f"{server.url}/v2/models/penguins/infer", json=b, timeout=10), bodies))
    assert [a.status_code for a in answers] == [400 if i == 5 else 200 for i in range(16)]
    for i, answer in enumerate(answers):
        if i != 5:
            labels, _, _ = reference(repo, rows[i])
            assert answer.json()["outputs"][0]["data"] == labels
