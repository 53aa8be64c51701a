"""The learner's tools: generate, compare, plots, the progress bar and --quiet."""
import json
import os
import subprocess
import sys

import pytest

from rnn_core.backend import REFERENCE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--hidden", "24", "--lr", "1", "--clip", "1"]


def run(module, *args, timeout=900):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, stdin=subprocess.DEVNULL)


def is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "model.npz"
    result = run("rnn_core.run", *SMALL, "--epochs", "3", "--quiet", "--save", str(path))
    assert result.returncode == 0, result.stderr
    return path


def test_generate_gives_the_same_text_on_every_backend(trained, backend_name):
    result = run("rnn_core.generate", "--checkpoint", str(trained), "--backend", backend_name,
                 "--prefix", "分开", "不分开", "--num-chars", "12")
    assert result.returncode == 0, result.stderr
    reference = run("rnn_core.generate", "--checkpoint", str(trained), "--prefix", "分开",
                    "不分开", "--num-chars", "12")
    assert result.stdout == reference.stdout
    first, second = result.stdout.splitlines()
    assert first.startswith("分开") and len(first) == 14 and second.startswith("不分开")


@pytest.fixture(scope="module")
def trained_gru(tmp_path_factory, request):
    """A two-layer GRU trained by the concise model (the frameworks' reset-after GRU layers) on
    the first selected backend that has them, through the command line."""
    from conftest import selected_backends
    from rnn_core.backend import has
    trainer = next((n for n in selected_backends(request.config) if has(n, "layers")), None)
    if trainer is None:
        pytest.skip("no selected backend has its own GRU layer")
    path = tmp_path_factory.mktemp("ck") / "gru.npz"
    result = run("rnn_core.run", *SMALL, "--backend", trainer, "--cell", "gru", "--layers", "2",
                 "--model", "concise", "--epochs", "2", "--quiet", "--save", str(path))
    assert result.returncode == 0, result.stderr
    return path


def test_a_concise_gru_checkpoint_generates_the_same_text_on_every_backend(trained_gru,
                                                                          backend_name):
    """The checkpoint records the cell, its variant and the layers; NumPy, which has no GRU
    layer, runs the scratch reset-after GRU on the same weights. Sampled (the model of two epochs
    greedily emits spaces), so the text depends on every probability."""
    args = ["--checkpoint", str(trained_gru), "--prefix", "分开", "--num-chars", "12",
            "--temperature", "1", "--seed", "3"]
    result, reference = run("rnn_core.generate", *args, "--backend", backend_name), \
        run("rnn_core.generate", *args)
    assert result.returncode == 0 and reference.returncode == 0, result.stderr + reference.stderr
    assert result.stdout == reference.stdout and len(result.stdout.rstrip("\n")) == 14


def test_generate_samples_reproducibly_with_a_seed(trained):
    args = ["--checkpoint", str(trained), "--temperature", "1.0", "--top-k", "20", "--num-chars",
            "30"]
    a, b = run("rnn_core.generate", *args, "--seed", "1"), run("rnn_core.generate", *args, "--seed", "1")
    c = run("rnn_core.generate", *args, "--seed", "2")
    assert a.returncode == 0 and a.stdout == b.stdout != c.stdout


def test_generate_samples_among_the_top_k_at_the_temperature_given(trained):
    """``--top-k K`` samples among the K likeliest characters at ``--temperature T``, 1 when not
    given. So ``--top-k 1`` is greedy, and so is ``--top-k 3 --temperature 1e-300`` (the
    likeliest gets all the probability); ``--top-k 3`` at temperature 1 is not, for this seed (the
    check that the other two could fail)."""
    args = ["--checkpoint", str(trained), "--prefix", "分开", "--num-chars", "30", "--seed", "1"]
    greedy = run("rnn_core.generate", *args)
    assert greedy.returncode == 0, greedy.stderr
    for options in (["--top-k", "1"], ["--top-k", "3", "--temperature", "1e-300"]):
        result = run("rnn_core.generate", *args, *options)
        assert result.returncode == 0 and result.stdout == greedy.stdout, options
    assert run("rnn_core.generate", *args, "--top-k", "3").stdout != greedy.stdout

@pytest.mark.parametrize("args,message", [
    (["--prefix", "QQ"], "'Q'"),
    (["--temperature", "-1"], "--temperature: must be 0 or a positive finite number"),
    (["--num-chars", "0"], "must be a positive integer"),
])
def test_generate_refuses_bad_input_clearly(trained, args, message):
    result = run("rnn_core.generate", "--checkpoint", str(trained), *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_compare_prints_the_table_and_draws_the_curves(tmp_path, selected):
    png, out = tmp_path / "curves.png", tmp_path / "compare.json"
    names = list(dict.fromkeys([REFERENCE, *selected]))
    result = run("rnn_core.compare", "--backends", *names, "--epochs",
                 "3", *SMALL, "--pred-len", "8", "--plot", str(png), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "| backend | final perplexity | largest loss difference from numpy |" in result.stdout
    assert "| epoch | " + " | ".join(names) + " |" in result.stdout     # perplexity by epoch
    for name in names:
        assert f"  {name}: perplexity " in result.stderr                 # progress, per backend
        assert f"{name:>{max(map(len, names))}}  分开" in result.stdout    # text side by side
    summary = json.loads(out.read_text())
    curves = {r["backend"]: r["perplexity"] for r in summary["results"]}
    assert set(curves) == set(names)
    for name, curve in curves.items():
        assert len(curve) == 3
        assert curve == pytest.approx(curves[REFERENCE], rel=1e-3), name
    assert is_png(png)


def test_run_plot_and_quiet(tmp_path):
    png = tmp_path / "run.png"
    result = run("rnn_core.run", *SMALL, "--epochs", "4", "--pred-period", "2", "--quiet",
                 "--plot", str(png))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("epoch 4, perplexity") and len(lines) == 4   # + 2 texts + plot
    assert is_png(png)


def test_progress_bar_only_on_a_terminal():
    from rnn_core.cli import Progress
    from rnn_core.train import EpochResult
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    plain, terminal = io.StringIO(), Terminal()
    for stream in (plain, terminal):
        bar = Progress(stream)
        bar.update(EpochResult(1, 300.0, 0.1, 100, None), 4)
        bar.print("epoch 1, perplexity 300.00, time 0.10 sec")
        bar.close()
    assert plain.getvalue() == "epoch 1, perplexity 300.00, time 0.10 sec\n"
    assert "[#######" in terminal.getvalue() and "epoch 1/4" in terminal.getvalue()
    assert terminal.getvalue().endswith("epoch 1, perplexity 300.00, time 0.10 sec\n")
