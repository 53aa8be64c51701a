"""docs/side-by-side.md is generated from the backends' source (docs/scripts/side_by_side.py): it
is current, complete for every op and every backend of rnn_core/backend.py's table, readable
without any framework installed, and every backend's extra machinery says why."""
import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rnn_core.backend import BACKEND_NAMES, backend_source

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "scripts" / "side_by_side.py"


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("side_by_side", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["side_by_side"] = module          # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(generator):
    return generator.page()


def test_the_page_is_current(generator, generated):
    text, _ = generated
    assert generator.PAGE.read_text(encoding="utf-8") == text, \
        "docs/side-by-side.md is out of date: run python docs/scripts/side_by_side.py"


def test_the_page_is_complete_for_every_op_and_backend(generator, generated, selected):
    """Every backend of the table must have its file, its every op and its reasons; one left out
    of ``--backends`` may be missing from the checkout (its column then says so)."""
    text, problems = generated
    unselected = {f"backends/{backend_source(name)[0].rsplit('.', 1)[1]}.py is missing"
                  for name in BACKEND_NAMES if name not in selected}
    assert [problem for problem in problems if problem not in unselected] == []
    titles = [backend_source(name)[2] for name in BACKEND_NAMES]
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    ops = [name for _, name, _ in generator.protocol()]
    assert [row.split("`")[1] for row in rows] == ops + ["class", "layout", "__init__", "apply",
                                                         "helpers"]
    header = next(line for line in text.splitlines() if line.startswith("| op |"))
    assert all(f"[{title}](" in header for title in titles)
    for k, row in enumerate(rows):     # escaped code keeps every row to one cell per column
        cells = re.split(r"(?<!\\)\|", row)[3:-1]      # a pipe escaped as \| is text
        assert len(cells) == len(titles)
        assert k >= len(ops) or all(cell.strip() for cell in cells), row[:120]   # every op


def test_the_generator_imports_no_framework():
    code = ("import sys\nsys.path.insert(0, sys.argv[1])\nimport side_by_side\n"
            "side_by_side.page()\n"
            "loaded = [m for m in ('torch', 'tensorflow', 'mxnet', 'jax', 'keras', 'flax')"
            " if m in sys.modules]\nassert not loaded, loaded\n")
    done = subprocess.run([sys.executable, "-c", code, str(SCRIPT.parent)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr


def test_machinery_without_a_reason_is_reported(generator, tmp_path):
    source = ("class Ops:\n"
              "    def compile(self, fn):\n        return fn  # nothing to do\n"
              "    def graph(self, fn):\n        return framework.jit(fn)\n")
    node = ast.parse(source).body[0]
    backend = generator.Backend("numpy", "Framework", ROOT / "backends" / "x.py", True,
                                methods={n.name: n for n in node.body},
                                lines=source.splitlines())
    notes, problems = generator.why_notes([backend])
    assert notes == [] and len(problems) == 1 and "graph does more than return fn" in problems[0]
    source = source.replace("return framework.jit(fn)",
                            "# Compiled, because eager is slow. More.\n        return jit(fn)")
    node = ast.parse(source).body[0]
    backend.methods, backend.lines = {n.name: n for n in node.body}, source.splitlines()
    notes, problems = generator.why_notes([backend])
    assert problems == [] and notes == ["- **Framework, `graph`**: Compiled, because eager is slow."]


def test_a_cell_escapes_what_markdown_or_the_table_would_read(generator):
    cell = generator.cell(["x = a | b * c_d", "    return [x]  # `x`"])
    assert "|" not in cell and "*" not in cell and "_" not in cell and "`" not in cell
    assert cell.startswith("<code>") and "<br>&nbsp;&nbsp;&nbsp;&nbsp;return" in cell
