"""A live dashboard: poll a model server's ``/metrics`` and show rate, latency, class mix, drift.

A background thread reads ``GET /metrics`` every ``interval`` seconds (the kernel stays free),
parses it with ``prometheus_client.parser`` and compares each scrape with the one before, as
Prometheus' ``rate()`` and ``histogram_quantile()`` do over a window:

- request rate: the growth of ``mlprod_requests_total`` divided by the seconds between polls;
- p50 and p99 latency: from the growth of ``mlprod_request_duration_seconds``' buckets in that
  window, interpolated inside a bucket exactly as Prometheus' ``histogram_quantile`` does;
- class mix: ``mlprod_predictions_total`` by label, since the server started;
- drift flags: from a drift report, a :class:`~mlprod.monitoring.DriftExporter` (its gauges are
  read like a scrape) or a callable returning either.

The arithmetic lives in plain functions in :mod:`mlprod.monitoring.scrape` (:func:`read_snapshot`,
:func:`histogram_quantile`,
:func:`window`, :func:`drift_flags`), tested without a browser. The thread stops when the widget
is closed (:meth:`Dashboard.close`) or when the server stops answering, and the widget says so.
"""

from __future__ import annotations

import html
import math
import threading
import time
from datetime import UTC, datetime

import ipywidgets as widgets
import requests

from mlprod.widgets.fallback import Fallback

__all__ = ["Dashboard", "live_dashboard", "Snapshot", "Window", "read_snapshot", "histogram_quantile",
           "window", "drift_flags"]

from mlprod.monitoring.scrape import (  # noqa: F401 - re-exported
    DRIFT,
    DRIFT_CHECK,
    DURATION,
    PREDICTIONS,
    REQUESTS,
    Snapshot,
    Window,
    drift_flags,
    histogram_quantile,
    read_snapshot,
    window,
)


