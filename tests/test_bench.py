"""The benchmark tool runs and reports every figure (its timings are never asserted)."""
import json
import os
import subprocess
import sys

import pytest

from rnn_core import bench
from rnn_core.backend import REFERENCE, has

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bound_is_the_flop_model_over_the_two_rates():
    recurrent, output = bench.flops_per_token(256, 1027)
    assert (recurrent, output) == (6 * 256 ** 2, 6 * 256 * 1027)
    bound = bench.bound_tokens_per_second(256, 1027, rate_recurrent=1e11, rate_large=3e11)
    assert bound == pytest.approx(1 / (recurrent / 1e11 + output / 3e11))


def test_a_row_is_the_median_of_its_runs():
    def run(tokens, peak, rate):
        return {"tokens_per_s": tokens, "peak_rss_mib": peak,
                "matmul_flops": {"large": rate, "recurrent": rate / 2}}
    row = bench.median_run([run(30.0, 100, 5.0), run(10.0, 300, 9.0), run(20.0, 200, 7.0),
                            {"error": "took longer than 900 s"}])
    assert row["tokens_per_s"] == 20.0 and row["runs_tokens_per_s"] == [30.0, 10.0, 20.0]
    assert row["peak_rss_mib"] == 300 and row["matmul_flops"] == {"large": 9.0, "recurrent": 4.5}
    assert bench.median_run([{"error": "no output"}]) == {"error": "no output"}


def test_matmul_rate_is_positive(ops):
    assert bench.matmul_rate(ops, 8, 16, seconds=0.05) > 0
    assert bench.matmul_rate(ops, 8, 16, seconds=0.05, linear=True) > 0


def test_bench_prints_a_table_and_writes_json(tmp_path, selected):
    """The NumPy reference and the first selected backend with an RNN layer (one child process
    per row: every backend would cost minutes)."""
    out = tmp_path / "bench.json"
    other = next((name for name in selected if has(name, "layers")), None)
    if other is None:
        pytest.skip("no selected backend has an RNN layer for the concise rows")
    result = subprocess.run(
        [sys.executable, "-m", "rnn_core.bench", "--backends", REFERENCE, other, "--models",
         "scratch", "concise", "--corpus", "lyrics_zh", "--hidden", "16", "--epochs", "1",
         "--warmup", "0", "--repeats", "1", "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=600, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert f"| {other} | scratch | fast |" in result.stdout and "tokens/s" in result.stdout
    summary = json.loads(out.read_text())
    assert summary["bound_tokens_per_s"] > 0
    rows = {(r["backend"], r["model"], r["path"]): r for r in summary["results"]}
    assert set(rows) == {(REFERENCE, "scratch", "book"), (REFERENCE, "scratch", "fast"),
                         (other, "scratch", "book"), (other, "scratch", "fast"),
                         (other, "concise", "book"), (other, "concise", "fast")}
    for row in rows.values():
        assert row["tokens_per_s"] > 0 and row["peak_rss_mib"] > 0 and 0 < row["share_of_bound"]
        assert 0 < row["share_of_own_bound"]
    assert rows[(other, "scratch", "fast")]["speedup_over_book"] > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux's")
def test_the_fast_path_keeps_freed_buffers_on_linux(ops, monkeypatch):
    """NumPy's and PyTorch's compile() ask glibc to keep large freed buffers (their fast path's
    speed-up is measured in docs/benchmarks.md); done once, it reports that it took effect.
    TensorFlow and MXNet pool their own memory and leave glibc as it is."""
    from rnn_core.backends import _allocator
    monkeypatch.setattr(_allocator, "_kept", None)          # as in a fresh process
    ops.compile(lambda x: x)
    assert _allocator._kept is (True if ops.name in ("numpy", "torch") else None)
    assert _allocator.keep_freed_buffers() and _allocator.keep_freed_buffers()


def test_share_of_own_bound_uses_each_frameworks_best_rates():
    def row(backend, path, tokens, large, recurrent):
        return {"backend": backend, "device": "cpu", "model": "scratch", "path": path,
                "vocab_size": 1027,
                "tokens_per_s": tokens, "matmul_flops": {"large": large, "recurrent": recurrent}}
    rows = [row("numpy", "book", 1e4, 2e11, 1e11), row("numpy", "fast", 3e4, 1e11, 1.2e11),
            row("tf", "fast", 6e4, 4e11, 1e11)]
    summary = bench.summarise(rows, 256)
    machine = bench.bound_tokens_per_second(256, 1027, rate_recurrent=1.2e11, rate_large=4e11)
    numpy_own = bench.bound_tokens_per_second(256, 1027, rate_recurrent=1.2e11, rate_large=2e11)
    assert summary["bound_tokens_per_s"] == pytest.approx(machine)
    assert rows[1]["share_of_bound"] == pytest.approx(3e4 / machine)
    assert rows[0]["share_of_own_bound"] == pytest.approx(1e4 / numpy_own)
    assert rows[1]["share_of_own_bound"] == pytest.approx(3e4 / numpy_own)
    assert rows[1]["speedup_over_book"] == pytest.approx(3.0)


@pytest.mark.parametrize("args,message", [
    (["--repeats", "0"], "--repeats: must be a positive integer, got '0'"),
    (["--epochs", "x"], "--epochs: must be an integer, got 'x'"),
    (["--backends", "caffe"], "unknown backend 'caffe': choose one of numpy, torch, tf, mxnet"),
])
def test_bench_refuses_a_bad_option_clearly(args, message):
    result = subprocess.run([sys.executable, "-m", "rnn_core.bench", *args], capture_output=True,
                            text=True, cwd=ROOT, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr
