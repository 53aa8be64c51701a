"""The gated recurrent unit (d2l-zh v1 §6.7; d2l 2.0 §10.2), in its two formulas.

The book's, with the reset gate applied to the state before the product (Cho et al., 2014):

    Z_t = σ(X_t · W_xz + H_{t-1} · W_hz + b_z)                 # update gate  (batch, hidden)
    R_t = σ(X_t · W_xr + H_{t-1} · W_hr + b_r)                 # reset gate
    H̃_t = tanh(X_t · W_xh + (R_t ⊙ H_{t-1}) · W_hh + b_h)      # candidate state
    H_t = Z_t ⊙ H_{t-1} + (1 - Z_t) ⊙ H̃_t

``reset_after``, the frameworks' (PyTorch ``nn.GRU``, Gluon ``rnn.GRU``, cuDNN, Flax, Keras with
``reset_after=True``): the reset gate scales the product, which has a bias of its own, ``b_hh``:

    H̃_t = tanh(X_t · W_xh + b_h + R_t ⊙ (H_{t-1} · W_hh + b_hh))

The two are different functions of the same weights (docs/gru.md measures how different). The
backward steps are derived in docs/bptt-gated.md.
"""
from __future__ import annotations

from typing import NamedTuple

from rnn_core.cells.cell import Cell
from rnn_core.ops import Ops, Tensor


class GRUParams(NamedTuple):
    """The book's ``get_params`` of the GRU: the update gate's, the reset gate's and the
    candidate's ``(W_x?, W_h?, b_?)``, then the output layer."""
    W_xz: Tensor  # (vocab, hidden)
    W_hz: Tensor  # (hidden, hidden)
    b_z: Tensor   # (hidden,)
    W_xr: Tensor
    W_hr: Tensor
    b_r: Tensor
    W_xh: Tensor
    W_hh: Tensor
    b_h: Tensor
    W_hq: Tensor  # (hidden, vocab)
    b_q: Tensor   # (vocab,)


class GRUResetAfterParams(NamedTuple):
    """The reset-after GRU's: the book's, and ``b_hh``, the bias inside ``R ⊙ (H·W_hh + b_hh)``."""
    W_xz: Tensor
    W_hz: Tensor
    b_z: Tensor
    W_xr: Tensor
    W_hr: Tensor
    b_r: Tensor
    W_xh: Tensor
    W_hh: Tensor
    b_h: Tensor
    b_hh: Tensor  # (hidden,)
    W_hq: Tensor
    b_q: Tensor


def init_gru_state(ops: Ops, batch_size: int, num_hiddens: int) -> tuple:
    """The book's ``init_gru_state``: ``(H,)``, ``H`` a zero matrix ``(batch, hidden)``."""
    return (ops.zeros((batch_size, num_hiddens)),)


def gru_step(ops: Ops, p, xw: tuple, state: tuple):
    """One step of the book's GRU; ``xw`` holds the input parts ``X_t·W_x? + b_?`` (z, r, h)."""
    XW_z, XW_r, XW_h = xw                                      # (batch, hidden) each
    H_prev, = state
    Z = ops.sigmoid(XW_z + ops.matmul(H_prev, p.W_hz))
    R = ops.sigmoid(XW_r + ops.matmul(H_prev, p.W_hr))
    H_tilda = ops.tanh(XW_h + ops.matmul(R * H_prev, p.W_hh))
    H = Z * H_prev + (1.0 - Z) * H_tilda
    return (H,), (H_prev, Z, R, H_tilda)


def gru_backward(ops: Ops, p):
    """The backward step of :func:`gru_step` (docs/bptt-gated.md)."""
    W_hz_T, W_hr_T, W_hh_T = (ops.matrix_transpose(W) for W in (p.W_hz, p.W_hr, p.W_hh))

    def step_back(saved, d_state):
        H_prev, Z, R, H_tilda = saved
        dH, = d_state
        dA_z = dH * (H_prev - H_tilda) * Z * (1.0 - Z)          # through σ of the update gate
        dA_h = dH * (1.0 - Z) * (1.0 - H_tilda * H_tilda)       # through tanh of the candidate
        dRH = ops.matmul(dA_h, W_hh_T)                          # d(R ⊙ H_{t-1})
        dA_r = dRH * H_prev * R * (1.0 - R)
        dH_prev = (dH * Z + dRH * R + ops.matmul(dA_z, W_hz_T) + ops.matmul(dA_r, W_hr_T))
        return ((dA_z, dA_r, dA_h), (dH_prev,),
                {"W_hz": (H_prev, dA_z), "W_hr": (H_prev, dA_r), "W_hh": (R * H_prev, dA_h)})

    return step_back


