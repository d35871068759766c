"""A lean reference inference server for ONNX models: Open Inference Protocol V2 and SageMaker.

It reads a Triton-layout model repository and never imports mlprod or scikit-learn, so its
container stays small. ``python -m server --model-repository PATH`` runs it.
``server.layout`` (the repository's format) needs only the standard library: importing it does
not load the web stack or ONNX Runtime, which this package imports on first use.
"""

__version__ = "0.1.0"
__all__ = ["Repository", "RepositoryError", "create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from server.app import create_app

        return create_app
    if name in ("Repository", "RepositoryError"):
        from server import repository

        return getattr(repository, name)
    raise AttributeError(f"module 'server' has no attribute {name!r}")
