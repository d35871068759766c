"""Tests of mlprod.tour: headless execution into an output folder with an index page."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from mlprod import tour


def _notebook(path, *sources):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)
    return path


def test_tour_writes_outputs_and_an_index_with_status(tmp_path):
    src = tmp_path / "notebooks"
    (src / "solutions").mkdir(parents=True)
    good = _notebook(src / "01-good.ipynb", "N = 2", "print(N * 21)")
    bad = _notebook(src / "02-bad.ipynb", "N = 0", "1 / (N - N)")
    sol = _notebook(src / "solutions" / "01-good-solutions.ipynb", "N = 1", "print('solved')")
    assert tour.find_notebooks(src) == [good, bad, sol]

    runs = tour.tour(tour.find_notebooks(src), tmp_path / "out", workers=2, parameters={"N": 3})
    assert [(r.notebook, r.ok) for r in runs] == [
        ("01-good.ipynb", True), ("02-bad.ipynb", False), ("01-good-solutions.ipynb", True)]
    assert "ZeroDivisionError" in runs[1].error
    executed = nbformat.read(tmp_path / "out" / "01-good.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0]["text"] == "63\n"  # the injected N = 3 was used
    page = (tmp_path / "out" / "index.html").read_text()
    assert "2 of 3 notebooks ran" in page
    assert "FAILED" in page and "solutions-01-good-solutions.ipynb" in page


def test_refresh_rewrites_outputs_in_place_and_keeps_a_failing_notebook(tmp_path):
    path = _notebook(tmp_path / "01-x.ipynb", "N = 2", "print(N + 1)")
    assert tour.refresh(path).ok
    assert nbformat.read(path, as_version=4).cells[1].outputs[0]["text"] == "3\n"
    broken = _notebook(tmp_path / "02-y.ipynb", "N = 2", "raise RuntimeError('boom')")
    before = broken.read_text()
    run = tour.refresh(broken)
    assert not run.ok and "boom" in run.error
    assert broken.read_text() == before  # a failed run never overwrites the committed notebook


def test_pages_need_no_other_host_and_show_a_widget_as_its_fallback(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()
    nb = _notebook(src / "01-widget.ipynb", "FULL = False",
                   "import matplotlib.pyplot as plt\nplt.plot([1, 2]);",
                   "from mlprod.widgets.fallback import Fallback\nimport ipywidgets as w\n"
                   "class Panel(Fallback, w.VBox):\n    what = 'demo panel'\nPanel([w.IntSlider()])")
    nbformat.write(nbformat.read(nb, as_version=4), nb)
    runs = tour.tour([nb], tmp_path / "out", workers=1)
    assert runs[0].ok, runs[0].error
    page = (tmp_path / "out" / "01-widget.html").read_text()
    assert "<img" in page and "data:image/png;base64" in page  # the plot, inline
    assert "The demo panel: an interactive widget." in page  # the fallback, not a repr
    assert "Panel(children" not in page and "VBox(children" not in page
    assert "<script src=" not in page and "cdnjs" not in page and "unpkg" not in page
    assert "01-widget.html" in (tmp_path / "out" / "index.html").read_text()
