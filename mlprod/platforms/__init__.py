"""The same image on SageMaker, Vertex AI, KServe, Cloud Foundry and Paperspace (lesson 09).

- ``files``: each platform's deployment files, which ``make context`` writes into
  ``build/context/platforms/<name>/`` (``write_platform_files``, ``model_tarball``).
- ``proof``: the image built once and run under each platform's environment, called in that
  platform's format, compared with ONNX Runtime in process (``prove``, recorded in
  ``build/proof/platforms.json``; ``summary``).
- ``mock``: what moto's offline ``invoke_endpoint`` answers (a canned body), and queuing answers.
- ``sagemaker``: the boto3 calls that deploy to a SageMaker endpoint and tear it down; the lesson
  runs them offline against moto. The module needs only a boto3 client, so the context carries
  a copy of it beside the deploy script.
"""

from mlprod.platforms import mock, sagemaker
from mlprod.platforms.files import (
    CF_COMMAND,
    FILES,
    PLATFORMS,
    PORT,
    VERTEX_HEALTH_ROUTE,
    VERTEX_PREDICT_ROUTE,
    example_row,
    model_tarball,
    platform_values,
    write_platform_files,
)
from mlprod.platforms.proof import TOLERANCE, Run, call, prove, run_command, runs, summary

__all__ = [
    "CF_COMMAND", "FILES", "PLATFORMS", "PORT", "TOLERANCE", "VERTEX_HEALTH_ROUTE",
    "VERTEX_PREDICT_ROUTE", "Run", "call", "model_tarball", "platform_values", "prove",
    "example_row", "mock", "run_command", "runs", "sagemaker", "summary", "write_platform_files",
]
