"""Backpropagation through time, written by hand once, against the ops (derivation: docs/bptt.md).

It computes the same loss as :func:`rnn_core.model.loss` and its gradients with respect to every
parameter, for any cell (each cell gives its backward step, ``rnn_core/cells/``) and any number of
layers, so it trains any backend, and it is the only way the NumPy backend trains. The tests
compare it with each framework's autograd and with finite differences.

With ``n = num_steps * batch`` rows, ``P = softmax(O)`` and ``Y`` the one-hot labels:

    dO     = (P - Y) / n                                   # (n, vocab)
    dW_hq  = Hᵀ · dO,   db_q = Σ_rows dO                   # H: the top layer's states
    dH_t   = dO_t · W_hqᵀ  (+ what step t+1 sends back)    # into the top layer's step t

then, layer by layer from the top, and in each layer step by step from the last, the cell's
backward step turns ``dH_t`` into the gradients of the step's input parts ``dA_t = d(X_t·W_x? +
b_?)``, of the state it received, and of its recurrent weights. Every step uses the same weights,
so their gradients are sums over steps, computed as one product of the stacked rows:

    dW_x? = Σ_t X_tᵀ · dA_t,   db_? = Σ_t Σ_rows dA_t,   dX_t = Σ_? dA_t · W_x?ᵀ

where ``X_t`` is layer 1's one-hot characters, or the lower layer's ``H_t``, which then receives
``dX_t``.
"""
from __future__ import annotations

from rnn_core import model
from rnn_core.model import labels, to_onehot
from rnn_core.ops import Ops, Tensor


def loss_and_grad_bptt(ops: Ops, params, state: tuple, X: Tensor, Y: Tensor, vocab_size: int, *,
                       onehot: bool = False, per_step: bool = False):
    """``((loss, state), grads)`` for one minibatch, ``grads`` of the type of ``params``.

    ``onehot`` and ``per_step`` select the book's way (one-hot products for ``X_t·W_xh`` and
    ``X_tᵀ·dA_t``, one output product per step); the default stacks the steps into single
    products and adds ``dA`` rows into ``dW_xh`` by character (``segment_sum``)."""
    W_hq, b_q = params.W_hq, params.b_q
    batch_size, num_steps = X.shape
    n = batch_size * num_steps
    rows = [slice(t * batch_size, (t + 1) * batch_size) for t in range(num_steps)]  # step t

    # Forward, keeping every layer's H_t and what each step saved.
    all_Hs, all_saved, new_state = model.run_layers(ops, X, state, params, onehot=onehot,
                                                    keep=True)
    H = all_Hs[-1]                                             # (num_steps, batch, hidden)
    if per_step:
        Hs = ops.unstack(H)                                    # num_steps × (batch, hidden)
        O = ops.concat([ops.matmul(H_t, W_hq) + b_q for H_t in Hs], axis=0)
    else:
        H = ops.reshape(H, (n, -1))                            # (n, hidden), time-major rows
        O = ops.linear(H, W_hq, b_q)                           # (n, vocab)
    y = labels(ops, Y)                                         # (n,)
    log_P = ops.log_softmax(O, axis=1)                         # (n, vocab)
    loss = -ops.sum(ops.take_along_axis(log_P, ops.reshape(y, (-1, 1)), axis=1)) / n

    # Output layer.
    dO = (ops.exp(log_P) - ops.one_hot(y, vocab_size)) / n     # (n, vocab): (P - E) / n
    grads = {"b_q": ops.sum(dO, axis=0)}                       # (vocab,)
    W_hq_T = ops.matrix_transpose(W_hq)
    if per_step:
        grads["W_hq"] = sum(ops.matmul(ops.matrix_transpose(Hs[t]), dO[rows[t]])
                            for t in range(num_steps))
        dH_out = [ops.matmul(dO[rows[t]], W_hq_T) for t in range(num_steps)]
    else:
        grads["W_hq"] = ops.matmul(ops.matrix_transpose(H), dO)   # (hidden, vocab)
        dH_all = ops.matmul(dO, W_hq_T)                         # (n, hidden)
        dH_out = ops.unstack(ops.reshape(dH_all, (num_steps, batch_size, -1)))

    cell, _ = model.architecture(params)
    names = model.layer_field_names(params)                    # book name -> field, per layer
    for l, p in reversed(list(enumerate(model.layers(params)))):
        name = names[l]
        dA, products = _back_through_time(ops, cell.backward(ops, p), all_saved[l], dH_out,
                                          cell.state_size)
        for weight, (Us, Gs) in products.items():              # the recurrent parameters
            G = ops.concat(Gs, axis=0)                         # (n, hidden)
            grads[name[weight]] = (ops.sum(G, axis=0) if Us[0] is None else
                                   ops.matmul(ops.matrix_transpose(ops.concat(Us, axis=0)), G))
        # The input parts X_t·W_x? + b_?: layer 1's characters, or layer l-1's states.
        X_in = all_Hs[l - 1] if l > 0 else None
        dX_in = None
        for (W, b), dA_gate in zip(cell.gates, dA):
            dA_all = ops.concat(dA_gate, axis=0)               # (n, hidden)
            grads[name[W]], grads[name[b]] = _input_weight_grad(
                ops, X, X_in, dA_gate, dA_all, vocab_size, onehot), ops.sum(dA_all, axis=0)
            if l > 0:
                dX = ops.matmul(dA_all, ops.matrix_transpose(getattr(p, W)))   # (n, hidden)
                dX_in = dX if dX_in is None else dX_in + dX
        if l > 0:
            dH_out = ops.unstack(ops.reshape(dX_in, (num_steps, batch_size, -1)))
    return (loss, new_state), type(params)(**grads)


