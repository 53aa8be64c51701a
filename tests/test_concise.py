"""The concise model (each framework's RNN, GRU and LSTM layers) against the scratch model and
across frameworks."""
import numpy as np
import pytest

from rnn_core import concise, model, train
from rnn_core.data import load_corpus
from rnn_core.errors import RNNCoreError
from rnn_core.optim import Adam

from conftest import BATCH, HIDDEN, LAYER_ATOL, STEPS, VOCAB, reference_ops, selected_backends
from test_cells import MODELS, TRAINED, make_problem
from test_cells import on as on_cells
from test_cells import reference_forward as reference_cells
from test_model import on, reference_forward
from test_train import first_losses


@pytest.mark.parametrize("onehot", [True, False], ids=["onehot", "embedding"])
def test_concise_equals_scratch_for_the_same_weights(autograd_ops, problem, onehot):
    ops = autograd_ops
    params, X, Y, H0 = problem
    P, X_, _, state = on(ops, params, X, Y, H0)
    O, (H,) = concise.ConciseRNN(ops, VOCAB, HIDDEN, onehot=onehot).forward(X_, state, P)
    O_ref, H_ref = reference_forward(params, X, H0)
    assert tuple(O.shape) == (STEPS * BATCH, VOCAB)
    np.testing.assert_allclose(ops.to_numpy(O), O_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ops.to_numpy(H), H_ref, rtol=1e-4, atol=1e-5)


def test_the_layer_takes_weights_that_are_transposed_views(autograd_ops, problem):
    """The canonical layout hands the framework's layer each transposed weight as a transpose of
    the canonical tensor, a strided view where the framework has views. On CUDA, cuDNN's RNN
    copies its weights into one flat buffer through a flat view of each, which such a view does
    not have: PyTorch's concise model crashed there ('view size is not compatible with input
    tensor's size and stride'). The layer must make its weights dense on every device, so this
    runs the layer, forward and backward, on exactly such views, on the CPU too."""
    ops = autograd_ops
    params, X, Y, H0 = problem
    layer = ops.recurrent_layer("rnn", "book", 1, VOCAB, HIDDEN, VOCAB)
    layout = concise.layout(layer, type(params))
    weights = concise.from_canonical(layer, params)
    views = [ops.matrix_transpose(ops.asarray(np.ascontiguousarray(weights[name].T)))
             if transposed else ops.asarray(weights[name]) for name, _, transposed in layout]
    X_T = ops.asarray(X.T)
    inputs = ops.reshape(ops.one_hot(ops.reshape(X_T, (-1,)), VOCAB), (STEPS, BATCH, VOCAB))

    def loss(ws):
        O, (H,) = layer.apply(ws, inputs, (ops.asarray(H0),))
        return ops.sum(O * O) + ops.sum(H), O

    (_, O), grads = ops.value_and_grad(loss, views)
    O_ref, _ = reference_forward(params, X, H0)
    np.testing.assert_allclose(ops.to_numpy(O), O_ref, rtol=1e-4, atol=1e-5)
    assert [tuple(g.shape) for g in grads] == [weights[name].shape for name, _, _ in layout]


def test_concise_gradients_equal_the_hand_written_bptt(autograd_ops, problem):
    from rnn_core import bptt
    ops = autograd_ops
    params, X, Y, H0 = problem
    P, X_, Y_, state = on(ops, params, X, Y, H0)
    net = concise.ConciseRNN(ops, VOCAB, HIDDEN)

    def loss(ps):
        O, new_state = net.forward(X_, state, model.RNNParams(*ps))
        return model.cross_entropy(ops, O, model.labels(ops, Y_)), new_state

    (l, _), grads = ops.value_and_grad(loss, P)
    numpy_ops = reference_ops()
    (l_ref, _), grads_ref = bptt.loss_and_grad_bptt(numpy_ops, *on(numpy_ops, params, X, Y, H0)[:1],
                                                    (H0,), X, Y, VOCAB)
    assert float(ops.to_numpy(l).reshape(())) == pytest.approx(float(l_ref), rel=1e-5)
    for name, g, g_ref in zip(model.RNNParams._fields, grads, grads_ref):
        np.testing.assert_allclose(ops.to_numpy(g), g_ref, rtol=1e-4,
                                   atol=1e-5 * np.abs(g_ref).max(), err_msg=name)


def test_numpy_has_no_rnn_layer_and_says_what_to_use():
    with pytest.raises(RNNCoreError, match="use --model scratch"):
        concise.ConciseRNN(reference_ops(), VOCAB, HIDDEN)


