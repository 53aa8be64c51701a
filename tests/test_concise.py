"""The concise model (each framework's RNN layer) against the scratch model and across frameworks."""
import numpy as np
import pytest

from rnn_core import concise, model, train
from rnn_core.data import load_corpus
from rnn_core.errors import RNNCoreError
from rnn_core.optim import Adam

from conftest import BATCH, HIDDEN, STEPS, VOCAB, reference_ops, selected_backends
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


def test_framework_weights_convert_to_and_from_the_canonical_layout(autograd_ops, problem, rng):
    """Weights in the framework's own layout, with a non-zero second bias where it has one, give
    the scratch model's outputs once converted to the canonical layout; and back again."""
    ops = autograd_ops
    params, X, Y, H0 = problem
    layer = ops.rnn_layer(VOCAB, HIDDEN, VOCAB)
    weights = concise.from_canonical(layer.layout, params)
    for name, field, _ in layer.layout:
        if field is None:
            weights[name] = rng.normal(size=weights[name].shape).astype(np.float32)
    round_trip = concise.from_canonical(layer.layout, concise.to_canonical(layer.layout, weights))
    canonical = concise.to_canonical(layer.layout, weights)
    X_T = ops.asarray(X.T)
    inputs = ops.reshape(ops.one_hot(ops.reshape(X_T, (-1,)), VOCAB), (STEPS, BATCH, VOCAB))
    O, H = layer.apply([ops.asarray(weights[name]) for name, _, _ in layer.layout], inputs,
                       ops.asarray(H0))
    O_ref, H_ref = reference_forward(canonical, X, H0)
    np.testing.assert_allclose(ops.to_numpy(O), O_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ops.to_numpy(H), H_ref, rtol=1e-4, atol=1e-5)
    for name, field, _ in layer.layout:
        expected = np.zeros_like(weights[name]) if field is None else weights[name]
        if field == "b_h":
            expected = weights[name] + sum(weights[n] for n, f, _ in layer.layout if f is None)
        np.testing.assert_allclose(round_trip[name], expected, rtol=1e-6, err_msg=name)


def test_the_layer_takes_weights_that_are_transposed_views(autograd_ops, problem):
    """The canonical layout hands the framework's layer each transposed weight as a transpose of
    the canonical tensor, a strided view where the framework has views. On CUDA, cuDNN's RNN
    copies its weights into one flat buffer through a flat view of each, which such a view does
    not have: PyTorch's concise model crashed there ('view size is not compatible with input
    tensor's size and stride'). The layer must make its weights dense on every device, so this
    runs the layer, forward and backward, on exactly such views, on the CPU too."""
    ops = autograd_ops
    params, X, Y, H0 = problem
    layer = ops.rnn_layer(VOCAB, HIDDEN, VOCAB)
    weights = concise.from_canonical(layer.layout, params)
    views = [ops.matrix_transpose(ops.asarray(np.ascontiguousarray(weights[name].T)))
             if transposed else ops.asarray(weights[name]) for name, _, transposed in layer.layout]
    X_T = ops.asarray(X.T)
    inputs = ops.reshape(ops.one_hot(ops.reshape(X_T, (-1,)), VOCAB), (STEPS, BATCH, VOCAB))

    def loss(ws):
        O, H = layer.apply(ws, inputs, ops.asarray(H0))
        return ops.sum(O * O) + ops.sum(H), O

    (_, O), grads = ops.value_and_grad(loss, views)
    O_ref, _ = reference_forward(params, X, H0)
    np.testing.assert_allclose(ops.to_numpy(O), O_ref, rtol=1e-4, atol=1e-5)
    assert [tuple(g.shape) for g in grads] == [weights[name].shape for name, _, _ in layer.layout]


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
