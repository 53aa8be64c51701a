"""The scratch model, loss, gradients, clipping and perplexity: each backend against the NumPy
reference (float32; rtol 1e-4 unless stated) and the variants of the maths against each other."""
import math

import numpy as np
import pytest

from rnn_core import bptt, model, train
from rnn_core.identity import concatenated_matmul_identity

from conftest import BATCH, HIDDEN, STEPS, VOCAB  # noqa: F401  (the `problem` fixture's sizes)
from conftest import reference_ops

NumpyOps = type(reference_ops())


def on(ops, params, X, Y, H0):
    return model.params_to_backend(ops, params), ops.asarray(X), ops.asarray(Y), (ops.asarray(H0),)


def reference_forward(params, X, H0):
    """The model in float64 NumPy, written directly: the truth every backend is held to."""
    W_xh, W_hh, b_h, W_hq, b_q = (np.asarray(p, np.float64) for p in params)
    H, outputs = H0.astype(np.float64), []
    for t in range(X.shape[1]):
        H = np.tanh(W_xh[X[:, t]] + H @ W_hh + b_h)
        outputs.append(H @ W_hq + b_q)
    return np.concatenate(outputs), H


def reference_loss(params, X, Y, H0):
    O, _ = reference_forward(params, X, H0)
    y = Y.T.reshape(-1)
    log_Z = np.log(np.exp(O - O.max(1, keepdims=True)).sum(1)) + O.max(1)
    return float(np.mean(log_Z - O[np.arange(len(y)), y]))


@pytest.mark.parametrize("scheme", model.INIT_SCHEMES)
def test_get_params_is_the_same_on_every_backend(all_ops, scheme):
    reference = model.init_params(VOCAB, HIDDEN, seed=3, scheme=scheme)
    assert [p.shape for p in reference] == [(VOCAB, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN,),
                                            (HIDDEN, VOCAB), (VOCAB,)]
    if scheme == "normal":
        assert abs(float(np.std(reference.W_hh)) - 0.01) < 0.002 and not reference.b_h.any()
    else:
        bound = 1 / np.sqrt(HIDDEN)
        assert all(np.abs(p).max() <= bound for p in reference) and reference.b_h.any()
        assert abs(float(np.std(reference.W_hq)) - bound / np.sqrt(3)) < 0.1 * bound
    for ops in all_ops:
        for got, want in zip(model.get_params(ops, VOCAB, HIDDEN, seed=3, scheme=scheme),
                             reference):
            np.testing.assert_array_equal(ops.to_numpy(got), want)


def test_to_onehot_is_a_list_of_num_steps_matrices(ops):
    X = np.array([[0, 2], [1, 3]])
    inputs = model.to_onehot(ops, ops.asarray(X), 4)
    assert len(inputs) == 2
    for t, matrix in enumerate(inputs):
        np.testing.assert_array_equal(ops.to_numpy(matrix), np.eye(4, dtype=np.float32)[X[:, t]])


