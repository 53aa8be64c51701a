"""Choosing a backend by name. Nothing here imports a framework until it is asked for."""
from __future__ import annotations

import importlib
import importlib.util

from rnn_core.errors import BackendUnavailable, RNNCoreError

# name -> (module in backends/, class, framework's import name, pip extra, what to call it)
_BACKENDS = {
    "numpy": ("backends.numpy", "NumpyOps", "numpy", None, "NumPy"),
    "torch": ("backends.torch", "TorchOps", "torch", "torch", "PyTorch"),
    "tf": ("backends.tf", "TFOps", "tensorflow", "tf", "TensorFlow"),
    "mxnet": ("backends.mxnet", "MXNetOps", "mxnet", "mxnet", "MXNet"),
    "jax": ("backends.jax", "JaxOps", "jax", "jax", "JAX"),
}
_ALIASES = {"np": "numpy", "pytorch": "torch", "tensorflow": "tf", "mx": "mxnet"}
BACKEND_NAMES = tuple(_BACKENDS)
DEVICES = ("auto", "cpu", "gpu")


def canonical_name(name: str) -> str:
    """'pytorch' -> 'torch'; an unknown name raises an error listing the known ones."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _BACKENDS:
        raise RNNCoreError(
            f"unknown backend {name!r}: choose one of {', '.join(BACKEND_NAMES)}")
    return key


def get_backend(name: str, device: str = "auto"):
    """The :class:`rnn_core.ops.Ops` of framework ``name`` on ``device`` ('auto', 'cpu', 'gpu').

    ``auto`` takes the framework's first GPU when it sees one, else the CPU; the chosen device is
    the backend's ``device`` attribute. A framework that is not installed raises
    :class:`BackendUnavailable` naming the extra to install; ``gpu`` where the framework sees no
    GPU raises :class:`DeviceUnavailable`.
    """
    key = canonical_name(name)
    if device not in DEVICES:
        raise RNNCoreError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")
    module_name, class_name, framework, extra, title = _BACKENDS[key]
    fix = (f"install it with: pip install -c constraints.txt -e '.[{extra}]' "
           f"(or run: make run BACKEND={key})" if extra else "install it with: pip install numpy")
    if importlib.util.find_spec(framework) is None:
        raise BackendUnavailable(f"backend {key!r} needs {title}, which is not installed: {fix}")
    _load_mxnet_before_tensorflow(key)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BackendUnavailable(
            f"backend {key!r}: {title} is installed but does not import ({error}); {fix}"
        ) from error
    return getattr(module, class_name)(device)


def _load_mxnet_before_tensorflow(key: str) -> None:
    """MXNet 1.9.1 crashes the process (a segfault in libmxnet's start-up operator tuning) when it
    is loaded after TensorFlow 2.17; loaded first, both work side by side. So when TensorFlow is
    asked for and MXNet is installed, MXNet is loaded first; and MXNet asked for after TensorFlow
    is refused with an error instead of a crash."""
    import sys
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
