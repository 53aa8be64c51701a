"""Every notebook in notebooks/ runs top to bottom, and each ``.ipynb`` is the one its jupytext
``.py`` (percent format, the reviewable text) generates: ``make notebooks`` writes them.

The notebook tools come with the ``notebooks`` extra. Where they are missing the tests are
skipped with the reason, except in CI (``CI=true``), where their absence fails the run."""
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
TOOLS = ("jupytext", "nbclient", "nbformat", "ipykernel")


def require_notebook_tools():
    missing = [name for name in TOOLS if importlib.util.find_spec(name) is None]
    if not missing:
        return
    message = (f"the notebook tools are not installed ({', '.join(missing)}): "
               "make install, or pip install -c constraints/<profile>.txt -e '.[notebooks]'")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def test_there_is_a_notebook_per_idea():
    assert len(NOTEBOOKS) >= 6
    assert all(path.with_suffix(".ipynb").is_file() for path in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_ipynb_is_generated_from_its_py(path):
    require_notebook_tools()
    import jupytext
    import nbformat
    want = jupytext.read(path)
    have = nbformat.read(path.with_suffix(".ipynb"), as_version=4)
    assert [(c.cell_type, c.source) for c in have.cells] == \
        [(c.cell_type, c.source) for c in want.cells], \
        f"{path.with_suffix('.ipynb').name} is out of date: run make notebooks"
    assert all(not c.get("outputs") for c in have.cells if c.cell_type == "code"), \
        "commit notebooks without outputs: delete the .ipynb and run make notebooks"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernel spec for this very interpreter, with the repository on its path, under a name
    of its own (a user's own 'python3' kernel may be another Python)."""
    require_notebook_tools()
    folder = tmp_path_factory.mktemp("jupyter")
    spec = folder / "kernels" / "rnn-core-test"
    spec.mkdir(parents=True)
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rnn-core tests", "language": "python",
        "env": {"PYTHONPATH": python_path}}))
    previous = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(folder), previous]))
    yield "rnn-core-test"
    if previous is None:
        del os.environ["JUPYTER_PATH"]
    else:
        os.environ["JUPYTER_PATH"] = previous


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs(path, kernel, tmp_path):
    import nbclient
    import nbformat
    notebook = nbformat.read(path.with_suffix(".ipynb"), as_version=4)
    start = time.perf_counter()
    # Run from a scratch folder: a notebook that leaves files behind does not touch the checkout.
    nbclient.NotebookClient(notebook, kernel_name=kernel, timeout=600,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    print(f"{path.stem}: {time.perf_counter() - start:.1f} s")
    images = sum("image/png" in output.get("data", {}) for cell in notebook.cells
                 for output in cell.get("outputs", []))
    assert images >= 1, f"{path.name} drew no figure"
    assert list(tmp_path.iterdir()) == [], f"{path.name} left files behind"
