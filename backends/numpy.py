"""The NumPy backend: the float32, CPU reference every other backend is compared against.

NumPy has no autograd, so :meth:`value_and_grad` raises; the core trains NumPy with its
hand-written backpropagation through time (``rnn_core/bptt.py``)."""
import contextlib

import numpy as np

from rnn_core.backend import no_gpu_build
from rnn_core.ops import python_loop, python_scan


class NumpyOps:
    name = "numpy"
    gpu_device = None           # NumPy has no GPU
    malloc_arrays = True        # arrays come from glibc's malloc: see backends/_allocator.py

    @staticmethod
    def gpu_count():
        return 0

    def __init__(self, device="auto", *, precision="float32", deterministic=False):
        if device == "gpu":
            raise no_gpu_build(self.name)
        self.device = "cpu"
        self.version = np.__version__
        self.precision, self.deterministic = precision, deterministic

    def numerics(self):
        return {"tf32": None, "deterministic": None}    # IEEE float32 on the CPU; no switches

    def numerics_scope(self):
        return contextlib.nullcontext()

    def asarray(self, x, /):
        x = np.asarray(x)
        return np.array(x, dtype=np.float32 if x.dtype.kind == "f" else np.int64)

    def to_numpy(self, x, /):
        return np.array(x)

    def zeros(self, shape, /):
        return np.zeros(shape, dtype=np.float32)

    def matmul(self, x1, x2, /):
        return np.matmul(x1, x2)

    def linear(self, x, weight, bias, /):
        return np.matmul(x, weight) + bias

    def matrix_transpose(self, x, /):
        return np.transpose(x)

    def concat(self, xs, /, *, axis=0):
        return np.concatenate(xs, axis=axis)

    def stack(self, xs, /, *, axis=0):
        return np.stack(xs, axis=axis)

    def unstack(self, x, /):
        return list(x)

    def reshape(self, x, shape, /):
        return np.reshape(x, shape)

    def take(self, x, indices, /, *, axis=0):
        return np.take(x, indices, axis=axis)

    def take_along_axis(self, x, indices, /, *, axis=-1):
        return np.take_along_axis(x, indices, axis=axis)

    def segment_sum(self, data, segment_ids, /, *, num_segments):
        order = np.argsort(segment_ids, kind="stable")      # sorted ids: one reduceat per run
        ids = segment_ids[order]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        out = np.zeros((num_segments,) + data.shape[1:], dtype=data.dtype)
        out[ids[starts]] = np.add.reduceat(data[order], starts, axis=0)
        return out

    def one_hot(self, indices, num_classes, /):
        out = np.zeros((indices.size, num_classes), dtype=np.float32)
        out[np.arange(indices.size), indices.reshape(-1)] = 1.0
        return out.reshape(indices.shape + (num_classes,))

    def tanh(self, x, /):
        return np.tanh(x)

    def sigmoid(self, x, /):
        with np.errstate(over="ignore"):     # exp(-x) = inf below x = -88: the sigmoid is 0
            return 1.0 / (1.0 + np.exp(-x))

    def exp(self, x, /):
        return np.exp(x)

    def expm1(self, x, /):
        return np.expm1(x)

    def log(self, x, /):
        return np.log(x)

    def sqrt(self, x, /):
        return np.sqrt(x)

    def log_softmax(self, x, /, *, axis=-1):
        shifted = x - np.max(x, axis=axis, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))

    def clip(self, x, /, min=None, max=None):
        return np.clip(x, min, max)

    def sum(self, x, /, *, axis=None, keepdims=False):
        return np.sum(x, axis=axis, keepdims=keepdims)

    def max(self, x, /, *, axis=None, keepdims=False):
        return np.max(x, axis=axis, keepdims=keepdims)

    def argmax(self, x, /, *, axis=None):
        return np.argmax(x, axis=axis)

    def stop_gradient(self, x, /):
        return x

    def value_and_grad(self, f, params, /):
        raise NotImplementedError(
            "NumPy has no automatic differentiation: train the numpy backend with grad='bptt' "
            "(--grad bptt), the hand-written backpropagation through time")

    def recurrent_layer(self, cell, variant, num_layers, input_size, num_hiddens, vocab_size):
        raise NotImplementedError(
            "NumPy has no RNN layer: the concise model needs a framework's own layers; "
            "on numpy, use --model scratch")

    def scan(self, f, carry, xs, /):
        return python_scan(self, f, carry, xs)

    def compile_loop(self, f):
        return python_loop(self, f)

    def graph(self, fn):
        return fn

    def compile(self, fn):
        return fn                  # nothing to compile in NumPy
