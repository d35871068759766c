"""A lean reference inference server for ONNX models: Open Inference Protocol V2 and SageMaker.

It reads a Triton-layout model repository and never imports mlprod or scikit-learn, so its
container stays small. ``python -m server --model-repository PATH`` runs it.
"""

__version__ = "0.1.0"  # set before the imports below: server.endpoints reads it

from server.app import create_app
from server.repository import Repository, RepositoryError

__all__ = ["Repository", "RepositoryError", "create_app"]
