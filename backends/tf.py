"""The TensorFlow backend: each op is one call of ``tf``; autograd is ``tf.GradientTape``;
:meth:`compile` is ``tf.function``, pinned to the backend's device.

TensorFlow's TF32 and op-determinism switches are process-wide: :meth:`TFOps.numerics_scope` sets
them to the backend's ``precision`` and ``deterministic`` for a step or a call of the core, and
puts back the process's own afterwards."""
import contextlib

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as _op_determinism  # its getter and undo are not public

from rnn_core.cells import get_cell
from rnn_core.errors import DeviceUnavailable
from rnn_core.ops import python_scan, within_numerics


class TFOps:
    name = "tf"
    gpu_device = "/GPU:0"

    @staticmethod
    def gpu_count():
        return len(tf.config.list_physical_devices("GPU"))

    def __init__(self, device="auto", *, precision="float32", deterministic=False):
        gpus = self.gpu_count()
        if device == "gpu" and not gpus:
            raise DeviceUnavailable(
                f"--device gpu: TensorFlow {tf.__version__} sees no GPU "
                "(tf.config.list_physical_devices('GPU') is empty; the tensorflow-cpu package has "
                "no GPU support). Use --device cpu, or install 'tensorflow[and-cuda]' on a machine "
                "with a GPU")
        self.device = self.gpu_device if gpus and device in ("gpu", "auto") else "/CPU:0"
        self.version = tf.__version__
        self.precision, self.deterministic = precision, deterministic

    def numerics(self):
        return {"tf32": tf.config.experimental.tensor_float_32_execution_enabled(),
                "deterministic": _op_determinism.is_op_determinism_enabled()}

    @contextlib.contextmanager
    def numerics_scope(self):
        """TF32 as ``precision`` says, and op determinism if asked for, until the block ends;
        then the process's own settings again."""
        before = self.numerics()
        switch_determinism = self.deterministic and not before["deterministic"]
        try:
            tf.config.experimental.enable_tensor_float_32_execution(self.precision == "tf32")
            if switch_determinism:
                tf.config.experimental.enable_op_determinism()
            yield
        finally:
            tf.config.experimental.enable_tensor_float_32_execution(before["tf32"])
            if switch_determinism:
                _op_determinism.disable_op_determinism()

    def asarray(self, x, /):
        x = np.asarray(x)
        with tf.device(self.device):
            return tf.identity(tf.constant(x, dtype=tf.float32 if x.dtype.kind == "f" else tf.int64))

    def to_numpy(self, x, /):
        return np.array(x)

    def zeros(self, shape, /):
        with tf.device(self.device):
            return tf.zeros(shape, dtype=tf.float32)

    def matmul(self, x1, x2, /):
        return tf.matmul(x1, x2)

    def linear(self, x, weight, bias, /):
        return tf.nn.bias_add(tf.matmul(x, weight), bias)

    def matrix_transpose(self, x, /):
        return tf.transpose(x)

    def concat(self, xs, /, *, axis=0):
        return tf.concat(list(xs), axis=axis)

    def stack(self, xs, /, *, axis=0):
        return tf.stack(list(xs), axis=axis)

    def unstack(self, x, /):
        return tf.unstack(x, axis=0)

    def reshape(self, x, shape, /):
        return tf.reshape(x, shape)

    def take(self, x, indices, /, *, axis=0):
        return tf.gather(x, indices, axis=axis)

    def take_along_axis(self, x, indices, /, *, axis=-1):
        return tf.experimental.numpy.take_along_axis(x, indices, axis=axis)

    def segment_sum(self, data, segment_ids, /, *, num_segments):
        return tf.math.unsorted_segment_sum(data, segment_ids, num_segments)

    def one_hot(self, indices, num_classes, /):
        return tf.one_hot(indices, num_classes, dtype=tf.float32)

    def tanh(self, x, /):
        return tf.tanh(x)

    def sigmoid(self, x, /):
        return tf.sigmoid(x)

    def exp(self, x, /):
        return tf.exp(x)

    def expm1(self, x, /):
        return tf.math.expm1(x)

    def log(self, x, /):
        return tf.math.log(x)

    def sqrt(self, x, /):
        return tf.sqrt(x)

    def log_softmax(self, x, /, *, axis=-1):
        return tf.nn.log_softmax(x, axis=axis)

    def clip(self, x, /, min=None, max=None):
        if min is not None:
            x = tf.maximum(x, min)
        return x if max is None else tf.minimum(x, max)

    def sum(self, x, /, *, axis=None, keepdims=False):
        return tf.reduce_sum(x, axis=axis, keepdims=keepdims)

    def max(self, x, /, *, axis=None, keepdims=False):
        return tf.reduce_max(x, axis=axis, keepdims=keepdims)

    def argmax(self, x, /, *, axis=None):
        return tf.argmax(tf.reshape(x, [-1]) if axis is None else x, axis=0 if axis is None else axis)

    def stop_gradient(self, x, /):
        return tf.stop_gradient(x)

    def value_and_grad(self, f, params, /):
        params = list(params)
        with self.numerics_scope():         # in compile()'s graph: once, while tracing
            with tf.GradientTape() as tape:
                tape.watch(params)
                loss, aux = f(params)
            # The gradient of a gather (the embedding lookup) is sparse: make it a dense tensor.
            grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, params)]
        return (loss, aux), grads

    def recurrent_layer(self, cell, variant, num_layers, input_size, num_hiddens, vocab_size):
        return KerasRecurrentLayer(cell, variant, num_layers, input_size, num_hiddens, vocab_size,
                                   self.numerics_scope)

    def scan(self, f, carry, xs, /):
        return python_scan(self, f, carry, xs)    # compile() unrolls it into the step's graph

    def graph(self, fn):
        return fn             # compile() makes the whole step one graph

    def compile_loop(self, f):
        """The epoch as one graph, a ``tf.while_loop`` over the minibatches, because a Python
        loop there would be unrolled into one copy of the step per minibatch."""
        def loop(carry, xs):
            n = xs[0].shape[0]

            def body(i, carry, ys):
                carry, y = f(carry, tuple(a[i] for a in xs))
                return i + 1, carry, ys.write(i, y)

            _, carry, ys = tf.while_loop(lambda i, *_: i < n, body,
                                         (tf.constant(0), carry, tf.TensorArray(tf.float32, n)))
            return carry, ys.stack()

        return self.compile(loop)

    def compile(self, fn):
        """The whole step as one graph, because eager TensorFlow dispatches every op from Python
        one at a time, while ``tf.function`` traces the step once and runs it as a graph."""
        device = self.device

        def on_device(*args):
            with tf.device(device):
                return fn(*args)

        compiled = tf.function(on_device, autograph=False)  # the core has no tensor-valued `if`
        return within_numerics(self, compiled)          # TF32 is read as the graph runs


