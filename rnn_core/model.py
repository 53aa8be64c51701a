"""The chapter's RNN language model from scratch, written once against :class:`rnn_core.ops.Ops`.

For a minibatch of ``batch`` sequences at time step ``t`` (the book's notation):

    H_t = tanh(X_t · W_xh + H_{t-1} · W_hh + b_h)        # (batch, hidden)
    O_t = H_t · W_hq + b_q                               # (batch, vocab): the logits

``X_t`` is the one-hot matrix of the characters ``(batch, vocab)``, so ``X_t · W_xh`` picks rows of
``W_xh``. :func:`rnn` is the book's function, step by step on one-hot inputs. :func:`forward`
computes the same numbers two ways: ``onehot=True, per_step=True`` runs :func:`rnn` (the book's
path); ``onehot=False`` looks the rows up with ``take`` (an embedding lookup) and ``per_step=False``
projects all steps with one matrix product (the fast path). The tests check they agree.

Rows of the stacked outputs are time-major: row ``t * batch + b`` is step ``t`` of sequence ``b``,
which is why the labels are ``Y.T`` flattened, as in the book.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnn_core.ops import Ops, Tensor


class RNNParams(NamedTuple):
    """The canonical layout, shared by every backend and by checkpoints."""
    W_xh: Tensor  # (vocab, hidden)
    W_hh: Tensor  # (hidden, hidden)
    b_h: Tensor   # (hidden,)
    W_hq: Tensor  # (hidden, vocab)
    b_q: Tensor   # (vocab,)


INIT_SCHEMES = ("normal", "uniform")


def init_params(vocab_size: int, num_hiddens: int, seed: int = 0,
                scheme: str = "normal") -> RNNParams:
    """Float32 NumPy weights drawn by one generator seeded once, in the order W_xh, W_hh, W_hq
    (then the biases), so every backend that receives them starts from the same point.

    ``normal``: the scratch chapter's, weights from N(0, 0.01²) and zero biases.
    ``uniform``: PyTorch's default for ``nn.RNN`` and ``nn.Linear`` (the book's concise PyTorch
    run), every weight and bias from U(-1/√hidden, 1/√hidden).
    """
    rng = np.random.default_rng(seed)
    if scheme == "normal":
        def draw(shape):
            return rng.normal(scale=0.01, size=shape).astype(np.float32)
        zero_bias = True
    elif scheme == "uniform":
        bound = 1.0 / np.sqrt(num_hiddens)

        def draw(shape):
            return rng.uniform(-bound, bound, size=shape).astype(np.float32)
        zero_bias = False
    else:
        raise ValueError(f"unknown init {scheme!r}: choose {' or '.join(INIT_SCHEMES)}")
    W_xh = draw((vocab_size, num_hiddens))
    W_hh = draw((num_hiddens, num_hiddens))
    W_hq = draw((num_hiddens, vocab_size))
    b_h, b_q = ((np.zeros(num_hiddens, np.float32), np.zeros(vocab_size, np.float32))
                if zero_bias else (draw((num_hiddens,)), draw((vocab_size,))))
    return RNNParams(W_xh, W_hh, b_h, W_hq, b_q)


def get_params(ops: Ops, vocab_size: int, num_hiddens: int, seed: int = 0,
               scheme: str = "normal") -> RNNParams:
    """The book's ``get_params``: :func:`init_params` moved onto the backend's device."""
    return params_to_backend(ops, init_params(vocab_size, num_hiddens, seed, scheme))


def params_to_backend(ops: Ops, params) -> RNNParams:
    return RNNParams(*(ops.asarray(np.asarray(p)) for p in params))


def params_to_numpy(ops: Ops, params) -> RNNParams:
    return RNNParams(*(ops.to_numpy(p) for p in params))


def init_rnn_state(ops: Ops, batch_size: int, num_hiddens: int) -> tuple:
    """The book's state: a tuple holding one zero matrix ``H`` of shape ``(batch, hidden)``."""
    return (ops.zeros((batch_size, num_hiddens)),)