def test_adam_is_torch_optim_adam(request):
    """Our Adam (on the NumPy reference; the next test compares every backend with it) against
    the optimiser of the book's PyTorch run, ``torch.optim.Adam``: an oracle, used when
    ``--backends`` includes torch."""
    if "torch" not in selected_backends(request.config):
        pytest.skip("the oracle torch.optim.Adam is used only when --backends includes torch")
    import torch
    ops = reference_ops()
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(3,)).astype(np.float32)]
    grads = [[rng.normal(size=p.shape).astype(np.float32) for p in start] for _ in range(5)]
    reference = [torch.tensor(p, requires_grad=True) for p in start]
    torch_adam = torch.optim.Adam(reference, lr=0.01)
    ours = Adam(ops, lr=0.01)
    params = tuple(ops.asarray(p) for p in start)
    state = ours.init(params)
    for g in grads:
        for p, g_i in zip(reference, g):
            p.grad = torch.tensor(g_i)
        torch_adam.step()
        params, state = ours.update(params, [ops.asarray(g_i) for g_i in g], state)
    for p, p_ref in zip(params, reference):
        np.testing.assert_allclose(ops.to_numpy(p), p_ref.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_adam_agrees_across_backends(ops, rng):
    start = [rng.normal(size=(4, 3)).astype(np.float32)]
    grads = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(5)]
    results = []
    for backend in (reference_ops(), ops):
        adam = Adam(backend, lr=0.01)
        params = tuple(backend.asarray(p) for p in start)
        state = adam.init(params)
        for g in grads:
            params, state = adam.update(params, [backend.asarray(g)], state)
        results.append(backend.to_numpy(params[0]))
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6, atol=1e-7)


def test_adam_steps_are_exact_in_float32_from_the_first(ops):
    """Each of Adam's first 20 steps, from zero weights and moments, against float64: the bias
    correction 1 − β2^t is near 0.001 there, where 1 − exp(·) kept 4 of float32's 7 digits (up to
    1e-5 off on NumPy); −expm1(·) keeps them (within 3e-7)."""
    g = np.random.default_rng(0).normal(size=(50,)).astype(np.float32)
    for t in range(1, 21):
        adam = Adam(ops, lr=0.01)
        state = (ops.asarray(np.full((1,), t - 1, np.float32)), [ops.zeros((50,))],
                 [ops.zeros((50,))])
        (p,), _ = adam.update((ops.zeros((50,)),), [ops.asarray(g)], state)
        g64 = g.astype(np.float64)
        m_hat, v_hat = 0.1 * g64 / (1 - 0.9 ** t), 0.001 * g64 ** 2 / (1 - 0.999 ** t)
        np.testing.assert_allclose(ops.to_numpy(p), -0.01 * m_hat / (np.sqrt(v_hat) + 1e-8),
                                   rtol=1e-6, atol=0, err_msg=f"t = {t}")


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.mark.parametrize("optimizer,lr,theta", [("adam", 1e-3, 1e-2), ("sgd", 1.0, 1.0)])
def test_concise_first_20_steps_agree_across_frameworks_and_with_scratch(layer_ops, corpus,
                                                                        optimizer, lr, theta):
    """Consecutive sampling; Adam with the book's PyTorch settings (lr 1e-3, θ 1e-2), and SGD at
    the second edition's step size (lr 1, θ 1), where the trajectory is stable
    (docs/cross-backend.md explains why lr 100, θ 1e-2 is compared step by step instead)."""
    config = train.TrainConfig(model="concise", optimizer=optimizer, lr=lr, sampling="consecutive",
                               clipping_theta=theta, seed=3,
                               init="uniform" if optimizer == "adam" else "normal")
    scratch = train.TrainConfig(**{**config.__dict__, "model": "scratch"})
    reference, reference_texts = first_losses(reference_ops(), corpus, scratch)
    assert reference[-1] < reference[0] - 0.3
    losses, texts = first_losses(layer_ops, corpus, config)
    np.testing.assert_allclose(losses, reference, rtol=1e-4, err_msg=layer_ops.name)
    assert texts == reference_texts, layer_ops.name


