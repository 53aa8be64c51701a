"""Every op of the protocol, on every backend, against NumPy (float32: rtol 1e-5, atol 1e-6)."""
import math

import numpy as np
import pytest

from rnn_core.ops import Ops

RTOL, ATOL = 1e-5, 1e-6


def close(ops, tensor, expected, rtol=RTOL, atol=ATOL):
    got = ops.to_numpy(tensor)
    expected = np.asarray(expected)
    if expected.ndim == 0:   # a full reduction: shape () or, on MXNet, (1,)
        assert got.size == 1
        got = got.reshape(())
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def test_backend_implements_protocol(ops):
    assert isinstance(ops, Ops)
    assert ops.device and ops.version


def test_asarray_round_trip_keeps_values_and_kinds(ops, rng):
    x = rng.normal(size=(3, 4))
    assert ops.to_numpy(ops.asarray(x)).dtype == np.float32
    close(ops, ops.asarray(x), x.astype(np.float32), rtol=0, atol=0)
    i = np.array([[3, 1], [0, 2]])
    back = ops.to_numpy(ops.asarray(i))
    assert back.dtype.kind == "i"
    np.testing.assert_array_equal(back, i)


def test_zeros(ops):
    close(ops, ops.zeros((2, 5)), np.zeros((2, 5), np.float32), rtol=0, atol=0)


def test_matmul_and_transpose(ops, rng):
    a, b = rng.normal(size=(5, 7)).astype(np.float32), rng.normal(size=(7, 3)).astype(np.float32)
    close(ops, ops.matmul(ops.asarray(a), ops.asarray(b)), a @ b)
    close(ops, ops.matrix_transpose(ops.asarray(a)), a.T, rtol=0, atol=0)


def test_operators_broadcast_like_numpy(ops, rng):
    a = rng.normal(size=(4, 3)).astype(np.float32)
    bias = rng.normal(size=(3,)).astype(np.float32)
    A, B = ops.asarray(a), ops.asarray(bias)
    close(ops, A + B, a + bias)
    close(ops, A - B, a - bias)
    close(ops, A * B, a * bias)
    close(ops, A / 4.0, a / 4.0)
    close(ops, 1.0 - A * A, 1.0 - a * a)
    close(ops, -A, -a)
    close(ops, A * 2.5 + 0.5, a * 2.5 + 0.5)


def test_first_axis_indexing(ops, rng):
    a = rng.normal(size=(5, 2, 3)).astype(np.float32)
    A = ops.asarray(a)
    close(ops, A[3], a[3], rtol=0, atol=0)
    close(ops, A[1:4], a[1:4], rtol=0, atol=0)


def test_concat_and_stack(ops, rng):
    a, b = rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(2, 3)).astype(np.float32)
    for axis in (0, 1):
        close(ops, ops.concat([ops.asarray(a), ops.asarray(b)], axis=axis),
              np.concatenate([a, b], axis=axis), rtol=0, atol=0)
    close(ops, ops.stack([ops.asarray(a), ops.asarray(b)], axis=0), np.stack([a, b]), rtol=0,
          atol=0)


def test_reshape_is_row_major(ops, rng):
    a = rng.normal(size=(4, 6)).astype(np.float32)
    close(ops, ops.reshape(ops.asarray(a), (3, 8)), a.reshape(3, 8), rtol=0, atol=0)
    close(ops, ops.reshape(ops.asarray(a), (-1,)), a.reshape(-1), rtol=0, atol=0)


def test_take_rows_with_index_matrix(ops, rng):
    W = rng.normal(size=(10, 4)).astype(np.float32)
    idx = rng.integers(0, 10, size=(3, 5))
    close(ops, ops.take(ops.asarray(W), ops.asarray(idx), axis=0), W[idx], rtol=0, atol=0)


def test_take_along_axis_picks_one_per_row(ops, rng):
    O = rng.normal(size=(6, 9)).astype(np.float32)
    y = rng.integers(0, 9, size=(6, 1))
    close(ops, ops.take_along_axis(ops.asarray(O), ops.asarray(y), axis=1),
          np.take_along_axis(O, y, axis=1), rtol=0, atol=0)


