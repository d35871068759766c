"""mlprod.lab: what make lab does before JupyterLab opens."""

from __future__ import annotations

import json
import shutil

import nbformat
from nbformat.sign import NotebookNotary

from mlprod import lab


def test_notebooks_become_trusted_and_the_news_popup_is_off(tmp_path):
    copy = shutil.copy(lab.ROOT / "notebooks" / "06-versions-and-routing.ipynb", tmp_path)
    db = str(tmp_path / "signatures.db")
    notary = NotebookNotary(db_file=db)
    assert not notary.check_signature(nbformat.read(copy, as_version=4))  # as git leaves it
    assert lab.trust([tmp_path / "06-versions-and-routing.ipynb"], db_file=db) == 1
    assert notary.check_signature(nbformat.read(copy, as_version=4))
    settings = json.loads(lab.install_overrides(tmp_path / "venv").read_text())
    notification = settings["@jupyterlab/apputils-extension:notification"]
    assert notification == {"checkForUpdates": False, "fetchNews": "false"}
