"""The notebooks in ``notebooks/`` run top to bottom (nbclient) on a small world, so they never
rot: the data scientist's on a private copy of the trained workspace (it trains and evaluates),
the auditor's on the workspace that has served (it only reads)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.integration.audited import AuditedWorkspace
from tests.integration.workspaces import copy_workspace, crisk_home

pytestmark = pytest.mark.integration

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _run(name: str, home: Path, cwd: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    with crisk_home(home):
        NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
        ).execute()
    return notebook


def _outputs(notebook: nbformat.NotebookNode) -> str:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def test_data_scientist_notebook(trained_workspace: Path, tmp_path: Path) -> None:
    home = copy_workspace(trained_workspace, tmp_path / "home")
    notebook = _run("data_scientist.ipynb", home, tmp_path)
    text = _outputs(notebook)
    assert "labelled items" in text and "crisk_declaration_financial" in text
    assert "logistic_regression" in text and "rules" in text, "the comparison with the baselines"
    assert (home / "runs" / "notebook_evaluation" / "metrics.json").is_file()


def test_auditor_notebook(audited_workspace: AuditedWorkspace, tmp_path: Path) -> None:
    notebook = _run("auditor.ipynb", audited_workspace.home, tmp_path)
    text = _outputs(notebook)
    assert "Top reasons" in text and "intact" in text
    assert "hit rate" in text
