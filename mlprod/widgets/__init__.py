"""Widgets for live use in the notebooks; the only package of the kit that imports ipywidgets.

Each builder returns a widget without displaying it; its logic is testable without a browser.
"""

from mlprod.widgets.explorer import Explorer, ExplorerPanel, hyperparameter_explorer
from mlprod.widgets.inspector import RequestInspector, request_inspector

__all__ = [
    "Explorer",
    "ExplorerPanel",
    "RequestInspector",
    "hyperparameter_explorer",
    "request_inspector",
]
