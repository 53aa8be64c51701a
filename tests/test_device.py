"""Devices and numerics: which device a backend takes, IEEE float32 by default, TF32 and
deterministic algorithms only when asked for, and nothing set by importing rnn-core.

A GPU is pretended by replacing the backend class's ``gpu_count`` (the one place each backend
asks its framework), so the selection logic of every framework with a GPU build is tested on a
CPU machine too. The framework switches are process-wide, so they are read in a fresh process."""
import functools
import json
import os
import subprocess
import sys

import pytest

from rnn_core import get_backend
from rnn_core.backend import REFERENCE, has
from rnn_core.errors import DeviceUnavailable, RNNCoreError

from conftest import XLA_DETERMINISTIC, device_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def pretend_gpus(backend_name, monkeypatch):
    """``pretend(n)`` makes the backend's class see ``n`` GPUs; returns the class. The
    environment (which a backend may set for its GPU libraries) is restored afterwards."""
    cls = type(get_backend(backend_name, "cpu"))
    environment = dict(os.environ)

    def pretend(n):
        monkeypatch.setattr(cls, "gpu_count", staticmethod(lambda: n))
        return cls

    yield pretend
    os.environ.clear()
    os.environ.update(environment)


def test_auto_and_gpu_take_the_gpu_the_framework_sees(backend_name, pretend_gpus):
    cls = pretend_gpus(1)
    if not has(backend_name, "gpu"):                 # a framework without a GPU build (NumPy)
        with pytest.raises(DeviceUnavailable, match="--device cpu"):
            get_backend(backend_name, "gpu")
        assert get_backend(backend_name, "auto").device == get_backend(backend_name, "cpu").device
        return
    assert get_backend(backend_name, "auto").device == cls.gpu_device
    assert get_backend(backend_name, "gpu").device == cls.gpu_device
    assert get_backend(backend_name, "cpu").device != cls.gpu_device


def test_gpu_where_the_framework_sees_none_is_refused_with_the_fix(backend_name, pretend_gpus):
    cls = pretend_gpus(0)
    with pytest.raises(DeviceUnavailable, match="--device cpu"):
        get_backend(backend_name, "gpu")
    assert get_backend(backend_name, "auto").device != cls.gpu_device


def test_a_platform_variable_naming_a_missing_platform_is_one_line(backend_name):
    """A framework whose platforms an environment variable limits (``platforms_variable``:
    JAX_PLATFORMS) and that names one the machine lacks (a TPU here) cannot start: one line."""
    variable = getattr(get_backend(backend_name, "cpu"), "platforms_variable", None)
    if variable is None:
        pytest.skip(f"{backend_name} has no variable that limits its platforms")
    result = subprocess.run([sys.executable, "-m", "rnn_core.identity", "--backend",
                             backend_name, "--device", "cpu"], capture_output=True, text=True,
                            cwd=ROOT, timeout=300, stdin=subprocess.DEVNULL,
                            env={**os.environ, variable: "tpu"})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    line, = result.stderr.splitlines()
    assert line.endswith(f"{variable}='tpu' names a platform this machine lacks; unset "
                         f"{variable}, or set it to cpu"), line


def test_an_unknown_precision_is_refused():
    with pytest.raises(RNNCoreError, match="unknown precision 'fp16': choose one of float32, tf32"):
        get_backend("numpy", "cpu", precision="fp16")


