"""Every ``python -m rnn_core…`` command in the README and in docs/ runs, so the docs cannot drift
from the code. Commands are taken from ``sh`` code blocks and from lines that start with ``$ ``;
each page's commands run in order, in one temporary folder (a page may save a checkpoint that a
later command loads), with fewer epochs and a smaller hidden layer so the suite stays quick."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from rnn_core.backend import REFERENCE, canonical_name, has

from conftest import require_book_corpus

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def commands(page: Path) -> list:
    found, in_sh = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_sh = line.strip() == "```sh" and not in_sh
            continue
        text = line[2:] if line.startswith("$ ") else line if in_sh else ""
        words = shlex.split(text, comments=True)
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):   # VAR=value prefixes
            words = words[1:]
        if words[:2] == ["python", "-m"] and words[2].startswith("rnn_core."):
            found.append(words[2:])
    return found


def option(words, name):
    return words[words.index(name) + 1] if name in words else None


def on_selected(args: list, selected: list) -> list:
    """``--backend B`` / ``--backends A B`` limited to the backends this run of the suite tests:
    a backend that is not selected is replaced by the first selected one that can run the
    command (one with its own RNN layer for ``--model concise``), so a page's later commands,
    which may load what an earlier one saved, still run. None where no selected backend can run
    it (``--model concise`` with ``--backends numpy``)."""
    args = list(args)
    if "--backend" in args:
        i = args.index("--backend") + 1
        if canonical_name(args[i]) not in selected:
            able = [name for name in selected
                    if option(args, "--model") != "concise" or has(name, "layers")]
            if not able:
                return None
            args[i] = able[0]
    if "--backends" in args:
        i = args.index("--backends") + 1
        end = next((j for j in range(i, len(args)) if args[j].startswith("--")), len(args))
        kept = [name for name in args[i:end] if canonical_name(name) in selected]
        args[i:end] = kept or selected[:1]
    return args


def shortened(words: list, selected: list) -> list:
    """The same command with about 1/50 of the epochs and, for new models, hidden 32, on the
    selected backends (None where none of them can run it)."""
    module, args = words[0], on_selected(words[1:], selected)
    if args is None:
        return None
    if module in ("rnn_core.run", "rnn_core.compare"):
        epochs = option(args, "--epochs")
        if epochs is None:
            args += ["--epochs", "2"]
        else:
            args[args.index("--epochs") + 1] = str(max(1, int(epochs) // 50))
        if "--resume" not in args and "--hidden" not in args:
            args += ["--hidden", "32"]
        if module == "rnn_core.run":
            args += ["--pred-len", "5"]
    if module == "rnn_core.bench":
        args += ["--epochs", "1", "--warmup", "0", "--repeats", "1", "--hidden", "16",
                 "--backends", REFERENCE]
    return [module] + args


def test_the_docs_have_commands():
    assert sum(len(commands(page)) for page in PAGES) >= 15


@pytest.mark.parametrize("page", [p for p in PAGES if commands(p)], ids=lambda p: p.name)
def test_every_command_on_the_page_runs(page, tmp_path, selected):
    for words in commands(page):
        if option(words, "--corpus") in ("jaychou", "timemachine") or words[0] == "rnn_core.bench":
            require_book_corpus(option(words, "--corpus") or "jaychou")
        run = shortened(words, selected)
        if run is None:         # no selected backend can run it
            continue
        result = subprocess.run([sys.executable, "-m", *run], capture_output=True, text=True,
                                cwd=tmp_path, timeout=900, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert result.returncode == 0, f"{' '.join(run)}\n{result.stderr[-2000:]}"
