"""``python -m rnn_core.compare``, the classroom tool, through the command line: run's options,
progress while it runs, perplexity by epoch, generated text side by side, --plot and --json.
Tiny settings (hidden 16, two or three epochs); the test across every selected backend is
tests/test_tools.py's."""
import json
import os
import subprocess
import sys

import pytest

from rnn_core import cli, compare, run as run_tool
from rnn_core.backend import BACKEND_NAMES, REFERENCE
from rnn_core.errors import BackendUnavailable
from test_profiles import pretend_not_installed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--hidden", "16", "--pred-len", "5"]


def run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=900, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONPATH": ROOT})


def test_compare_has_every_option_of_run_but_the_single_run_ones():
    def options(parser):
        return {s for action in parser._actions for s in action.option_strings}
    shared = options(run_tool.parser()) - {"--backend", "--save", "--resume", "--quiet", "-h",
                                           "--help", "--plot"}
    assert shared <= options(compare.parser())
    assert {"--backends", "--plot", "--json"} <= options(compare.parser())


def test_compare_trains_with_runs_options_and_prints_runs_numbers(tmp_path):
    options = ["--epochs", "2", "--pred-period", "2", *TINY, "--sampling", "consecutive", "--num-steps", "10",
               "--batch-size", "8", "--lr", "1", "--clip", "1", "--seed", "3", "--prefixes",
               "不分开", "--max-chars", "3000"]
    out = tmp_path / "compare.json"
    result = run("rnn_core.compare", "--backends", REFERENCE, *options, "--json", str(out))
    assert result.returncode == 0, result.stderr
    (saved,) = json.loads(out.read_text())["results"]
    config = saved["config"]
    assert {k: config[k] for k in ("num_epochs", "num_hiddens", "sampling", "num_steps",
                                   "batch_size", "lr", "clipping_theta", "seed", "prefixes")} == {
        "num_epochs": 2, "num_hiddens": 16, "sampling": "consecutive", "num_steps": 10,
        "batch_size": 8, "lr": 1.0, "clipping_theta": 1.0, "seed": 3, "prefixes": ["不分开"]}
    alone = run("rnn_core.run", "--backend", REFERENCE, *options, "--quiet")
    assert alone.returncode == 0, alone.stderr
    epoch_line, text = alone.stdout.splitlines()[:2]     # epoch 2, perplexity P, ...; - text
    perplexity = epoch_line.split("perplexity ")[1].split(",")[0]
    assert f"{saved['perplexity'][-1]:.2f}" == perplexity                  # the same numbers
    assert f"| 2 | {saved['perplexity'][-1]:.3f} |" in result.stdout
    assert f"{REFERENCE}  {text[3:]}" in result.stdout                    # the same text


def test_compare_shows_progress_and_perplexity_every_pred_period(tmp_path):
    result = run("rnn_core.compare", "--backends", REFERENCE, "--epochs", "3", "--pred-period",
                 "2", *TINY)
    assert result.returncode == 0, result.stderr
    assert f"  {REFERENCE}: perplexity " in result.stderr     # one line when it finishes
    table = result.stdout.split("perplexity by epoch\n")[1].split("\n\n")[0].splitlines()
    assert [row.split(" | ")[0] for row in table[2:]] == ["| 2", "| 3"]   # every 2, and the last
    assert "generated text (greedy)" in result.stdout


def test_compare_concise_has_the_scratch_reference(tmp_path):
    out = tmp_path / "compare.json"
    result = run("rnn_core.compare", "--backends", REFERENCE, "--model", "concise", "--epochs",
                 "1", *TINY, "--json", str(out))
    assert result.returncode == 0, result.stderr
    (reference,) = json.loads(out.read_text())["results"]
    assert (reference["config"]["model"], reference["config"]["sampling"]) == (
        "scratch", "consecutive")


def test_run_child_passes_progress_on_as_it_comes():
    spec = {"backend": REFERENCE, "device": "cpu", "corpus": None, "max_chars": 2000,
            "numerics": {}, "settings": {"num_epochs": 2, "num_hiddens": 8, "pred_len": 2}}
    records = []
    outcome = cli.run_child("rnn_core.compare", spec, timeout=600, on_progress=records.append)
    assert [(r["epoch"], r["num_epochs"]) for r in records] == [(1, 2), (2, 2)]
    assert [e["perplexity"] for e in outcome["history"]] == [r["perplexity"] for r in records]
    failed = cli.run_child("rnn_core.compare", {**spec, "backend": "nope"}, timeout=600)
    assert "unknown backend 'nope'" in failed["error"]
    slow = cli.run_child("rnn_core.compare", spec, timeout=0.01)
    assert slow["error"] == "took longer than 0.01 s"