# Run in a fresh process: the framework's switches as creating a backend, a step, the core's
# functions and importing (and running again) every module of rnn_core and its backends leave
# them, within a scope that stands for a user's own setting, and outside every scope.
NUMERICS = r"""
import importlib, json, pkgutil, sys
import numpy as np
import rnn_core
from rnn_core import api, get_backend, model, train
from rnn_core.backend import has

name, device = sys.argv[1:]
report = {}
ops = get_backend(name, device)
report["process"] = ops.numerics()                      # the process's own, as it started
with ops.numerics_scope():
    report["default"] = ops.numerics()
report["options"] = [ops.precision, ops.deterministic]
user = get_backend(name, device, precision="tf32")      # stands for a user's own setting
with user.numerics_scope():
    report["tf32"] = user.numerics()
    for module in pkgutil.iter_modules(rnn_core.__path__):
        importlib.import_module("rnn_core." + module.name)
    for name_ in sorted(m for m in sys.modules if m.split(".")[0] == "rnn_core"):
        module = sys.modules[name_]                      # its code run again, as on a first import
        module.__spec__.loader.exec_module(module)
    report["after_imports"] = user.numerics()
    seen = []
    step = ops.compile(lambda x: seen.append(ops.numerics()) or x)
    step(ops.zeros((1,)))
    report["in_a_float32_step"], report["after_a_float32_step"] = seen[0], user.numerics()
    in_products, in_callbacks = [], []
    product = ops.matmul        # the book's path on the hand-written gradient: every product
    ops.matmul = lambda a, b: in_products.append(ops.numerics()) or product(a, b)
    config = train.TrainConfig(num_hiddens=4, batch_size=2, num_steps=3, book_path=True,
                               grad="bptt")
    params = model.get_params(ops, 5, 4, 0, **train.model_spec(config))
    batches = [(np.zeros((2, 3), np.int64), np.ones((2, 3), np.int64))]
    train.make_train_epoch(ops, 5, config)(params, (), batches)
    train.make_train_step(ops, 5, config)(params, (), model.init_state(ops, params, 2),
                                          *map(ops.asarray, batches[0]))
    del ops.matmul
    report["in_book_products"] = sorted(map(json.dumps, in_products))
    result = api.train(name, device=device, num_epochs=1, num_hiddens=8, pred_period=1,
                       pred_len=2, verbose=False,
                       on_epoch=lambda *_: in_callbacks.append(user.numerics()))
    api.generate(result, result.config.prefixes[0], 3)
    report["after_train_and_generate"] = user.numerics()
    report["in_on_epoch"] = in_callbacks[0]
report["process_after"] = ops.numerics()
try:
    with ops.numerics_scope():
        raise ValueError("an error, or Ctrl-C, inside a step")
except ValueError:
    report["after_an_error"] = ops.numerics()
deterministic = get_backend(name, device, deterministic=True)
with deterministic.numerics_scope():
    report["deterministic"] = deterministic.numerics()
report["after_deterministic"] = ops.numerics()
cls = getattr(sys.modules[type(ops).__module__], type(ops).__name__)    # as reloaded
cls.gpu_count = staticmethod(lambda: 1)                 # a pretended GPU: the GPU settings
if has(name, "gpu"):
    for key, numerics in (("gpu_tf32", {"precision": "tf32", "deterministic": True}),
                          ("gpu_default", {})):
        gpu = get_backend(name, "gpu", **numerics)
        with gpu.numerics_scope():
            report[key] = gpu.numerics()
print(json.dumps(report))
"""


def fresh_numerics_env():
    """The environment of a fresh process, with cuBLAS's fixed workspace (a deterministic PyTorch
    backend on a GPU needs it before CUDA starts) and without the deterministic XLA kernels that
    the suite asks for on a GPU (conftest.py): the report must show only what the backends set."""
    flags = os.environ.get("XLA_FLAGS", "").replace(XLA_DETERMINISTIC, "")
    return {**os.environ, "PYTHONPATH": ROOT, "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
            "XLA_FLAGS": flags.strip()}


@functools.lru_cache(maxsize=None)
def numerics_report(backend_name):
    result = subprocess.run([sys.executable, "-c", NUMERICS, backend_name,
                             device_for(backend_name)], capture_output=True,
                            text=True, cwd=ROOT, timeout=300, stdin=subprocess.DEVNULL,
                            env=fresh_numerics_env())
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_backend_computes_in_ieee_float32_by_default(backend_name):
    report = numerics_report(backend_name)
    assert report["options"] == ["float32", False]
    assert report["default"]["tf32"] in (None, False)
    assert report["in_a_float32_step"]["tf32"] in (None, False)
    assert report["in_book_products"] and all(         # an epoch's and a step's, by hand
        json.loads(seen)["tf32"] in (None, False) for seen in report["in_book_products"])


def test_tf32_and_determinism_only_when_asked_for(backend_name):
    report = numerics_report(backend_name)
    assert report["tf32"]["tf32"] in (None, True)
    assert report["default"]["deterministic"] in (None, False)
    assert report["deterministic"]["deterministic"] in (None, True)


def test_a_framework_with_a_gpu_has_both_switches_on_the_gpu(backend_name):
    report = numerics_report(backend_name)
    if not has(backend_name, "gpu"):
        assert "gpu_tf32" not in report
        return
    assert report["gpu_tf32"] == {"tf32": True, "deterministic": True}
    assert report["gpu_default"]["tf32"] is False


def test_importing_rnn_core_leaves_the_frameworks_switches_alone(backend_name):
    report = numerics_report(backend_name)
    assert report["after_imports"] == report["tf32"]


def test_calling_rnn_core_leaves_the_frameworks_switches_as_they_were(backend_name):
    """A float32 step, training and generation put back a user's TF32 setting (a notebook's
    ``torch.backends.cuda.matmul.allow_tf32 = True`` stays); creating a backend sets nothing."""
    report = numerics_report(backend_name)
    assert report["after_a_float32_step"] == report["tf32"]
    assert report["after_train_and_generate"] == report["tf32"]
    assert report["in_on_epoch"] == report["tf32"]     # a user's callback runs with the user's
    assert report["process_after"] == report["after_deterministic"] == report["process"]
    assert report["after_an_error"] == report["process"]


def tool(*args):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600, stdin=subprocess.DEVNULL)


