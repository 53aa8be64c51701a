"""Choosing a backend by name. Nothing here imports a framework until it is asked for."""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path

from rnn_core import profiles
from rnn_core.errors import BackendUnavailable, DeviceUnavailable, RNNCoreError

# What a framework is imported inside: nothing for the library. The command-line tools put there
# cli.start_up_lines_hidden, which drops the C++ log lines that frameworks write while they load.
framework_import_context = contextlib.nullcontext

# name -> (module of rnn_core.backends (the repository's backends/ folder), class,
#          framework's import name, pip extra, what to call it)
_BACKENDS = {
    "numpy": ("rnn_core.backends.numpy", "NumpyOps", "numpy", None, "NumPy"),
    "torch": ("rnn_core.backends.torch", "TorchOps", "torch", "torch", "PyTorch"),
    "tf": ("rnn_core.backends.tf", "TFOps", "tensorflow", "tf", "TensorFlow"),
    "mxnet": ("rnn_core.backends.mxnet", "MXNetOps", "mxnet", "mxnet", "MXNet"),
    "jax": ("rnn_core.backends.jax", "JaxOps", "jax", "jax", "JAX"),
}
_ALIASES = {"np": "numpy", "pytorch": "torch", "tensorflow": "tf", "mx": "mxnet"}
BACKEND_NAMES = tuple(_BACKENDS)
DEVICES = ("auto", "cpu", "gpu")
PRECISIONS = ("float32", "tf32")

# The frameworks of each install profile on this Python (rnn_core/profiles.py, which the Makefile
# also asks); LEFT_OUT says why the 'current' profile leaves one out here.
PROFILES = {profile: profiles.frameworks(profile) for profile in profiles.FRAMEWORKS}
LEFT_OUT = profiles.LEFT_OUT
REFERENCE = "numpy"      # the float32 CPU reference every backend is compared against
# What a framework lacks: NumPy has no GPU build, no autograd and no RNN layer of its own.
_LACKS = {"numpy": ("gpu", "autograd", "layers")}


def default_profile() -> str:
    """The profile of this environment: ``$RNN_CORE_PROFILE`` if set, else ``all`` on Python
    3.11 and earlier and ``current`` on 3.12 and later (what the Makefile installs)."""
    profile = os.environ.get("RNN_CORE_PROFILE") or profiles.choose()
    if profile not in PROFILES:
        raise RNNCoreError(f"RNN_CORE_PROFILE={profile!r}: choose one of {', '.join(PROFILES)}")
    return profile


def has(name: str, feature: str) -> bool:
    """Whether backend ``name`` has ``feature``: 'gpu' (a GPU build), 'autograd', 'layers'
    (its own RNN layer, for the concise model)."""
    return feature not in _LACKS.get(canonical_name(name), ())


def no_gpu_build(name: str) -> DeviceUnavailable:
    """The error for ``--device gpu`` on a framework that has no GPU build (NumPy), naming the
    backends that have one."""
    others = [n for n in BACKEND_NAMES if has(n, "gpu")]
    return DeviceUnavailable(
        f"--device gpu: the {name} backend runs on the CPU only; use --device cpu or --device auto, or "
        f"a backend with a GPU build: {', '.join(others[:-1])} or {others[-1]}")


