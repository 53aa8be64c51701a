"""Every test that takes ``ops`` runs once per backend, so one failure hides nothing.

All four backends are required: a framework that is missing or fails to import makes its tests
fail (not skip). ``--backends numpy,torch`` runs a subset while developing."""
import os

import numpy as np
import pytest

from rnn_core import get_backend, model
from rnn_core.backend import BACKEND_NAMES

# Where tests run: the CPU unless RNN_CORE_TEST_DEVICE says otherwise (auto or gpu on a GPU machine).
DEVICE = os.environ.get("RNN_CORE_TEST_DEVICE", "cpu")


def pytest_addoption(parser):
    parser.addoption("--backends", default=",".join(BACKEND_NAMES),
                     help="comma-separated backends to test (default: all four, all required)")


def selected_backends(config):
    return [name.strip() for name in config.getoption("--backends").split(",") if name.strip()]


def pytest_generate_tests(metafunc):
    names = selected_backends(metafunc.config)
    if "ops" in metafunc.fixturenames:
        metafunc.parametrize("ops", names, indirect=True)
    if "autograd_ops" in metafunc.fixturenames:
        metafunc.parametrize("autograd_ops", [n for n in names if n != "numpy"], indirect=True)
    if "backend_name" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", names)


@pytest.fixture
def ops(request):
    return get_backend(request.param, DEVICE)


@pytest.fixture
def autograd_ops(request):
    return get_backend(request.param, DEVICE)


@pytest.fixture
def all_ops(request):
    """Every selected backend at once, the NumPy reference first, for cross-backend checks."""
    return [get_backend(name, DEVICE) for name in selected_backends(request.config)]


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
