"""The install profiles say the same in every place: the frameworks of ``rnn_core.profiles`` on a
Python are those that pyproject.toml's extras install there and that the tests take; the Makefile
asks the same file which profile a Python takes, and refuses one that does not fit in one line; a
framework that a profile leaves out on this Python is named, with the reason and the fix, where a
user asks for it.

No framework is imported here: these tests read the project's files and the profile table."""
import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from rnn_core import backend, profiles
from rnn_core.errors import BackendUnavailable

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
FRAMEWORK_EXTRAS = {extra for _, _, _, extra, _ in backend._BACKENDS.values() if extra}
PYTHONS = {"all": [(3, 11)], "current": [(3, 12), (3, 13), (3, 14)]}     # what the Makefile takes
THIS_PYTHON = sys.version_info[:2]


def frameworks_installed_by(extra, python):
    """The backends that ``pip install '.[extra]'`` brings on Python ``python`` (``(3, 14)``),
    following the extra's references to other extras and their environment markers."""
    found = set()
    for line in EXTRAS[extra]:
        requirement = Requirement(line)
        environment = {"python_version": "%d.%d" % python, "extra": extra}
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        if requirement.name == "rnn-core":
            for inner in requirement.extras:
                found |= {inner} if inner in FRAMEWORK_EXTRAS else frameworks_installed_by(
                    inner, python)
    return found


@pytest.mark.parametrize("profile", sorted(PYTHONS))
def test_each_profiles_extra_installs_the_frameworks_of_the_profile(profile):
    for python in PYTHONS[profile]:
        assert frameworks_installed_by(profile, python) == set(
            profiles.frameworks(profile, python)) - {backend.REFERENCE}, python


def test_the_profiles_of_this_python_are_its_frameworks():
    assert backend.PROFILES == {profile: profiles.frameworks(profile, THIS_PYTHON)
                                for profile in ("all", "current")}


@pytest.mark.parametrize("profile", sorted(PYTHONS))
def test_each_profile_takes_its_pythons_and_refuses_others_in_one_line(profile):
    for python in [(3, 10), (3, 11), (3, 12), (3, 13), (3, 14), (3, 15)]:
        problem = profiles.check(profile, python)
        assert (problem is None) == (python in PYTHONS[profile]), python
        if python in PYTHONS[profile]:
            assert profiles.choose(python) == profile, python
        if problem:
            assert "\n" not in problem
            assert problem.startswith(f"profile {profile!r} does not fit Python %d.%d: " % python)
            assert "choose PYTHON=" in problem
    assert "(PyTorch 2.13, the pinned release, has no wheels for 3.15" in profiles.check(
        "current", (3, 15))


