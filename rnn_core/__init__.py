"""rnn-core: the character-level RNN language model of *Dive into Deep Learning*, written once
against a small tensor-ops protocol (:mod:`rnn_core.ops`) and run on NumPy, PyTorch, TensorFlow,
MXNet and JAX (:mod:`backends`). Importing this package imports no framework. :mod:`rnn_core.api`
is the Python API (``api.train``, ``api.compare``, ``api.generate``)."""
from rnn_core import api
from rnn_core.backend import BACKEND_NAMES, get_backend
from rnn_core.errors import (BackendUnavailable, CorpusError, DeviceUnavailable, RNNCoreError,
                             TrainingDiverged, VocabularyError)

__version__ = "0.1.0"
__all__ = ["api", "BACKEND_NAMES", "get_backend", "BackendUnavailable", "CorpusError",
           "DeviceUnavailable", "RNNCoreError", "TrainingDiverged", "VocabularyError"]
