"""The chapter's RNN cell (d2l-zh v1 §6.4; d2l 2.0 §9.5), written once against the ops.

For a minibatch of ``batch`` sequences at time step ``t`` (the book's notation):

    H_t = tanh(X_t · W_xh + H_{t-1} · W_hh + b_h)        # (batch, hidden)
    O_t = H_t · W_hq + b_q                               # (batch, vocab): the logits

The loop over steps and layers is :mod:`rnn_core.model`'s; the backward step is derived in
docs/bptt.md.
"""
from __future__ import annotations

from typing import NamedTuple

from rnn_core.cells.cell import Cell
from rnn_core.ops import Ops, Tensor


class RNNParams(NamedTuple):
    """The canonical layout, shared by every backend and by checkpoints."""
    W_xh: Tensor  # (vocab, hidden)
    W_hh: Tensor  # (hidden, hidden)
    b_h: Tensor   # (hidden,)
    W_hq: Tensor  # (hidden, vocab)
    b_q: Tensor   # (vocab,)


def init_rnn_state(ops: Ops, batch_size: int, num_hiddens: int) -> tuple:
    """The book's state: a tuple holding one zero matrix ``H`` of shape ``(batch, hidden)``."""
    return (ops.zeros((batch_size, num_hiddens)),)


def rnn_step(ops: Ops, p, xw: tuple, state: tuple):
    """``H_t = tanh((X_t·W_xh + b_h) + H_{t-1}·W_hh)``; ``xw`` holds the input part."""
    XW, = xw                                                   # (batch, hidden)
    H_prev, = state
    H = ops.tanh(XW + ops.matmul(H_prev, p.W_hh))
    return (H,), (H_prev, H)


def rnn_backward(ops: Ops, p):
    """The backward step of :func:`rnn_step`: with ``A_t`` the argument of tanh,

        dA_t = dH_t ⊙ (1 - H_t ⊙ H_t),   dH_{t-1} = dA_t · W_hhᵀ,   dW_hh = Σ_t H_{t-1}ᵀ · dA_t
    """
    W_hh_T = ops.matrix_transpose(p.W_hh)

    def step_back(saved, d_state):
        H_prev, H = saved
        dH, = d_state
        dA = dH * (1.0 - H * H)                                # (batch, hidden)
        return (dA,), (ops.matmul(dA, W_hh_T),), {"W_hh": (H_prev, dA)}

    return step_back


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


# The book's runs of this cell (d2l-zh v1 §6.4, §6.5): epochs, how often it prints, the scratch
# run's sampling, the PyTorch port's Adam learning rate, the concise layer's formula.
BOOK = {"num_epochs": 250, "pred_period": 50, "scratch_sampling": "random", "adam_lr": 1e-3,
        "concise_variant": "book"}

VARIANTS = {"book": Cell("rnn", "book", RNNParams, gates=(("W_xh", "b_h"),), state_size=1,
                         init_state=init_rnn_state, step=rnn_step, backward=rnn_backward,
                         book=rnn)}