def test_one_hot(ops):
    idx = np.array([0, 3, 2, 3])
    close(ops, ops.one_hot(ops.asarray(idx), 5), np.eye(5, dtype=np.float32)[idx], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["tanh", "exp", "expm1", "log", "sqrt"])
def test_elementwise(ops, rng, name):
    x = rng.uniform(0.1, 3.0, size=(4, 5)).astype(np.float32)
    close(ops, getattr(ops, name)(ops.asarray(x)), getattr(np, name)(x))


def test_expm1_keeps_its_digits_near_zero(ops):
    """Adam's 1 − β2^t is −expm1(t·log β2): near t = 1 it must be exact to float32's precision,
    which ``1 - exp(x)`` is not (it keeps 4 digits of 7 at x = log 0.999)."""
    x = np.array([math.log(0.999), math.log(0.9), -1e-6, 1e-6, -3.0], np.float32)
    close(ops, ops.expm1(ops.asarray(x)), np.expm1(x.astype(np.float64)),
          rtol=3e-7, atol=0)                                             # 2.5 float32 ulps


def test_sigmoid_is_the_logistic_function_without_overflow(ops, rng):
    x = np.concatenate([rng.normal(scale=4.0, size=20), [-1000.0, -100.0, 0.0, 100.0, 1000.0]])
    with np.errstate(over="ignore"):
        expected = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    close(ops, ops.sigmoid(ops.asarray(x.astype(np.float32))), expected)


def test_clip(ops, rng):
    x = rng.normal(size=(20,)).astype(np.float32)
    close(ops, ops.clip(ops.asarray(x), min=0.1), np.clip(x, 0.1, None), rtol=0, atol=0)
    close(ops, ops.clip(ops.asarray(x), max=0.2), np.clip(x, None, 0.2), rtol=0, atol=0)
    close(ops, ops.clip(ops.asarray(x), min=-0.5, max=0.5), np.clip(x, -0.5, 0.5), rtol=0, atol=0)


@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, False), (1, True)])
def test_sum_and_max(ops, rng, axis, keepdims):
    x = rng.normal(size=(4, 7)).astype(np.float32)
    close(ops, ops.sum(ops.asarray(x), axis=axis, keepdims=keepdims),
          np.sum(x, axis=axis, keepdims=keepdims), rtol=1e-5, atol=1e-5)
    close(ops, ops.max(ops.asarray(x), axis=axis, keepdims=keepdims),
          np.max(x, axis=axis, keepdims=keepdims), rtol=0, atol=0)


def test_argmax(ops, rng):
    x = rng.normal(size=(4, 7)).astype(np.float32)
    np.testing.assert_array_equal(ops.to_numpy(ops.argmax(ops.asarray(x), axis=1)),
                                  np.argmax(x, axis=1))
    assert int(ops.to_numpy(ops.argmax(ops.asarray(x))).reshape(-1)[0]) == np.argmax(x)


def test_value_and_grad_matches_the_analytic_gradient(autograd_ops, rng):
    ops = autograd_ops
    X = rng.normal(size=(5, 3)).astype(np.float32)
    W = rng.normal(size=(3, 4)).astype(np.float32)
    b = rng.normal(size=(4,)).astype(np.float32)

    def f(params):
        W_, b_ = params
        H = ops.tanh(ops.matmul(ops.asarray(X), W_) + b_)
        return ops.sum(H * H), "aux"

    (value, aux), (dW, db) = ops.value_and_grad(f, [ops.asarray(W), ops.asarray(b)])
    H = np.tanh(X @ W + b)
    dA = 2 * H * (1 - H * H)
    close(ops, value, np.sum(H * H), rtol=1e-5, atol=1e-5)
    assert aux == "aux"
    close(ops, dW, X.T @ dA, rtol=1e-4, atol=1e-5)
    close(ops, db, dA.sum(axis=0), rtol=1e-4, atol=1e-5)


