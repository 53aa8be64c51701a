"""Every test that takes ``ops`` runs once per backend, so one failure hides nothing.

By default the backends are every framework of this environment's install profile (all five on
Python 3.11, no MXNet on 3.12+, no TensorFlow on 3.14; see ``rnn_core.profiles``), and
all of them are required: a framework that is missing or fails to import makes its tests fail (not
skip). ``--backends numpy,torch`` runs a subset; tests that compare backends compare the selected
ones.

``RNN_CORE_TEST_DEVICE=gpu`` (or ``auto``) runs every backend that has a GPU build on the GPU;
NumPy, which has none, runs on the CPU."""
import os
import signal
import subprocess

import numpy as np
import pytest

from rnn_core import get_backend, model
from rnn_core.backend import PROFILES, REFERENCE, backend_names, default_profile, has

# Where tests run: the CPU unless RNN_CORE_TEST_DEVICE says otherwise (auto or gpu on a GPU machine).
DEVICE = os.environ.get("RNN_CORE_TEST_DEVICE", "cpu")
XLA_DETERMINISTIC = "--xla_gpu_deterministic_ops=true"
if DEVICE != "cpu":
    # A test process starts many backends, and the deterministic ones (the resume tests) need
    # cuBLAS's fixed workspace and XLA's deterministic kernels, which each framework reads when its
    # GPU client starts: the suite asks for them first, as docs/gpu.md tells a user to.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if XLA_DETERMINISTIC not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_DETERMINISTIC}".strip()


# The tests that press Ctrl-C send SIGINT to the tools they start. A shell without job control
# starts a background command (`make test &` in a script, `chroot ... &`) with SIGINT ignored,
# which every process it starts inherits, so those tools would never see it: the suite's tools
# start as from a terminal, with Python's own handler.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# JAX's import sets TF_CPP_MIN_LOG_LEVEL=1 where it is unset (TensorFlow imports JAX too), and
# every tool the tests start would inherit it and keep it as the user's choice: TensorFlow's
# start-up lines, which the tools hide, would then reach their error output on some CPUs. Before
# each test the variable is as the user started pytest with.
_USERS_TF_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")


def pytest_runtest_setup(item):
    if _USERS_TF_LOG_LEVEL is None:
        os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
    else:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = _USERS_TF_LOG_LEVEL


@pytest.fixture(autouse=True)
def no_process_outlives_its_test(monkeypatch):
    """Every process a test starts is killed at the test's end if it still runs: a test that fails
    or times out while its tool trains (--epochs 100000, waiting for a Ctrl-C) would otherwise
    leave it computing, and slow every later test."""
    started = []

    class Recorded(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)
    monkeypatch.setattr(subprocess, "Popen", Recorded)
    yield
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def pytest_addoption(parser):
    profile = default_profile()
    parser.addoption("--backends", default=",".join(PROFILES[profile]),
                     help=f"comma-separated backends to test (default: the {profile!r} profile's "
                          f"{', '.join(PROFILES[profile])}, all required)")


def selected_backends(config):
    return backend_names(config.getoption("--backends"))


def device_for(name):
    """The device a backend's tests use: RNN_CORE_TEST_DEVICE, or the CPU for NumPy."""
    return DEVICE if has(name, "gpu") else "cpu"


def backend(name):
    """The backend ``name`` on the test device."""
    return get_backend(name, device_for(name))


def deterministic(ops):
    """``ops`` again, asking for deterministic algorithms: on a GPU, sums by atomic additions (the
    gradient of the row lookup) change in the last bits from run to run otherwise, and a test
    that compares two runs bit for bit needs this (docs/gpu.md); on the CPU it changes nothing."""
    return get_backend(ops.name, device_for(ops.name), deterministic=True)


# cuDNN's float32 RNN kernels (PyTorch's layer on a GPU) add in another order than a CPU does. In
# issue 15's H100 session, with TF32 off, two stacked tanh layers over 35 steps were within 1.7e-5
# of the float64 reference (3 outputs of 552 beyond 1e-5); on the CPU every framework is within
# 1e-5.
LAYER_ATOL = 1e-5 if DEVICE == "cpu" else 4e-5


def reference_ops():
    """The NumPy reference that every backend is compared against (always on the CPU)."""
    return get_backend(REFERENCE, "cpu")


def pytest_generate_tests(metafunc):
    names = selected_backends(metafunc.config)
    if "ops" in metafunc.fixturenames:
        metafunc.parametrize("ops", names, indirect=True)
    if "autograd_ops" in metafunc.fixturenames:
        metafunc.parametrize("autograd_ops", [n for n in names if has(n, "autograd")], indirect=True)
    if "layer_ops" in metafunc.fixturenames:
        metafunc.parametrize("layer_ops", [n for n in names if has(n, "layers")], indirect=True)
    if "backend_name" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", names)


@pytest.fixture
def ops(request):
    return backend(request.param)


@pytest.fixture
def autograd_ops(request):
    return backend(request.param)


@pytest.fixture
def layer_ops(request):
    """A backend with its own RNN layer (the concise model)."""
    return backend(request.param)


@pytest.fixture
def selected(request):
    """The names of the selected backends, in order."""
    return selected_backends(request.config)


@pytest.fixture
def all_ops(request):
    """The NumPy reference first (selected or not), then every other selected backend: the
    cross-backend checks compare each with ``all_ops[0]``."""
    return [reference_ops()] + [backend(name) for name in selected_backends(request.config)
                                if name != REFERENCE]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# A small model problem shared by the model, concise and checkpoint tests.
VOCAB, HIDDEN, BATCH, STEPS = 23, 16, 4, 6


@pytest.fixture
def problem(rng):
    """Small weights of the canonical layout (larger than the book's 0.01, so the tanh and the
    recurrence really matter), a batch, and its labels."""
    params = model.RNNParams(*(rng.normal(scale=0.3, size=p.shape).astype(np.float32)
                               for p in model.init_params(VOCAB, HIDDEN, seed=0)))
    X = rng.integers(0, VOCAB, size=(BATCH, STEPS))
    Y = rng.integers(0, VOCAB, size=(BATCH, STEPS))
    H0 = rng.normal(scale=0.5, size=(BATCH, HIDDEN)).astype(np.float32)
    return params, X, Y, H0


def book_corpus_available(name):
    folder = os.environ.get("RNN_CORE_DATA")
    file = {"jaychou": "jaychou_lyrics.txt.zip", "timemachine": "timemachine.txt"}[name]
    return bool(folder) and os.path.isfile(os.path.join(folder, file))


def require_book_corpus(name):
    """The book's corpora are never committed: CI reads them from RNN_CORE_DATA=../shared/data.
    In CI (CI=true) their absence is a failure; elsewhere the test is skipped with the reason."""
    if book_corpus_available(name):
        return
    message = f"the book's {name} corpus is not in RNN_CORE_DATA (set RNN_CORE_DATA=../shared/data)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
