"""The benchmark tool runs and reports every figure (its timings are never asserted)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rnn_core import bench
from rnn_core.backend import BACKEND_NAMES, REFERENCE, has

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bound_is_every_flop_at_the_dense_rate():
    recurrent, output = bench.flops_per_token(256, 1027)
    assert (recurrent, output) == (6 * 256 ** 2, 6 * 256 * 1027)
    bound = bench.bound_tokens_per_second(256, 1027, rate_large=3e11)
    assert bound == pytest.approx(3e11 / (recurrent + output))


def test_each_cell_has_its_own_flop_count_and_bound():
    """One product per gate and step forward, two backward (docs/benchmarks.md): the GRU has 3
    gates, the LSTM 4; a layer above the first adds its input products."""
    h, V = 256, 1027
    assert bench.flops_per_token(h, V, "gru") == (18 * h ** 2, 6 * h * V)
    assert bench.flops_per_token(h, V, "lstm") == (24 * h ** 2, 6 * h * V)
    assert bench.flops_per_token(h, V, "lstm", num_layers=2) == (72 * h ** 2, 6 * h * V)
    rows = [row("one", "fast", 3e4, 1e11, 1e10), {**row("one", "fast", 1e4, 1e11, 1e10),
                                                  "cell": "gru"}]
    summary = bench.summarise(rows, h)
    gru = summary["cells"]["gru"]["bound_tokens_per_s"]
    assert gru == pytest.approx(1e11 / (18 * h ** 2 + 6 * h * V))
    assert summary["bound_tokens_per_s"] == summary["cells"]["rnn"]["bound_tokens_per_s"] > gru
    assert rows[1]["share_of_bound"] == pytest.approx(1e4 / gru)
    assert "| one | scratch | fast | gru | 10,000 |" in bench.table(summary)


def test_a_row_is_the_median_of_its_runs():
    def run(tokens, peak, rate):
        return {"tokens_per_s": tokens, "peak_rss_mib": peak,
                "matmul_flops": {"large": rate, "recurrent": rate / 2}}
    row = bench.median_run([run(30.0, 100, 5.0), run(10.0, 300, 9.0), run(20.0, 200, 7.0),
                            {"error": "took longer than 900 s"}])
    assert row["tokens_per_s"] == 20.0 and row["runs_tokens_per_s"] == [30.0, 10.0, 20.0]
    assert row["peak_rss_mib"] == 300 and row["matmul_flops"] == {"large": 9.0, "recurrent": 4.5}
    assert bench.median_run([{"error": "no output"}]) == {"error": "no output"}


def test_tokens_per_second_are_every_timed_token_over_every_timed_second(monkeypatch):
    """Two timed epochs of 1 s and 3 s after a warm-up epoch: 2 x 1,120 tokens in 4 s, whatever
    the warm-up took (the epochs' times are given, not measured)."""
    from rnn_core import train
    seconds = iter([100.0, 1.0, 3.0])

    def train_epoch(ops, epoch_fn, params, opt_state, config, corpus_indices, rng, epoch):
        tokens = config.batch_size * config.num_steps
        return params, opt_state, train.EpochResult(epoch, 1.0, next(seconds), tokens,
                                                    np.zeros(1))
    monkeypatch.setattr(train, "train_epoch", train_epoch)
    row = bench.child({"backend": REFERENCE, "device": "cpu", "precision": "float32",
                       "deterministic": False, "path": "book", "corpus": None, "hidden": 8,
                       "num_steps": 35, "batch_size": 32, "model": "scratch", "cell": "rnn",
                       "warmup": 1, "epochs": 2})
    assert row["tokens_per_s"] == 2 * 32 * 35 / 4.0
    assert row["s_per_epoch"] == 2.0


def test_matmul_rate_is_positive(ops):
    assert bench.matmul_rate(ops, 8, 16, seconds=0.05) > 0
    assert bench.matmul_rate(ops, 8, 16, seconds=0.05, linear=True) > 0


def test_bench_prints_a_table_and_writes_json(tmp_path, selected):
    """The NumPy reference and the first selected backend with an RNN layer (one child process
    per row: every backend would cost minutes), the reference named twice, once with a comma:
    measured once."""
    out = tmp_path / "bench.json"
    other = next((name for name in selected if has(name, "layers")), None)
    if other is None:
        pytest.skip("no selected backend has an RNN layer for the concise rows")
    result = subprocess.run(
        [sys.executable, "-m", "rnn_core.bench", "--backends", REFERENCE, f"{other},{REFERENCE}",
         "--models",
         "scratch", "concise", "--corpus", "lyrics_zh", "--hidden", "16", "--epochs", "1",
         "--warmup", "0", "--repeats", "1", "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=600, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert f"| {other} | scratch | fast |" in result.stdout and "tokens/s" in result.stdout
    summary = json.loads(out.read_text())
    assert summary["bound_tokens_per_s"] > 0
    rows = {(r["backend"], r["model"], r["path"]): r for r in summary["results"]}
    assert len(rows) == len(summary["results"])         # no row twice
    assert set(rows) == {(REFERENCE, "scratch", "book"), (REFERENCE, "scratch", "fast"),
                         (other, "scratch", "book"), (other, "scratch", "fast"),
                         (other, "concise", "book"), (other, "concise", "fast")}
    for row in rows.values():
        assert row["tokens_per_s"] > 0 and row["peak_rss_mib"] > 0 and 0 < row["share_of_bound"]
        assert 0 < row["share_of_own_bound"]
    assert rows[(other, "scratch", "fast")]["speedup_over_book"] > 0


def row(backend, path, tokens, large, recurrent):
    """A synthetic row of the bench: the figures summarise() reads."""
    return {"backend": backend, "device": "cpu", "model": "scratch", "path": path,
            "vocab_size": 1027, "tokens_per_s": tokens, "s_per_epoch": 1.0, "peak_rss_mib": 1.0,
            "matmul_flops": {"large": large, "recurrent": recurrent}}


def test_share_of_own_bound_uses_each_frameworks_best_rates():
    rows = [row("one", "book", 1e4, 2e11, 1e11), row("one", "fast", 3e4, 1e11, 1.2e11),
            row("two", "fast", 6e4, 4e11, 1e11)]
    summary = bench.summarise(rows, 256)
    machine = bench.bound_tokens_per_second(256, 1027, rate_large=4e11)
    one_own = bench.bound_tokens_per_second(256, 1027, rate_large=2e11)
    assert summary["bound_tokens_per_s"] == pytest.approx(machine)
    assert summary["bound_source"] == "matmul"
    assert rows[1]["share_of_bound"] == pytest.approx(3e4 / machine)
    assert rows[0]["share_of_own_bound"] == pytest.approx(1e4 / one_own)
    assert rows[1]["share_of_own_bound"] == pytest.approx(3e4 / one_own)
    assert rows[1]["speedup_over_book"] == pytest.approx(3.0)


def test_the_bound_is_never_below_a_measured_row():
    """As on a GPU, where the recurrent shape's rate is bound by kernel launches: a compiled
    program beat the old bound (which took that rate) twice over. Every FLOP at the dense rate
    is above it; and where a row is faster still (the 1024³ product undershot the device's
    rate), that row is the bound."""
    rows = [row("one", "book", 7.6e4, 2.0e13, 2.0e10), row("one", "fast", 1.75e5, 2.0e13, 2.5e10),
            row("two", "fast", 1.38e6, 2.4e12, 3.0e10)]
    summary = bench.summarise(rows, 256)
    assert summary["bound_tokens_per_s"] == pytest.approx(
        bench.bound_tokens_per_second(256, 1027, rate_large=2.0e13))
    assert all(r["tokens_per_s"] <= summary["bound_tokens_per_s"] for r in rows)
    assert summary["own_bound_tokens_per_s"]["two"] == pytest.approx(1.38e6)   # its own rate
    assert all(r["share_of_bound"] <= 1 and r["share_of_own_bound"] <= 1 for r in rows)
    slow = [row("one", "fast", 2e6, 1e12, 1e10)]          # above every FLOP at 1e12 FLOP/s
    summary = bench.summarise(slow, 256)
    assert summary["bound_tokens_per_s"] == 2e6 and summary["bound_source"] == "fastest row"
    assert "the fastest row, above every FLOP at the 1024³ rate" in bench.table(summary)


@pytest.mark.parametrize("args,message", [
    (["--repeats", "0"], "--repeats: must be a positive integer, got '0'"),
    (["--epochs", "x"], "--epochs: must be an integer, got 'x'"),
    (["--backends", "caffe"], "unknown backend 'caffe': choose one of numpy, torch, tf, mxnet, jax"),
])
def test_bench_refuses_a_bad_option_clearly(args, message):
    result = subprocess.run([sys.executable, "-m", "rnn_core.bench", *args], capture_output=True,
                            text=True, cwd=ROOT, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_concise_rows_where_no_backend_has_a_layer_are_one_line():
    """Only backends without an RNN layer of their own (NumPy) and only ``--models concise``:
    nothing to measure, said in one line that names the way out."""
    without = [name for name in BACKEND_NAMES if not has(name, "layers")]
    result = subprocess.run(
        [sys.executable, "-m", "rnn_core.bench", "--backends", *without, *without, "--models",
         "concise", "--corpus", "lyrics_zh", "--hidden", "8", "--epochs", "1", "--repeats", "1"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: --models concise: nothing to measure, as "
                           f"{' and '.join(without)} has no RNN layer of its own; add --models "
                           f"scratch, or --backends one of "), line


def test_a_corpus_too_short_for_a_batch_is_one_line_with_benchs_own_advice(tmp_path):
    """Checked once before any child starts; the advice names bench's options (it has no
    --max-chars: it trains on a corpus's first 10,000 characters)."""
    short = tmp_path / "short.txt"
    short.write_text("分开 不分开 " * 5, encoding="utf-8")
    for args, advice in (
            (["--corpus", "lyrics_zh", "--batch-size", "400"],
             "Give a smaller --batch-size or --num-steps (bench trains on the first 10,000 "
             "characters of a corpus)"),
            (["--corpus", str(short)], "Give a smaller --batch-size or --num-steps or a longer "
                                       "--corpus")):
        result = subprocess.run(
            [sys.executable, "-m", "rnn_core.bench", "--backends", REFERENCE, "--models",
             "scratch", "--paths", "fast", "--hidden", "8", "--epochs", "1", "--warmup", "0",
             "--repeats", "1", *args], capture_output=True, text=True, cwd=ROOT, timeout=600,
            stdin=subprocess.DEVNULL)
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith("error: the corpus has ") and "too short for one batch" in line
        assert line.endswith(advice) and "--max-chars" not in line, line
