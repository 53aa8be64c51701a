"""The built wheel, installed (not editable) into a fresh environment, works from another folder:
the tools run, the default corpus is found as package data, and the wheel claims no generic
top-level import name (the repository's ``backends/`` installs as ``rnn_core.backends``).

It needs pip to reach an index, for the build's setuptools and for NumPy (the only dependency);
offline, outside CI, it skips."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def clean_env():
    """This environment less what would let the checkout leak into the fresh one."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RNN_CORE_DATA")}


def pip(python, *args):
    return subprocess.run([str(python), "-m", "pip", *args, "--disable-pip-version-check"],
                          capture_output=True, text=True, cwd="/", env=clean_env(), timeout=900,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``(wheel, python)``: the wheel built from this checkout, installed with NumPy alone."""
    where = tmp_path_factory.mktemp("wheel")
    source = where / "source"       # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".data", ".whl"))
    built = pip(sys.executable, "wheel", "--no-deps", "-w", str(where / "dist"), str(source))
    if built.returncode != 0:
        unavailable(f"pip could not build the wheel: {built.stderr[-3000:]}")
    wheel = next((where / "dist").glob("rnn_core-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(where / "env")], check=True)
    python = where / "env" / "bin" / "python"
    done = pip(python, "install", "--only-binary=:all:", str(wheel), f"numpy=={np.__version__}")
    if done.returncode != 0:
        unavailable(f"pip could not install the wheel with NumPy {np.__version__}: "
                    f"{done.stderr[-500:]}")
    return wheel, python


def unavailable(message):
    """A failure in CI, which reaches an index; elsewhere, offline perhaps, a skip that says why."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def run(python, *args):
    return subprocess.run([str(python), *args], capture_output=True, text=True, timeout=600,
                          cwd="/", env=clean_env(), stdin=subprocess.DEVNULL)


def test_the_wheel_claims_only_the_rnn_core_name(installed):
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
        assert "rnn_core/backends/numpy.py" in archive.namelist()
        assert "rnn_core/corpora/lyrics_zh.txt" in archive.namelist()
    assert {name for name in top if not name.endswith(".dist-info")} == {"rnn_core"}


def test_the_installed_tools_run_from_another_folder_on_the_default_corpus(installed):
    _, python = installed
    result = run(python, "-m", "rnn_core.run", "--backend", "numpy", "--epochs", "1",
                 "--hidden", "16", "--pred-len", "5", "--pred-period", "1")
    assert result.returncode == 0, result.stderr
    assert "corpus lyrics_zh" in result.stdout and "epoch 1, perplexity" in result.stdout
    identity = run(python, "-m", "rnn_core.identity", "--backend", "numpy")
    assert identity.returncode == 0, identity.stderr
    generic = run(python, "-c", "import backends")
    assert generic.returncode != 0 and "No module named 'backends'" in generic.stderr
