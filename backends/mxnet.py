"""The MXNet backend (the legacy ``mx.nd`` NDArray API that the book's first edition uses):
each op is one call of ``mx.nd``; autograd is ``attach_grad`` + ``autograd.record``.

MXNet's NDArray has no zero-dimensional arrays: a reduction over all axes has shape ``(1,)``."""
import mxnet as mx
import numpy as np

from rnn_core.errors import DeviceUnavailable


class MXNetOps:
    name = "mxnet"

    def __init__(self, device="auto"):
        num_gpus = mx.context.num_gpus()
        if device == "gpu" and num_gpus == 0:
            raise DeviceUnavailable(
                f"--device gpu: MXNet {mx.__version__} sees no GPU (mx.context.num_gpus() is 0; "
                "the 'mxnet' package on PyPI is CPU-only). Use --device cpu, or install the CUDA "
                "build that matches your driver (for example mxnet-cu112) on a machine with a GPU")
        self._ctx = mx.gpu(0) if num_gpus and device in ("gpu", "auto") else mx.cpu()
        self.device = str(self._ctx)
        self.version = mx.__version__

    def asarray(self, x, /):
        x = np.asarray(x)
        return mx.nd.array(x, ctx=self._ctx, dtype=np.float32 if x.dtype.kind == "f" else np.int64)

    def to_numpy(self, x, /):
        return x.asnumpy()

    def zeros(self, shape, /):
        return mx.nd.zeros(shape, ctx=self._ctx, dtype=np.float32)

    def matmul(self, x1, x2, /):
        return mx.nd.dot(x1, x2)

    def linear(self, x, weight, bias, /):
        # FullyConnected computes x · Wᵀ + b with oneDNN, its bias gradient included.
        return mx.nd.FullyConnected(x, mx.nd.transpose(weight), bias, num_hidden=weight.shape[1])

    def matrix_transpose(self, x, /):
        return mx.nd.transpose(x)

    def concat(self, xs, /, *, axis=0):
        return mx.nd.concat(*xs, dim=axis)

    def stack(self, xs, /, *, axis=0):
        return mx.nd.stack(*xs, axis=axis)

    def unstack(self, x, /):
        parts = mx.nd.split(x, num_outputs=x.shape[0], axis=0, squeeze_axis=True)
        return [parts] if x.shape[0] == 1 else list(parts)

    def reshape(self, x, shape, /):
        return mx.nd.reshape(x, shape)

    def take(self, x, indices, /, *, axis=0):
        return mx.nd.take(x, indices, axis=axis)

    def take_along_axis(self, x, indices, /, *, axis=-1):
        return mx.nd.pick(x, mx.nd.reshape(indices, (-1,)), axis=axis, keepdims=True)

    def segment_sum(self, data, segment_ids, /, *, num_segments):
        # MXNet 1.x has no public scatter-add; the one-hot product gives the same sums.
        return mx.nd.dot(mx.nd.one_hot(segment_ids, num_segments), data, transpose_a=True)

    def one_hot(self, indices, num_classes, /):
        return mx.nd.one_hot(indices, num_classes, dtype=np.float32)

    def tanh(self, x, /):
        return mx.nd.tanh(x)

    def exp(self, x, /):
        return mx.nd.exp(x)

    def log(self, x, /):
        return mx.nd.log(x)

    def sqrt(self, x, /):
        return mx.nd.sqrt(x)

    def log_softmax(self, x, /, *, axis=-1):
        return mx.nd.log_softmax(x, axis=axis)

    def clip(self, x, /, min=None, max=None):
        if min is not None:
            x = mx.nd.maximum(x, min)
        return x if max is None else mx.nd.minimum(x, max)

    def sum(self, x, /, *, axis=None, keepdims=False):
        return mx.nd.sum(x, axis=axis, keepdims=keepdims)

    def max(self, x, /, *, axis=None, keepdims=False):
        return mx.nd.max(x, axis=axis, keepdims=keepdims)

    def argmax(self, x, /, *, axis=None):
        return mx.nd.argmax(x, axis=axis).astype(np.int64)

    def stop_gradient(self, x, /):
        return mx.nd.stop_gradient(x)

    def value_and_grad(self, f, params, /):
        params = [p.copy() for p in params]
        for p in params:
            p.attach_grad()
        with mx.autograd.record():
            loss, aux = f(params)
        loss.backward()
        return (loss, aux), [p.grad for p in params]

    def rnn_layer(self, input_size, num_hiddens, vocab_size):
        return GluonRNNLayer(input_size, num_hiddens, vocab_size)

    def compile(self, fn):
        return fn


class GluonRNNLayer:
    """Gluon ``rnn.RNN`` + ``nn.Dense``, called through their ``hybrid_forward`` with the weights
    as arguments (Gluon 1.x's functional form)."""
    layout = (("l0_i2h_weight", "W_xh", True), ("l0_h2h_weight", "W_hh", True),
              ("l0_i2h_bias", "b_h", False), ("l0_h2h_bias", None, False),
              ("weight", "W_hq", True), ("bias", "b_q", False))

    def __init__(self, input_size, num_hiddens, vocab_size):
        from mxnet.gluon import nn, rnn
        self.rnn = rnn.RNN(num_hiddens, activation="tanh", layout="TNC", input_size=input_size)
        self.dense = nn.Dense(vocab_size, in_units=num_hiddens)
        self.num_hiddens = num_hiddens

    def apply(self, weights, inputs, H):
        names = [name for name, _, _ in self.layout]
        Hs, (H_T,) = self.rnn.hybrid_forward(mx.nd, inputs, [mx.nd.expand_dims(H, 0)],
                                             **dict(zip(names[:4], weights[:4])))
        O = self.dense.hybrid_forward(mx.nd, mx.nd.reshape(Hs, (-1, self.num_hiddens)),
                                      weight=weights[4], bias=weights[5])
        return O, H_T[0]
