"""A request inspector: pick a format, edit a row, send it, read the raw request and response.

The request is built from the fields as typed — a number that does not parse is sent as text — so
the learner sees how the server answers bad input, not a check made before sending.
:class:`RequestInspector` holds the logic and its widgets; :meth:`RequestInspector.send` is what the
button calls, so tests drive it without a browser.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets

from mlprod.client import NUMERIC_DATATYPES, Client, Exchange
from mlprod.explore import figure_png
from mlprod.widgets.fallback import Fallback

#: The formats offered: a name → (route, request content type).
FORMATS = {
    "V2 JSON": ("v2", "application/json"),
    "SageMaker JSON": ("invocations", "application/json"),
    "SageMaker CSV": ("invocations", "text/csv"),
}
#: Answer formats for /invocations: CSV has one line per row, a header line only when asked for.
ACCEPTS = ("application/json", "text/csv", "text/csv; header=present")


def _as_text(value: Any) -> str:
    """Show a value in a text field: missing (None, NaN) as an empty field."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def parse_field(text: str, numeric: bool) -> Any:
    """Turn a typed field into a JSON value: empty → null; a number if numeric and it parses.

    Text that is not a number stays text, so the server — not this widget — judges it.
    """
    text = text.strip()
    if text == "":
        return None if numeric else ""
    if numeric:
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() and "." not in text else number
    return text


def build_request(fmt: str, row: Mapping[str, Any], inputs: list[dict], model: str,
                  version: int | str | None = None, accept: str = "application/json"
                  ) -> tuple[str, str, dict[str, str], str]:
    """Build one request for ``row`` in format ``fmt``: method, path, headers and body.

    Parameters
    ----------
    fmt : str
        One of :data:`FORMATS`.
    row : dict
        Input name → JSON value (``None`` for a missing number).
    inputs : list of dict
        The model's V2 metadata ``inputs``, in order (the CSV column order).
    model, version : str, int or str
        The model to call; ``version`` applies to the V2 path only.
    accept : str
        The answer's format for ``/invocations``; V2 always answers JSON.
    """
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}; choose one of {list(FORMATS)}.")
    route, content_type = FORMATS[fmt]
    names = [spec["name"] for spec in inputs]
    if route == "v2":
        path = f"/v2/models/{model}" + ("" if version is None else f"/versions/{version}")
        body = {"inputs": [{"name": spec["name"], "shape": [1, 1], "datatype": spec["datatype"],
                            "data": [row.get(spec["name"])]} for spec in inputs]}
        return ("POST", f"{path}/infer",
                {"Content-Type": content_type, "Accept": "application/json"}, _json(body))
    headers = {"Content-Type": content_type, "Accept": accept,
               "X-Amzn-SageMaker-Target-Model": model}
    if content_type == "text/csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        writer.writerow(["" if row.get(n) is None else row.get(n) for n in names])
        return "POST", "/invocations", headers, out.getvalue()
    body = {"dataframe_split": {"columns": names, "data": [[row.get(n) for n in names]]}}
    return "POST", "/invocations", headers, _json(body)


def _json(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _pre(title: str, text: str) -> str:
    # Wrap at token boundaries: a break opportunity after each comma, colon and ampersand of a
    # compact JSON or CSV body, never inside a word; 14 px stays readable on a projector.
    escaped = html.escape(text)
    for mark in (",", ":", "&amp;"):
        escaped = escaped.replace(mark, mark + "<wbr>")
    return (f"<b>{html.escape(title)}</b><pre style='white-space: pre-wrap; "
            f"word-break: normal; overflow-wrap: break-word; font-size: 14px; margin: 4px 0'>"
            f"{escaped}</pre>")


# The selected toggle stands out on a projector: filled, not only a shade darker.
_STYLE = ("<style>.mlprod-inspector .widget-toggle-button.mod-active{background:#4a7ab5;"
          "color:#fff;font-weight:bold}</style>")


class InspectorPanel(Fallback, widgets.VBox):
    """The inspector's widgets; its display data carries a picture of the last exchange."""

    what = "request inspector"

    def __init__(self, children, inspector: RequestInspector):
        super().__init__(children)
        self.inspector = inspector
        self.add_class("mlprod-inspector")

    def picture_png(self) -> bytes | None:
        """The last request and response as text in a PNG (None before the first send)."""
        exchange = self.inspector.exchange
        if exchange is None:
            return None
        return text_png([exchange.request_text(), exchange.response_text()])


def text_png(columns: list[str], width: int = 60, lines: int = 18) -> bytes:
    """Render texts side by side, monospaced and cut to ``lines`` × ``width``, as a PNG."""
    import textwrap

    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(columns), 0.17 * lines + 0.3), layout="constrained")
    for i, text in enumerate(columns):
        wrapped = [part for line in text.splitlines()
                   for part in (textwrap.wrap(line, width) or [""])][:lines]
        fig.text(0.01 + i / len(columns), 0.98, "\n".join(wrapped), family="monospace",
                 fontsize=7, va="top")
    return figure_png(fig, dpi=90)


