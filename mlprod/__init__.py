"""mlprod: take a machine-learning model from a notebook to production, one lesson at a time."""

from mlprod.doctor import doctor

__all__ = ["doctor"]
__version__ = "0.1.0"