def test_stop_gradient_blocks_the_gradient(autograd_ops, rng):
    ops = autograd_ops
    x = rng.normal(size=(3,)).astype(np.float32)

    def f(params):
        p, = params
        return ops.sum(p * ops.stop_gradient(p)), None

    (_, _), (grad,) = ops.value_and_grad(f, [ops.asarray(x)])
    close(ops, grad, x)   # d/dp Σ p·c = c, the stopped copy counts as a constant


def test_numpy_has_no_autograd():
    from rnn_core import get_backend
    with pytest.raises(NotImplementedError, match="bptt"):
        get_backend("numpy").value_and_grad(lambda ps: (ps[0], None), [np.ones(2)])


def test_compile_gives_the_same_numbers(ops, rng):
    a = rng.normal(size=(3, 3)).astype(np.float32)

    def fn(x):
        return ops.tanh(ops.matmul(x, x)) + 1.0

    A, compiled = ops.asarray(a), ops.compile(fn)
    close(ops, compiled(A), ops.to_numpy(fn(A)))
    B = ops.asarray(a[:2, :2])                  # another shape: compiled again, not run on A's
    close(ops, compiled(B), ops.to_numpy(fn(B)))
    close(ops, compiled(A), ops.to_numpy(fn(A)))


def _graph_problem(ops, rng, steps=5):
    """A function shaped like the training loss: a named tuple of weights, a state tuple and
    integer inputs in; a scalar and a tuple out. It reads shapes, broadcasts a bias, splits steps,
    mixes in Python numbers and captures an array from outside."""
    from rnn_core.model import RNNParams
    params = RNNParams(*(ops.asarray(rng.normal(scale=0.3, size=shape).astype(np.float32))
                         for shape in ((7, 4), (4, 4), (4,), (4, 7), (7,))))
    X = ops.asarray(rng.integers(0, 7, size=(3, steps)))
    state = (ops.asarray(rng.normal(size=(3, 4)).astype(np.float32)),)
    outside = ops.asarray(np.full((4,), 0.5, np.float32))

    def fn(params, state, X):
        H, = state
        Hs = []
        for XW_t in ops.unstack(ops.take(params.W_xh, ops.matrix_transpose(X)) + params.b_h):
            H = ops.tanh(XW_t + ops.matmul(H, params.W_hh) * outside)
            Hs.append(H)
        O = ops.linear(ops.concat(Hs, axis=0), params.W_hq, params.b_q)      # (steps*3, 7)
        labels = ops.reshape(ops.matrix_transpose(X), (-1, 1))
        picked = ops.take_along_axis(ops.log_softmax(O, axis=1), labels, axis=1)
        return -ops.sum(picked) / O.shape[0] + 0.1 * ops.sum(1.0 - H * H), (H,)

    return fn, params, state, X


def test_graph_gives_the_same_values_and_gradients(autograd_ops, rng):
    ops = autograd_ops
    fn, params, state, X = _graph_problem(ops, rng)
    graph = ops.graph(fn)
    for _ in range(2):                     # the second call reuses what the first one built
        (l, (H,)), grads = ops.value_and_grad(lambda ps: fn(type(params)(*ps), state, X), params)
        (gl, (gH,)), ggrads = ops.value_and_grad(lambda ps: graph(type(params)(*ps), state, X),
                                                 params)
        close(ops, gl, ops.to_numpy(l).reshape(()))
        close(ops, gH, ops.to_numpy(H))
        for g, expected in zip(ggrads, grads):
            close(ops, g, ops.to_numpy(expected))
        params = type(params)(*(p - 0.1 * g for p, g in zip(params, grads)))
    # Other shapes: traced again, not run on the graph built for the first ones.
    X2 = ops.asarray(rng.integers(0, 7, size=(3, 2)))
    close(ops, graph(params, state, X2)[0], ops.to_numpy(fn(params, state, X2)[0]).reshape(()))