def test_concise_sgd_steps_at_the_books_settings_agree_step_by_step(layer_ops, corpus):
    """The book's Gluon run (SGD, lr 100, θ 1e-2): every framework takes each of the first 20
    steps from the scratch NumPy reference's weights and state."""
    config = train.TrainConfig(model="concise", sampling="consecutive", seed=3)
    scratch = train.TrainConfig(**{**config.__dict__, "model": "scratch"})
    V = corpus.vocab.vocab_size
    reference_step = train.make_train_step(reference_ops(), V, scratch)
    backends = [layer_ops]
    steps = [train.make_train_step(ops, V, config) for ops in backends]
    params = model.init_params(V, config.num_hiddens, config.seed)
    H = np.zeros((config.batch_size, config.num_hiddens), np.float32)
    for k, (X, Y) in zip(range(20), train.data_iter(config, corpus.corpus_indices, None)):
        new_ref, _, (H_ref,), loss_ref = reference_step(params, (), (H,), X, Y)
        for ops, step in zip(backends, steps):
            new, _, _, loss = step(model.params_to_backend(ops, params), (), (ops.asarray(H),),
                                   ops.asarray(X), ops.asarray(Y))
            assert float(ops.to_numpy(loss).reshape(())) == pytest.approx(float(loss_ref), rel=1e-5)
            for field, p, p_ref, old in zip(model.RNNParams._fields, new, new_ref, params):
                update, ref_update = ops.to_numpy(p) - old, p_ref - old
                np.testing.assert_allclose(update, ref_update, rtol=1e-4,
                                           atol=1e-4 * np.abs(ref_update).max(),
                                           err_msg=f"{ops.name} step {k + 1} {field}")
        params, H = new_ref, H_ref


# ---- every cell: the framework's own GRU and LSTM layers -----------------------------------------
CONCISE = [("rnn", "book", 1)] + MODELS


def concise_or_refusal(ops, arch, **options):
    """The concise model of ``arch`` on ``ops``; None where the framework has no such layer, after
    checking that it is the book's GRU and that the refusal says what to use instead."""
    cell, variant, num_layers = arch
    try:
        return concise.ConciseRNN(ops, VOCAB, HIDDEN, cell=cell, variant=variant,
                                  num_layers=num_layers, **options)
    except RNNCoreError as error:
        assert (cell, variant) == ("gru", "book"), error
        assert "computes the reset_after formula, not the book one: use --variant reset_after, " \
               "or --model scratch" in str(error)
        return None


@pytest.mark.parametrize("onehot", [True, False], ids=["onehot", "embedding"])
@pytest.mark.parametrize("arch", CONCISE, ids=lambda m: "-".join(map(str, m)))
def test_each_framework_layer_computes_the_matching_scratch_formula(layer_ops, arch, onehot, rng):
    ops = layer_ops
    net = concise_or_refusal(ops, arch, onehot=onehot)
    if net is None:
        return
    params, X, Y, state = make_problem(rng, arch)
    P, X_, _, S = on_cells(ops, params, X, Y, state)
    O, new_state = net.forward(X_, S, P)
    O_ref, state_ref = reference_cells(params, X, state)
    np.testing.assert_allclose(ops.to_numpy(O), O_ref, rtol=1e-4, atol=LAYER_ATOL)
    assert len(new_state) == len(state_ref)
    for s, s_ref in zip(new_state, state_ref):
        np.testing.assert_allclose(ops.to_numpy(s), s_ref, rtol=1e-4, atol=LAYER_ATOL)


@pytest.mark.parametrize("arch", CONCISE, ids=lambda m: "-".join(map(str, m)))
def test_framework_weights_convert_to_and_from_the_canonical_layout(layer_ops, arch, rng):
    """Weights in the framework's own layout, with every bias drawn at random (both of them where
    the framework keeps two), run in the framework's layer, give the scratch formula's outputs
    once converted to the canonical layout; canonical weights go there and back exactly."""
    ops = layer_ops
    if concise_or_refusal(ops, arch) is None:
        return
    cell, variant, num_layers = arch
    params, X, Y, state = make_problem(rng, arch)
    kind = type(params)
    layer = ops.recurrent_layer(cell, variant, num_layers, VOCAB, HIDDEN, VOCAB)
    layout = concise.layout(layer, kind)
    weights = concise.from_canonical(layer, params)
    assert [name for name, _, _ in layout] == list(weights)
    for back, original in zip(concise.to_canonical(layer, weights, kind), params):
        np.testing.assert_array_equal(back, original)
    for name, parts, _ in layout:
        rows = parts if isinstance(parts[0][0], tuple) else (parts,)
        if all(field.startswith("b_") for row in rows for field, _ in row):
            weights[name] = rng.normal(scale=0.3, size=weights[name].shape).astype(np.float32)
    canonical = concise.to_canonical(layer, weights, kind)
    X_T = ops.asarray(X.T)
    inputs = ops.reshape(ops.one_hot(ops.reshape(X_T, (-1,)), VOCAB), (STEPS, BATCH, VOCAB))
    O, new_state = layer.apply([ops.asarray(weights[name]) for name, _, _ in layout], inputs,
                               tuple(ops.asarray(s) for s in state))
    O_ref, state_ref = reference_cells(canonical, X, state)
    np.testing.assert_allclose(ops.to_numpy(O), O_ref, rtol=1e-4, atol=LAYER_ATOL)
    for s, s_ref in zip(new_state, state_ref):
        np.testing.assert_allclose(ops.to_numpy(s), s_ref, rtol=1e-4, atol=LAYER_ATOL)


