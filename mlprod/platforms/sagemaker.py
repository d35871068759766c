"""The SageMaker API calls that deploy an image as a real-time endpoint, and take it all down again.

Each function takes a boto3 client, so the same calls run against AWS (with credentials) or
against moto's offline mock (``moto.mock_aws``), where the lesson runs them. This file needs only
the standard library and a boto3 client: ``make context`` copies it beside the deploy script in
``platforms/sagemaker/``, so the script a learner runs is the code the tests ran.

One model per variant (``<name>-<variant>``), one endpoint configuration and one endpoint, all
named after the endpoint: ``teardown`` and ``leftovers`` find everything by that name.
"""

from __future__ import annotations

from collections.abc import Mapping

#: What data capture records: both directions, with the content types SageMaker should read.
CAPTURE_OPTIONS = [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]


def model_name(endpoint: str, variant: str) -> str:
    """Return the name of the SageMaker model behind ``variant`` of ``endpoint``."""
    return f"{endpoint}-{variant}"


def deploy(sm, endpoint: str, *, image: str, role_arn: str, model_data: Mapping[str, str],
           weights: Mapping[str, float], capture_uri: str, capture_percent: int = 100,
           instance_type: str = "ml.m5.large", wait: bool = True) -> dict:
    """Create one model per variant, an endpoint configuration with data capture, and the endpoint.

    Parameters
    ----------
    sm : botocore client
        ``boto3.client("sagemaker")``.
    endpoint : str
        The endpoint's name; its configuration and models are named after it.
    image : str
        The image in ECR, ``ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME:TAG``.
    role_arn : str
        An IAM role SageMaker assumes to pull the image and read the model data.
    model_data : mapping
        Variant name → ``s3://`` URL of its ``model.tar.gz`` (unpacked into /opt/ml/model).
    weights : mapping
        Variant name → weight; a variant's share of requests is weight / sum of weights.
    capture_uri : str
        ``s3://`` prefix where data capture writes requests and answers (Model Monitor reads it).
    capture_percent : int
        Share of requests captured, 0-100.
    instance_type : str
        One instance of this type per variant; each bills by the hour while the endpoint exists.
    wait : bool
        Wait until the endpoint is ``InService``.

    Returns
    -------
    dict
        ``describe(sm, endpoint)``.
    """
    if set(model_data) != set(weights):
        raise ValueError(f"model_data names variants {sorted(model_data)} and weights "
                         f"{sorted(weights)}: give both the same variant names.")
    for variant, url in model_data.items():
        sm.create_model(ModelName=model_name(endpoint, variant), ExecutionRoleArn=role_arn,
                        PrimaryContainer={"Image": image, "ModelDataUrl": url,
                                          "Mode": "SingleModel"})
    sm.create_endpoint_config(
        EndpointConfigName=endpoint,
        ProductionVariants=[{"VariantName": variant, "ModelName": model_name(endpoint, variant),
                             "InitialInstanceCount": 1, "InstanceType": instance_type,
                             "InitialVariantWeight": float(weight)}
                            for variant, weight in weights.items()],
        DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": capture_percent,
                           "DestinationS3Uri": capture_uri, "CaptureOptions": CAPTURE_OPTIONS,
                           "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"],
                                                        "JsonContentTypes": ["application/json"]}})
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=endpoint)
    if wait:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint)
    return describe(sm, endpoint)


def describe(sm, endpoint: str) -> dict:
    """Return the endpoint's status, its variants' current weights, and whether it captures data."""
    found = sm.describe_endpoint(EndpointName=endpoint)
    return {"status": found["EndpointStatus"],
            "weights": {v["VariantName"]: v.get("CurrentWeight")
                        for v in found.get("ProductionVariants", [])},
            "capture": found.get("DataCaptureConfig", {}).get("EnableCapture")}


def invoke(runtime, endpoint: str, body: str | bytes, content_type: str = "text/csv",
           variant: str | None = None) -> dict:
    """Send one request to the endpoint; return the body, its content type and the variant.

    ``runtime`` is ``boto3.client("sagemaker-runtime")``. ``variant`` forces one production
    variant (``TargetVariant``, sent as ``X-Amzn-SageMaker-Target-Variant``).
    """
    extra = {"TargetVariant": variant} if variant else {}
    answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=content_type,
                                     Accept="application/json", **extra)
    return {"body": answer["Body"].read(), "content_type": answer.get("ContentType"),
            "variant": answer.get("InvokedProductionVariant")}


def set_weights(sm, endpoint: str, weights: Mapping[str, float]) -> dict:
    """Change the variants' weights on the running endpoint (no new instances); return ``describe``."""
    sm.update_endpoint_weights_and_capacities(
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[{"VariantName": v, "DesiredWeight": float(w)}
                                     for v, w in weights.items()])
    return describe(sm, endpoint)


def leftovers(sm, endpoint: str) -> dict[str, list[str]]:
    """Return what still exists of ``endpoint``: endpoints, configurations and models by name.

    ``NameContains`` filters on AWS; the names are checked here too, for mocks that ignore it.
    """
    def names(call: str, key: str, field: str) -> list[str]:
        found = getattr(sm, call)(NameContains=endpoint, MaxResults=100)[key]
        return [item[field] for item in found if endpoint in item[field]]

    return {"endpoints": names("list_endpoints", "Endpoints", "EndpointName"),
            "endpoint_configs": names("list_endpoint_configs", "EndpointConfigs",
                                      "EndpointConfigName"),
            "models": names("list_models", "Models", "ModelName")}


def teardown(sm, endpoint: str) -> dict[str, list[str]]:
    """Delete the endpoint (what bills by the hour), its configuration and its models.

    Returns
    -------
    dict
        What was deleted, by kind; ``leftovers`` is then empty.
    """
    found = leftovers(sm, endpoint)
    for name in found["endpoints"]:
        sm.delete_endpoint(EndpointName=name)
    for name in found["endpoint_configs"]:
        sm.delete_endpoint_config(EndpointConfigName=name)
    for name in found["models"]:
        sm.delete_model(ModelName=name)
    return found
