"""Execute the course's notebooks headless: a tour into ``build/tour/``, or a refresh in place.

``python -m mlprod.tour --out build/tour`` (``make tour``) runs every notebook with papermill into
the output folder, writes each as a web page (``<stem>.html``) and ``index.html`` linking them with
their status and time. The pages load nothing from any other host: no require.js, MathJax or
widget script from a CDN; a widget shows the picture and sentence it keeps for places without a
kernel.
``python -m mlprod.tour --in-place`` (``make notebooks``) re-executes the notebooks where they are,
so their committed outputs are fresh.
"""

from __future__ import annotations

import argparse
import html
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mlprod.files import atomic_write

ROOT = Path(__file__).resolve().parent.parent
# Fresh worker processes, never forks: a fork of a process running threads (a JVM, Dask, a
# server watcher) can inherit a held lock and hang for ever.
_SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class Run:
    """The outcome of executing one notebook."""

    notebook: str
    ok: bool
    seconds: float
    error: str
    output: str


def find_notebooks(folder: str | os.PathLike) -> list[Path]:
    """Return the lessons, then their solutions, sorted by name (checkpoints excluded)."""
    folder = Path(folder)
    found = sorted(folder.glob("*.ipynb")) + sorted(folder.glob("solutions/*.ipynb"))
    return [p for p in found if ".ipynb_checkpoints" not in p.parts]


# The lab template without its script tags: every page reads offline, from its own file.
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def to_html(notebook: Path, page: Path) -> Path:
    """Write ``notebook`` as one self-contained web page: plots inline, widgets as pictures.

    Widget views need a kernel and scripts from elsewhere, so they are left out: each kit widget's
    output also holds a PNG of its state and a sentence naming it, which the page shows instead.
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            output.get("data", {}).pop(_WIDGET_VIEW, None)
    exporter = HTMLExporter(extra_loaders=[jinja2.DictLoader({"offline.j2": _OFFLINE_TEMPLATE})],
                            template_file="offline.j2")
    body, _ = exporter.from_notebook_node(nb)
    atomic_write(page, body)
    return page


def execute(notebook: Path, output: Path, parameters: dict | None = None) -> Run:
    """Execute ``notebook`` with papermill into ``output`` (its own folder as working directory).

    The executed notebook is also written as a web page beside it (``.html``), failed or not.
    """
    import papermill

    start = time.perf_counter()
    error = ""
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=parameters or {}, kernel_name="python3",
            cwd=str(notebook.parent), progress_bar=False, log_output=False,
        )
    except Exception as exc:  # papermill raises after writing the failed notebook
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc) else ''}"
    page = output.with_suffix(".html")
    if output.exists():
        to_html(output, page)
    return Run(notebook.name, not error, time.perf_counter() - start, error, page.name)


def refresh(notebook: Path, timeout: int = 600) -> Run:
    """Re-execute ``notebook`` in place, keeping its cells and metadata, so outputs are fresh."""
    import nbformat
    from nbclient import NotebookClient

    start = time.perf_counter()
    nb = nbformat.read(notebook, as_version=4)
    error = ""
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(notebook.parent)}}).execute()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    if not error:
        atomic_write(notebook, nbformat.writes(nb) + "\n")
    return Run(notebook.name, not error, time.perf_counter() - start, error, notebook.name)


def index_html(runs: list[Run]) -> str:
    """Render the tour's index page: one row per notebook with its status and time."""
    rows = "\n".join(
        f"<tr class='{'ok' if r.ok else 'failed'}'><td><a href='{html.escape(r.output)}'>"
        f"{html.escape(r.notebook)}</a></td><td>{'passed' if r.ok else 'FAILED'}</td>"
        f"<td>{r.seconds:.1f} s</td><td><a href='{html.escape(Path(r.output).stem)}.ipynb'>"
        f"notebook</a></td><td>{html.escape(r.error)}</td></tr>"
        for r in runs
    )
    passed = sum(r.ok for r in runs)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mlprod tour</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:.3em 1em;text-align:left}}
.ok td:nth-child(2){{color:#070}} .failed td:nth-child(2){{color:#b00;font-weight:bold}}</style>
</head><body><h1>mlprod tour</h1>
<p>{passed} of {len(runs)} notebooks ran top to bottom in a fresh kernel
({sum(r.seconds for r in runs):.1f} s of kernel time).</p>
<table><tr><th>lesson</th><th>status</th><th>time</th><th>file</th><th>error</th></tr>
{rows}
</table></body></html>
"""


def tour(notebooks: list[Path], out: Path, workers: int = 2,
         parameters: dict | None = None) -> list[Run]:
    """Execute ``notebooks`` into ``out`` (``workers`` at a time) and write ``out/index.html``."""
    out.mkdir(parents=True, exist_ok=True)
    outputs = [out / (f"solutions-{nb.name}" if nb.parent.name == "solutions" else nb.name)
               for nb in notebooks]
    with ProcessPoolExecutor(max_workers=workers, mp_context=_SPAWN) as pool:
        runs = list(pool.map(execute, notebooks, outputs, [parameters] * len(notebooks)))
    atomic_write(out / "index.html", index_html(runs))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlprod.tour", description=__doc__)
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: all under notebooks/)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "tour")
    parser.add_argument("--in-place", action="store_true",
                        help="re-execute the notebooks where they are (make notebooks)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    notebooks = args.notebooks or find_notebooks(ROOT / "notebooks")
    if args.in_place:
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=_SPAWN) as pool:
            runs = list(pool.map(refresh, notebooks))
    else:
        runs = tour(notebooks, args.out, args.workers)
    for r in runs:
        print(f"{'ok    ' if r.ok else 'FAILED'} {r.seconds:6.1f} s  {r.notebook}  {r.error}")
    if not args.in_place:
        print(f"index: {args.out / 'index.html'}")
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
