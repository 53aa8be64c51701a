"""The optimisers, written once: plain SGD (the book's ``sgd``) and Adam, as pure tensor
functions ``update(params, grads, state) -> (params, state)`` so that a compiled training step
can hold them."""
from __future__ import annotations

import math

from rnn_core.ops import Ops


def _like(params, values):
    """``values`` in the container ``params`` came in: an RNNParams, a tuple or a list."""
    return type(params)(*values) if hasattr(params, "_fields") else type(params)(values)


class SGD:
    """``p ← p − lr·g``."""

    def __init__(self, ops: Ops, lr: float):
        self.ops, self.lr = ops, lr

    def init(self, params):
        return ()

    def update(self, params, grads, state):
        return _like(params, [p - self.lr * g for p, g in zip(params, grads)]), state


class Adam:
    """Adam (Kingma and Ba, 2015), with the defaults of ``torch.optim.Adam``:

        m ← β1·m + (1 − β1)·g            v ← β2·v + (1 − β2)·g²
        p ← p − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)

    The step count ``t`` is a tensor ``(1,)``, so a compiled step is not retraced every step."""

    def __init__(self, ops: Ops, lr: float, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        self.ops, self.lr, self.beta1, self.beta2, self.eps = ops, lr, beta1, beta2, eps

    def init(self, params):
        zeros = lambda: [self.ops.zeros(tuple(p.shape)) for p in params]   # noqa: E731
        return self.ops.zeros((1,)), zeros(), zeros()          # t, m, v

    def update(self, params, grads, state):
        ops, b1, b2 = self.ops, self.beta1, self.beta2
        t, m, v = state
        t = t + 1.0
        # 1 − β^t as −expm1(t·log β), shape (1,): 1 − exp(·) would lose digits early on, where
        # β2^t is near 1 (1 − 0.999 keeps 4 of float32's 7), and differ between devices' exp.
        correction1 = -ops.expm1(t * math.log(b1))
        correction2 = -ops.expm1(t * math.log(b2))
        m = [b1 * m_i + (1.0 - b1) * g for m_i, g in zip(m, grads)]
        v = [b2 * v_i + (1.0 - b2) * (g * g) for v_i, g in zip(v, grads)]
        new = [p - self.lr * (m_i / correction1) / (ops.sqrt(v_i / correction2) + self.eps)
               for p, m_i, v_i in zip(params, m, v)]
        return _like(params, new), (t, m, v)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(ops: Ops, name: str, lr: float):
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: choose {' or '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](ops, lr)
