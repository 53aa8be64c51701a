"""The JAX backend: each op is one call of ``jax.numpy``, ``jax.lax`` or ``jax.nn``; autograd is
``jax.value_and_grad``; :meth:`JaxOps.compile` is ``jax.jit``; the concise model is Flax's
``SimpleCell``, ``GRUCell`` or ``LSTMCell`` run over time by ``nn.RNN``, and ``nn.Dense``.

Matrix products ask for ``Precision.HIGHEST``: IEEE float32 on every device, where JAX's default
on a recent NVIDIA GPU is TensorFloat-32 (10 bits of mantissa); ``precision='tf32'`` asks for the
default instead. Flax's cell builds its own products, so its layers run inside
``jax.default_matmul_precision(...)``, a context, which changes nothing outside the call. Index tensors are int32 (JAX's default integer width)."""
import contextlib
import os

import jax
import jax.numpy as jnp
import numpy as np

from rnn_core.cells import get_cell
from rnn_core.concise import no_layer
from rnn_core.errors import DeviceUnavailable
from rnn_core.ops import python_scan

HIGHEST = jax.lax.Precision.HIGHEST
_DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"


def _first_device(platform):
    try:
        return jax.devices(platform)[0]
    except RuntimeError:        # a GPU only pretended (tests of the selection logic)
        return None