@pytest.mark.parametrize("arch", [("gru", "reset_after", 1), ("gru", "book", 1),
                                  ("lstm", "book", 2)], ids=lambda m: "-".join(map(str, m)))
def test_the_frameworks_gradients_through_their_layers_equal_the_hand_written_bptt(layer_ops,
                                                                                 arch, rng):
    from rnn_core import bptt
    ops = layer_ops
    net = concise_or_refusal(ops, arch)
    if net is None:
        return
    params, X, Y, state = make_problem(rng, arch)
    P, X_, Y_, S = on_cells(ops, params, X, Y, state)

    def loss(ps):
        O, new_state = net.forward(X_, S, type(P)(*ps))
        return model.cross_entropy(ops, O, model.labels(ops, Y_)), new_state

    (l, _), grads = ops.value_and_grad(loss, P)
    numpy_ops = reference_ops()
    (l_ref, _), grads_ref = bptt.loss_and_grad_bptt(
        numpy_ops, model.params_to_backend(numpy_ops, params), state, X, Y, VOCAB)
    assert float(ops.to_numpy(l).reshape(())) == pytest.approx(float(l_ref), rel=1e-5)
    for name, g, g_ref in zip(type(P)._fields, grads, grads_ref):
        np.testing.assert_allclose(ops.to_numpy(g), g_ref, rtol=1e-4,
                                   atol=1e-5 * np.abs(g_ref).max(), err_msg=name)


@pytest.mark.parametrize("arch", TRAINED, ids=lambda m: "-".join(map(str, m)))
def test_concise_training_steps_equal_the_scratch_models(layer_ops, corpus, arch):
    """3 SGD steps at the book's settings (lr 100, θ 0.01, consecutive sampling), each from the
    scratch NumPy reference's weights and state: the framework's layers give its loss and
    update."""
    cell, variant, num_layers = arch
    config = train.TrainConfig(model="concise", num_hiddens=32, num_steps=10, batch_size=8,
                               sampling="consecutive", seed=5, cell=cell, variant=variant,
                               num_layers=num_layers)
    if concise_or_refusal(layer_ops, arch) is None:
        return
    scratch = train.TrainConfig(**{**config.__dict__, "model": "scratch"})
    V = corpus.vocab.vocab_size
    reference_step = train.make_train_step(reference_ops(), V, scratch)
    step = train.make_train_step(layer_ops, V, config)
    params = model.init_params(V, 32, config.seed, **train.model_spec(config))
    state = model.init_state(reference_ops(), params, config.batch_size)
    for k, (X, Y) in zip(range(3), train.data_iter(config, corpus.corpus_indices, None)):
        new_ref, _, state_ref, loss_ref = reference_step(params, (), state, X, Y)
        new, _, _, loss = step(model.params_to_backend(layer_ops, params), (),
                               tuple(layer_ops.asarray(s) for s in state),
                               layer_ops.asarray(X), layer_ops.asarray(Y))
        assert float(layer_ops.to_numpy(loss).reshape(())) == pytest.approx(float(loss_ref),
                                                                              rel=1e-5)
        for field, p, p_ref, old in zip(type(params)._fields, new, new_ref, params):
            update, ref_update = layer_ops.to_numpy(p) - old, p_ref - old
            rounding = 2 * np.spacing(np.abs(old).max())
            np.testing.assert_allclose(update, ref_update, rtol=1e-4,
                                       atol=1e-4 * np.abs(ref_update).max() + rounding,
                                       err_msg=f"step {k + 1} {field}")
        params, state = new_ref, state_ref
