"""Lessons in a real browser: JupyterLab runs the notebook, a slider moves, the widget updates.

Lesson 02's hyperparameter explorer and lesson 06's traffic split, each after Run All.

Chromium is Debian's package (``apt-get install -y chromium``) driven by Playwright. The test skips
when it is missing, except under ``CI=true``, where a missing browser is a failure. Everything it
starts — JupyterLab, its kernel, Chromium — is stopped afterwards and checked gone, also on failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from mlprod.serving import free_port

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "02-model-and-tune.ipynb"
ROUTING = ROOT / "notebooks" / "06-versions-and-routing.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUIET_LAB = {"@jupyterlab/apputils-extension:notification":
             {"checkForUpdates": False, "fetchNews": "false"}}


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = (f"{CHROMIUM} is missing: install Debian's package with `apt-get install -y chromium` "
               "(never `playwright install`) to run the browser test")
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)


def _get(url: str, token: str) -> object:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def _wait_for(check, timeout: float, what: str, interval: float = 0.25):
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception as error:  # noqa: BLE001 - the server may not answer yet
            last_error, value = error, None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last_error})")


def _our_processes(markers: list[str]) -> list[tuple[int, str]]:
    """Return (pid, command line) of live processes whose command line holds one of ``markers``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(marker in cmdline for marker in markers):
            found.append((int(entry.name), cmdline.strip()))
    return found


def _fresh_copy(folder: Path, notebook: Path = NOTEBOOK) -> Path:
    """Copy the lesson with its outputs and widget state cleared, so all that shows is new."""
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    path = folder / notebook.name
    nbformat.write(nb, path)
    return path


@pytest.fixture
def lab(tmp_path) -> Iterator[dict]:
    """Start JupyterLab on a free port in a temporary folder; stop it and everything it started."""
    _require_chromium()
    work, runtime = tmp_path / "work", tmp_path / "runtime"
    settings = tmp_path / "lab-settings"
    for folder in (work, runtime, settings):
        folder.mkdir()
    (settings / "overrides.json").write_text(json.dumps(QUIET_LAB))
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
               "--ip=127.0.0.1", f"--ServerApp.token={token}", f"--ServerApp.root_dir={work}",
               f"--LabApp.app_settings_dir={settings}",
               f"--LabApp.user_settings_dir={tmp_path / 'user-settings'}",
               f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}"]
    if os.geteuid() == 0:
        command.append("--allow-root")  # JupyterLab refuses to start as root without it
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
    log = (tmp_path / "jupyter.log").open("w")
    server = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    # The kernel's connection file lives in our runtime folder, so its command line names it.
    markers = [f"--port={port}", str(runtime), str(tmp_path / "chromium-profile")]
    try:
        _wait_for(lambda: _get(f"{base}/api/status", token), 90, "JupyterLab's /api/status")
        yield {"base": base, "token": token, "work": work, "tmp": tmp_path, "markers": markers}
    finally:
        try:
            for session in _get(f"{base}/api/sessions", token):
                request = urllib.request.Request(
                    f"{base}/api/sessions/{session['id']}", method="DELETE",
                    headers={"Authorization": f"token {token}"})
                urllib.request.urlopen(request, timeout=10).close()
        except OSError:
            pass  # the server is already gone; the process check below still runs
        _stop_group(server)
        log.close()
        for pid, _ in _our_processes(markers):  # a kernel in its own session, if any survived
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        left = _our_processes(markers)
        assert not left, f"processes left behind: {left}"