class Dashboard(Fallback, widgets.VBox):
    """Request rate, p50/p99 latency, class mix and drift flags of a live server, polled.

    Build it with :func:`live_dashboard`, which polls once and starts the thread.

    Parameters
    ----------
    url : str
        The server, e.g. ``LocalServer.url``; ``/metrics`` is read.
    model : str, optional
        Only this model's series; default every model's.
    drift : DataFrame, DriftExporter, dict or callable, optional
        Where the drift flags come from (see :func:`drift_flags`); read at every poll.
    interval : float
        Seconds between polls: the window of the rate and the quantiles.
    token : str, optional
        The server's bearer token (``/metrics`` needs it when one is set).
    max_failures : int
        Polls in a row that may fail before the dashboard says the server has gone and stops.
    """

    what = "monitoring dashboard"

    def __init__(self, url: str, model: str | None = None, drift: object | None = None,
                 interval: float = 1.0, token: str | None = None, max_failures: int = 3):
        if interval <= 0:
            raise ValueError(f"interval={interval!r} must be a positive number of seconds, "
                             f"e.g. 1.0.")
        self.url, self.model, self.drift, self.interval = url.rstrip("/"), model, drift, interval
        self.token, self.max_failures = token, max_failures
        self.snapshot: Snapshot | None = None
        self.latest: Window | None = None
        self.flags: dict[str, list[str]] = {}
        self.history: list[tuple[float, float]] = []  # (seconds since start, rate)
        self.status = "not started"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._began = time.monotonic()
        self._session = requests.Session()
        if token is not None:
            self._session.headers["Authorization"] = f"Bearer {token}"
        self.board = widgets.HTML(layout=widgets.Layout(width="760px"))
        self.board.add_class("mlprod-dashboard-board")
        super().__init__([self.board], layout=widgets.Layout(width="780px"))
        self.add_class("mlprod-dashboard")

    @property
    def running(self) -> bool:
        """True while the polling thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def poll(self) -> Window:
        """Read ``/metrics`` once, compare with the previous poll, redraw; return the window.

        Raises
        ------
        requests.RequestException
            If the server does not answer (the thread counts these; see ``max_failures``).
        """
        with self._lock:  # one poll at a time, so snapshots stay in time order
            answer = self._session.get(f"{self.url}/metrics", timeout=max(2.0, self.interval))
            answer.raise_for_status()
            now = read_snapshot(answer.text, model=self.model)
            self.latest = window(self.snapshot, now)
            self.snapshot = now
            if not math.isnan(self.latest.rate):
                self.history = (self.history + [(now.at - self._began, self.latest.rate)])[-120:]
            if self.drift is not None:
                try:
                    self.flags = drift_flags(self.drift, self.model)
                except (requests.RequestException, RuntimeError) as error:
                    self.flags = {"(drift source)": [f"unreadable: {error}"]}
            self._failures = 0
            self.status = (f"live: polling every {self.interval:g} s, last at "
                           f"{datetime.now(UTC):%H:%M:%S} UTC")
            if self.board.comm is not None:  # a closed widget takes no more updates
                self.board.value = self._html()
        return self.latest

    def start(self) -> Dashboard:
        """Start polling in a background thread (again, after a stop); return self."""
        if self.running:
            return self
        self._stop.clear()
        self._failures = 0
        self._thread = threading.Thread(target=self._run, name="mlprod-dashboard", daemon=True)
        self._thread.start()
        return self

    def stop(self, reason: str = "stopped: call .start() to poll again") -> None:
        """Stop the thread (waits for it) and say ``reason`` in the widget."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.interval + 5)
        self._set_status(reason)

    def close(self) -> None:
        """Stop polling, then close the widget."""
        if not hasattr(self, "_stop"):  # __init__ refused its arguments: nothing runs
            return super().close()
        self.stop("closed")
        self._session.close()
        self.board.close()
        super().close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except (requests.ConnectionError, requests.Timeout) as error:
                self._failures += 1
                if self._failures >= self.max_failures:
                    self._halt(f"stopped: {self.url}/metrics did not answer {self._failures} "
                               f"polls in a row ({type(error).__name__}); the server has gone "
                               f"away. Start it again and call .start() to go on.")
            except Exception as error:  # noqa: BLE001 - the widget says what stopped it
                self._halt(f"stopped: reading {self.url}/metrics failed ({error}). Fix it and "
                           f"call .start() to go on.")

    def _halt(self, reason: str) -> None:
        self._stop.set()
        self._set_status(reason)

    def _set_status(self, text: str) -> None:
        with self._lock:
            self.status = text
            if self.board.comm is not None:  # a closed widget takes no more updates
                self.board.value = self._html()

    # --- drawing ---------------------------------------------------------------------------

    def _html(self) -> str:
        w = self.latest
        live = self.status.startswith("live")
        tiles = [
            ("requests/s", _fmt(w.rate if w else math.nan, ""), "rate",
             f"over the last {w.seconds:.1f} s" if w and not math.isnan(w.seconds) else
             "needs two polls"),
            ("p50 latency", _ms(w.p50 if w else math.nan), "p50", "from the histogram"),
            ("p99 latency", _ms(w.p99 if w else math.nan), "p99", "from the histogram"),
            ("errors", _fmt(100 * w.error_share, " %") if w and w.requests else "—", "errors",
             f"{int(w.errors) if w else 0} of {int(w.requests) if w else 0} in the window"),
        ]
        cells = "".join(
            f"<div style='border:1px solid #ccc;border-radius:4px;padding:6px 8px'>"
            f"<div style='font-size:12px;color:#555'>{name}</div>"
            f"<div class='mlprod-dashboard-{key}' style='font-size:22px;font-weight:600'>"
            f"{value}</div><div style='font-size:11px;color:#777'>{note}</div></div>"
            for name, value, key, note in tiles)
        total = int(w.total) if w else 0
        parts = [
            f"<div style='display:grid;grid-template-columns:repeat(4,1fr);gap:8px'>{cells}</div>",
            f"<div style='margin-top:8px'>requests answered since the server started: "
            f"<b class='mlprod-dashboard-total' data-total='{total}'>{total}</b>"
            f"{' (model ' + html.escape(self.model) + ')' if self.model else ''}</div>",
            self._sparkline(), self._mix(), self._drift(),
            f"<div class='mlprod-dashboard-status' style='margin-top:6px;font-size:12px;"
            f"color:{'#2a7a2a' if live else '#a33'}'>{html.escape(self.status)}</div>"]
        return "".join(parts)

    def _sparkline(self) -> str:
        points = self.history[-60:]
        if len(points) < 2:
            return ""
        top = max(r for _, r in points) or 1.0
        x0, x1 = points[0][0], points[-1][0]
        span = (x1 - x0) or 1.0
        path = " ".join(f"{4 + 392 * (t - x0) / span:.1f},{46 - 40 * r / top:.1f}"
                        for t, r in points)
        return (f"<div style='margin-top:6px'><div style='font-size:12px'>requests/s over the "
                f"last {span:.0f} s (top of the chart: {top:.3g})</div><svg width='400' height='50' "
                f"style='background:#f6f6f6'><polyline fill='none' stroke='#4a7ab5' "
                f"stroke-width='2' points='{path}'/></svg></div>")

    def _mix(self) -> str:
        mix = self.latest.mix if self.latest else {}
        rows = sum(mix.values())
        if not rows:
            return "<div style='margin-top:6px'>class mix: no prediction yet</div>"
        bars = "".join(
            f"<div style='display:flex;align-items:center;gap:8px'>"
            f"<span style='width:110px'>{html.escape(label)}</span>"
            f"<span style='width:300px;background:#eee'><span style='display:block;height:14px;"
            f"width:{100 * n / rows:.1f}%;background:#4a7ab5'></span></span>"
            f"<span class='mlprod-dashboard-mix' data-label='{html.escape(label)}'>"
            f"{100 * n / rows:.0f} % ({int(n)})</span></div>" for label, n in mix.items())
        return f"<div style='margin-top:6px'><div>class mix, all rows predicted</div>{bars}</div>"

    def _drift(self) -> str:
        if self.drift is None:
            return "<div style='margin-top:6px;color:#777'>drift: no drift source given</div>"
        chips = "".join(
            f"<span class='mlprod-dashboard-drift' data-feature='{html.escape(f)}' "
            f"data-flagged='{int(bool(c))}' style='display:inline-block;margin:2px;"
            f"padding:2px 6px;border-radius:10px;color:white;background:"
            f"{'#c0504d' if c else '#5a9a5a'}'>{html.escape(f)}: "
            f"{html.escape(', '.join(_short(x) for x in c)) if c else 'ok'}</span>"
            for f, c in self.flags.items())
        return f"<div style='margin-top:6px'>drift flags: {chips or 'none yet'}</div>"

    def picture_png(self) -> bytes | None:
        """The numbers, the class mix and the drift flags as a picture, for pages without a kernel."""
        if self.latest is None:
            return None
        from matplotlib.figure import Figure

        from mlprod.explore import figure_png

        w = self.latest
        fig = Figure(figsize=(7.0, 2.4), layout="constrained")
        mix_ax, drift_ax = fig.subplots(1, 2, width_ratios=[1, 1.3])
        fig.suptitle(f"{_fmt(w.rate, ' req/s')}, p50 {_ms(w.p50)}, p99 {_ms(w.p99)}, "
                     f"{int(w.total)} requests since start", fontsize=10)
        labels = list(w.mix)
        rows = sum(w.mix.values()) or 1
        mix_ax.barh(labels, [100 * w.mix[k] / rows for k in labels], color="#4a7ab5")
        mix_ax.invert_yaxis()
        mix_ax.set_xlim(0, 100)
        mix_ax.set_xlabel("% of rows predicted", fontsize=9)
        features = list(self.flags)
        drift_ax.barh(features, [1] * len(features),
                      color=["#c0504d" if self.flags[f] else "#5a9a5a" for f in features])
        drift_ax.invert_yaxis()
        drift_ax.set_xticks([])
        drift_ax.set_xlabel("drift: red = flagged, green = ok" if features else "no drift source",
                            fontsize=9)
        return figure_png(fig, dpi=80)


def live_dashboard(url: str, model: str | None = None, drift: object | None = None,
              interval: float = 1.0, token: str | None = None) -> Dashboard:
    """Build the dashboard, poll once, start polling in the background; display it in a cell.

    Parameters are those of :class:`Dashboard`. ``close()`` stops the thread; so does the
    server going away (the widget says so).
    """
    board = Dashboard(url, model, drift, interval, token)
    board.poll()
    return board.start()


def _fmt(value: float, unit: str) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.3g}{unit}"


def _ms(seconds: float) -> str:
    return _fmt(seconds * 1000 if seconds == seconds else seconds, " ms")


def _short(check: str) -> str:
    return {"baseline_drift_check": "drift", "completeness_check": "missing values",
            "categorical_values_check": "new categories", "data_type_check": "wrong type",
            "missing_column_check": "missing column"}.get(check, check)
