"""mlprod: take a machine-learning model from a notebook to production, one lesson at a time.

Submodules are imported on first use (``mlprod.data``, ``mlprod.export``, ...), so ``import mlprod``
stays cheap.
"""

from importlib import import_module

from mlprod.doctor import doctor

__all__ = ["doctor"]
__version__ = "0.1.0"

_SUBMODULES = {
    "batch", "client", "container", "data", "doctor", "explore", "export", "files", "lab",
    "monitoring", "platforms", "quickstart", "registry", "rollout", "serving", "tour", "traffic",
    "tuning", "widgets",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f"mlprod.{name}")
    raise AttributeError(f"module 'mlprod' has no attribute {name!r}; submodules: {sorted(_SUBMODULES)}")