def _stop_group(process: subprocess.Popen) -> None:
    """Stop a process started in its own session, and its group: SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def _kernel_attached(lab: dict, name: str) -> bool:
    sessions = _get(f"{lab['base']}/api/sessions", lab["token"])
    return any(s["path"].endswith(name) and s["kernel"]["execution_state"] == "idle"
               and s["kernel"]["connections"] >= 1 for s in sessions)


def test_explorer_updates_when_a_slider_moves(lab):
    notebook = _fresh_copy(lab["work"])
    shots = ROOT / "build" / "browser"
    with _page(lab) as page:
        _run_all(page, lab, notebook)
        score = page.locator(".mlprod-explorer-score")
        picture = page.locator(".mlprod-explorer-picture")
        score.filter(has_text="CV score").wait_for(timeout=240_000)
        page.locator(".jp-OutputArea-output", has_text="choice.json").wait_for(timeout=240_000)
        outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
        assert not [t for t in outputs if "Traceback" in t], "a cell raised in the browser"
        before_score, before_src = score.inner_text(), picture.get_attribute("src")
        assert before_src, "the explorer shows no picture"

        handle = page.locator(".mlprod-explorer .widget-slider .noUi-handle").first
        handle.focus()
        handle.press("ArrowRight")  # max_depth 2 -> 3
        _wait_for(lambda: score.inner_text() != before_score, 60, "the score to change")
        _wait_for(lambda: picture.get_attribute("src") != before_src, 60,
                  "the picture to change")
        readout = page.locator(".mlprod-explorer .widget-readout").first.inner_text()
        assert readout.strip() == "3"
        from mlprod.widgets import Explorer

        expected = Explorer("decision_tree", ("bill_length_mm", "bill_depth_mm"))
        _wait_for(lambda: score.inner_text().strip() == expected.evaluate(max_depth=3).text(),
                  60, "the score the kit computes for max_depth=3")
        # Controls and picture visible together on a 1280 x 800 screen.
        panel_box = page.locator(".mlprod-explorer").bounding_box()
        picture_box = picture.bounding_box()
        assert panel_box["height"] <= 800 and panel_box["width"] <= 1280, panel_box
        assert picture_box["width"] <= 530, picture_box  # its own size, not stretched

        shot = lab["tmp"] / "explorer.png"
        page.locator(".mlprod-explorer").screenshot(path=str(shot))
        shots.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, shots / "explorer.png")
        assert shot.stat().st_size > 0


@contextlib.contextmanager
def _page(lab: dict):
    """Chromium at 1280 x 800 (a projector) on the lab's own profile; closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(lab["tmp"] / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 800})
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def _run_all(page, lab: dict, notebook: Path) -> None:
    page.goto(f"{lab['base']}/lab/tree/{notebook.name}?token={lab['token']}")
    # The toolbar shows idle before the kernel is attached; Run All would then run nothing.
    _wait_for(lambda: _kernel_attached(lab, notebook.name), 90, "the notebook's kernel")
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def test_traffic_split_routes_what_the_slider_says_after_run_all(lab):

    notebook = _fresh_copy(lab["work"], ROUTING)
    routing_file = lab["work"].parent / "build" / "notebooks" / ROUTING.stem / "models" / \
        "penguins" / "routing.json"
    with _page(lab) as page:
        _run_all(page, lab, notebook)
        # The last cell has run: Run All is over, and the server the widget uses still runs.
        page.locator(".jp-OutputArea-output", has_text="running").last.wait_for(
            timeout=240_000)
        _wait_for(lambda: "LocalServer" in page.locator(".jp-OutputArea-output").last
                  .inner_text(), 60, "the last cell's output")
        outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
        assert not [t for t in outputs if "Traceback" in t], "a cell raised in the browser"
        assert not [t for t in outputs if "Error displaying widget" in t]
        panel = page.locator(".mlprod-traffic")
        panel.scroll_into_view_if_needed()
        candidate = panel.locator(".mlprod-traffic-share[data-variant='candidate']")
        assert "(asked 10 %)" in candidate.inner_text()

        readout = panel.locator(".widget-readout").first
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("50")
        page.keyboard.press("Enter")
        _wait_for(lambda: "(asked 50 %)" in candidate.inner_text(), 60,
                  "the bars to show the new split")
        weights = {v["name"]: v["weight"] for v in
                   json.loads(routing_file.read_text())["variants"]}
        assert weights == {"production": 50, "candidate": 50}
        served = float(candidate.inner_text().split("served ")[1].split(" %")[0])
        assert abs(served - 50) <= 12, candidate.inner_text()  # 200 requests: σ ≈ 3.5 points
        box = panel.bounding_box()
        assert box is not None and box["width"] <= 1280, box  # fits the projector's width

        shots = ROOT / "build" / "browser"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "traffic-split.png"))


def test_tour_pages_load_with_the_network_blocked(tmp_path):
    """Every lesson as the tour writes it: no request leaves the page's own file."""
    from playwright.sync_api import sync_playwright

    from mlprod import tour

    _require_chromium()
    pages = [tour.to_html(nb, tmp_path / f"{nb.stem}.html")
             for nb in tour.find_notebooks(ROOT / "notebooks")]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            leaving: list[str] = []

            def only_files(route):
                if route.request.url.startswith(("file://", "data:")):
                    route.continue_()
                else:
                    leaving.append(route.request.url)
                    route.abort()

            page.route("**/*", only_files)
            failed: list[str] = []
            page.on("requestfailed", lambda request: failed.append(request.url))
            for path in pages:
                page.goto(path.as_uri())
                page.wait_for_load_state("load")
                text = page.inner_text("body")
                assert "children=" not in text, f"{path.name}: a widget shows its repr"
            assert leaving == [] and failed == [], (leaving, failed)
        finally:
            browser.close()


