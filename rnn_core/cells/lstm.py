"""Long short-term memory (d2l-zh v1 §6.8; d2l 2.0 §10.1), the book's formulas:

    I_t = σ(X_t · W_xi + H_{t-1} · W_hi + b_i)                 # input gate   (batch, hidden)
    F_t = σ(X_t · W_xf + H_{t-1} · W_hf + b_f)                 # forget gate
    O_t = σ(X_t · W_xo + H_{t-1} · W_ho + b_o)                 # output gate
    C̃_t = tanh(X_t · W_xc + H_{t-1} · W_hc + b_c)              # candidate memory cell
    C_t = F_t ⊙ C_{t-1} + I_t ⊙ C̃_t                            # memory cell
    H_t = O_t ⊙ tanh(C_t)

The state is ``(H, C)``. PyTorch, Keras, Gluon and Flax compute the same function (with two bias
vectors where PyTorch and Gluon keep them, whose sum is ``b_?``). The backward step is derived in
docs/bptt-gated.md.
"""
from __future__ import annotations

from typing import NamedTuple

from rnn_core.cells.cell import Cell
from rnn_core.ops import Ops, Tensor


class LSTMParams(NamedTuple):
    """The book's ``get_params`` of the LSTM: the input, forget and output gates' and the
    candidate memory cell's ``(W_x?, W_h?, b_?)``, then the output layer."""
    W_xi: Tensor  # (vocab, hidden)
    W_hi: Tensor  # (hidden, hidden)
    b_i: Tensor   # (hidden,)
    W_xf: Tensor
    W_hf: Tensor
    b_f: Tensor
    W_xo: Tensor
    W_ho: Tensor
    b_o: Tensor
    W_xc: Tensor
    W_hc: Tensor
    b_c: Tensor
    W_hq: Tensor  # (hidden, vocab)
    b_q: Tensor   # (vocab,)


def init_lstm_state(ops: Ops, batch_size: int, num_hiddens: int) -> tuple:
    """The book's ``init_lstm_state``: ``(H, C)``, two zero matrices ``(batch, hidden)``."""
    return (ops.zeros((batch_size, num_hiddens)), ops.zeros((batch_size, num_hiddens)))


def lstm_step(ops: Ops, p, xw: tuple, state: tuple):
    """One LSTM step; ``xw`` holds the input parts ``X_t·W_x? + b_?`` (i, f, o, c)."""
    XW_i, XW_f, XW_o, XW_c = xw                                # (batch, hidden) each
    H_prev, C_prev = state
    I = ops.sigmoid(XW_i + ops.matmul(H_prev, p.W_hi))
    F = ops.sigmoid(XW_f + ops.matmul(H_prev, p.W_hf))
    O = ops.sigmoid(XW_o + ops.matmul(H_prev, p.W_ho))
    C_tilda = ops.tanh(XW_c + ops.matmul(H_prev, p.W_hc))
    C = F * C_prev + I * C_tilda
    tanh_C = ops.tanh(C)
    H = O * tanh_C
    return (H, C), (H_prev, C_prev, I, F, O, C_tilda, tanh_C)


def lstm_backward(ops: Ops, p):
    """The backward step of :func:`lstm_step` (docs/bptt-gated.md)."""
    W_hi_T, W_hf_T, W_ho_T, W_hc_T = (ops.matrix_transpose(W)
                                      for W in (p.W_hi, p.W_hf, p.W_ho, p.W_hc))

    def step_back(saved, d_state):
        H_prev, C_prev, I, F, O, C_tilda, tanh_C = saved
        dH, dC = d_state
        dC = dC + dH * O * (1.0 - tanh_C * tanh_C)              # C_t reaches the loss two ways
        dA_i = dC * C_tilda * I * (1.0 - I)                     # through σ of each gate
        dA_f = dC * C_prev * F * (1.0 - F)
        dA_o = dH * tanh_C * O * (1.0 - O)
        dA_c = dC * I * (1.0 - C_tilda * C_tilda)               # through tanh of the candidate
        dH_prev = (ops.matmul(dA_i, W_hi_T) + ops.matmul(dA_f, W_hf_T)
                   + ops.matmul(dA_o, W_ho_T) + ops.matmul(dA_c, W_hc_T))
        return ((dA_i, dA_f, dA_o, dA_c), (dH_prev, dC * F),
                {"W_hi": (H_prev, dA_i), "W_hf": (H_prev, dA_f), "W_ho": (H_prev, dA_o),
                 "W_hc": (H_prev, dA_c)})

    return step_back


def lstm(ops: Ops, inputs: list, state: tuple, params: LSTMParams):
    """The book's ``lstm``: one-hot ``inputs`` (a list of ``(batch, vocab)``) -> the list of
    logits ``(batch, vocab)`` and the state ``(H, C)``."""
    (W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q) = params
    H, C = state
    outputs = []
    for X in inputs:
        I = ops.sigmoid(ops.matmul(X, W_xi) + ops.matmul(H, W_hi) + b_i)
        F = ops.sigmoid(ops.matmul(X, W_xf) + ops.matmul(H, W_hf) + b_f)
        O = ops.sigmoid(ops.matmul(X, W_xo) + ops.matmul(H, W_ho) + b_o)
        C_tilda = ops.tanh(ops.matmul(X, W_xc) + ops.matmul(H, W_hc) + b_c)
        C = F * C + I * C_tilda
        H = O * ops.tanh(C)
        Y = ops.matmul(H, W_hq) + b_q
        outputs.append(Y)
    return outputs, (H, C)


# The book's runs (d2l-zh v1 §6.8): as the GRU's.
BOOK = {"num_epochs": 160, "pred_period": 40, "scratch_sampling": "consecutive", "adam_lr": 1e-2,
        "concise_variant": "book"}

VARIANTS = {
    "book": Cell("lstm", "book", LSTMParams,
                 gates=(("W_xi", "b_i"), ("W_xf", "b_f"), ("W_xo", "b_o"), ("W_xc", "b_c")),
                 state_size=2, init_state=init_lstm_state, step=lstm_step,
                 backward=lstm_backward, book=lstm),
}