def to_onehot(ops: Ops, X: Tensor, vocab_size: int) -> list:
    """The book's ``to_onehot``: integer ``X (batch, num_steps)`` -> a list of ``num_steps``
    float32 matrices ``(batch, vocab)``, one per time step."""
    X_T = ops.matrix_transpose(X)                   # (num_steps, batch)
    return [ops.one_hot(X_T[t], vocab_size) for t in range(X_T.shape[0])]


def rnn(ops: Ops, inputs: list, state: tuple, params: RNNParams):
    """The book's ``rnn``: ``inputs`` and the returned ``outputs`` are lists of ``num_steps``
    matrices, ``(batch, vocab)`` each; ``state`` is ``(H,)`` with ``H (batch, hidden)``."""
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        H = ops.tanh(ops.matmul(X, W_xh) + ops.matmul(H, W_hh) + b_h)
        Y = ops.matmul(H, W_hq) + b_q
        outputs.append(Y)
    return outputs, (H,)


def hidden_states(ops: Ops, X: Tensor, state: tuple, params: RNNParams, *,
                  onehot: bool = False) -> list:
    """``[H_1, ..., H_T]``, each ``(batch, hidden)``, with ``X_t · W_xh`` as a row lookup
    (or, ``onehot=True``, as the book's product of one-hot rows with ``W_xh``).

    The lookup path adds ``b_h`` to all steps' inputs at once, ``(X_t·W_xh + b_h) + H·W_hh``:
    the same sum, with one bias addition (and one bias gradient) instead of one per step."""
    W_xh, W_hh, b_h = params.W_xh, params.W_hh, params.b_h
    if onehot:
        XW = [ops.matmul(X_t, W_xh) + b_h for X_t in to_onehot(ops, X, W_xh.shape[0])]
    else:
        XW = ops.unstack(ops.take(W_xh, ops.matrix_transpose(X)) + b_h)  # T × (batch, hidden)
    H, = state
    Hs = []
    for XW_t in XW:
        H = ops.tanh(XW_t + ops.matmul(H, W_hh))
        Hs.append(H)
    return Hs


def forward(ops: Ops, X: Tensor, state: tuple, params: RNNParams, vocab_size: int, *,
            onehot: bool = False, per_step: bool = False):
    """Logits of every step for integer ``X (batch, num_steps)``: returns
    ``(O, (H,))`` with ``O (num_steps * batch, vocab)``, rows time-major."""
    if onehot:
        outputs, state = rnn(ops, to_onehot(ops, X, vocab_size), state, params)
        return ops.concat(outputs, axis=0), state
    Hs = hidden_states(ops, X, state, params)
    if per_step:
        outputs = [ops.matmul(H, params.W_hq) + params.b_q for H in Hs]
        return ops.concat(outputs, axis=0), (Hs[-1],)
    O = ops.linear(ops.concat(Hs, axis=0), params.W_hq, params.b_q)  # (num_steps*batch, vocab)
    return O, (Hs[-1],)


def labels(ops: Ops, Y: Tensor) -> Tensor:
    """The book's ``Y.T.reshape((-1,))``: ``(batch, num_steps)`` -> time-major ``(num_steps*batch,)``."""
    return ops.reshape(ops.matrix_transpose(Y), (-1,))


def cross_entropy(ops: Ops, O: Tensor, y: Tensor) -> Tensor:
    """Mean softmax cross-entropy of logits ``O (n, vocab)`` against integer labels ``y (n,)``:
    ``mean_i(log Σ_j exp(O_ij) - O_{i,y_i}) = -mean_i log softmax(O_i)_{y_i}``, a scalar."""
    n = O.shape[0]
    log_p = ops.log_softmax(O, axis=1)                                   # (n, vocab)
    return -ops.sum(ops.take_along_axis(log_p, ops.reshape(y, (-1, 1)), axis=1)) / n


def loss(ops: Ops, params: RNNParams, state: tuple, X: Tensor, Y: Tensor, vocab_size: int, *,
         onehot: bool = False, per_step: bool = False):
    """``(mean cross-entropy, new state)`` of one minibatch: the function autograd differentiates."""
    O, state = forward(ops, X, state, params, vocab_size, onehot=onehot, per_step=per_step)
    return cross_entropy(ops, O, labels(ops, Y)), state
