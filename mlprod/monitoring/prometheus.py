"""Write the lesson's Prometheus scrape config and alert rules, and check them with ``promtool``.

The files ship as templates in ``mlprod/templates/monitoring/``: ``prometheus.yml`` (the scrape
config, filled in with the server's address), ``alerts.yml`` (recording rules and alerts on the
metrics of CONTRACTS §11: error rate, p99 latency, feature drift, data quality, target down) and
``alerts_test.yml`` (``promtool test rules`` unit tests: each alert fires on a synthetic series
and stays quiet on a normal one). ``promtool`` comes with Debian's ``prometheus`` package.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

from mlprod.files import atomic_write

__all__ = ["write_prometheus_config", "check_prometheus_config", "promtool", "PromtoolError",
           "PROMTOOL_INSTALL"]

PROMTOOL_INSTALL = "apt-get install -y --no-install-recommends prometheus"
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_HOST_PORT = re.compile(r"([^\s/:\[\]]+|\[[0-9a-fA-F:.]+\]):[0-9]{1,5}")  # IPv6 in brackets


class PromtoolError(RuntimeError):
    """``promtool`` refused a file; the message holds its output."""


def template(name: str) -> str:
    """Return the text of one template in ``mlprod/templates/monitoring/``."""
    return (resources.files("mlprod") / "templates" / "monitoring" / name).read_text()


def write_prometheus_config(folder: str | os.PathLike, target: str, *,
                            drift_target: str | None = None, token: str | None = None,
                            scrape_interval: str = "5s",
                            evaluation_interval: str = "5s") -> dict[str, Path]:
    """Write ``prometheus.yml``, ``alerts.yml`` and ``alerts_test.yml`` into ``folder``.

    Parameters
    ----------
    folder : path-like
        Created if needed; each file is written atomically.
    target : str
        The model server: ``host:port`` or a URL such as ``LocalServer.url``
        (``http://127.0.0.1:8000``).
    drift_target : str, optional
        A :class:`~mlprod.monitoring.DriftExporter`'s address, scraped as job ``mlprod-drift``
        (the drift alerts read its ``mlprod_drift_violations``).
    token : str, optional
        The server's ``MODEL_SERVER_TOKEN``: written to ``folder/token`` (mode 0600) and sent
        as ``Authorization: Bearer``, so the config file holds no secret.
    scrape_interval, evaluation_interval : str
        Prometheus durations (``5s``, ``1m``); short, so a lesson sees numbers within seconds.

    Returns
    -------
    dict
        ``{"prometheus.yml": path, "alerts.yml": path, "alerts_test.yml": path}``
        (and ``"token"`` when given).

    Raises
    ------
    ValueError
        If an address or a duration cannot be used, naming it and the form expected.
    """
    scheme, address = _address(target, "target")
    for name, value in (("scrape_interval", scrape_interval),
                        ("evaluation_interval", evaluation_interval)):
        if not _DURATION.match(value):
            raise ValueError(f"{name}={value!r} is not a Prometheus duration; write e.g. '5s', "
                             f"'1m' or '1m30s'.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    authorization = ""
    if token is not None:
        written["token"] = atomic_write(folder / "token", token, perms=0o600)
        authorization = ("    authorization:\n      type: Bearer\n"
                         "      credentials_file: token\n")
    drift_job = ""
    if drift_target is not None:
        drift_scheme, drift_address = _address(drift_target, "drift_target")
        drift_job = ("  # The drift gauges the lesson exports (mlprod.monitoring.DriftExporter).\n"
                     "  - job_name: mlprod-drift\n"
                     f"    scheme: {drift_scheme}\n"
                     "    static_configs:\n"
                     f'      - targets: ["{drift_address}"]\n')
    config = Template(template("prometheus.yml")).substitute(
        target=address, scheme=scheme, scrape_interval=scrape_interval,
        evaluation_interval=evaluation_interval, authorization=authorization,
        drift_job=drift_job).rstrip("\n") + "\n"
    written["prometheus.yml"] = atomic_write(folder / "prometheus.yml", config)
    for name in ("alerts.yml", "alerts_test.yml"):
        written[name] = atomic_write(folder / name, template(name))
    return written


def promtool(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 60) -> str:
    """Run ``promtool`` with ``args``; return its output.

    Raises
    ------
    FileNotFoundError
        If ``promtool`` is not installed, with the command that installs it.
    PromtoolError
        If it exits non-zero, with its output.
    """
    exe = shutil.which("promtool")
    if exe is None:
        raise FileNotFoundError(f"promtool is not installed; it comes with Debian's prometheus "
                                f"package: {PROMTOOL_INSTALL}")
    done = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise PromtoolError(f"promtool {' '.join(args)} failed (exit {done.returncode}):\n"
                            f"{output}")
    return output


def check_prometheus_config(folder: str | os.PathLike) -> str:
    """Check ``prometheus.yml`` and its rules, then run the alert unit tests; return the output.

    The two commands a learner would type in ``folder``: ``promtool check config
    prometheus.yml`` and ``promtool test rules alerts_test.yml``.
    """
    return "\n".join([promtool("check", "config", "prometheus.yml", cwd=folder),
                      promtool("test", "rules", "alerts_test.yml", cwd=folder)])


def _address(value: str, name: str) -> tuple[str, str]:
    """Return ``(scheme, host:port)`` from ``host:port`` or a URL."""
    if "://" in value:
        parts = urlsplit(value)
        scheme, address = parts.scheme, parts.netloc
        if parts.path not in ("", "/"):
            raise ValueError(f"{name}={value!r} has a path; give the server's root (Prometheus "
                             f"adds /metrics).")
    else:
        scheme, address = "http", value
    if scheme not in ("http", "https") or not _HOST_PORT.fullmatch(address):
        raise ValueError(f"{name}={value!r} is not an address Prometheus can scrape; give "
                         f"'127.0.0.1:8000' or 'http://127.0.0.1:8000'.")
    return scheme, address