def gru_reset_after_step(ops: Ops, p, xw: tuple, state: tuple):
    """One step of the reset-after GRU: the candidate is ``tanh(X_t·W_xh + b_h + R ⊙ (H·W_hh +
    b_hh))``."""
    XW_z, XW_r, XW_h = xw
    H_prev, = state
    Z = ops.sigmoid(XW_z + ops.matmul(H_prev, p.W_hz))
    R = ops.sigmoid(XW_r + ops.matmul(H_prev, p.W_hr))
    HW_h = ops.linear(H_prev, p.W_hh, p.b_hh)                  # H_{t-1}·W_hh + b_hh
    H_tilda = ops.tanh(XW_h + R * HW_h)
    H = Z * H_prev + (1.0 - Z) * H_tilda
    return (H,), (H_prev, Z, R, HW_h, H_tilda)


def gru_reset_after_backward(ops: Ops, p):
    """The backward step of :func:`gru_reset_after_step` (docs/bptt-gated.md)."""
    W_hz_T, W_hr_T, W_hh_T = (ops.matrix_transpose(W) for W in (p.W_hz, p.W_hr, p.W_hh))

    def step_back(saved, d_state):
        H_prev, Z, R, HW_h, H_tilda = saved
        dH, = d_state
        dA_z = dH * (H_prev - H_tilda) * Z * (1.0 - Z)
        dA_h = dH * (1.0 - Z) * (1.0 - H_tilda * H_tilda)
        dHW_h = dA_h * R                                        # d(H_{t-1}·W_hh + b_hh)
        dA_r = dA_h * HW_h * R * (1.0 - R)
        dH_prev = (dH * Z + ops.matmul(dHW_h, W_hh_T) + ops.matmul(dA_z, W_hz_T)
                   + ops.matmul(dA_r, W_hr_T))
        return ((dA_z, dA_r, dA_h), (dH_prev,),
                {"W_hz": (H_prev, dA_z), "W_hr": (H_prev, dA_r), "W_hh": (H_prev, dHW_h),
                 "b_hh": (None, dHW_h)})

    return step_back


def gru(ops: Ops, inputs: list, state: tuple, params: GRUParams):
    """The book's ``gru``: one-hot ``inputs`` (a list of ``(batch, vocab)``) -> the list of
    logits ``(batch, vocab)`` and the state ``(H,)``."""
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        Z = ops.sigmoid(ops.matmul(X, W_xz) + ops.matmul(H, W_hz) + b_z)
        R = ops.sigmoid(ops.matmul(X, W_xr) + ops.matmul(H, W_hr) + b_r)
        H_tilda = ops.tanh(ops.matmul(X, W_xh) + ops.matmul(R * H, W_hh) + b_h)
        H = Z * H + (1.0 - Z) * H_tilda
        Y = ops.matmul(H, W_hq) + b_q
        outputs.append(Y)
    return outputs, (H,)


def gru_reset_after(ops: Ops, inputs: list, state: tuple, params: GRUResetAfterParams):
    """The book's ``gru`` with the reset-after candidate: the same lists in and out."""
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, b_hh, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        Z = ops.sigmoid(ops.matmul(X, W_xz) + ops.matmul(H, W_hz) + b_z)
        R = ops.sigmoid(ops.matmul(X, W_xr) + ops.matmul(H, W_hr) + b_r)
        H_tilda = ops.tanh(ops.matmul(X, W_xh) + b_h + R * (ops.matmul(H, W_hh) + b_hh))
        H = Z * H + (1.0 - Z) * H_tilda
        Y = ops.matmul(H, W_hq) + b_q
        outputs.append(Y)
    return outputs, (H,)


# The book's runs (d2l-zh v1 §6.7): 160 epochs printed every 40, consecutive sampling, SGD lr 100
# (the PyTorch port's concise run: Adam, lr 0.01); the frameworks' GRU layers are reset-after.
BOOK = {"num_epochs": 160, "pred_period": 40, "scratch_sampling": "consecutive", "adam_lr": 1e-2,
        "concise_variant": "reset_after"}

GATES = (("W_xz", "b_z"), ("W_xr", "b_r"), ("W_xh", "b_h"))
VARIANTS = {
    "book": Cell("gru", "book", GRUParams, GATES, state_size=1, init_state=init_gru_state,
                 step=gru_step, backward=gru_backward, book=gru),
    "reset_after": Cell("gru", "reset_after", GRUResetAfterParams, GATES, state_size=1,
                        init_state=init_gru_state, step=gru_reset_after_step,
                        backward=gru_reset_after_backward, book=gru_reset_after),
}