def test_graph_without_autograd_gives_the_same_numbers(ops, rng):
    fn, params, state, X = _graph_problem(ops, rng)
    (l, (H,)), (gl, (gH,)) = fn(params, state, X), ops.graph(fn)(params, state, X)
    close(ops, gl, ops.to_numpy(l).reshape(()))
    close(ops, gH, ops.to_numpy(H))


def test_segment_sum_adds_rows_by_id(ops, rng):
    data = rng.normal(size=(9, 4)).astype(np.float32)
    ids = np.array([3, 0, 3, 5, 0, 3, 1, 5, 5])
    expected = np.zeros((7, 4), np.float32)
    np.add.at(expected, ids, data)
    close(ops, ops.segment_sum(ops.asarray(data), ops.asarray(ids), num_segments=7), expected)


def test_log_softmax_is_stable(ops, rng):
    x = rng.normal(scale=5.0, size=(6, 9)).astype(np.float32)
    x[0, 0] = 3000.0
    x64 = x.astype(np.float64)
    expected = x64 - x64.max(1, keepdims=True)
    expected -= np.log(np.exp(expected).sum(1, keepdims=True))
    close(ops, ops.log_softmax(ops.asarray(x), axis=1), expected, rtol=1e-5, atol=1e-5)


def test_linear_and_unstack(ops, rng):
    x, W = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32)
    b = rng.normal(size=(4,)).astype(np.float32)
    close(ops, ops.linear(ops.asarray(x), ops.asarray(W), ops.asarray(b)), x @ W + b)
    for n in (1, 3):
        a = rng.normal(size=(n, 2, 3)).astype(np.float32)
        parts = ops.unstack(ops.asarray(a))
        assert len(parts) == n
        for part, expected in zip(parts, a):
            close(ops, part, expected, rtol=0, atol=0)


def _scan_problem(rng, steps=6):
    """A recurrence shaped like a cell's loop: a tuple state, a tuple of input parts stacked over
    the steps, and per step an output and a saved tuple; ``loop`` runs it in NumPy."""
    W = rng.normal(scale=0.5, size=(4, 4)).astype(np.float32)
    xs = tuple(rng.normal(size=(steps, 3, 4)).astype(np.float32) for _ in range(2))
    state = (rng.normal(size=(3, 4)).astype(np.float32), np.zeros((3, 4), np.float32))

    def loop(W, state, xs, tanh, matmul):
        H, C = state
        ys = []
        for a, b in zip(*xs):
            C = C + tanh(a + matmul(H, W))
            H = tanh(b * C)
            ys.append((H, (C, a)))
        return (H, C), ys

    return W, state, xs, loop


@pytest.mark.parametrize("steps", [6, 1])
def test_scan_runs_the_loop_over_steps(ops, rng, steps):
    """Eager and compiled (JAX's ``lax.scan`` runs only inside a trace): the loop's values, each
    output stacked over the steps, and ``None`` kept as ``None``."""
    W, state, xs, loop = _scan_problem(rng, steps)
    (H, C), ys = loop(W, state, xs, np.tanh, np.matmul)
    W_, state_ = ops.asarray(W), tuple(ops.asarray(s) for s in state)
    xs_ = tuple(ops.asarray(x) for x in xs)

    def scanned(W, state, xs):
        def f(carry, x):
            H, C = carry
            a, b = x
            C = C + ops.tanh(a + ops.matmul(H, W))
            H = ops.tanh(b * C)
            return (H, C), (H, (C, a), None)
        carry, (Hs, (Cs, As), nothing) = ops.scan(f, state, xs)
        assert nothing is None
        return carry, (Hs, Cs, As)

    for run in (scanned, ops.compile(scanned)):
        (gH, gC), (Hs, Cs, As) = run(W_, state_, xs_)
        close(ops, gH, H)
        close(ops, gC, C)
        close(ops, Hs, np.stack([y[0] for y in ys]))
        close(ops, Cs, np.stack([y[1][0] for y in ys]))
        close(ops, As, np.stack([y[1][1] for y in ys]), rtol=0, atol=0)


