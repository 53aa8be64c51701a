"""Write docs/side-by-side.md: every op of the tensor-ops protocol and every member of the concise
model's layer class, with each backend's implementation in one table row.

    python docs/scripts/side_by_side.py            # (re)write the page
    python docs/scripts/side_by_side.py --check    # exit 1 if the page is out of date

The backends are those of the table in ``rnn_core/backend.py``, in its order. Their files are
read with ``ast``, never imported, so this runs without any framework installed. A method that
does more than the others need (``compile``, ``graph``, ``scan``, ``compile_loop``: tracing,
``tf.function``, ``jit``, ``lax.scan``, kept buffers) must say why in its docstring or its first
comment; the page quotes that sentence.
``tests/test_side_by_side.py`` fails when the page is out of date or incomplete."""
from __future__ import annotations

import argparse
import ast
import html
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from rnn_core.backend import BACKEND_NAMES, backend_source  # noqa: E402

PAGE = ROOT / "docs" / "side-by-side.md"
OPS = ROOT / "rnn_core" / "ops.py"
MACHINERY = ("compile", "graph", "scan", "compile_loop")   # where a framework may need machinery
MAX_LINES = 14                        # longer bodies are cut, with the count of lines left out
LAYER_ROWS = ("layout", "__init__", "apply")


@dataclass
class Backend:
    name: str
    title: str
    path: Path
    found: bool
    summary: str = ""                                  # the module docstring's first sentence
    methods: dict = field(default_factory=dict)        # name -> (FunctionDef, source lines)
    layer: ast.ClassDef | None = None
    layer_note: list = field(default_factory=list)     # recurrent_layer's body, where no class
    layer_table: ast.Assign | None = None              # the module's table of layers and layouts
    lines: list = field(default_factory=list)


# ---- reading source with ast ---------------------------------------------------------------------
def first_sentence(text: str | None) -> str:
    text = " ".join((text or "").split())
    match = re.match(r"(.+?\.)(\s|$)", text)
    return match.group(1) if match else text


def body_lines(node: ast.AST, lines: list) -> list:
    """The lines of a function's body, comments included, without its ``def`` line(s) and its
    docstring, dedented."""
    start = node.lineno - 1
    depth, end = 0, start                 # the signature ends at the ':' outside brackets
    for end in range(start, node.end_lineno):
        code = lines[end].split("#")[0]
        depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
        if depth == 0 and code.rstrip().endswith(":"):
            break
    body = list(range(end + 1, node.end_lineno))
    docstring = node.body[0]
    if (isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant)
            and isinstance(docstring.value.value, str)):
        skip = set(range(docstring.lineno - 1, docstring.end_lineno))
        body = [i for i in body if i not in skip]
    return textwrap.dedent("\n".join(lines[i] for i in body)).strip("\n").splitlines()


def first_comment(code: list) -> str:
    for line in code:
        if "#" in line:
            return first_sentence(line.split("#", 1)[1].strip())
    return ""


PASS_THROUGH = ("return fn", "return python_scan(self, f, carry, xs)",
                "return python_loop(self, f)")


def is_pass_through(code: list) -> bool:
    """The method only hands its argument back (``return fn``) or runs the Python loop that
    rnn_core/ops.py gives every backend: nothing extra is needed."""
    statements = [line.split("#")[0].strip() for line in code if line.split("#")[0].strip()]
    return len(statements) == 1 and statements[0] in PASS_THROUGH


def read_backend(name: str) -> Backend:
    module, class_name, title = backend_source(name)
    path = ROOT / "backends" / (module.rsplit(".", 1)[1] + ".py")    # rnn_core.backends = backends/
    backend = Backend(name, title, path, path.is_file())
    if not backend.found:
        return backend
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    backend.lines = source.splitlines()
    backend.summary = first_sentence(ast.get_docstring(tree))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    ops_class = classes[class_name]
    backend.methods = {node.name: node for node in ops_class.body
                       if isinstance(node, ast.FunctionDef)}
    recurrent_layer = backend.methods.get("recurrent_layer")
    returned = [node.value.func.id for node in ast.walk(recurrent_layer)
                if isinstance(node, ast.Return) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)] if recurrent_layer else []
    if returned and returned[0] in classes:
        backend.layer = classes[returned[0]]
    elif recurrent_layer is not None:
        backend.layer_note = body_lines(recurrent_layer, backend.lines)
    backend.layer_table = next((node for node in tree.body if isinstance(node, ast.Assign)
                                and any(getattr(t, "id", "").endswith("_LAYERS")
                                        for t in node.targets)), None)
    return backend