def _deterministic_gpu_ops():
    """XLA's deterministic GPU kernels (scatter-adds without atomics) are chosen by a flag that it
    reads when its GPU client starts: asked for before the first GPU computation, it holds for the
    process (docs/gpu.md)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if _DETERMINISTIC_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {_DETERMINISTIC_FLAG}".strip()


class JaxOps:
    name = "jax"
    gpu_device = "gpu:0"
    platforms_variable = "JAX_PLATFORMS"     # limits the platforms JAX may start

    @staticmethod
    def gpu_count():
        try:
            return len(jax.devices("gpu"))
        except RuntimeError:                  # no GPU platform in this jaxlib, or none seen
            return 0

    def __init__(self, device="auto", *, precision="float32", deterministic=False):
        try:
            jax.devices()           # the platforms that JAX_PLATFORMS allows, if it is set
        except RuntimeError as error:
            raise DeviceUnavailable(
                f"JAX cannot start ({error}): {self.platforms_variable}="
                f"{os.environ.get(self.platforms_variable, '')!r} names a platform this machine "
                f"lacks; unset {self.platforms_variable}, or set it to cpu") from None
        use_gpu = self.gpu_count() > 0 and device in ("gpu", "auto")
        if device == "gpu" and not use_gpu:
            raise DeviceUnavailable(
                f"--device gpu: JAX {jax.__version__} sees no GPU (jax.devices('gpu') finds none; "
                f"its devices here are {', '.join(d.platform for d in jax.devices())}). Use "
                "--device cpu, or install the CUDA build ('jax[cuda12]') on a machine with a GPU")
        self._device = _first_device("gpu" if use_gpu else "cpu")
        self.device = self.gpu_device if use_gpu else "cpu:0"
        self.version = jax.__version__
        self.precision, self.deterministic = precision, deterministic
        # Precision is an argument of every product here (no process-wide switch): HIGHEST is IEEE
        # float32; DEFAULT lets a GPU use TensorFloat-32.
        self._precision = jax.lax.Precision.DEFAULT if precision == "tf32" else HIGHEST
        self._flax_precision = "tensorfloat32" if precision == "tf32" else "float32"
        if deterministic and use_gpu:
            _deterministic_gpu_ops()

    def numerics(self):
        on_gpu = self.device == self.gpu_device
        return {"tf32": (self.precision == "tf32") if on_gpu else None,
                "deterministic": _DETERMINISTIC_FLAG in os.environ.get("XLA_FLAGS", "")
                if on_gpu else None}

    def numerics_scope(self):
        return contextlib.nullcontext()     # the precision goes with each product (above)

    def asarray(self, x, /):
        x = np.asarray(x)
        x = x.astype(np.float32 if x.dtype.kind == "f" else np.int32, copy=False)
        return jax.device_put(x, self._device)

    def to_numpy(self, x, /):
        return np.array(x)

    def zeros(self, shape, /):
        return jnp.zeros(shape, jnp.float32, device=self._device)

    def matmul(self, x1, x2, /):
        return jnp.matmul(x1, x2, precision=self._precision)

    def linear(self, x, weight, bias, /):
        return jnp.matmul(x, weight, precision=self._precision) + bias   # XLA fuses the bias addition

    def matrix_transpose(self, x, /):
        return jnp.transpose(x)

    def concat(self, xs, /, *, axis=0):
        return jnp.concatenate(list(xs), axis=axis)

    def stack(self, xs, /, *, axis=0):
        return jnp.stack(list(xs), axis=axis)

    def unstack(self, x, /):
        return list(jnp.unstack(x, axis=0))

    def reshape(self, x, shape, /):
        return jnp.reshape(x, shape)

    def take(self, x, indices, /, *, axis=0):
        return jnp.take(x, indices, axis=axis)

    def take_along_axis(self, x, indices, /, *, axis=-1):
        return jnp.take_along_axis(x, indices, axis=axis)

    def segment_sum(self, data, segment_ids, /, *, num_segments):
        return jax.ops.segment_sum(data, segment_ids, num_segments=num_segments)

    def one_hot(self, indices, num_classes, /):
        return jax.nn.one_hot(indices, num_classes, dtype=jnp.float32)

    def tanh(self, x, /):
        return jnp.tanh(x)

    def sigmoid(self, x, /):
        return jax.nn.sigmoid(x)

    def exp(self, x, /):
        return jnp.exp(x)

    def expm1(self, x, /):
        return jnp.expm1(x)

    def log(self, x, /):
        return jnp.log(x)

    def sqrt(self, x, /):
        return jnp.sqrt(x)

    def log_softmax(self, x, /, *, axis=-1):
        return jax.nn.log_softmax(x, axis=axis)

    def clip(self, x, /, min=None, max=None):
        return jnp.clip(x, min, max)

    def sum(self, x, /, *, axis=None, keepdims=False):
        return jnp.sum(x, axis=axis, keepdims=keepdims)

    def max(self, x, /, *, axis=None, keepdims=False):
        return jnp.max(x, axis=axis, keepdims=keepdims)

    def argmax(self, x, /, *, axis=None):
        return jnp.argmax(x, axis=axis)

    def stop_gradient(self, x, /):
        return jax.lax.stop_gradient(x)

    def value_and_grad(self, f, params, /):
        (loss, aux), grads = jax.value_and_grad(f, has_aux=True)(list(params))
        return (loss, aux), list(grads)

    def recurrent_layer(self, cell, variant, num_layers, input_size, num_hiddens, vocab_size):
        if (cell, variant) not in FLAX_LAYERS:
            raise NotImplementedError(no_layer("Flax", cell, variant, FLAX_LAYERS))
        return FlaxRecurrentLayer(cell, variant, num_layers, num_hiddens, vocab_size,
                                  self._flax_precision)

    def graph(self, fn):
        return fn             # compile() makes the whole step one XLA program

    def scan(self, f, carry, xs, /):
        """Inside ``jax.jit``, one ``lax.scan``, because unrolled, XLA compiles a copy of the cell
        for every step (an LSTM step of 35 time steps took 37 s to compile). Eager, a Python loop:
        a ``lax.scan`` of a new function is traced and compiled on every call, and generation
        calls the model once per character."""
        if not any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves((carry, xs))):
            return python_scan(self, f, carry, xs)
        return jax.lax.scan(f, carry, xs)

    def compile_loop(self, f):
        """The epoch as one XLA program, a ``lax.scan`` over the minibatches, because between
        compiled steps each minibatch is another dispatch from Python (on a GPU, most of the
        time of a step this small)."""
        return self.compile(lambda carry, xs: jax.lax.scan(f, carry, xs))

    def compile(self, fn):
        """``fn`` as one fused XLA program per input signature (``jax.jit``: eager JAX dispatches
        each op from Python on its own), lowered and compiled here so that the program gets its
        own compiler options, and nothing process-wide is set.

        On the CPU, the program's small products run on one thread each: spread over two threads,
        the 35 recurrent ``(batch, hidden)·(hidden, hidden)`` products of a step cost more in
        handing work between threads than they save (docs/benchmarks.md). No argument is donated:
        donation measured slower here, and callers keep what they pass (the trainer keeps the
        last epoch's weights and optimiser state for its Ctrl-C checkpoint), which a donated
        buffer would delete."""
        jitted, programs = jax.jit(fn), {}
        options = {} if self.device == self.gpu_device else {"xla_cpu_multi_thread_eigen": False}

        def run(*args):
            leaves, structure = jax.tree_util.tree_flatten(args)
            signature = (structure, tuple((x.shape, str(x.dtype)) for x in leaves))
            if signature not in programs:
                programs[signature] = jitted.lower(*args).compile(options)
            return programs[signature](*args)

        return run


# (cell, variant) -> Flax's cell, and how it stores one layer's weights (rnn_core/ops.py,
# RecurrentLayer): one Dense sub-layer per gate (GRU ir, iz, in and hr, hz, hn; LSTM ii, if, ig, io
# and hi, hf, hg, ho), kernels (inputs, hidden) as ours; where input and recurrent parts are summed
# only one has a bias. GRUCell computes the reset-after GRU only.
FLAX_LAYERS = {
    ("rnn", "book"): ("SimpleCell", (("l{l}/i/kernel", ("W_xh",), False),
                                     ("l{l}/i/bias", ("b_h",), False),
                                     ("l{l}/h/kernel", ("W_hh",), False))),
    ("gru", "reset_after"): ("GRUCell", (
        ("l{l}/ir/kernel", ("W_xr",), False), ("l{l}/ir/bias", ("b_r",), False),
        ("l{l}/iz/kernel", ("W_xz",), False), ("l{l}/iz/bias", ("b_z",), False),
        ("l{l}/in/kernel", ("W_xh",), False), ("l{l}/in/bias", ("b_h",), False),
        ("l{l}/hr/kernel", ("W_hr",), False), ("l{l}/hz/kernel", ("W_hz",), False),
        ("l{l}/hn/kernel", ("W_hh",), False), ("l{l}/hn/bias", ("b_hh",), False))),
    ("lstm", "book"): ("LSTMCell", (
        ("l{l}/ii/kernel", ("W_xi",), False), ("l{l}/if/kernel", ("W_xf",), False),
        ("l{l}/ig/kernel", ("W_xc",), False), ("l{l}/io/kernel", ("W_xo",), False),
        ("l{l}/hi/kernel", ("W_hi",), False), ("l{l}/hi/bias", ("b_i",), False),
        ("l{l}/hf/kernel", ("W_hf",), False), ("l{l}/hf/bias", ("b_f",), False),
        ("l{l}/hg/kernel", ("W_hc",), False), ("l{l}/hg/bias", ("b_c",), False),
        ("l{l}/ho/kernel", ("W_ho",), False), ("l{l}/ho/bias", ("b_o",), False))),
}


class FlaxRecurrentLayer:
    """Flax's ``nn.RNN`` over ``SimpleCell``, ``GRUCell`` or ``LSTMCell`` (applied once per layer,
    with that layer's weights) + ``nn.Dense``, called with ``Module.apply`` and the weights as its
    ``params``. Flax's LSTM carry is ``(C, H)``, the reverse of ours."""
    dense_layout = (("dense/kernel", ("W_hq",), False), ("dense/bias", ("b_q",), False))

    def __init__(self, cell, variant, num_layers, num_hiddens, vocab_size, precision="float32"):
        from flax import linen as nn
        kind, self.layout = FLAX_LAYERS[cell, variant]
        self.precision, self.num_layers = precision, num_layers
        self.rnn = nn.RNN(getattr(nn, kind)(num_hiddens), time_major=True, return_carry=True)
        self.dense = nn.Dense(vocab_size)
        self.names = [name.format(l=l) for l in range(num_layers) for name, _, _ in self.layout]
        self.names += [name for name, _, _ in self.dense_layout]
        self.state_size = get_cell(cell, variant).state_size          # (H,) or (H, C)
        # One compiled program per input shape: eager, Flax's scan would be traced and compiled
        # again on every call (generation calls the layer once per character).
        self._apply = jax.jit(self._layers)

    def apply(self, weights, inputs, state):
        return self._apply(list(weights), inputs, tuple(state))

    def _layers(self, weights, inputs, state):
        params, k, Hs, last = _nested(self.names, weights), self.state_size, inputs, []
        with jax.default_matmul_precision(self.precision):
            for l in range(self.num_layers):
                carry = state[l * k] if k == 1 else tuple(reversed(state[l * k:(l + 1) * k]))
                carry, Hs = self.rnn.apply({"params": {"cell": params[f"l{l}"]}}, Hs,
                                           initial_carry=carry)     # Hs (num_steps, batch, hidden)
                last.extend((carry,) if k == 1 else reversed(carry))
            O = self.dense.apply({"params": params["dense"]}, jnp.reshape(Hs, (-1, Hs.shape[-1])))
        return O, tuple(last)                    # (num_steps * batch, vocab), the state


def _nested(names, weights):
    """``['cell/i/kernel', ...]`` and their tensors -> ``{'cell': {'i': {'kernel': ...}}}``, the
    nested ``params`` dictionary a Flax module is applied with."""
    tree = {}
    for name, w in zip(names, weights):
        *path, leaf = name.split("/")
        node = tree
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = w
    return tree