def test_scan_refuses_inputs_of_different_step_counts(ops, rng):
    """As ``lax.scan`` does, rather than stop at the shortest input (eager, on every backend)."""
    _, state, (a, b), _ = _scan_problem(rng)
    xs = (ops.asarray(a), ops.asarray(b[:-1]))          # 6 steps and 5
    with pytest.raises(ValueError):
        ops.scan(lambda carry, x: (carry, x[0]), tuple(ops.asarray(s) for s in state), xs)


def test_gradients_flow_through_scan(autograd_ops, rng):
    """d(Σ H_T)/dW through the loop, compiled, against central differences of the NumPy loop
    in float64."""
    ops = autograd_ops
    W, state, xs, loop = _scan_problem(rng, steps=4)

    def loss64(W):
        (H, _), _ = loop(W, [s.astype(np.float64) for s in state],
                         tuple(x.astype(np.float64) for x in xs), np.tanh, np.matmul)
        return H.sum()

    eps, W64 = 1e-6, W.astype(np.float64)
    expected = np.zeros_like(W64)
    for i in np.ndindex(W.shape):
        d = np.zeros_like(W64)
        d[i] = eps
        expected[i] = (loss64(W64 + d) - loss64(W64 - d)) / (2 * eps)
    state_ = tuple(ops.asarray(s) for s in state)
    xs_ = tuple(ops.asarray(x) for x in xs)

    def grad(W):
        def f(ps):
            def cell(carry, x):
                H, C = carry
                C = C + ops.tanh(x[0] + ops.matmul(H, ps[0]))
                return (ops.tanh(x[1] * C), C), None
            (H, _), _ = ops.scan(cell, state_, xs_)
            return ops.sum(H), None
        return ops.value_and_grad(f, [W])[1][0]

    close(ops, ops.compile(grad)(ops.asarray(W)), expected, rtol=1e-4, atol=1e-5)


def test_compile_loop_runs_the_loop_over_minibatches(ops, rng):
    """A carry of a tuple and an empty tuple, one output per element, twice (the second call
    reuses the program): the Python loop's numbers."""
    xs = rng.normal(size=(5, 3, 2)).astype(np.float32)
    ks = rng.integers(0, 3, size=(5, 3))
    start = (rng.normal(size=(3, 2)).astype(np.float32), ())

    def f(carry, x):
        (S, empty), (X, k) = carry, x
        S = ops.tanh(S + X) * 0.5 + ops.take(X, k)
        return (S, empty), ops.sum(S * S)

    S, expected = start[0], []
    for X, k in zip(xs, ks):
        S = np.tanh(S + X) * 0.5 + X[k]
        expected.append(np.sum(S * S))
    run = ops.compile_loop(f)
    for _ in range(2):
        (got, empty), ys = run((ops.asarray(start[0]), ()), (ops.asarray(xs), ops.asarray(ks)))
        assert empty == ()
        close(ops, got, S)
        close(ops, ops.reshape(ys, (-1,)), np.array(expected), rtol=1e-5, atol=1e-5)


def test_compile_loop_holds_a_training_step(autograd_ops, rng):
    """Gradient steps inside the compiled loop: the same weights and losses as the steps run
    one call at a time."""
    ops = autograd_ops
    xs = rng.normal(size=(4, 3, 2)).astype(np.float32)
    W0 = rng.normal(size=(2, 2)).astype(np.float32)

    def f(W, x):
        X, = x

        def loss(ps):
            T = ops.tanh(ops.matmul(X, ps[0]))
            return ops.sum(T * T), None
        (l, _), (g,) = ops.value_and_grad(loss, [W])
        return W - 0.1 * g, l

    W, losses = ops.asarray(W0), []
    for x in xs:
        W, loss = f(W, (ops.asarray(x),))
        losses.append(float(ops.to_numpy(loss).reshape(())))
    got, ys = ops.compile_loop(f)(ops.asarray(W0), (ops.asarray(xs),))
    close(ops, got, ops.to_numpy(W))
    close(ops, ops.reshape(ys, (-1,)), np.array(losses))