class RequestInspector:
    """Pick a format, edit one row, send it, and see the raw request and response side by side.

    Parameters
    ----------
    client : Client
        Calls the server (its token, if any, is sent and masked in the view).
    model : str
        The model to call.
    row : dict
        The row the fields start with (input name → value), e.g. one test-set row.
    version : int or str, optional
        The version or alias for V2 calls.

    Attributes
    ----------
    widget : ipywidgets.Widget
        What a notebook displays.
    exchange : Exchange or None
        The latest request and response.
    """

    def __init__(self, client: Client, model: str, row: Mapping[str, Any],
                 version: int | str | None = None):
        self.client = client
        self.model = model
        self.version = version
        self.inputs = client.metadata(model, version)["inputs"]
        self.exchange: Exchange | None = None
        self.format = widgets.ToggleButtons(options=list(FORMATS), description="Format")
        self.accept = widgets.ToggleButtons(options=list(ACCEPTS), description="Accept")
        self.fields = {spec["name"]: widgets.Text(value=_as_text(row.get(spec["name"])),
                                                  description=spec["name"],
                                                  style={"description_width": "140px"})
                       for spec in self.inputs}
        self.send_button = widgets.Button(description="Send", button_style="primary",
                                          icon="paper-plane")
        self.status = widgets.HTML()
        self.request_view = widgets.HTML(_pre("Request", "(press Send)"))
        self.response_view = widgets.HTML(_pre("Response", ""))
        self.send_button.on_click(self._on_click)
        self.format.observe(self._on_format, names="value")
        self._on_format()
        for view in (self.request_view, self.response_view):
            view.layout = widgets.Layout(width="50%", overflow="auto")
        self.widget = InspectorPanel([
            widgets.HTML(_STYLE), self.format, self.accept,
            widgets.VBox(list(self.fields.values())),
            widgets.HBox([self.send_button, self.status]),
            widgets.HBox([self.request_view, self.response_view]),
        ], self)

    def _on_format(self, change: object = None) -> None:
        # V2 always answers JSON; Accept only applies to /invocations.
        self.accept.disabled = FORMATS[self.format.value][0] == "v2"

    def row(self) -> dict[str, Any]:
        """Return the row as typed: input name → JSON value."""
        return {spec["name"]: parse_field(self.fields[spec["name"]].value,
                                          spec["datatype"] in NUMERIC_DATATYPES) for spec in self.inputs}

    def request(self) -> tuple[str, str, dict[str, str], str]:
        """Return the request the Send button would make: method, path, headers, body."""
        return build_request(self.format.value, self.row(), self.inputs, self.model,
                             self.version, self.accept.value)

    def _on_click(self, button: widgets.Button) -> None:
        try:
            self.send()
        except (ConnectionError, TimeoutError) as exc:  # no server: say so in the widget
            self.status.value = f"<span style='color: #b00'>{html.escape(str(exc))}</span>"

    def send(self) -> Exchange:
        """Send the request, show both sides, and return the exchange.

        An error status (400, 404, …) is shown like any answer; only a failure to reach the
        server raises (``ConnectionError``, ``TimeoutError``), which the button shows instead.
        """
        method, path, headers, body = self.request()
        self.client.send(method, path, body=body, headers=headers, check=False)
        self.exchange = self.client.last
        ok = self.exchange.status < 400
        colour = "#080" if ok else "#b00"
        self.status.value = (f"<span style='color: {colour}'>{self.exchange.status} "
                             f"{html.escape(self.exchange.reason)}</span>")
        self.request_view.value = _pre("Request", self.exchange.request_text())
        self.response_view.value = _pre("Response", self.exchange.response_text())
        return self.exchange

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def request_inspector(client: Client, model: str, row: Mapping[str, Any],
                      version: int | str | None = None) -> RequestInspector:
    """Build a :class:`RequestInspector` for ``model``, its fields filled from ``row``."""
    return RequestInspector(client, model, row, version)
