"""Backpropagation through time, written by hand once, against the ops (derivation: docs/bptt.md).

It computes the same loss as :func:`rnn_core.model.loss` and its gradients with respect to every
parameter, so it trains any backend, and it is the only way the NumPy backend trains. The tests
compare it with each framework's autograd and with finite differences.

With ``n = num_steps * batch`` rows, ``P = softmax(O)`` and ``Y`` the one-hot labels:

    dO     = (P - Y) / n                                   # (n, vocab)
    dW_hq  = Hᵀ · dO,   db_q = Σ_rows dO
    dH_t   = dO_t · W_hqᵀ + dA_{t+1} · W_hhᵀ               # from the output, and from step t+1
    dA_t   = dH_t ⊙ (1 - H_t ⊙ H_t)                         # through tanh
    dW_hh  = Σ_t H_{t-1}ᵀ · dA_t,   db_h = Σ_t Σ_rows dA_t,   dW_xh = Σ_t X_tᵀ · dA_t
"""
from __future__ import annotations

from rnn_core.model import RNNParams, hidden_states, labels, to_onehot
from rnn_core.ops import Ops, Tensor


def loss_and_grad_bptt(ops: Ops, params: RNNParams, state: tuple, X: Tensor, Y: Tensor,
                       vocab_size: int, *, onehot: bool = False, per_step: bool = False):
    """``((loss, (H_T,)), grads)`` for one minibatch, ``grads`` an :class:`RNNParams`.

    ``onehot`` and ``per_step`` select the book's way (one-hot products for ``X_t·W_xh`` and
    ``X_tᵀ·dA_t``, one output product per step); the default stacks the steps into single
    products and adds ``dA`` rows into ``dW_xh`` by character (``segment_sum``)."""
    W_xh, W_hh, b_h, W_hq, b_q = params
    H_0, = state
    batch_size, num_steps = X.shape
    n = batch_size * num_steps
    rows = [slice(t * batch_size, (t + 1) * batch_size) for t in range(num_steps)]  # step t

    # Forward, keeping every H_t.
    Hs = hidden_states(ops, X, state, params, onehot=onehot)   # num_steps × (batch, hidden)
    H = ops.concat(Hs, axis=0)                                 # (n, hidden), time-major rows
    if per_step:
        O = ops.concat([ops.matmul(H_t, W_hq) + b_q for H_t in Hs], axis=0)
    else:
        O = ops.linear(H, W_hq, b_q)                           # (n, vocab)
    y = labels(ops, Y)                                         # (n,)
    log_P = ops.log_softmax(O, axis=1)                         # (n, vocab)
    loss = -ops.sum(ops.take_along_axis(log_P, ops.reshape(y, (-1, 1)), axis=1)) / n

    # Output layer.
    dO = (ops.exp(log_P) - ops.one_hot(y, vocab_size)) / n     # (n, vocab): (P - E) / n
    db_q = ops.sum(dO, axis=0)                                  # (vocab,)
    W_hq_T = ops.matrix_transpose(W_hq)
    if per_step:
        dW_hq = sum(ops.matmul(ops.matrix_transpose(Hs[t]), dO[rows[t]])
                    for t in range(num_steps))
        dH_out = [ops.matmul(dO[rows[t]], W_hq_T) for t in range(num_steps)]
    else:
        dW_hq = ops.matmul(ops.matrix_transpose(H), dO)         # (hidden, vocab)
        dH_all = ops.matmul(dO, W_hq_T)                         # (n, hidden)
        dH_out = ops.unstack(ops.reshape(dH_all, (num_steps, batch_size, -1)))

    # Back through time: dA_t needs dA_{t+1}, so this loop runs backwards.
    W_hh_T = ops.matrix_transpose(W_hh)
    dA = [None] * num_steps
    dH_next = None                                              # dA_{t+1} · W_hhᵀ
    for t in reversed(range(num_steps)):
        dH = dH_out[t] if dH_next is None else dH_out[t] + dH_next   # (batch, hidden)
        dA[t] = dH * (1.0 - Hs[t] * Hs[t])
        dH_next = ops.matmul(dA[t], W_hh_T)
    dA_all = ops.concat(dA, axis=0)                             # (n, hidden)

    H_prev = ops.concat([H_0] + Hs[:-1], axis=0)                # (n, hidden): H_{t-1} per row
    dW_hh = ops.matmul(ops.matrix_transpose(H_prev), dA_all)    # (hidden, hidden)
    db_h = ops.sum(dA_all, axis=0)                              # (hidden,)
    if onehot:
        X_onehot = to_onehot(ops, X, vocab_size)                # num_steps × (batch, vocab)
        dW_xh = sum(ops.matmul(ops.matrix_transpose(X_onehot[t]), dA[t])
                    for t in range(num_steps))
    else:                                                       # (vocab, hidden)
        dW_xh = ops.segment_sum(dA_all, labels(ops, X), num_segments=vocab_size)
    return (loss, (Hs[-1],)), RNNParams(dW_xh, dW_hh, db_h, dW_hq, db_q)
