"""Faults anywhere are one clear line (issue 14, C): unreadable files and folders, a broken or
closed standard output, an encoding that cannot show the corpus, a model too large for memory,
SIGTERM. Through the command line, with real permissions (root's dropped by setpriv), and a full
disk or an interrupt injected by tests/faults.py."""
import json
import os
import signal
import subprocess
import sys

import pytest

from rnn_core import checkpoint
from rnn_core.backend import REFERENCE
from test_saving import ROOT, SMALL, chmod, files, one_clear_line, run  # noqa: F401


def popen(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-u", "-m", "rnn_core.run", *args], cwd=ROOT,
                            stdin=subprocess.DEVNULL, **kwargs)


def test_an_unreadable_corpus_names_the_file_and_the_fix(tmp_path, chmod):
    corpus = tmp_path / "mine.txt"
    corpus.write_text("分开 不分开 " * 400, encoding="utf-8")
    chmod(corpus, 0o000)
    result = run(*SMALL, "--epochs", "1", "--corpus", str(corpus), as_user=True)
    one_clear_line(result, f"cannot read corpus file {corpus} (Permission denied)", "chmod u+r")


def test_an_unreadable_data_folder_names_the_folder_and_the_fix(tmp_path, monkeypatch, chmod):
    monkeypatch.setenv("RNN_CORE_DATA", str(tmp_path))
    chmod(tmp_path, 0o000)
    result = run(*SMALL, "--epochs", "1", "--corpus", "jaychou", as_user=True)
    one_clear_line(result, f"in {tmp_path} (Permission denied)", "make the folder readable",
                   "RNN_CORE_DATA")


def test_an_unreadable_checkpoint_names_the_file_and_the_fix(tmp_path, chmod):
    path = tmp_path / "ck.npz"
    assert run(*SMALL, "--epochs", "1", "--save", str(path)).returncode == 0
    chmod(path, 0o000)
    result = run("--resume", str(path), "--epochs", "2", as_user=True)
    one_clear_line(result, f"cannot read checkpoint {path} (Permission denied)", "chmod u+r")
    result = run("--checkpoint", str(path), module="rnn_core.generate", as_user=True)
    one_clear_line(result, f"cannot read checkpoint {path} (Permission denied)")


def test_a_plot_that_cannot_be_written_at_the_end_is_one_line(tmp_path):
    """The checkpoint (two fsyncs: epochs 1 and 2) is written; the disk is full for the plot."""
    result = run(*SMALL, "--epochs", "2", "--pred-period", "1", "--save",
                 str(tmp_path / "ck.npz"), "--plot", str(tmp_path / "curve.png"),
                 faults="enospc-after=2")
    one_clear_line(result, f"could not write the plot {tmp_path / 'curve.png'}",
                   "No space left on device")
    assert checkpoint.load(tmp_path / "ck.npz").epoch == 2
    assert files(tmp_path) == ["ck.npz"]


