"""mlprod.platforms.sagemaker against moto's offline SageMaker: deploy, call, reweigh, tear down.

botocore checks each call's parameters against SageMaker's API model before moto sees it, so
these tests catch a wrong field name or type. What they cannot prove is a model's answer: moto's
invoke_endpoint returns a canned body, whatever the endpoint (the last tests pin that down).
"""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from mlprod import platforms
from mlprod.platforms import sagemaker

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/mlprod-sagemaker"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlprod-penguins:1"
MODEL_DATA = {"production": "s3://mlprod-test/penguins/model.tar.gz",
              "candidate": "s3://mlprod-test/penguins/candidate.tar.gz"}


@pytest.fixture
def clients():
    """A SageMaker client and a runtime client, on moto's mock for the test's duration."""
    with mock_aws():
        yield (boto3.client("sagemaker", region_name=REGION),
               boto3.client("sagemaker-runtime", region_name=REGION))


def _deploy(sm, name="penguins"):
    return sagemaker.deploy(sm, name, image=IMAGE, role_arn=ROLE, model_data=MODEL_DATA,
                            weights={"production": 90, "candidate": 10},
                            capture_uri="s3://mlprod-test/penguins/capture", capture_percent=50)


def test_deploy_creates_two_variants_with_data_capture(clients):
    sm, _ = clients
    described = _deploy(sm)
    assert described == {"status": "InService", "capture": True,
                         "weights": {"production": 90.0, "candidate": 10.0}}
    config = sm.describe_endpoint_config(EndpointConfigName="penguins")
    capture = config["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == 50
    assert capture["DestinationS3Uri"] == "s3://mlprod-test/penguins/capture"
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    for variant, url in MODEL_DATA.items():
        model = sm.describe_model(ModelName=sagemaker.model_name("penguins", variant))
        assert model["PrimaryContainer"]["ModelDataUrl"] == url
        assert model["PrimaryContainer"]["Image"] == IMAGE
        assert model["ExecutionRoleArn"] == ROLE


def test_weights_change_on_the_running_endpoint(clients):
    sm, _ = clients
    _deploy(sm)
    described = sagemaker.set_weights(sm, "penguins", {"production": 50, "candidate": 50})
    assert described["weights"] == {"production": 50.0, "candidate": 50.0}


def test_teardown_leaves_nothing_and_spares_other_endpoints(clients):
    sm, _ = clients
    _deploy(sm)
    _deploy(sm, "iris")
    deleted = sagemaker.teardown(sm, "penguins")
    assert deleted == {"endpoints": ["penguins"], "endpoint_configs": ["penguins"],
                       "models": ["penguins-production", "penguins-candidate"]}
    assert sagemaker.leftovers(sm, "penguins") == {"endpoints": [], "endpoint_configs": [],
                                                   "models": []}
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == ["iris"]
    sagemaker.teardown(sm, "iris")
    assert sm.list_models()["Models"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []


def test_variants_must_match_their_model_data(clients):
    sm, _ = clients
    with pytest.raises(ValueError, match=r"give both the same variant names"):
        sagemaker.deploy(sm, "penguins", image=IMAGE, role_arn=ROLE, model_data=MODEL_DATA,
                         weights={"production": 100}, capture_uri="s3://b/c")
    assert sm.list_models()["Models"] == [], "nothing created before the check"


def test_moto_answers_a_canned_body_not_the_model(clients):
    # What the lesson says: invoke_endpoint is mocked, the model never runs, and even an
    # endpoint that does not exist answers.
    sm, runtime = clients
    _deploy(sm)
    answer = sagemaker.invoke(runtime, "penguins", "41.5,18.5,201.0,4000.0,Dream,male")
    assert answer["body"] == b"body"
    assert sagemaker.invoke(runtime, "no-such-endpoint", "1,2,3")["body"] == b"body"


def test_a_forced_variant_is_sent_as_target_variant(clients):
    sm, runtime = clients
    _deploy(sm)
    sent = []
    runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint",
                                 lambda request, **_: sent.append(dict(request.headers)))
    sagemaker.invoke(runtime, "penguins", "1", variant="candidate")
    assert sent[0]["X-Amzn-SageMaker-Target-Variant"] in ("candidate", b"candidate")


def test_queued_answers_come_back_once_each_in_order(clients):
    _, runtime = clients
    assert platforms.mock.queue_answers(['{"a": 1}', b'{"b": 2}'], region=REGION,
                                        variant="candidate") == 2
    first = sagemaker.invoke(runtime, "penguins", "1")
    second = sagemaker.invoke(runtime, "penguins", "2")
    assert (first["body"], second["body"]) == (b'{"a": 1}', b'{"b": 2}')
    assert first["variant"] == "candidate" and first["content_type"] == "application/json"
    assert sagemaker.invoke(runtime, "penguins", "3")["body"] == b"body", "queue empty: canned"


def test_queuing_outside_the_mock_is_refused_before_anything_leaves(monkeypatch):
    import requests

    def refuse(*args, **kwargs):
        raise requests.ConnectionError("no network in the test")

    monkeypatch.setattr(requests, "post", refuse)
    with pytest.raises(RuntimeError, match="inside `with moto.mock_aws"):
        platforms.mock.queue_answers(["x"], region=REGION)
