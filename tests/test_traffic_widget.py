"""mlprod.widgets.traffic: the slider writes the split, the server serves it, the bars show it."""

from __future__ import annotations

import base64

import pytest
from _server_fixtures import ServerProcess, copy_repository

from mlprod import rollout
from mlprod.client import Client
from mlprod.registry import Registry
from mlprod.widgets import traffic_split


@pytest.fixture()
def served(tmp_path):
    repo = copy_repository(tmp_path / "models")
    with ServerProcess(repo) as server:
        yield Registry(repo), Client(server.url)


def test_moving_the_slider_routes_that_share_and_draws_what_was_served(served, split):
    registry, client = served
    panel = traffic_split(registry, "penguins", client, split.X_test, requests=400)
    assert panel.slider.value == 0 and panel.served() == {"AllTraffic": 100.0}  # no routing yet
    panel.slider.value = 30  # what a learner's drag does: the observer applies it
    assert rollout.routing(registry, "penguins")["variants"][1] == {
        "name": "candidate", "version": "candidate", "weight": 30}
    shares = panel.served()
    assert abs(shares["candidate"] - 30) <= 8 and abs(shares["production"] - 70) <= 8, shares
    assert f"served {shares['candidate']:.0f} % (asked 30 %)" in panel.bars.value
    assert set(panel.last["status"]) == {200}
    panel.slider.value = 100
    assert panel.served() == {"candidate": 100.0}


def test_its_display_data_is_a_sentence_and_a_picture_not_a_repr(served, split):
    registry, client = served
    panel = traffic_split(registry, "penguins", client, split.X_test, requests=20)
    bundle = panel._repr_mimebundle_()
    assert bundle["text/plain"].startswith("The traffic split: an interactive widget.")
    assert "children=" not in bundle["text/plain"]
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    assert "application/vnd.jupyter.widget-view+json" in bundle