def test_a_broken_stdout_does_not_stop_the_run_from_saving(tmp_path, backend_name):
    """`run ... --save ck.npz | head -2`: the reader goes after two lines; the run goes on."""
    path = tmp_path / "ck.npz"
    process = popen(*SMALL, "--backend", backend_name, "--epochs", "4", "--pred-period", "1",
                    "--save", str(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(2):
        process.stdout.readline()
    process.stdout.close()
    error = process.stderr.read().decode()
    assert process.wait(timeout=300) == 0, error
    assert error.strip().splitlines() == [
        f"note: cannot write to standard output any more (Broken pipe); training goes on and "
        f"writes {path}, printing nothing more"]
    assert checkpoint.load(path).epoch == 4


def test_a_broken_stdout_with_nothing_to_save_stops_quietly():
    process = popen(*SMALL, "--epochs", "100000", "--pred-period", "1",
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.readline()
    process.stdout.close()
    assert process.wait(timeout=120) == 0
    assert process.stderr.read() == b""


# Descriptor 1 closed at start, and then taken by a file opened before the tool's code runs, as
# libffi 3.5 does with its own library once ctypes loads (Python 3.14 on Debian): Python has set
# sys.stdout to None, and descriptor 1 is no longer free.
TAKEN_FIRST = ("import os, runpy; os.open(os.devnull, os.O_RDONLY); "
               "runpy.run_module('rnn_core.run', run_name='__main__', alter_sys=True)")


@pytest.mark.parametrize("taken", [False, True], ids=["closed", "closed and taken"])
def test_a_closed_stdout_is_one_note_and_the_run_still_saves(tmp_path, taken):
    path = tmp_path / "ck.npz"
    args = [*SMALL, "--epochs", "2", "--save", str(path)]
    process = subprocess.Popen([sys.executable, "-u", *(["-c", TAKEN_FIRST] if taken else
                                                        ["-m", "rnn_core.run"]), *args],
                               cwd=ROOT, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               preexec_fn=lambda: os.close(1))      # as `>&-` does
    error = process.stderr.read().decode()
    assert process.wait(timeout=300) == 0, error
    assert error.startswith("note: standard output is closed") and len(error.splitlines()) == 1
    assert checkpoint.load(path).epoch == 2


FULL_DISK_TOOLS = {
    "identity": ["rnn_core.identity", "--backend", REFERENCE],
    "run": ["rnn_core.run", "--backend", REFERENCE, *SMALL, "--epochs", "1"],
    "run --help": ["rnn_core.run", "--help"],
    "compare": ["rnn_core.compare", "--backends", REFERENCE, *SMALL, "--epochs", "1"],
    "generate": ["rnn_core.generate", "--checkpoint", "{checkpoint}", "--num-chars", "20000"],
    "bench": ["rnn_core.bench", "--backends", REFERENCE, "--corpus", "lyrics_zh", "--hidden", "8",
              "--models", "scratch", "--paths", "fast", "--epochs", "1", "--repeats", "1"],
}


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="/dev/full is Linux's")
@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "PYTHONUNBUFFERED"])
@pytest.mark.parametrize("tool", sorted(FULL_DISK_TOOLS))
def test_a_full_disk_under_stdout_is_one_line_that_names_stdout(tool, buffered, tmp_path):
    """Buffered, what a tool prints may stay in the buffer until its end, where the full disk
    shows; run flushes every line, and what the failed line left in the buffer is dropped, so
    Python does not try it again at exit (a traceback, and exit status 120). Unbuffered, or with
    an output longer than the buffer (generate's 20,000 characters), the print itself fails; and
    --help's text, whose failed write argparse would ignore, is written as any other text."""
    command = FULL_DISK_TOOLS[tool]
    if "{checkpoint}" in command:
        checkpoint_path = tmp_path / "ck.npz"
        assert run(*SMALL, "--epochs", "1", "--save", str(checkpoint_path),
                   "--quiet").returncode == 0
        command = [str(checkpoint_path) if a == "{checkpoint}" else a for a in command]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", *command], stdout=full,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                stdin=subprocess.DEVNULL, env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    assert [line for line in result.stderr.splitlines() if not line.startswith("  ")] == [
        "error: cannot write to standard output (No space left on device): check where it goes "
        "(a full disk?), or redirect it"]       # (compare's and bench's progress lines: "  ...")


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_an_encoding_that_cannot_show_the_corpus_prints_escapes_and_one_note(encoding):
    result = subprocess.run([sys.executable, "-m", "rnn_core.run", *SMALL, "--epochs", "1"],
                            capture_output=True, cwd=ROOT, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONIOENCODING": encoding}, timeout=300)
    assert result.returncode == 0, result.stderr
    stdout = result.stdout.decode(encoding)
    assert " - \\u5206\\u5f00" in stdout            # 分开, recoverable from the escapes
    note, = result.stderr.decode().splitlines()
    assert note.startswith("note: the output encoding (") and "PYTHONIOENCODING=utf-8" in note
    assert "cannot show some characters; they are printed as \\u escapes" in note


TOOLS_THAT_TRAIN = {"run": [], "compare": ["--backends", REFERENCE],
                    "bench": ["--backends", REFERENCE, "--corpus", "lyrics_zh", "--repeats", "1"]}


@pytest.mark.parametrize("tool", sorted(TOOLS_THAT_TRAIN))
def test_a_model_too_large_for_memory_is_refused_before_allocating(tool):
    """By run, and by compare and bench before their first child (whose system might otherwise
    kill it, or another process, for want of memory)."""
    module = f"rnn_core.{tool}"
    result = run(*TOOLS_THAT_TRAIN[tool], "--epochs", "1", "--hidden", "3000000", module=module)
    one_clear_line(result, "a model of 3000000 hidden units on 945 characters",
                   "needs about", "GB of memory and this machine has",
                   ": lower --hidden, --batch-size or --num-steps")
    if tool != "bench":     # bench measures one layer
        result = run(*TOOLS_THAT_TRAIN[tool], "--epochs", "1", "--layers", "300000",
                     module=module)
        one_clear_line(result, "a model of 300000 layers of 256 hidden units",
                       ": lower --hidden, --layers, --batch-size or --num-steps")


def hangup_as(disposition):
    """For ``preexec_fn``: the run starts with SIGHUP at ``disposition``, whatever the test
    runner's is (``nohup`` makes it ignored, and children inherit that)."""
    return lambda: signal.signal(signal.SIGHUP, disposition)


def start_saving_run(path, backend_name, hangup=signal.SIG_DFL):
    """A run that saves every epoch, once it has printed its second epoch."""
    process = popen(*SMALL, "--backend", backend_name, "--epochs", "100000", "--pred-period",
                    "1", "--save", str(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True, preexec_fn=hangup_as(hangup))
    seen = []
    while len([line for line in seen if line.startswith("epoch")]) < 2:
        line = process.stdout.readline()
        assert line, process.stderr.read()
        seen.append(line)
    return process


@pytest.mark.parametrize("how,status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_saves_the_last_completed_epoch(tmp_path, backend_name, how, status):
    path = tmp_path / "ck.npz"
    process = start_saving_run(path, backend_name)
    process.send_signal(how)
    out, err = process.communicate(timeout=120)
    assert process.returncode == status, err
    assert err.strip() == f"stopped by {signal.Signals(how).name}"
    assert "saved epoch" in out
    assert checkpoint.load(path).epoch >= 2
    assert files(tmp_path) == ["ck.npz"]


def test_a_signal_reported_by_an_extension_still_saves_and_stops(tmp_path):
    """A signal's handler can raise inside Python code that a C extension called, and the
    extension raises SystemError from it (CI saw NumPy do so, asking a JAX type for its hash): the
    run still saves its last completed epoch and stops as SIGTERM does."""
    path = tmp_path / "ck.npz"
    result = run(*SMALL, "--epochs", "5", "--pred-period", "1", "--save", str(path),
                 faults="terminate-in-extension-at-epoch=3")
    assert result.returncode == 143, result.stderr
    assert result.stderr.strip() == "stopped by SIGTERM"
    assert "interrupted during epoch 3: saved epoch 2" in result.stdout
    assert checkpoint.load(path).epoch == 2
    assert files(tmp_path) == ["ck.npz"]


def test_a_run_under_nohup_goes_on_after_a_hangup(tmp_path):
    """``nohup`` ignores SIGHUP so that a run outlives its terminal: the run keeps it ignored,
    and a SIGTERM after the hangup still saves and stops it."""
    path = tmp_path / "ck.npz"
    process = start_saving_run(path, REFERENCE, hangup=signal.SIG_IGN)
    process.send_signal(signal.SIGHUP)
    epochs = 0
    while epochs < 2:                             # two more epochs: it is still training
        line = process.stdout.readline()
        assert line and not line.startswith("saved"), process.stderr.read()
        epochs += line.startswith("epoch")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert err.strip() == "stopped by SIGTERM"


@pytest.mark.parametrize("how,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stopping_compare_keeps_the_backends_that_finished(tmp_path, selected, how, status):
    """Ctrl-C or SIGTERM while the second backend trains: the first one's results are still
    printed and written, the stopped and the unstarted ones are marked, and compare ends as a
    stopped run does."""
    names = list(dict.fromkeys([REFERENCE, *selected]))
    if len(names) < 2:
        pytest.skip("needs a selected backend besides the NumPy reference")
    out, png = tmp_path / "compare.json", tmp_path / "curves.png"
    result = run("--backends", *names, "--epochs", "2", "--hidden", "8", "--pred-len", "4",
                 "--json", str(out), "--plot", str(png), module="rnn_core.compare",
                 faults=f"signal-at-child=2:{how.name}")
    assert result.returncode == status, result.stderr
    why = "interrupted" if how == signal.SIGINT else f"stopped by {how.name}"
    assert result.stderr.strip().splitlines()[-1] == why
    assert f"  {names[1]}: {why}" in result.stderr
    saved = json.loads(out.read_text())
    assert [r["backend"] for r in saved["results"]] == [REFERENCE]
    assert len(saved["results"][0]["perplexity"]) == 2
    assert saved["skipped"] == {names[1]: why, **{name: f"not started ({why})"
                                                  for name in names[2:]}}
    assert f"| {names[1]} | skipped: {why} |" in result.stdout
    assert f"{REFERENCE}  分开" in result.stdout                       # its generated text
    assert png.read_bytes().startswith(b"\x89PNG")
    assert files(tmp_path) == ["compare.json", "curves.png"]


@pytest.mark.parametrize("how,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stopping_bench_keeps_the_rows_measured(tmp_path, how, status):
    """Ctrl-C or SIGTERM as the second row starts: the first row is still printed and written,
    the second marked, and bench ends as a stopped run does."""
    out = tmp_path / "bench.json"
    result = run("--backends", REFERENCE, "--models", "scratch", "--paths", "book", "fast",
                 "--hidden", "8", "--epochs", "1", "--warmup", "0", "--repeats", "1",
                 "--corpus", "lyrics_zh", "--json", str(out), module="rnn_core.bench",
                 faults=f"signal-at-child=2:{how.name}")
    assert result.returncode == status, result.stderr
    why = "interrupted" if how == signal.SIGINT else f"stopped by {how.name}"
    assert result.stderr.strip().splitlines()[-1] == why
    rows = json.loads(out.read_text())["results"]
    assert [(r["path"], "tokens_per_s" in r, r.get("error")) for r in rows] == [
        ("book", True, None), ("fast", False, why)]
    assert f"| {REFERENCE} | scratch | book | rnn | " in result.stdout
    assert f"| {REFERENCE} | scratch | fast | rnn | {why} |" in result.stdout
    assert files(tmp_path) == ["bench.json"]