# (cell, variant) -> Keras's layer, its options, and how it stores one layer's weights
# (rnn_core/ops.py, RecurrentLayer): gates in Keras's order (GRU z, r, h; LSTM i, f, c, o), each
# kernel (inputs, gates * hidden); the reset-after GRU keeps two bias rows.
KERAS_LAYERS = {
    ("rnn", "book"): ("SimpleRNN", {}, (("l{l}/kernel", ("W_xh",), False),
                                        ("l{l}/recurrent_kernel", ("W_hh",), False),
                                        ("l{l}/bias", ("b_h",), False))),
    ("gru", "book"): ("GRU", {"reset_after": False}, (
        ("l{l}/kernel", ("W_xz", "W_xr", "W_xh"), False),
        ("l{l}/recurrent_kernel", ("W_hz", "W_hr", "W_hh"), False),
        ("l{l}/bias", ("b_z", "b_r", "b_h"), False))),
    ("gru", "reset_after"): ("GRU", {"reset_after": True}, (
        ("l{l}/kernel", ("W_xz", "W_xr", "W_xh"), False),
        ("l{l}/recurrent_kernel", ("W_hz", "W_hr", "W_hh"), False),
        ("l{l}/bias", (("b_z", "b_r", "b_h"), ("b_z", "b_r", "b_hh")), False))),
    ("lstm", "book"): ("LSTM", {}, (("l{l}/kernel", ("W_xi", "W_xf", "W_xc", "W_xo"), False),
                                    ("l{l}/recurrent_kernel", ("W_hi", "W_hf", "W_hc", "W_ho"),
                                     False),
                                    ("l{l}/bias", ("b_i", "b_f", "b_c", "b_o"), False))),
}


class KerasRecurrentLayer:
    """Keras ``SimpleRNN``, ``GRU`` or ``LSTM`` (one per layer, stacked) + ``Dense``, called with
    ``Layer.stateless_call``. Keras reads batch-major sequences, so the time-major inputs are
    transposed in and out."""
    dense_layout = (("dense/kernel", ("W_hq",), False), ("dense/bias", ("b_q",), False))

    def __init__(self, cell, variant, num_layers, input_size, num_hiddens, vocab_size,
                 numerics_scope):
        import keras
        kind, options, self.layout = KERAS_LAYERS[cell, variant]
        self.numerics_scope = numerics_scope        # TF32 as the backend's precision says
        self.layers = []
        for l in range(num_layers):
            layer = getattr(keras.layers, kind)(num_hiddens, return_sequences=True,
                                                return_state=True, **options)
            layer.build((None, None, input_size if l == 0 else num_hiddens))
            self.layers.append(layer)
        self.dense = keras.layers.Dense(vocab_size)
        self.dense.build((None, num_hiddens))
        self.state_size = get_cell(cell, variant).state_size          # (H,) or (H, C)

    def apply(self, weights, inputs, state):
        k, n = self.state_size, len(self.layout)
        Hs, last = tf.transpose(inputs, [1, 0, 2]), []
        with self.numerics_scope():
            for l, layer in enumerate(self.layers):
                untrained = [v.value for v in layer.non_trainable_variables]  # its dropout seed
                (Hs, *layer_state), _ = layer.stateless_call(
                    list(weights[l * n:(l + 1) * n]), untrained, Hs,
                    initial_state=list(state[l * k:(l + 1) * k]))
                last.extend(layer_state)
            Hs = tf.reshape(tf.transpose(Hs, [1, 0, 2]), [-1, Hs.shape[-1]])   # time-major rows
            O, _ = self.dense.stateless_call(list(weights[-2:]), [], Hs)
            return O, tuple(last)
