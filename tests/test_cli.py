"""The command-line tools, as a user runs them: real subprocesses."""
import os
import re
import subprocess
import sys

import pytest

from rnn_core import backend as backend_module
from rnn_core import get_backend
from rnn_core.backend import REFERENCE
from rnn_core.errors import BackendUnavailable, DeviceUnavailable, RNNCoreError

from conftest import device_for, selected_backends

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def short_runs(request):
    """Three epochs on the NumPy reference and each selected backend, printing every epoch."""
    names = dict.fromkeys([REFERENCE, *selected_backends(request.config)])
    return {name: run("rnn_core.run", "--backend", name, "--epochs", "3", "--pred-period", "1",
                      "--pred-len", "10", "--hidden", "64", "--lr", "1", "--clip", "1")
            for name in names}


def test_run_prints_the_books_lines_on_every_backend(backend_name, short_runs):
    result = short_runs[backend_name]
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"backend {backend_name} ")
    assert re.fullmatch(r"epoch 1, perplexity \d+\.\d\d, time \d+\.\d\d sec", lines[1])
    assert lines[2].startswith(" - 分开") and lines[3].startswith(" - 不分开")


def test_every_backend_prints_the_numbers_of_the_numpy_reference(short_runs):
    def numbers(result):   # every line but the header, with the times left out
        return [re.sub(r"time \S+ sec", "", line) for line in result.stdout.splitlines()[1:]]
    reference = numbers(short_runs[REFERENCE])
    for name, result in short_runs.items():
        assert numbers(result) == reference, name


def test_identity_tool_prints_a_tiny_difference(backend_name):
    device = device_for(backend_name)
    result = run("rnn_core.identity", "--backend", backend_name, "--device", device)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"backend {backend_name} on ")
    difference = float(result.stdout.strip().splitlines()[-1].split(":")[1])
    assert difference < 1e-5


@pytest.mark.parametrize("args,message", [
    (["--backend", "caffe"], "unknown backend 'caffe': choose one of numpy, torch, tf, mxnet, jax"),
    (["--epochs", "0"], "--epochs: must be a positive integer, got '0'"),
    (["--lr", "-1"], "--lr: must be a positive number, got '-1'"),
    (["--prefixes", "分开", "xyz"], "'xyz' has characters the vocabulary has never seen"),
    (["--corpus", "no/such/file.txt"], "does not exist"),
    (["--epochs", "1", "--batch-size", "400"], "too short for one batch"),
])
def test_a_user_mistake_is_one_clear_line_and_exit_2(args, message):
    result = run("rnn_core.run", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_every_tools_choices_are_read_in_any_case():
    """``--cell GRU`` is ``--cell gru``, as ``--backend NumPy`` is ``numpy``: the book writes
    GRU, LSTM and SGD in capitals. Every tool's every option with choices, in capitals."""
    from rnn_core import bench, compare, generate, identity, run as run_tool
    for tool in (run_tool, compare, bench, generate, identity):
        parser = tool.parser()
        required = [arg for action in parser._actions if action.required
                    for arg in (action.option_strings[0], "x")]
        for action in parser._actions:
            if not action.choices:
                continue
            choice = sorted(action.choices)[-1]
            args = [*required, action.option_strings[0], choice.upper()]
            parsed = vars(parser.parse_args(args))[action.dest]
            assert parsed in (choice, [choice]), (tool.__name__, args, parsed)


def test_a_backend_that_is_not_installed_names_the_extra(backend_name, monkeypatch):
    _, _, framework, extra, title = backend_module._BACKENDS[backend_name]
    real = backend_module.importlib.util.find_spec
    monkeypatch.setattr(backend_module.importlib.util, "find_spec",
                        lambda name: None if name == framework else real(name))
    fix = rf"pip install .*\[{extra}\]" if extra else "pip install numpy"
    with pytest.raises(BackendUnavailable, match=rf"needs {title}, which is not installed: "
                                                 rf"install it with: {fix}"):
        get_backend(backend_name)


def test_gpu_where_none_is_seen_is_a_clear_error(backend_name):
    if "cpu" not in get_backend(backend_name, "auto").device.lower():
        pytest.skip(f"{backend_name} sees a GPU here")
    with pytest.raises(DeviceUnavailable, match="--device"):
        get_backend(backend_name, "gpu")


def test_auto_device_says_where_it_runs(backend_name):
    ops = get_backend(backend_name, "auto")
    assert ops.device


def test_unknown_device_is_refused():
    with pytest.raises(RNNCoreError, match="unknown device 'tpu'"):
        get_backend("numpy", "tpu")


def test_importing_rnn_core_imports_no_framework():
    code = ("import sys, rnn_core, rnn_core.run, rnn_core.train; "
            "print([m for m in ('torch', 'tensorflow', 'mxnet') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"