def make(*args, tmp_path, python=sys.executable):
    """``make ARGS`` in the repository with this Python, into an environment that does not exist
    (so that nothing is installed), as a user would call it: without the MAKEFLAGS of a make that
    started this test run."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed here")
    environment = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS",
                                                                   "MAKELEVEL")}
    return subprocess.run(["make", "--no-print-directory", *args, f"PYTHON={python}",
                           f"VENV={tmp_path / 'venv'}"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_make_names_the_profile_of_this_python_and_what_it_leaves_out(tmp_path):
    """What ``make`` prints before it installs: the profile it chose, and one line (the one that
    ``--backend`` gives) for each framework that the profile leaves out on this Python."""
    done = make("-s", "profile", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    profile = profiles.choose(THIS_PYTHON)
    assert done.stdout.splitlines() == [
        f"install profile {profile!r} for Python {sys.version.split()[0]} ({tmp_path / 'venv'})",
        *(backend.LEFT_OUT[name] for name in profiles.FRAMEWORKS["all"]
          if name not in backend.PROFILES[profile])]


def test_make_refuses_the_other_profile_in_one_line_before_installing(tmp_path):
    other = "current" if profiles.choose(THIS_PYTHON) == "all" else "all"
    done = make("install", f"PROFILE={other}", tmp_path=tmp_path)
    assert done.returncode != 0
    assert done.stderr.splitlines()[0] == profiles.check(other, THIS_PYTHON)
    assert not (tmp_path / "venv").exists()


def test_make_refuses_an_unknown_profile_in_one_line(tmp_path):
    done = make("test", "PROFILE=curent", tmp_path=tmp_path)
    assert done.returncode != 0
    assert "unknown profile 'curent': choose PROFILE=all or current" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "venv").exists()


def test_make_refuses_a_python_that_does_not_run_in_one_line(tmp_path):
    missing = tmp_path / "python3.99"
    done = make("test", tmp_path=tmp_path, python=missing)
    assert done.returncode != 0
    (line,) = done.stderr.splitlines()          # Makefile:N: *** ...  Stop.
    assert f"*** PYTHON={missing} does not run: give PYTHON= a Python interpreter that exists, " \
           "for example PYTHON=python3." in line
    assert not (tmp_path / "venv").exists()


def test_the_profile_table_runs_with_the_standard_library_alone():
    """The Makefile runs rnn_core/profiles.py before anything is installed: with ``-I -S`` (no
    site-packages, no rnn_core) it answers as the imported module does."""
    def ask(*args):
        return subprocess.run([sys.executable, "-I", "-S", str(ROOT / "rnn_core" / "profiles.py"),
                               *args], capture_output=True, text=True, timeout=60)
    assert ask("choose").stdout == profiles.choose() + "\n"
    for profile in PYTHONS:
        assert ask("notes", profile).stdout.splitlines() == profiles.notes(profile)
        assert ask("check", profile).returncode == (0 if profiles.check(profile) is None else 1)
    assert ask("check", "junk").stderr == "unknown profile 'junk': choose PROFILE=all or current\n"
    assert ask().returncode == 2


def test_every_framework_the_current_profile_leaves_out_somewhere_has_its_reason():
    everywhere = set(profiles.frameworks("all", PYTHONS["all"][0]))
    left_out = set().union(*(everywhere - set(profiles.frameworks("current", python))
                             for python in PYTHONS["current"]))
    assert left_out == set(backend.LEFT_OUT)


def pretend_not_installed(name, monkeypatch):
    """Backend ``name``'s framework looks uninstalled to rnn-core's lookup (``find_spec``)."""
    framework = backend._BACKENDS[name][2]
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda module, *a: None if module == framework else real_find_spec(
                            module, *a))


def test_a_profile_set_for_another_python_is_not_what_the_install_advice_names(monkeypatch):
    """RNN_CORE_PROFILE names a profile that this Python cannot install (left over from another
    environment): a missing framework's advice is this Python's profile's."""
    other = "current" if profiles.choose() == "all" else "all"
    monkeypatch.setenv("RNN_CORE_PROFILE", other)
    name = next(n for n in profiles.frameworks(profiles.choose()) if n != backend.REFERENCE)
    pretend_not_installed(name, monkeypatch)
    with pytest.raises(BackendUnavailable) as error:
        backend.check_installed(name)
    assert f"constraints/{profiles.choose()}.txt" in str(error.value)
    assert f"constraints/{other}.txt" not in str(error.value)


@pytest.mark.parametrize("name", sorted(backend.LEFT_OUT))
def test_a_framework_the_profile_leaves_out_is_refused_with_the_reason(name, monkeypatch):
    """Where the 'current' profile leaves a framework out (MXNet from Python 3.12, TensorFlow from
    3.14) and it is not installed, asking for it says why and what to do. (On that Python: here
    as the newest that 'current' takes.)"""
    monkeypatch.setattr(profiles, "this_python", lambda: PYTHONS["current"][-1])
    monkeypatch.setattr(backend, "PROFILES", {**backend.PROFILES, "current": tuple(
        n for n in backend.PROFILES["current"] if n != name)})
    monkeypatch.delenv("RNN_CORE_PROFILE", raising=False)
    pretend_not_installed(name, monkeypatch)
    with pytest.raises(BackendUnavailable) as error:
        backend.get_backend(name, "cpu")
    assert str(error.value).endswith(backend.LEFT_OUT[name])
    assert "\n" not in str(error.value)


def test_a_backend_refused_for_its_own_reason_keeps_that_reason(monkeypatch):
    """MXNet after TensorFlow in one process is refused with its reason and fix (load MXNet
    first); that reason is not wrapped in advice to install the framework again."""
    reason = "backend 'x' cannot be loaded after 'y' in the same process: load it first"

    def refused(key):
        raise BackendUnavailable(reason)
    monkeypatch.setattr(backend, "_load_mxnet_before_tensorflow", refused)
    with pytest.raises(BackendUnavailable) as error:
        backend.get_backend(backend.REFERENCE, "cpu")
    assert str(error.value) == reason
