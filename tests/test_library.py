"""A library that behaves in a notebook (issue 14, D): importing and calling rnn_core changes
no process-wide state (matplotlib's backend, glibc's allocator, NumPy's error handling); the
command-line tools make such settings themselves."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rnn_core import get_backend, identity

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NOTEBOOK = """
import json, sys, ctypes
import numpy as np
import matplotlib
calls = []
real_cdll = ctypes.CDLL
class Recording:                       # glibc's mallopt, recorded instead of called
    def __init__(self, library): self.library = library
    def __getattr__(self, name):
        if name == "mallopt":
            return lambda *args: calls.append(args) or 1
        return getattr(self.library, name)
def cdll(name, *args, **kwargs):
    library = real_cdll(name, *args, **kwargs)
    return Recording(library) if name is None else library
ctypes.CDLL = cdll

def state():
    return {"matplotlib backend": str(dict.__getitem__(matplotlib.rcParams, "backend")),
            "numpy errors": np.geterr(), "mallopt calls": len(calls)}

before = state()
import rnn_core
from rnn_core import checkpoint, get_backend, train
from rnn_core.data import load_corpus
from rnn_core.plot import perplexity_plot
ops = get_backend(sys.argv[1], "cpu")
config = train.TrainConfig(num_hiddens=8, num_epochs=2, pred_period=1, pred_len=3, lr=1e38,
                           clipping_theta=1e38)     # diverges: NumPy meets overflows on the way
try:
    train.train_and_predict_rnn(ops, load_corpus(), config, log=lambda line: None,
                                save=sys.argv[2] + "/ck.npz")
except rnn_core.TrainingDiverged:
    pass
config.lr = config.clipping_theta = 1.0
_, history = train.train_and_predict_rnn(ops, load_corpus(), config, log=lambda line: None,
                                         save=sys.argv[2] + "/ck.npz")
perplexity_plot({"run": [r.perplexity for r in history]}, sys.argv[2] + "/curve.png")
print(json.dumps({"before": before, "after": state()}))
"""


def test_training_saving_and_plotting_change_no_process_wide_state(tmp_path, backend_name):
    result = subprocess.run([sys.executable, "-c", NOTEBOOK, backend_name, str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=600,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    states = json.loads(result.stdout.splitlines()[-1])
    assert states["after"] == states["before"]
    assert sorted(os.listdir(tmp_path)) == ["ck.npz", "curve.png"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux's")
def test_the_command_line_keeps_freed_buffers_where_arrays_come_from_malloc(tmp_path,
                                                                           backend_name):
    """run asks glibc to keep large freed buffers for backends whose arrays come from malloc
    (their fast path's speed-up is measured in docs/benchmarks.md), and not on the book's path,
    which allocates as the book's code does."""
    log = tmp_path / "mallopt.log"
    common = [os.path.join(ROOT, "tests", "faults.py"), f"mallopt-log={log}", "rnn_core.run",
              "--backend", backend_name, "--epochs", "1", "--hidden", "8", "--quiet"]
    for extra in (["--book-path"], []):
        result = subprocess.run([sys.executable, *common, *extra], capture_output=True,
                                text=True, cwd=ROOT, timeout=600, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines() if log.exists() else []
    from backends import _allocator
    expected = [f"{_allocator.M_MMAP_THRESHOLD} {_allocator.MMAP_THRESHOLD}",
                f"{_allocator.M_TRIM_THRESHOLD} {_allocator.TRIM_THRESHOLD}"]
    malloc = getattr(get_backend(backend_name, "cpu"), "malloc_arrays", False)
    assert calls == (expected if malloc else [])


def test_the_identity_tool_called_from_a_notebook_keeps_numpys_print_options(backend_name,
                                                                            capsys):
    """It prints its matrices with six decimals, and only them."""
    before = np.get_printoptions()
    assert identity.main(["--backend", backend_name, "--device", "cpu"]) == 0
    assert "largest difference" in capsys.readouterr().out
    assert np.get_printoptions() == before