def test_concatenated_matmul_identity_holds_and_agrees_across_backends(all_ops):
    results = [concatenated_matmul_identity(ops) for ops in all_ops]
    for separate, joined, difference in results:
        assert difference < 1e-5
        np.testing.assert_allclose(separate, results[0][0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("onehot,per_step", [(True, True), (False, True), (False, False),
                                             (True, False)])
def test_every_forward_variant_equals_the_reference(ops, problem, onehot, per_step):
    params, X, Y, H0 = problem
    P, X_, _, state = on(ops, params, X, Y, H0)
    O, (H,) = model.forward(ops, X_, state, P, VOCAB, onehot=onehot, per_step=per_step)
    O_ref, H_ref = reference_forward(params, X, H0)
    np.testing.assert_allclose(ops.to_numpy(O), O_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ops.to_numpy(H), H_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("onehot", [False, True], ids=["stacked", "book"])
def test_one_time_step_equals_the_reference(ops, problem, onehot):
    """One step, as generation runs the model for each character: the forward pass, eager and,
    on the fast path, as one graph (MXNet's traced ``CachedOp``), and the hand-written gradient's
    loss and state."""
    params, X, Y, H0 = problem
    X, Y = X[:, :1], Y[:, :1]                                    # (batch, 1)
    P, X_, Y_, state = on(ops, params, X, Y, H0)
    O_ref, H_ref = reference_forward(params, X, H0)

    def forward(P, X, state):
        return model.forward(ops, X, state, P, VOCAB, onehot=onehot)

    for run in (forward,) if onehot else (forward, ops.graph(forward)):
        O, (H,) = run(P, X_, state)
        np.testing.assert_allclose(ops.to_numpy(O), O_ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ops.to_numpy(H), H_ref, rtol=1e-4, atol=1e-5)
    (loss, (H,)), _ = bptt.loss_and_grad_bptt(ops, P, state, X_, Y_, VOCAB, onehot=onehot)
    assert float(ops.to_numpy(loss).reshape(())) == pytest.approx(
        reference_loss(params, X, Y, H0), rel=1e-5)
    np.testing.assert_allclose(ops.to_numpy(H), H_ref, rtol=1e-4, atol=1e-5)


def test_the_books_rnn_function_returns_lists(ops, problem):
    params, X, Y, H0 = problem
    P, X_, _, state = on(ops, params, X, Y, H0)
    outputs, (H,) = model.rnn(ops, model.to_onehot(ops, X_, VOCAB), state, P)
    assert len(outputs) == STEPS and tuple(outputs[0].shape) == (BATCH, VOCAB)


def test_loss_is_the_mean_cross_entropy(ops, problem):
    params, X, Y, H0 = problem
    P, X_, Y_, state = on(ops, params, X, Y, H0)
    loss, _ = model.loss(ops, P, state, X_, Y_, VOCAB)
    assert float(ops.to_numpy(loss).reshape(())) == pytest.approx(
        reference_loss(params, X, Y, H0), rel=1e-5)


def test_cross_entropy_is_stable_for_huge_logits(ops):
    O = np.array([[1000.0, 0.0, -1000.0], [0.0, 3000.0, 0.0]], np.float32)
    loss = model.cross_entropy(ops, ops.asarray(O), ops.asarray(np.array([0, 0])))
    assert float(ops.to_numpy(loss).reshape(())) == pytest.approx(1500.0, rel=1e-6)


@pytest.mark.parametrize("book", [False, True], ids=["stacked", "book"])
def test_bptt_by_hand_equals_the_frameworks_autograd(autograd_ops, problem, book):
    ops = autograd_ops
    params, X, Y, H0 = problem
    P, X_, Y_, state = on(ops, params, X, Y, H0)
    (loss_bptt, (H_bptt,)), grads_bptt = bptt.loss_and_grad_bptt(
        ops, P, state, X_, Y_, VOCAB, onehot=book, per_step=book)
    (loss_auto, (H_auto,)), grads_auto = ops.value_and_grad(
        lambda ps: model.loss(ops, model.RNNParams(*ps), state, X_, Y_, VOCAB), P)
    np.testing.assert_allclose(ops.to_numpy(loss_bptt), ops.to_numpy(loss_auto), rtol=1e-6)
    np.testing.assert_allclose(ops.to_numpy(H_bptt), ops.to_numpy(H_auto), rtol=1e-6, atol=1e-7)
    for name, g_bptt, g_auto in zip(model.RNNParams._fields, grads_bptt, grads_auto):
        scale = np.abs(ops.to_numpy(g_auto)).max()
        np.testing.assert_allclose(ops.to_numpy(g_bptt), ops.to_numpy(g_auto),
                                   rtol=1e-4, atol=1e-5 * scale, err_msg=name)


def test_bptt_agrees_across_backends(all_ops, problem):
    params, X, Y, H0 = problem
    results = []
    for ops in all_ops:
        P, X_, Y_, state = on(ops, params, X, Y, H0)
        (_, _), grads = bptt.loss_and_grad_bptt(ops, P, state, X_, Y_, VOCAB)
        results.append([ops.to_numpy(g) for g in grads])
    for grads in results[1:]:
        for g, g_ref in zip(grads, results[0]):
            np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-6)


class Float64NumpyOps(NumpyOps):
    """The NumPy backend in float64, so that finite differences are exact enough to check."""

    def asarray(self, x, /):
        x = np.asarray(x)
        return np.array(x, dtype=np.float64 if x.dtype.kind == "f" else np.int64)

    def zeros(self, shape, /):
        return np.zeros(shape, dtype=np.float64)


@pytest.mark.parametrize("book", [False, True], ids=["stacked", "book"])
def test_bptt_passes_a_finite_difference_check(problem, rng, book):
    ops = Float64NumpyOps()
    params, X, Y, H0 = problem
    P, X_, Y_, state = on(ops, params, X, Y, H0)
    (_, _), grads = bptt.loss_and_grad_bptt(ops, P, state, X_, Y_, VOCAB, onehot=book,
                                            per_step=book)
    eps = 1e-6
    for k, name in enumerate(model.RNNParams._fields):
        for _ in range(6):   # six random entries of every parameter
            index = tuple(rng.integers(0, n) for n in P[k].shape)
            if name == "W_xh":   # a row the batch uses, else the gradient is exactly zero
                index = (int(X[0, 0]), index[1])
            plus, minus = [p.copy() for p in P], [p.copy() for p in P]
            plus[k][index] += eps
            minus[k][index] -= eps
            numeric = (reference_loss(plus, X, Y, H0) - reference_loss(minus, X, Y, H0)) / (2 * eps)
            assert grads[k][index] == pytest.approx(numeric, rel=1e-5, abs=1e-9), (name, index)


def test_grad_clipping_scales_to_theta_only_above_it(ops, rng):
    grads = [rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(4,)).astype(np.float32)]
    norm = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
    clipped = train.grad_clipping(ops, [ops.asarray(g) for g in grads], theta=0.5)
    for got, g in zip(clipped, grads):
        np.testing.assert_allclose(ops.to_numpy(got), g * 0.5 / norm, rtol=1e-5)
    untouched = train.grad_clipping(ops, [ops.asarray(g) for g in grads], theta=norm * 2)
    for got, g in zip(untouched, grads):
        np.testing.assert_array_equal(ops.to_numpy(got), g)


def test_perplexity_is_exp_of_the_mean_cross_entropy_and_never_overflows():
    assert train.perplexity(0.0) == 1.0
    assert train.perplexity(math.log(69.88)) == pytest.approx(69.88)
    assert train.perplexity(1e6) == math.inf
