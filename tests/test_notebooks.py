"""Every notebook's shape, collected by glob so a new notebook is covered at once.

Executing the notebooks under strict nbval is the `make test` notebook stage
(`pytest --nbval ... notebooks`); these tests check what nbval does not.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import papermill
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
SOLUTIONS = sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))
ALL = LESSONS + SOLUTIONS
URL = re.compile(r"\b(?:https?|wss?)://([^/:\s'\"\])]+)")
LOCAL = {"127.0.0.1", "localhost"}


def _ids(paths):
    return [p.relative_to(NOTEBOOKS).as_posix() for p in paths]


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    return str(output.get("data", {}).get("text/plain", ""))


def test_notebooks_exist_and_every_file_is_a_lesson_or_solution():
    assert len(LESSONS) >= 2
    stray = [p.name for p in NOTEBOOKS.glob("*.ipynb") if p not in LESSONS]
    assert stray == [], f"{stray}: name notebooks NN-title.ipynb so the suite covers them"


@pytest.mark.parametrize("path", LESSONS, ids=_ids(LESSONS))
def test_lesson_has_a_tested_solutions_notebook(path):
    solutions = NOTEBOOKS / "solutions" / f"{path.stem}-solutions.ipynb"
    assert solutions.exists(), f"add {solutions.relative_to(ROOT)} with the exercises' solutions"


@pytest.mark.parametrize("path", LESSONS, ids=_ids(LESSONS))
def test_lesson_is_listed_in_the_readme(path):
    assert path.stem in (ROOT / "README.md").read_text(), f"list {path.stem} in README's path"


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_kernel_and_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    first = _code(nb)[0]
    assert "parameters" in first.metadata.get("tags", []), "tag the first code cell 'parameters'"
    params = papermill.inspect_notebook(str(path))
    assert "FULL" in params, "the parameters cell must define FULL (the opt-in bigger run)"
    assert params["FULL"]["default"] == "False", "FULL defaults to False: CI runs the quick mode"


@pytest.mark.parametrize("path", LESSONS, ids=_ids(LESSONS))
def test_lesson_structure(path):
    nb = nbformat.read(path, as_version=4)
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert "You will learn" in markdown[0], "open with a 'You will learn' list"
    headings = [line for src in markdown for line in src.splitlines() if line.startswith("## ")]
    assert headings[-2:] == ["## Summary", "## Exercises"], "end with ## Summary, then ## Exercises"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
            assert _code_run_before(nb.cells, i) <= 2, f"cell {i}: put prose before code cells"


def _code_run_before(cells, i: int) -> int:
    """Count the code cells right before cell ``i`` (a claim's assert may follow its measurement)."""
    run = 0
    while i > 0 and cells[i - 1].cell_type == "code":
        run, i = run + 1, i - 1
    return run


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_cells_are_small_local_and_committed_with_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = _code(nb)
    for cell in code:
        lines = cell.source.strip().splitlines()
        assert len(lines) <= 15, f"a code cell has {len(lines)} lines; move logic into mlprod"
        assert "import *" not in cell.source, "no star imports"
        texts = [cell.source] + [_text(o) for o in cell.get("outputs", [])]
        hosts = {h for t in texts for h in URL.findall(t)} - LOCAL
        assert not hosts, f"addresses other than 127.0.0.1/localhost: {sorted(hosts)}"
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, "a committed error output: catch and print the error instead"
    assert any(c.get("outputs") for c in code if c.source.strip()), (
        "committed without outputs: run `make notebooks` (nbval compares stored outputs)")


def test_papermill_runs_a_lesson_with_injected_parameters(tmp_path):
    out = tmp_path / "01.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / "01-explore-and-process.ipynb"), str(out),
        parameters={"FULL": False, "TEST_SIZE": 0.5}, kernel_name="python3",
        cwd=str(NOTEBOOKS), progress_bar=False,
    )
    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "TEST_SIZE = 0.5" in injected[0].source
    printed = "".join(_text(o) for c in _code(nb) for o in c.get("outputs", []))
    assert "train: (172, 6)  test: (172, 6)" in printed  # half of 344 rows, as asked


def test_every_lesson_named_exists():
    # A notebook or the README may name only lessons that are in notebooks/: "03-export-...",
    # "lesson 06" or "lessons 06" each point at the file a learner will look for. A number with
    # a unit ("10-minute", "10-fold") is no lesson.
    stems = {p.name[:2] for p in LESSONS}
    unit = r"(?:second|minute|hour|day|week|month|year|fold|row|line|core|byte|class|step|tree)s?\b"
    named = re.compile(rf"(?<![^\s`(\[\"'/])(\d\d)-(?!{unit})[a-z]{{4,}}(?:-[a-z]+)*"
                       r"|\b[Ll]essons? (\d\d)\b")
    missing = []
    for path in [*ALL, ROOT / "README.md"]:
        found = {a or b for a, b in named.findall(path.read_text(encoding="utf-8"))}
        missing += [f"{path.relative_to(ROOT)} names lesson {n}" for n in sorted(found - stems)]
    assert not missing, f"{missing}: name only lessons in notebooks/ ({sorted(stems)})"


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_committed_outputs_read_well_outside_jupyterlab(path):
    """No Styler repr, no progress bar frozen at 0, no raw <b> tags, no widget constructor repr."""
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(_code(nb)):
        for output in cell.get("outputs", []):
            text = _text(output)
            assert "<pandas.io.formats.style.Styler" not in text, (i, text[:200])
            assert "0fit [" not in text and "<b>" not in text, (i, text[:200])
            assert not re.match(r"\s*[A-Za-z]+\((children|value|layout)=", text), (i, text[:200])
