"""The concise model: the framework's own RNN layer and dense layer, on the canonical weights.

The book's concise chapter builds ``nn.RNN`` + ``nn.Linear`` (PyTorch), ``SimpleRNN`` + ``Dense``
(Keras) or ``rnn.RNN`` + ``nn.Dense`` (Gluon). Here the trained parameters stay in the scratch
model's canonical layout ``(W_xh, W_hh, b_h, W_hq, b_q)``; every forward pass lays them out the way
the framework's layers want them (transposed, with a zero second recurrent bias where the
framework keeps two) and calls the layers with them. Autograd flows back through that layout, so
the gradients, the clipping, the optimiser and the checkpoints are the scratch model's, and the
three frameworks train the same numbers. :func:`to_canonical` and :func:`from_canonical` convert
weights between a framework's layout and the canonical one.

Inputs: one-hot vectors ``(num_steps, batch, vocab)`` into a layer of input size ``vocab`` (the
book), or the rows of ``W_xh`` looked up with ``take`` into a layer of input size ``hidden`` whose
input weight is the identity (the same numbers: ``X_t·W_xh·I``; far less work).
"""
from __future__ import annotations

import numpy as np

from rnn_core.errors import RNNCoreError
from rnn_core.model import RNNParams
from rnn_core.ops import Ops, Tensor


class ConciseRNN:
    """The framework's RNN + dense layers of one backend, for one vocabulary and hidden size."""

    def __init__(self, ops: Ops, vocab_size: int, num_hiddens: int, *, onehot: bool = False):
        try:
            self.layer = ops.rnn_layer(vocab_size if onehot else num_hiddens, num_hiddens,
                                       vocab_size)
        except NotImplementedError as error:
            raise RNNCoreError(str(error)) from None
        self.ops, self.vocab_size, self.onehot = ops, vocab_size, onehot
        self.num_hiddens = num_hiddens
        self.identity = None if onehot else ops.asarray(np.eye(num_hiddens, dtype=np.float32))

    def framework_weights(self, params: RNNParams) -> list:
        """The canonical tensors laid out as the framework's layers take them (differentiable)."""
        ops, weights = self.ops, []
        for _, field, transposed in self.layer.layout:
            if field is None:                       # the second recurrent bias: b_h is all of it
                weights.append(ops.zeros((self.num_hiddens,)))
                continue
            w = self.identity if field == "W_xh" and not self.onehot else getattr(params, field)
            weights.append(ops.matrix_transpose(w) if transposed else w)
        return weights

    def forward(self, X: Tensor, state: tuple, params: RNNParams):
        """Integer ``X (batch, num_steps)`` -> ``(O (num_steps*batch, vocab), (H,))``, like
        :func:`rnn_core.model.forward`."""
        ops = self.ops
        X_T = ops.matrix_transpose(X)                                   # (num_steps, batch)
        if self.onehot:
            num_steps, batch = X_T.shape
            inputs = ops.reshape(ops.one_hot(ops.reshape(X_T, (-1,)), self.vocab_size),
                                 (num_steps, batch, self.vocab_size))   # (num_steps, batch, vocab)
        else:
            inputs = ops.take(params.W_xh, X_T)                         # (num_steps, batch, hidden)
        H, = state
        O, H = self.layer.apply(self.framework_weights(params), inputs, H)
        return O, (H,)


def from_canonical(layout, params: RNNParams) -> dict:
    """Canonical NumPy weights -> ``{framework name: NumPy array}`` in the framework's layout
    (one-hot input: the input weight is ``W_xh`` itself)."""
    out = {}
    for name, field, transposed in layout:
        w = np.zeros_like(np.asarray(params.b_h)) if field is None else np.asarray(getattr(params, field))
        out[name] = w.T.copy() if transposed else w.copy()
    return out


def to_canonical(layout, weights: dict) -> RNNParams:
    """``{framework name: NumPy array}`` -> canonical NumPy weights; two recurrent biases add up
    to ``b_h``."""
    fields, second_bias = {}, 0.0
    for name, field, transposed in layout:
        w = np.asarray(weights[name])
        w = w.T if transposed else w
        if field is None:
            second_bias = w
        else:
            fields[field] = w
    fields["b_h"] = fields["b_h"] + second_bias
    return RNNParams(**{f: np.ascontiguousarray(fields[f], dtype=np.float32)
                        for f in RNNParams._fields})
