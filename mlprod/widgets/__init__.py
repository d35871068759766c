"""Widgets for live use in the notebooks; the only package of the kit that imports ipywidgets.

Each builder returns a widget without displaying it; its logic is testable without a browser.
Names are imported on first use, so a lesson that needs one widget does not pay for the others.
"""

from importlib import import_module

_HOMES = {
    "Explorer": "explorer",
    "ExplorerPanel": "explorer",
    "hyperparameter_explorer": "explorer",
    "RequestInspector": "inspector",
    "request_inspector": "inspector",
    "live": "controls",
    "Dashboard": "dashboard",
    "live_dashboard": "dashboard",
    "TrafficSplit": "traffic",
    "traffic_split": "traffic",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"mlprod.widgets has no {name!r}; widgets: {__all__}")
    return getattr(import_module(f"mlprod.widgets.{_HOMES[name]}"), name)
