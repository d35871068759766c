"""What a kit widget shows where no kernel drives it: a sentence and a picture of its state.

JupyterLab renders a widget's view only in a trusted notebook with a live widget manager;
GitHub's viewer, nbconvert and an untrusted notebook show the display data's ``image/png`` or
``text/plain`` instead. A widget built on :class:`Fallback` puts both in its display data: a
plain sentence naming it and saying it needs a live kernel, and a PNG of its current state,
never the constructor's repr.
"""

from __future__ import annotations

import base64


class Fallback:
    """Mixin for an ipywidgets container: ``_repr_mimebundle_`` with a sentence and a picture.

    Subclasses set :attr:`what` (e.g. ``"traffic split"``) and may override :meth:`picture_png`.
    """

    what = "widget"

    def picture_png(self) -> bytes | None:
        """Return a PNG of the widget's current state, or None."""
        return None

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = (f"The {self.what}: an interactive widget. Run the notebook "
                                f"in JupyterLab (a live kernel) to drive it.")
        png = self.picture_png()
        if png:
            bundle["image/png"] = base64.b64encode(png).decode()
        return bundle