def protocol() -> list:
    """``[(section, method name, first sentence of its docstring)]`` of :class:`rnn_core.ops.Ops`,
    in order; sections are the ``# ---- title ----`` comments of ops.py."""
    source = OPS.read_text(encoding="utf-8")
    lines = source.splitlines()
    headings = [(i + 1, m.group(1)) for i, line in enumerate(lines)
                if (m := re.match(r"\s*# -+ (.+?) -+\s*$", line))]
    ops_class = next(node for node in ast.parse(source).body
                     if isinstance(node, ast.ClassDef) and node.name == "Ops")
    out = []
    for node in ops_class.body:
        if isinstance(node, ast.FunctionDef):
            section = max((h for h in headings if h[0] < node.lineno),
                          default=(0, "the backend"))[1]
            out.append((section, node.name, first_sentence(ast.get_docstring(node))))
    return out


# ---- writing the page --------------------------------------------------------------------------
def prose(text: str) -> str:
    """A docstring's sentence for a table cell: Sphinx roles dropped, pipes escaped."""
    return re.sub(r":\w+:`", "`", text).replace("|", "\\|")


def cell(code: list) -> str:
    """Code lines as one Markdown table cell: HTML ``<code>``, one ``<br>`` per line, with the
    characters Markdown or the table would read escaped."""
    if not code:
        return " "
    if len(code) > MAX_LINES:
        code = code[:MAX_LINES - 1] + [f"# … {len(code) - MAX_LINES + 1} more lines"]
    escaped = []
    for line in code:
        indent = len(line) - len(line.lstrip(" "))
        text = html.escape(line.lstrip(" "), quote=False)
        for char, entity in (("|", "&#124;"), ("*", "&#42;"), ("_", "&#95;"), ("`", "&#96;"),
                             ("[", "&#91;"), ("]", "&#93;"), ("\\", "&#92;"), ("~", "&#126;")):
            text = text.replace(char, entity)
        text = re.sub(" {2,}", lambda run: "&nbsp;" * len(run.group()), text)  # HTML keeps one
        escaped.append("&nbsp;" * indent + text)
    return "<code>" + "<br>".join(escaped) + "</code>"


def method_cell(backend: Backend, name: str) -> str:
    if not backend.found:
        return f"({backend.path.name} is not in this checkout)"
    node = backend.methods.get(name)
    return cell(body_lines(node, backend.lines)) if node else "**missing**"


def layer_cell(backend: Backend, row: str) -> str:
    if not backend.found:
        return f"({backend.path.name} is not in this checkout)"
    if backend.layer is None:
        return cell(backend.layer_note) if row == "class" else " "
    layer, lines = backend.layer, backend.lines
    if row == "class":
        return f"`{layer.name}`: {prose(first_sentence(ast.get_docstring(layer)))}"
    members = {node.name: node for node in layer.body if isinstance(node, ast.FunctionDef)}
    if row == "layout":
        node = backend.layer_table
        return cell(textwrap.dedent("\n".join(lines[node.lineno - 1:node.end_lineno])).splitlines()
                    ) if node else "**missing**"
    if row in members:
        return cell(body_lines(members[row], lines))
    others = [n for name, n in members.items() if name not in LAYER_ROWS]   # helpers
    return cell([line for n in others for line in
                 [f"def {n.name}(…):"] + ["    " + l for l in body_lines(n, lines)]])


def other_code(backend: Backend) -> str:
    """What else the backend's file defines (private methods, helper classes and functions),
    with the lines each takes: the framework-specific machinery beyond the ops."""
    if not backend.found:
        return f"({backend.path.name} is not in this checkout)"
    tree = ast.parse("\n".join(backend.lines))
    _, class_name, _ = backend_source(backend.name)
    protocol_names = {name for _, name, _ in protocol()}
    found = [(f"{name}()", node) for name, node in backend.methods.items()
             if name not in protocol_names and name != "__init__"]
    layer = backend.layer.name if backend.layer else None
    found += [(node.name + ("()" if isinstance(node, ast.FunctionDef) else ""), node)
              for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))
              and node.name not in (class_name, layer)]
    return ", ".join(f"`{name}` ({node.end_lineno - node.lineno + 1} lines)"
                     for name, node in found) or "nothing"


