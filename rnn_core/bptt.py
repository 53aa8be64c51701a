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

from rnn_core.model import RNNParams, hidden_states, labels, log_sum_exp
from rnn_core.ops import Ops, Tensor


def loss_and_grad_bptt(ops: Ops, params: RNNParams, state: tuple, X: Tensor, Y: Tensor,
                       vocab_size: int):
    """``((loss, (H_T,)), grads)`` for one minibatch, ``grads`` an :class:`RNNParams`."""
    W_xh, W_hh, b_h, W_hq, b_q = params
    H_0, = state
    batch_size, num_steps = X.shape
    n = batch_size * num_steps

    # Forward, keeping every H_t.
    Hs = hidden_states(ops, X, state, params)                  # num_steps × (batch, hidden)
    H = ops.concat(Hs, axis=0)                                 # (n, hidden), time-major rows
    O = ops.matmul(H, W_hq) + b_q                              # (n, vocab)
    y = labels(ops, Y)                                         # (n,)
    log_Z = log_sum_exp(ops, O)                                # (n, 1)
    loss = ops.sum(log_Z - ops.take_along_axis(O, ops.reshape(y, (-1, 1)), axis=1)) / n

    # Output layer.
    dO = (ops.exp(O - log_Z) - ops.one_hot(y, vocab_size)) / n  # (n, vocab)
    dW_hq = ops.matmul(ops.matrix_transpose(H), dO)             # (hidden, vocab)
    db_q = ops.sum(dO, axis=0)                                  # (vocab,)
    dH_out = ops.matmul(dO, ops.matrix_transpose(W_hq))         # (n, hidden)

    # Back through time: dA_t needs dA_{t+1}, so this loop runs backwards.
    W_hh_T = ops.matrix_transpose(W_hh)
    dA = [None] * num_steps
    dH_next = None                                              # dA_{t+1} · W_hhᵀ
    for t in reversed(range(num_steps)):
        dH = dH_out[t * batch_size:(t + 1) * batch_size]        # (batch, hidden)
        if dH_next is not None:
            dH = dH + dH_next
        dA[t] = dH * (1.0 - Hs[t] * Hs[t])
        dH_next = ops.matmul(dA[t], W_hh_T)
    dA = ops.concat(dA, axis=0)                                 # (n, hidden)

    H_prev = ops.concat([H_0] + Hs[:-1], axis=0)                # (n, hidden): H_{t-1} per row
    dW_hh = ops.matmul(ops.matrix_transpose(H_prev), dA)        # (hidden, hidden)
    db_h = ops.sum(dA, axis=0)                                  # (hidden,)
    X_onehot = ops.one_hot(labels(ops, X), vocab_size)          # (n, vocab)
    dW_xh = ops.matmul(ops.matrix_transpose(X_onehot), dA)      # (vocab, hidden)
    return (loss, (Hs[-1],)), RNNParams(dW_xh, dW_hh, db_h, dW_hq, db_q)
