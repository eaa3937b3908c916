"""The notebooks execute on CPU with the tiny setting (GENJAX_NOTEBOOK_TINY=1)."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT

NOTEBOOKS = sorted(p.name for p in (PROJECT_ROOT / "notebooks").glob("*.ipynb"))  # every one


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_tiny(name, data_root, tmp_path, monkeypatch):
  path = PROJECT_ROOT / "notebooks" / name
  monkeypatch.setenv("GENJAX_NOTEBOOK_TINY", "1")
  monkeypatch.setenv("GENJAX_DATA_DIR", data_root)
  monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
  notebook = nbformat.read(path, as_version=4)
  NotebookClient(notebook, timeout=300, kernel_name="python3",
                 resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on error
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  assert any(o.output_type == "display_data" and "image/png" in o.get("data", {})
             for o in outputs), "the notebook should show pictures inline"