def canonical_name(name: str) -> str:
    """'pytorch' -> 'torch'; an unknown name raises an error listing the known ones."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _BACKENDS:
        raise RNNCoreError(
            f"unknown backend {name!r}: choose one of {', '.join(BACKEND_NAMES)}")
    return key


def backend_names(values) -> list:
    """``["numpy", "torch"]``, ``["numpy,torch"]`` or ``"numpy,torch"`` (as the tests'
    ``--backends`` is written): each backend's name once, in the order given; an unknown one is
    refused, naming the known."""
    values = [values] if isinstance(values, str) else values
    return list(dict.fromkeys(canonical_name(name) for value in values
                              for name in value.split(",") if name.strip()))


def get_backend(name: str, device: str = "auto", *, precision: str = "float32",
                deterministic: bool = False):
    """The :class:`rnn_core.ops.Ops` of framework ``name`` on ``device`` ('auto', 'cpu', 'gpu').

    ``auto`` takes the framework's first GPU when it sees one, else the CPU; the chosen device is
    the backend's ``device`` attribute. A framework that is not installed raises
    :class:`BackendUnavailable` naming the extra to install; ``gpu`` where the framework sees no
    GPU raises :class:`DeviceUnavailable`.

    ``precision='float32'`` (the default) computes every product in IEEE float32, TensorFloat-32
    switched off where the framework has it; ``'tf32'`` allows TF32 on GPUs that have it (faster,
    products rounded to 10-bit mantissas). ``deterministic=True`` asks the framework for
    deterministic algorithms, so that a run on a GPU repeats bit for bit (a resumed run included).
    Where those are process-wide switches (PyTorch, TensorFlow), the backend sets them only within
    ``numerics_scope()``, which every training step and the core's training and prediction enter,
    and puts the process's own back after; ``numerics()`` reads them (docs/gpu.md).
    """
    key = canonical_name(name)
    if device not in DEVICES:
        raise RNNCoreError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")
    if precision not in PRECISIONS:
        raise RNNCoreError(
            f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if device == "gpu" and not has(key, "gpu"):
        raise no_gpu_build(key)
    module_name, class_name, framework, extra, title = _BACKENDS[key]
    fix = check_installed(key)
    backends_package()
    try:
        with framework_import_context():
            _load_mxnet_before_tensorflow(key)
            module = importlib.import_module(module_name)
    except BackendUnavailable:      # its own reason and fix: installing again cannot help
        raise
    except ImportError as error:
        raise BackendUnavailable(
            f"backend {key!r}: {title} is installed but does not import ({error}); {fix}"
        ) from error
    return getattr(module, class_name)(device, precision=precision,
                                       deterministic=bool(deterministic))


def check_installed(name: str) -> str:
    """Raise :class:`BackendUnavailable` where the framework of backend ``name`` is not installed
    (looked up, not imported), naming what to install, or why this Python's profile leaves it
    out; else return that advice, for an error on import."""
    key = canonical_name(name)
    _, _, framework, extra, title = _BACKENDS[key]
    profile = default_profile()
    if profiles.check(profile):         # RNN_CORE_PROFILE names a profile of another Python
        profile = profiles.choose()
    fix = (f"install it with: pip install -c constraints/{profile}.txt -e '.[{extra}]' "
           f"(or run: make run BACKEND={key})" if extra else "install it with: pip install numpy")
    if key not in PROFILES["current"] and profile == "current":
        fix = LEFT_OUT[key]
    if importlib.util.find_spec(framework) is None:
        raise BackendUnavailable(f"backend {key!r} needs {title}, which is not installed: {fix}")
    return fix


def backends_package():
    """The package ``rnn_core.backends``. An installed rnn-core has it (the wheel maps the
    repository's ``backends/`` folder there); a source checkout on ``PYTHONPATH`` has the folder
    beside ``rnn_core/``, which is registered under that name on first use."""
    try:
        return importlib.import_module("rnn_core.backends")
    except ModuleNotFoundError:
        pass
    folder = Path(__file__).resolve().parent.parent / "backends"
    spec = importlib.util.spec_from_file_location(
        "rnn_core.backends", folder / "__init__.py", submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _load_mxnet_before_tensorflow(key: str) -> None:
    """MXNet 1.9.1 crashes the process (a segfault in libmxnet's start-up operator tuning) when it
    is loaded after TensorFlow 2.17; loaded first, both work side by side. So when TensorFlow is
    asked for and MXNet is installed, MXNet is loaded first; and MXNet asked for after TensorFlow
    is refused with an error instead of a crash."""
    if key == "tf" and "mxnet" not in sys.modules and importlib.util.find_spec("mxnet"):
        try:
            importlib.import_module("mxnet")
        except ImportError:
            pass    # a broken MXNet is reported when (if) the mxnet backend is asked for
    if key == "mxnet" and "mxnet" not in sys.modules and "tensorflow" in sys.modules:
        raise BackendUnavailable(
            "backend 'mxnet' cannot be loaded after TensorFlow in the same process: MXNet 1.9.1 "
            "crashes when it starts after TensorFlow 2.17. Load the mxnet backend first (or "
            "get_backend('tf') first, which loads MXNet before TensorFlow), or use separate "
            "processes")


def is_installed(name: str) -> bool:
    """Whether backend ``name`` can be loaded: its framework is installed and its module is
    present. Both are looked up, not imported, so asking is cheap and changes nothing
    (:func:`get_backend` still reports a framework that is installed but broken)."""
    module_name, _, framework, _, _ = _BACKENDS[canonical_name(name)]
    if importlib.util.find_spec(framework) is None:
        return False
    backends_package()
    return importlib.util.find_spec(module_name) is not None


def backend_source(name: str) -> tuple:
    """``(module, class, framework's name)`` of backend ``name``, e.g. ``('rnn_core.backends.tf',
    'TFOps', 'TensorFlow')``: where its code is, for tools that read it without importing the
    framework (``docs/scripts/side_by_side.py``)."""
    module, class_name, _, _, title = _BACKENDS[canonical_name(name)]
    return module, class_name, title