def why_notes(backends: list) -> tuple:
    """``(notes, problems)``: for each backend whose ``compile`` or ``graph`` does more than
    return its argument, the sentence that says why; a problem where there is none."""
    notes, problems = [], []
    for b in backends:
        for name in MACHINERY:
            node = b.methods.get(name)
            if node is None:
                continue
            code = body_lines(node, b.lines)
            if is_pass_through(code):
                continue
            why = first_sentence(ast.get_docstring(node)) or first_comment(code)
            if why:
                notes.append(f"- **{b.title}, `{name}`**: {prose(why)}")
            else:
                problems.append(f"{b.path.relative_to(ROOT)}: {name} does more than return fn "
                                "but says not why: give it a one-sentence docstring or comment")
    return notes, problems


def page() -> tuple:
    """``(markdown, problems)``: the page, and what makes it incomplete."""
    backends = [read_backend(name) for name in BACKEND_NAMES]
    problems = [f"{b.path.relative_to(ROOT)} is missing" for b in backends if not b.found]
    header = "| op | what it does | " + " | ".join(
        f"[{b.title}](../backends/{b.path.name})" for b in backends) + " |"
    rule = "| --- | --- |" + " --- |" * len(backends)
    out = ["# The frameworks side by side", "",
           "<!-- Generated by docs/scripts/side_by_side.py from rnn_core/ops.py and backends/*.py:",
           "     do not edit; run the script. tests/test_side_by_side.py checks it is current. -->",
           "",
           "Each op of the tensor-ops protocol ([`rnn_core/ops.py`](../rnn_core/ops.py)), and each "
           "part of the concise model's layers ([concise.md](concise.md)), as every backend writes "
           "it: the body of the backend's method, read from its file. The core calls these "
           "methods, never a framework, so one row is everything that differs between the "
           "frameworks for that op. [cheatsheet.md](cheatsheet.md) puts the same steps in the "
           "words of each framework's own tutorials.", ""]
    out += [f"- **{b.title}** ([`backends/{b.path.name}`](../backends/{b.path.name})): "
            f"{prose(b.summary) if b.found else 'not in this checkout.'}" for b in backends]
    notes, missing_why = why_notes(backends)
    problems += missing_why
    out += ["", "## What one framework needs and the others do not", "",
            "`compile`, `graph`, `scan` and `compile_loop` are where a framework may need "
            "machinery of its own to run the core's step, and its loops over time steps and "
            "minibatches, fast. Each backend that does more there than hand the function "
            "back says why, in its own words:", ""] + notes + [
            "", "Besides the ops and the layer class, each backend's file holds:", "",
            "| " + " | ".join(b.title for b in backends) + " |",
            "|" + " --- |" * len(backends),
            "| " + " | ".join(other_code(b) for b in backends) + " |"]
    section = None
    for name, op, what in protocol():
        if name != section:
            section = name
            out += ["", f"## {section[0].upper()}{section[1:]}", "", header, rule]
        cells = [method_cell(b, op) for b in backends]
        problems += [f"{b.path.relative_to(ROOT)}: no method {op}" for b, c in zip(backends, cells)
                     if c == "**missing**"]
        out.append(f"| `{op}` | {prose(what)} | " + " | ".join(cells) + " |")
    out += ["", "## The concise model's layers", "",
            "`recurrent_layer` returns the framework's recurrent layers (RNN, GRU or LSTM, stacked) "
            "and dense layer as one object. The backend's table gives, for each cell and variant, "
            "the framework's layer and the `layout` of one layer's weights: how the canonical "
            "weights map to the framework's (gate order, transposes, bias splits); `apply` calls "
            "the layers with the weights it is given (see `RecurrentLayer` in "
            "`rnn_core/ops.py`).", "",
            header.replace("| op | what it does |", "| part | what it is |"), rule]
    what = {"class": "the class",
            "layout": "the table: (cell, variant) -> the layer, (framework name, canonical parts, "
                      "transposed) of one layer's weights",
            "__init__": "building the layers", "apply": "the forward pass with given weights",
            "helpers": "other methods of the class"}
    for row in ("class",) + LAYER_ROWS + ("helpers",):
        out.append(f"| `{row}` | {what[row]} | " + " | ".join(layer_cell(b, row) for b in backends)
                   + " |")
    return "\n".join(out) + "\n", problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if the page is out of date")
    args = p.parse_args(argv)
    text, problems = page()
    for problem in problems:
        print(f"incomplete: {problem}", file=sys.stderr)
    if args.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.is_file() else ""
        if current != text:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python "
                  "docs/scripts/side_by_side.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