def test_compare_refuses_bad_input_in_one_line():
    for args, message in ((["--backends", "nope"], "unknown backend 'nope'"),
                          (["--epochs", "0"], "must be a positive integer"),
                          (["--backends", REFERENCE, "--epochs", "1", "--hidden", "8",
                            "--pred-len", "200000"],
                           "--pred-len 200000 is more than the 100,000 characters")):
        result = run("rnn_core.compare", *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr    # before training


def test_a_bad_corpus_prefix_or_batch_is_one_line_before_any_backend_starts(tmp_path):
    """Checked once, as run checks them, not in every child (which printed each child's error,
    then all of them again)."""
    short = tmp_path / "short.txt"
    short.write_text("分开 不分开 " * 5, encoding="utf-8")
    for args, message in (
            (["--prefixes", ""], "--prefixes '' is empty: give at least one character"),
            (["--prefixes", "分开", "ξ"], "--prefixes: "),
            (["--batch-size", "100000"], "too short for one batch of random sampling with "
                                         "batch_size=100000"),
            (["--corpus", str(short)], "too short for one batch"),
            (["--corpus", str(tmp_path / "missing.txt")], "does not exist")):
        result = run("rnn_core.compare", "--backends", REFERENCE, "--epochs", "1", *TINY, *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1, \
            result.stderr


def test_a_backend_that_fails_fails_compare_once_the_others_are_shown(tmp_path, selected):
    """The failed backend's error as it fails; the others' results printed and written; then one
    line that names it, and exit status 2 (not 0, as if all had gone well). Backends given with
    commas, as the tests' own option takes them."""
    names = list(dict.fromkeys([REFERENCE, *selected]))[:2]
    out = tmp_path / "compare.json"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "faults.py"), "child-fails=1",
         "rnn_core.compare", "--backends", ",".join(names), "--epochs", "1", *TINY, "--json",
         str(out)], capture_output=True, text=True, cwd=ROOT, timeout=900,
        stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert f"  {names[0]}: error: the child failed (injected)" in lines
    if len(names) == 1:         # --backends numpy: nothing to show
        assert lines[-1] == f"error: every backend failed: {names[0]} (the errors are above)"
        assert not out.exists()
        return
    assert lines[-1] == (f"error: {names[0]} failed (the error is above); the results shown are "
                         f"{names[1]}'s")
    saved = json.loads(out.read_text())
    assert [r["backend"] for r in saved["results"]] == [names[1]]
    assert list(saved["skipped"]) == [names[0]]
    assert "perplexity by epoch" in result.stdout


def test_a_backend_that_is_not_installed_is_one_line_before_any_training(monkeypatch, capsys):
    name = next(n for n in BACKEND_NAMES if n != REFERENCE)
    pretend_not_installed(name, monkeypatch)
    started = []
    monkeypatch.setattr(cli, "run_child", lambda *a, **k: started.append(a))
    with pytest.raises(BackendUnavailable, match=f"^backend {name!r} needs .*, which is not "
                                                 f"installed: "):
        compare.main(["--backends", REFERENCE, name, "--epochs", "1", *TINY])
    assert started == []


def test_compare_continues_a_corpus_with_its_own_prefixes_as_run_does(tmp_path):
    """Without --prefixes, the corpus's own (a file's first word), prepared as run prepares
    them, not the lyrics' 分开 不分开 on every corpus."""
    text = tmp_path / "words.txt"
    text.write_text("hello world, the time machine. " * 200, encoding="utf-8")
    out = tmp_path / "compare.json"
    result = run("rnn_core.compare", "--backends", REFERENCE, "--epochs", "1", *TINY,
                 "--corpus", str(text), "--json", str(out))
    assert result.returncode == 0, result.stderr
    (saved,) = json.loads(out.read_text())["results"]
    assert saved["config"]["prefixes"] == ["hello"] and list(saved["samples"]) == ["hello"]