def test_run_gives_the_backend_tf32_and_deterministic_when_asked():
    common = ["rnn_core.run", "--backend", REFERENCE, "--device", "cpu", "--epochs", "1",
              "--hidden", "8", "--pred-period", "1", "--pred-len", "2"]
    asked, default = tool(*common, "--tf32", "--deterministic"), tool(*common)
    assert asked.returncode == default.returncode == 0, asked.stderr + default.stderr
    assert (" on cpu; TF32 allowed (none on the CPU), deterministic; corpus "
            in asked.stdout.splitlines()[0])
    assert " on cpu; corpus " in default.stdout.splitlines()[0]


def test_compare_gives_each_backend_tf32_and_deterministic_when_asked(tmp_path):
    out = tmp_path / "compare.json"
    result = tool("rnn_core.compare", "--backends", REFERENCE, "--epochs", "1", "--hidden", "8",
                  "--tf32", "--deterministic", "--json", str(out))
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0]
    assert "corpus lyrics_zh" in header
    assert header.endswith("TF32 allowed (none on the CPU), deterministic")     # NumPy's CPU
    row, = json.loads(out.read_text())["results"]
    assert (row["precision"], row["deterministic"]) == ("tf32", True)


def test_compares_header_says_tf32_has_no_effect_only_where_every_backend_ran_on_the_cpu(
        backend_name, tmp_path):
    """With ``--device auto``, the header's "(none on the CPU)" follows where the backend ran, not
    whether its framework has a GPU build (PyTorch on a machine without a GPU is on the CPU)."""
    out = tmp_path / "compare.json"
    result = tool("rnn_core.compare", "--backends", backend_name, "--epochs", "1", "--hidden", "8",
                  "--device", "auto", "--tf32", "--json", str(out))
    assert result.returncode == 0, result.stderr
    row, = json.loads(out.read_text())["results"]
    if device_for(backend_name) == "gpu":
        assert row["on_gpu"]
    qualifier = "" if row["on_gpu"] else " (none on the CPU)"
    assert result.stdout.splitlines()[0].endswith(f"; TF32 allowed{qualifier}")


def test_bench_gives_the_backend_tf32_and_deterministic_when_asked(tmp_path):
    out = tmp_path / "bench.json"
    result = tool("rnn_core.bench", "--backends", REFERENCE, "--models", "scratch", "--paths",
                  "fast", "--corpus", "lyrics_zh", "--hidden", "8", "--epochs", "1", "--warmup",
                  "0", "--repeats", "1", "--tf32", "--deterministic", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "; TF32 allowed, deterministic" in result.stdout.splitlines()[0]
    summary = json.loads(out.read_text())
    row, = summary["results"]
    assert (row["precision"], row["deterministic"]) == ("tf32", True)
    assert (summary["precision"], summary["deterministic"]) == ("tf32", True)


def test_generate_takes_tf32(backend_name, tmp_path):
    """On the CPU TF32 does not exist, so the text is the default's; on a GPU it may differ."""
    path = tmp_path / "model.npz"
    trained = tool("rnn_core.run", "--backend", REFERENCE, "--epochs", "1", "--hidden", "8",
                   "--quiet", "--save", str(path))
    assert trained.returncode == 0, trained.stderr
    common = ["rnn_core.generate", "--checkpoint", str(path), "--backend", backend_name,
              "--device", device_for(backend_name), "--num-chars", "8", "--prefix", "分开"]
    asked, default = tool(*common, "--tf32"), tool(*common)
    assert asked.returncode == default.returncode == 0, asked.stderr + default.stderr
    assert len(asked.stdout.rstrip("\n")) == len("分开") + 8   # one epoch: mostly spaces
    if device_for(backend_name) == "cpu":
        assert asked.stdout == default.stdout


@pytest.mark.parametrize("tool", [["rnn_core.compare", "--pred-len", "2"],
                                  ["rnn_core.bench", "--corpus", "lyrics_zh", "--repeats", "1",
                                   "--warmup", "0"]])
def test_compare_and_bench_refuse_device_gpu_before_training_where_no_gpu_would_run(
        backend_name, tool):
    """As run refuses it: --device gpu with only a backend that has no GPU build (NumPy), or
    beside NumPy a framework that sees no GPU (CUDA_VISIBLE_DEVICES hides any), is one line
    before any backend trains (bench said it once per row, each a process of its own, then once
    more)."""
    names = list(dict.fromkeys([REFERENCE, backend_name]))
    module, *options = tool
    result = subprocess.run(
        [sys.executable, "-m", module, "--backends", *names, "--device", "gpu", "--epochs", "1",
         "--hidden", "8", *options], capture_output=True, text=True,
        cwd=ROOT, timeout=600, stdin=subprocess.DEVNULL,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 2, (result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()                  # nothing trained, nothing else said
    assert line.startswith("error: --device gpu: ") and "--device cpu" in line, line
    if not has(backend_name, "gpu"):
        assert "runs on the CPU only" in line