def _back_through_time(ops: Ops, step_back, saved: tuple, dH_out: list, state_size: int):
    """One layer's steps backwards: each step's ``dH_t`` is what its output receives plus what
    step t+1 sends back (the state gradient that reaches step 1 is dropped: the state came from
    the previous batch, detached). ``saved`` is what the steps saved, each tensor stacked over
    the steps. Returns ``dA[gate][t]`` and ``products[name] = ([U_t], [G_t])``."""
    saved = list(zip(*(ops.unstack(s) for s in saved)))       # step t's saved tensors
    num_steps = len(saved)
    dA, products, d_next = None, {}, None
    for t in reversed(range(num_steps)):
        if d_next is None:                                     # the last step: only dH_out
            d_state = (dH_out[t],) + tuple(ops.zeros(tuple(dH_out[t].shape))
                                           for _ in range(state_size - 1))
        else:
            d_state = (dH_out[t] + d_next[0],) + tuple(d_next[1:])
        d_xw, d_next, step_products = step_back(saved[t], d_state)
        if dA is None:
            dA = [[None] * num_steps for _ in d_xw]
        for gate, d in enumerate(d_xw):
            dA[gate][t] = d
        for weight, (U, G) in step_products.items():
            Us, Gs = products.setdefault(weight, ([None] * num_steps, [None] * num_steps))
            Us[t], Gs[t] = U, G
    return dA, products


def _input_weight_grad(ops: Ops, X, X_in, dA_steps: list, dA_all, vocab_size: int,
                       onehot: bool):
    """``Σ_t X_tᵀ · dA_t`` for one gate: by character (layer 1) or as one product (layer l > 1)."""
    if X_in is not None:                                       # (hidden, hidden)
        X_in = ops.reshape(X_in, (-1, X_in.shape[-1]))         # (n, hidden), time-major rows
        return ops.matmul(ops.matrix_transpose(X_in), dA_all)
    if onehot:
        X_onehot = to_onehot(ops, X, vocab_size)               # num_steps × (batch, vocab)
        return sum(ops.matmul(ops.matrix_transpose(X_t), dA_t)
                   for X_t, dA_t in zip(X_onehot, dA_steps))
    return ops.segment_sum(dA_all, labels(ops, X), num_segments=vocab_size)   # (vocab, hidden)
