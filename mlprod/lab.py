"""Get JupyterLab ready for the course: its notebooks trusted, its news pop-up off (``make lab``).

JupyterLab draws a saved widget view only in a *trusted* notebook, and a notebook fetched with
git is not trusted on this machine; trusting the kit's own notebooks (what ``jupyter trust``
does) lets each widget's saved view show when a lesson opens. The settings override turns off the
news and update pop-up, which would cover a projected notebook and reaches for the network.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OVERRIDES = Path(__file__).resolve().parent / "templates" / "lab" / "overrides.json"


def trust(notebooks: list[Path], db_file: str | None = None) -> int:
    """Sign ``notebooks`` as trusted on this machine; return how many were signed."""
    import nbformat
    from nbformat.sign import NotebookNotary

    notary = NotebookNotary(db_file=db_file) if db_file else NotebookNotary()
    for path in notebooks:  # the signature goes to the notary's database; the file is unchanged
        notary.sign(nbformat.read(path, as_version=4))
    return len(notebooks)


def install_overrides(prefix: str | Path = sys.prefix) -> Path:
    """Copy the kit's JupyterLab settings overrides into ``prefix``'s JupyterLab settings."""
    target = Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(OVERRIDES, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlprod.lab", description=__doc__)
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    args = parser.parse_args(argv)
    found = sorted(args.notebooks.glob("*.ipynb")) + sorted(args.notebooks.glob("solutions/*.ipynb"))
    print(f"trusted {trust(found)} notebooks; settings in {install_overrides()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
