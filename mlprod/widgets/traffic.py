"""A traffic-split widget: set the candidate's share on the live server, see the shares served.

Moving the slider writes the model's ``routing.json`` (mlprod.rollout), makes the server re-read
it, sends real requests and draws the share of answers each variant gave (the
``X-Amzn-Invoked-Production-Variant`` header), beside the share that was asked for.
:meth:`TrafficSplit.apply` is what the slider calls, so tests drive it without a browser.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from mlprod import rollout, traffic
from mlprod.explore import figure_png
from mlprod.widgets.fallback import Fallback


class TrafficSplit(Fallback, widgets.VBox):
    """The slider, a send button and the bars; ``last`` holds the latest answers (a DataFrame).

    Parameters
    ----------
    registry : Registry
        The repository the server reads.
    model : str
        The model, whose variants are ``production`` and ``candidate`` (following those aliases).
    client : mlprod.client.Client
        For the server.
    rows : DataFrame
        Feature rows to send.
    requests : int
        Requests sent at each change.
    """

    what = "traffic split"

    def __init__(self, registry, model: str, client, rows, requests: int = 200):
        self.registry, self.model, self.client, self.rows = registry, model, client, rows
        self.requests = requests
        self.last = None
        current = rollout.routing(registry, model)
        weights = {v["name"]: v["weight"] for v in (current or {"variants": []})["variants"]}
        total = sum(weights.values()) or 1
        self.slider = widgets.IntSlider(
            value=round(100 * weights.get("candidate", 0) / total), min=0, max=100, step=5,
            description="candidate %", continuous_update=False,
            style={"description_width": "initial"}, layout=widgets.Layout(width="420px"))
        self.button = widgets.Button(description=f"send {requests} more", icon="paper-plane")
        self.bars = widgets.HTML(layout=widgets.Layout(width="680px"))
        self.bars.add_class("mlprod-traffic-bars")
        self.slider.observe(lambda change: self.apply(change["new"]), names="value")
        self.button.on_click(lambda _: self.send())
        super().__init__([widgets.HBox([self.slider, self.button]), self.bars])
        self.add_class("mlprod-traffic")

    def apply(self, percent: int) -> None:
        """Route ``percent`` % to the candidate, make the server re-read it, send, redraw."""
        rollout.set_routing(self.registry, self.model, [
            {"name": "production", "version": "production", "weight": 100 - percent},
            {"name": "candidate", "version": "candidate", "weight": percent}])
        self.client.load(self.model)
        self.send()

    def send(self) -> None:
        """Send :attr:`requests` requests and draw the shares they were served by."""
        self.last = traffic.send(self.client.base_url, self.model, self.rows, self.requests,
                                 concurrency=4, token=self.client.token)
        self.bars.value = self._bars()

    def served(self) -> dict[str, float]:
        """Return each variant's share of the latest answers, in percent."""
        if self.last is None:
            return {}
        counts = self.last["variant"].fillna("AllTraffic").value_counts(normalize=True)
        return {name: 100 * share for name, share in sorted(counts.items())}

    def _bars(self) -> str:
        asked = {"production": 100 - self.slider.value, "candidate": self.slider.value}
        rows = []
        for name in ("production", "candidate"):
            got = self.served().get(name, 0.0)
            rows.append(
                f"<div style='display:flex;align-items:center;gap:8px;margin:4px 0'>"
                f"<span style='width:90px'>{html.escape(name)}</span>"
                f"<span style='width:300px;background:#eee'><span style='display:block;"
                f"height:18px;width:{got:.1f}%;background:#4a7ab5'></span></span>"
                f"<span class='mlprod-traffic-share' data-variant='{name}' "
                f"style='white-space:nowrap'>served "
                f"{got:.0f} % (asked {asked[name]} %)</span></div>")
        errors = 0 if self.last is None else int((self.last["status"] != 200).sum())
        total = 0 if self.last is None else len(self.last)
        return "".join(rows) + f"<div>{total} requests, {errors} errors</div>"

    def picture_png(self) -> bytes | None:
        """A bar chart of the shares served, for places where the widget cannot run."""
        if self.last is None:
            return None
        from matplotlib.figure import Figure

        served = self.served()
        names = ["production", "candidate"]
        fig = Figure(figsize=(4.5, 1.6), layout="constrained")
        ax = fig.subplots()
        ax.barh(names, [served.get(n, 0.0) for n in names], color="#4a7ab5")
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel(f"% of {len(self.last)} requests served")
        return figure_png(fig, dpi=80)


def traffic_split(registry, model: str, client, rows, requests: int = 200) -> TrafficSplit:
    """Build the traffic-split widget and draw the current split once; display it in a cell."""
    panel = TrafficSplit(registry, model, client, rows, requests)
    panel.send()
    return panel
