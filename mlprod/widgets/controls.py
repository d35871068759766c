"""A live control around a function (ipywidgets' ``interactive``) that reads well without a kernel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from mlprod.widgets.fallback import Fallback


class Live(Fallback, widgets.interactive):
    """``ipywidgets.interactive`` whose display data names it in a sentence, never a repr."""


def live(function: Callable[..., Any], what: str, **controls: Any) -> Live:
    """Build controls for ``function``'s arguments (as ``interact`` does); display it in a cell.

    Parameters
    ----------
    function : callable
        Called with the controls' values each time one moves; its result is shown below them.
    what : str
        What the widget shows, for the sentence seen where it cannot run, e.g.
        ``"species count by year"``.
    **controls
        As for ``ipywidgets.interact``: ``year=(2007, 2009)`` makes a slider.
    """
    panel = Live(function, **controls)
    panel.what = what
    return panel