INSPECTING = ROOT / "notebooks" / "04-serve-and-call.ipynb"


def test_inspector_answers_after_run_all_and_the_committed_lesson_shows_no_repr(lab):
    import shutil as _shutil

    import pandas as pd

    from mlprod import data, export, quickstart

    committed = Path(_shutil.copy(INSPECTING, lab["work"] / "committed-04.ipynb"))
    notebook = _fresh_copy(lab["work"], INSPECTING)
    with _page(lab) as page:
        # The lesson as committed, opened before anything runs: no repr, no broken widget.
        page.goto(f"{lab['base']}/lab/tree/{committed.name}?token={lab['token']}")
        page.locator(".jp-OutputArea-output").first.wait_for(timeout=60_000)
        text = page.locator(".jp-Notebook").inner_text()
        assert "children=" not in text and "Error displaying widget" not in text
        _run_all(page, lab, notebook)
        page.locator(".jp-OutputArea-output", has_text="access").last.wait_for(
            timeout=240_000)  # the last cell printed the server's log: Run All is over
        outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
        assert not [t for t in outputs if "Traceback" in t], "a cell raised in the browser"
        panel = page.locator(".mlprod-inspector:not(.jupyter-widgets-disconnected)")
        panel.scroll_into_view_if_needed()
        typed = {"island": "Biscoe", "body_mass_g": "5600"}
        for name, value in typed.items():
            field = panel.locator(".widget-text", has_text=name).locator("input")
            field.fill(value)
            field.press("Enter")
        panel.locator("button", has_text="Send").click()
        _wait_for(lambda: "200 OK" in panel.inner_text(), 30, "the inspector's answer")
        row = data.split().X_test.iloc[[0]].copy()
        row["island"], row["body_mass_g"] = typed["island"], float(typed["body_mass_g"])
        session = export.session((quickstart.model_repository() / "penguins" / "1"
                                  / "model.onnx").read_bytes())
        label = export.onnx_predict(session, pd.DataFrame(row))[0][0]
        response = panel.locator("pre").nth(1).inner_text()
        assert '"label"' in response and f'"{label}"' in response, response
        shots = ROOT / "build" / "browser"
        shots.mkdir(parents=True, exist_ok=True)
        panel.screenshot(path=str(shots / "inspector.png"))
        box = panel.bounding_box()
        assert box is not None and box["width"] <= 1280


MONITORING = ROOT / "notebooks" / "08-monitor.ipynb"


def test_dashboard_counts_new_traffic_after_run_all(lab):
    import re

    from mlprod import data, traffic

    notebook = _fresh_copy(lab["work"], MONITORING)
    with _page(lab) as page:
        _run_all(page, lab, notebook)
        # The last cell prints the server, still running: Run All is over.
        last = page.locator(".jp-OutputArea-output", has_text="LocalServer").last
        last.wait_for(timeout=240_000)
        _wait_for(lambda: "running" in page.locator(".jp-OutputArea-output").last.inner_text(),
                  60, "the last cell's output")
        url = re.search(r"http://127\.0\.0\.1:\d+", last.inner_text()).group(0)
        text = page.locator(".jp-Notebook").inner_text()
        assert "Traceback" not in text, "a cell raised in the browser"
        assert "Error displaying widget" not in text and "children=" not in text

        panel = page.locator(".mlprod-dashboard")
        panel.scroll_into_view_if_needed()
        total = panel.locator(".mlprod-dashboard-total")
        status = panel.locator(".mlprod-dashboard-status")
        _wait_for(lambda: status.inner_text().startswith("live"), 30, "the dashboard to poll")
        before = int(total.get_attribute("data-total"))
        assert before > 0, "the dashboard shows no request"
        flagged = panel.locator(".mlprod-dashboard-drift[data-flagged='1']").all_inner_texts()
        assert sorted(t.split(":")[0] for t in flagged) == ["bill_length_mm", "body_mass_g"]

        sent = traffic.send(url, "penguins", data.split().X_test, 40, concurrency=2)
        assert set(sent["status"]) == {200}
        _wait_for(lambda: int(total.get_attribute("data-total")) == before + 40, 30,
                  f"the dashboard's total to grow from {before} by the 40 requests sent")
        assert status.inner_text().startswith("live"), status.inner_text()
        box = panel.bounding_box()
        assert box is not None and box["width"] <= 1280 and box["height"] <= 800, box

        shots = ROOT / "build" / "browser"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "dashboard.png"))
