"""The install profiles say the same in every place: the frameworks of ``rnn_core.backend.PROFILES``
on a Python are those that pyproject.toml's extras install there, and a framework that a profile
leaves out on this Python is named, with the reason and the fix, where a user asks for it.

No framework is imported here: these tests read the project's files and the profile table."""
import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from rnn_core import backend
from rnn_core.errors import BackendUnavailable

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
FRAMEWORK_EXTRAS = {extra for _, _, _, extra, _ in backend._BACKENDS.values() if extra}
PYTHONS = {"all": [(3, 11)], "current": [(3, 12), (3, 13), (3, 14)]}     # what the Makefile takes


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
            backend.profile_frameworks(profile, python)) - {backend.REFERENCE}, python


def test_the_profiles_of_this_python_are_its_frameworks():
    assert backend.PROFILES == {profile: backend.profile_frameworks(profile, sys.version_info[:2])
                                for profile in ("all", "current")}


def test_every_framework_the_current_profile_leaves_out_somewhere_has_its_reason():
    everywhere = set(backend.profile_frameworks("all", PYTHONS["all"][0]))
    left_out = set().union(*(everywhere - set(backend.profile_frameworks("current", python))
                             for python in PYTHONS["current"]))
    assert left_out == set(backend.LEFT_OUT)


@pytest.mark.parametrize("name", sorted(backend.LEFT_OUT))
def test_a_framework_the_profile_leaves_out_is_refused_with_the_reason(name, monkeypatch):
    """Where the 'current' profile leaves a framework out (MXNet from Python 3.12, TensorFlow from
    3.14) and it is not installed, asking for it says why and what to do."""
    monkeypatch.setattr(backend, "PROFILES", {**backend.PROFILES, "current": tuple(
        n for n in backend.PROFILES["current"] if n != name)})
    monkeypatch.setenv("RNN_CORE_PROFILE", "current")
    framework = backend._BACKENDS[name][2]
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda module, *a: None if module == framework else real_find_spec(
                            module, *a))
    with pytest.raises(BackendUnavailable) as error:
        backend.get_backend(name, "cpu")
    assert str(error.value).endswith(backend.LEFT_OUT[name])
    assert "\n" not in str(error.value)
