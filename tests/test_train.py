"""Training and generation: the same seed gives the same numbers on every backend."""
import dataclasses
import itertools
import random

import numpy as np
import pytest

from rnn_core import bptt, model, optim, train
from rnn_core.data import Vocab, load_corpus
from rnn_core.errors import TrainingDiverged, VocabularyError
from rnn_core.backend import REFERENCE
from rnn_core.predict import next_char_distribution, predict_rnn

from conftest import deterministic, reference_ops


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()     # the project's own corpus: always there


def first_losses(ops, corpus, config, num_batches=20):
    """Losses of the first SGD steps (book settings unless ``config`` says otherwise), and the
    greedy generations after them."""
    losses, params = train.first_losses(ops, corpus, config, num_batches)
    forward = train.make_forward(ops, corpus.vocab.vocab_size, config)
    texts = [predict_rnn(ops, prefix, 20, params, corpus.vocab, forward=forward)
             for prefix in config.prefixes]
    return losses, texts


@pytest.mark.parametrize("sampling", ["random", "consecutive"])
def test_each_of_the_first_20_sgd_steps_agrees_across_backends(all_ops, corpus, sampling):
    """The book's settings (lr 100, θ 0.01). Every backend takes each step from the NumPy
    reference's parameters and state, so each step's arithmetic is compared on its own: its loss
    within 1e-5 relative, its update ``p_new - p`` within 1e-4 of the update's size."""
    config = train.TrainConfig(sampling=sampling, seed=7)
    V = corpus.vocab.vocab_size
    reference = all_ops[0]
    steps = {ops.name: train.make_train_step(ops, V, config) for ops in all_ops}
    params = model.init_params(V, config.num_hiddens, config.seed)
    state = np.zeros((config.batch_size, config.num_hiddens), np.float32)
    batches = train.data_iter(config, corpus.corpus_indices, random.Random(config.seed))
    for k, (X, Y) in zip(range(20), batches):
        results = {}
        for ops in all_ops:
            new_params, _, (H,), loss = steps[ops.name](
                model.params_to_backend(ops, params), (), (ops.asarray(state),),
                ops.asarray(X), ops.asarray(Y))
            results[ops.name] = (float(ops.to_numpy(loss).reshape(())),
                                 model.params_to_numpy(ops, new_params), ops.to_numpy(H))
        ref_loss, ref_params, ref_H = results[reference.name]
        for name, (loss, new_params, H) in results.items():
            assert loss == pytest.approx(ref_loss, rel=1e-5), (name, k)
            for field, new, ref_new, old in zip(model.RNNParams._fields, new_params, ref_params,
                                                params):
                update, ref_update = new - old, ref_new - old
                np.testing.assert_allclose(update, ref_update, rtol=1e-4,
                                           atol=1e-4 * np.abs(ref_update).max(),
                                           err_msg=f"{name} step {k + 1} {field}")
        params = ref_params
        state = ref_H if sampling == "consecutive" else state


@pytest.mark.parametrize("sampling", ["random", "consecutive"])
def test_first_20_sgd_steps_agree_across_backends(ops, corpus, sampling):
    """Free-running: each backend follows its own trajectory for 20 steps, with the second
    edition's step size (lr 1, θ 1). At the first edition's lr 100, θ 0.01 the trajectory itself
    amplifies float32 rounding (the same NumPy run with its initial weights changed by 1e-7
    relative ends 20 steps later up to 2.4e-4 apart; see docs/cross-backend.md), so there the
    per-step test above is the one that compares the arithmetic."""
    config = train.TrainConfig(sampling=sampling, seed=7, lr=1.0, clipping_theta=1.0)
    reference, reference_texts = first_losses(reference_ops(), corpus, config)
    assert reference[-1] < reference[0] - 0.5          # it learns
    losses, texts = first_losses(ops, corpus, config)
    np.testing.assert_allclose(losses, reference, rtol=1e-4, err_msg=ops.name)
    assert texts == reference_texts, ops.name


def test_bptt_trains_every_backend_like_autograd(autograd_ops, corpus):
    auto, _ = first_losses(autograd_ops, corpus, train.TrainConfig(grad="autograd"), 10)
    by_hand, _ = first_losses(autograd_ops, corpus, train.TrainConfig(grad="bptt"), 10)
    np.testing.assert_allclose(by_hand, auto, rtol=1e-4)


@pytest.mark.parametrize("sampling", ["random", "consecutive"])
def test_an_epoch_as_one_program_takes_the_steps_of_one_call_per_minibatch(ops, corpus,
                                                                           sampling):
    """The fast path's epoch (``Ops.compile_loop``: one program where the framework compiles
    loops) against its own compiled step called once per minibatch from Python, with the state
    the sampling asks for: the same losses (rtol 1e-5) and weights (1e-4 of the update's size)
    after 12 steps at the book's lr 100, θ 0.01, the GRU so that a state of more than one
    tensor's worth of work is carried."""
    config = train.TrainConfig(sampling=sampling, seed=3, cell="gru", num_hiddens=64)
    V = corpus.vocab.vocab_size
    params = model.get_params(ops, V, config.num_hiddens, config.seed, **train.model_spec(config))
    batches = list(itertools.islice(
        train.data_iter(config, corpus.corpus_indices, random.Random(config.seed)), 12))
    step = train.make_train_step(ops, V, config)
    expected, state, stepped = [], None, params
    for X, Y in batches:
        state = (model.init_state(ops, params, config.batch_size)
                 if sampling == "random" or state is None
                 else tuple(ops.stop_gradient(s) for s in state))
        stepped, _, state, loss = step(stepped, (), state, ops.asarray(X), ops.asarray(Y))
        expected.append(float(ops.to_numpy(loss).reshape(())))
    got, _, losses = train.make_train_epoch(ops, V, config)(params, (), batches)
    np.testing.assert_allclose(losses, expected, rtol=1e-5, err_msg=ops.name)
    for field, new, ref, old in zip(type(params)._fields, model.params_to_numpy(ops, got),
                                    model.params_to_numpy(ops, stepped),
                                    model.params_to_numpy(ops, params)):
        update = ref - old
        np.testing.assert_allclose(new - old, update, rtol=1e-4,
                                   atol=1e-4 * np.abs(update).max(), err_msg=f"{ops.name} {field}")


def books_sgd_epoch(params, batches, config, vocab_size):
    """The book's training loop written out in float64 NumPy around the NumPy reference's
    gradients: each minibatch's gradient of the mean loss is clipped to norm θ
    (``g · θ / ‖g‖`` where ``‖g‖ > θ``), then ``p ← p − lr·g``; random sampling starts every
    minibatch from a zero state, consecutive sampling carries the last minibatch's on. Returns
    the weights, each step's loss and each step's gradient norm."""
    reference = reference_ops()
    weights = [p.astype(np.float64) for p in params]
    state, losses, norms = None, [], []
    for X, Y in batches:
        if config.sampling == "random" or state is None:
            state = (np.zeros((config.batch_size, config.num_hiddens), np.float32),)
        (loss, state), grads = bptt.loss_and_grad_bptt(
            reference, type(params)(*(p.astype(np.float32) for p in weights)), state, X, Y,
            vocab_size)
        norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))
        scale = config.clipping_theta / max(norm, config.clipping_theta)
        weights = [p - config.lr * scale * g for p, g in zip(weights, grads)]
        losses.append(float(loss))
        norms.append(norm)
    return weights, np.array(losses), np.array(norms)


@pytest.mark.parametrize("book_path", [False, True])
@pytest.mark.parametrize("sampling", ["random", "consecutive"])
def test_an_epoch_is_the_books_clipped_sgd_step_repeated(ops, corpus, sampling, book_path):
    """Each backend's epoch (the fast path's one program, or the book's step-by-step path)
    against :func:`books_sgd_epoch`: the same 6 losses (rtol 1e-5) and the same weights (within
    1e-5 of the size of the whole update). Weights of scale 0.3, so the state a minibatch starts
    from changes its loss, and θ between the gradient norms, so some steps are clipped and some
    are not: a step scaled otherwise, or a state kept or dropped otherwise, fails here. On the
    CPU every backend is within 3e-7 (losses) and 2e-6 (weights) of the float64 loop."""
    config = train.TrainConfig(num_hiddens=16, batch_size=4, num_steps=6, lr=1.0,
                               clipping_theta=0.9, sampling=sampling, seed=5,
                               book_path=book_path)
    V = corpus.vocab.vocab_size
    rng = np.random.default_rng(0)
    params = model.RNNParams(*(rng.normal(scale=0.3, size=p.shape).astype(np.float32)
                               for p in model.init_params(V, config.num_hiddens)))
    batches = list(itertools.islice(
        train.data_iter(config, corpus.corpus_indices, random.Random(config.seed)), 6))
    expected, expected_losses, norms = books_sgd_epoch(params, batches, config, V)
    assert norms.min() < config.clipping_theta < norms.max()           # both branches taken
    other = dataclasses.replace(config, sampling={"random": "consecutive",
                                                  "consecutive": "random"}[sampling])
    assert np.abs(books_sgd_epoch(params, batches, other, V)[1][1:]
                  - expected_losses[1:]).max() > 1e-2                  # the state matters
    got, _, losses = train.make_train_epoch(ops, V, config)(
        model.params_to_backend(ops, params), (), batches)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-5, err_msg=ops.name)
    for field, new, ref, old in zip(model.RNNParams._fields, model.params_to_numpy(ops, got),
                                    expected, params):
        update = ref - old
        np.testing.assert_allclose(new - old, update, rtol=0, atol=1e-5 * np.abs(update).max(),
                                   err_msg=f"{ops.name} {field}")


def fake_recording(warm, body):
    """A stand-in for a CUDA graph on the CPU: ``replay`` runs ``body`` again and writes its
    output into the first run's tensor, as a graph's replay writes into the same buffers."""
    warm()
    y = body()
    return y, lambda: y.copy_(body())


@pytest.mark.parametrize("sampling", ["random", "consecutive"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_replayed_step_takes_the_steps_of_the_python_loop(ops, corpus, sampling, optimizer,
                                                            monkeypatch):
    """Where a backend records the step once and replays it per minibatch (PyTorch's CUDA
    graphs, ``replay_loop``), the buffers are handled as the Python loop's values are: two
    epochs, recorded in the first, give the Python loop's losses and weights, exactly on the
    CPU, and what an epoch returns is not changed by the next one."""
    module = __import__(type(ops).__module__, fromlist=["replay_loop"])
    if not hasattr(module, "replay_loop"):
        pytest.skip(f"the {ops.name} backend replays no recorded step")
    ops = deterministic(ops)          # on a GPU the two loops are compared bit for bit as well
    config = train.TrainConfig(sampling=sampling, optimizer=optimizer, seed=5, cell="lstm",
                               num_hiddens=32, lr=100 if optimizer == "sgd" else 0.01)
    V = corpus.vocab.vocab_size
    params = model.get_params(ops, V, config.num_hiddens, config.seed, **train.model_spec(config))
    opt_state = optim.make_optimizer(ops, config.optimizer, config.lr).init(params)
    batches = list(itertools.islice(
        train.data_iter(config, corpus.corpus_indices, random.Random(config.seed)), 6))
    results = {}
    for how in ("python", "replayed"):
        if how == "replayed":
            monkeypatch.setattr(ops, "compile_loop",
                                lambda f: module.replay_loop(ops, f, fake_recording))
        epoch = train.make_train_epoch(ops, V, config)
        first = epoch(params, opt_state, batches[:3])
        kept = [a.copy() for a in model.params_to_numpy(ops, first[0])]  # not a view
        second = epoch(first[0], first[1], batches[3:])
        for a, b in zip(kept, model.params_to_numpy(ops, first[0])):
            np.testing.assert_array_equal(a, b)         # the first epoch's weights are kept
        results[how] = (np.concatenate([first[2], second[2]]),
                        model.params_to_numpy(ops, second[0]))
    np.testing.assert_array_equal(results["replayed"][0], results["python"][0])
    for a, b in zip(results["replayed"][1], results["python"][1]):
        np.testing.assert_array_equal(a, b)


def test_the_books_path_gives_the_fast_paths_numbers(ops, corpus):
    fast, _ = first_losses(ops, corpus, train.TrainConfig(), 6)
    book, _ = first_losses(ops, corpus, train.TrainConfig(book_path=True), 6)
    np.testing.assert_allclose(book, fast, rtol=1e-5)


def test_same_seed_same_numbers_other_seed_other_numbers(ops, corpus):
    ops = deterministic(ops)
    config = train.TrainConfig(num_epochs=2, pred_period=0, num_hiddens=32)
    _, first = train.train_and_predict_rnn(ops, corpus, config)
    _, again = train.train_and_predict_rnn(ops, corpus, config)
    config.seed = 1
    _, other = train.train_and_predict_rnn(ops, corpus, config)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.batch_losses, b.batch_losses)
    assert first[-1].perplexity != other[-1].perplexity


def test_train_and_predict_prints_the_books_lines(ops, corpus):
    lines = []
    config = train.TrainConfig(num_epochs=2, pred_period=1, pred_len=5, num_hiddens=32)
    _, history = train.train_and_predict_rnn(ops, corpus, config, log=lines.append)
    assert len(history) == 2 and len(lines) == 6
    assert lines[0].startswith("epoch 1, perplexity ") and lines[0].endswith(" sec")
    assert lines[1].startswith(" - 分开") and len(lines[1]) == len(" - 分开") + 5
    assert lines[2].startswith(" - 不分开")


def test_an_epochs_perplexity_is_exp_of_its_mean_loss_and_it_counts_every_label(corpus):
    """The book's ``exp(l_sum / n)``: every minibatch has batch_size * num_steps labels, so the
    mean per label is the mean of the minibatches' losses."""
    config = train.TrainConfig(num_hiddens=8)

    def epoch_fn(params, opt_state, batches):            # three minibatches' mean losses
        return params, opt_state, np.array([1.0, 2.0, 3.0])
    _, _, result = train.train_epoch(reference_ops(), epoch_fn, None, None, config,
                                     corpus.corpus_indices, random.Random(0), 1, max_batches=3)
    assert result.perplexity == pytest.approx(np.exp(2.0), rel=1e-12)
    assert result.tokens == 3 * config.batch_size * config.num_steps


def test_a_loss_that_becomes_nan_stops_training_naming_epoch_and_batch(ops, corpus):
    config = train.TrainConfig(num_epochs=3, pred_period=0, num_hiddens=16)
    params = model.init_params(corpus.vocab.vocab_size, 16)
    params.b_q[5] = np.nan             # a fault: one poisoned weight makes every loss NaN
    with pytest.raises(TrainingDiverged, match=r"became nan at epoch 1, batch 1: lower --lr"):
        train.train_and_predict_rnn(ops, corpus, config,
                                    params=model.params_to_backend(ops, params))


# ---- generation ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(corpus):
    ops = reference_ops()
    params, _ = train.train_and_predict_rnn(
        ops, corpus, train.TrainConfig(num_epochs=3, pred_period=0, num_hiddens=64))
    return model.params_to_numpy(ops, params)


def test_generation_feeds_the_prefix_then_each_character_it_generates(ops, corpus, trained):
    """The book's ``predict_rnn``: the model reads the prefix one character at a time, in order,
    then each character it generates; so what it was fed is the text less its last character."""
    P, fed = model.params_to_backend(ops, trained), []

    def recording(X, state, params):                                   # X (1, 1)
        fed.append(int(ops.to_numpy(X).reshape(-1)[0]))
        return model.forward(ops, X, state, params, corpus.vocab.vocab_size)
    text = predict_rnn(ops, "不分开我", 3, P, corpus.vocab, forward=recording)
    assert len(text) == 7 and corpus.vocab.decode(fed) == text[:-1]


def test_greedy_generation_agrees_across_backends(all_ops, corpus, trained):
    texts = {ops.name: predict_rnn(ops, "不分开", 30, model.params_to_backend(ops, trained),
                                   corpus.vocab) for ops in all_ops}
    assert len(set(texts.values())) == 1, texts
    assert len(texts[REFERENCE]) == 33


def test_sampling_is_reproducible_and_top_k_1_is_greedy(ops, corpus, trained):
    params = model.params_to_backend(ops, trained)
    sample = lambda seed: predict_rnn(ops, "分开", 30, params, corpus.vocab, temperature=1.0,
                                      seed=seed)
    assert sample(5) == sample(5) != sample(6)
    assert predict_rnn(ops, "分开", 30, params, corpus.vocab, temperature=0.7, top_k=1) == \
        predict_rnn(ops, "分开", 30, params, corpus.vocab)


def softmax_over_top_k(logits, temperature, top_k):
    """The definition, in float64: ``softmax(logits / T)`` over the ``top_k`` largest logits (all
    when None), 0 for the others. The callers' logits are distinct, so the top k are k indices."""
    logits = np.asarray(logits, np.float64)
    kept = np.argsort(logits)[::-1][:top_k]
    e = np.exp(logits[kept] / temperature)
    p = np.zeros_like(logits)
    p[kept] = e / e.sum()
    return p


@pytest.mark.parametrize("top_k", [None, 1, 3, 9, 10, 50])
@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_the_next_character_is_drawn_from_the_softmax_over_the_top_k(temperature, top_k):
    """``next_char_distribution`` (NumPy, after each backend's logits reach the host) against its
    definition, for 10 distinct logits in [-3, 3]: both in float64, so within 1e-12 relative;
    exactly ``top_k`` characters (all 10 when ``top_k`` is None or above 10) get a probability."""
    logits = np.random.default_rng(0).uniform(-3, 3, size=10).astype(np.float32)
    p = next_char_distribution(logits, temperature, top_k)
    np.testing.assert_allclose(p, softmax_over_top_k(logits, temperature, top_k), rtol=1e-12,
                               atol=0)
    assert np.count_nonzero(p) == min(top_k or 10, 10)


@pytest.mark.parametrize("temperature", [0.01, 1e-300])
def test_a_small_temperature_gives_the_likeliest_character_without_overflow(temperature):
    """At T = 0.01 the runner-up, 1 below the likeliest logit, has probability e^-100 ≈ 4e-44
    relative to it, and logits / T alone would overflow float64 (2000 / 0.01); the likeliest
    character must get all of it, with no inf or NaN."""
    logits = np.array([20.0, 19.0, -5.0, 3.0], np.float32)
    p = next_char_distribution(logits, temperature, None)
    np.testing.assert_allclose(p, [1.0, 0.0, 0.0, 0.0], rtol=0, atol=1e-40)


def test_generation_samples_each_character_from_that_distribution(ops):
    """``predict_rnn`` with a temperature and top-k, on a model whose logits are fixed (the
    backend carries them to the host), against a replay: the same seeded generator choosing each
    character from the definition's distribution. The top 4 of 10 characters at T = 0.7; a
    character-for-character equality, since both draw from the same probabilities."""
    vocab = Vocab("abcdefghij")                   # each once: the order of first appearance
    logits = np.random.default_rng(1).uniform(-3, 3, size=(1, 10)).astype(np.float32)

    def fixed(X, state, params):                  # X (1, 1) -> logits (1, vocab)
        return ops.asarray(logits), state
    params = model.get_params(ops, 10, 4)
    text = predict_rnn(ops, "a", 40, params, vocab, temperature=0.7, top_k=4,
                       rng=np.random.default_rng(7), forward=fixed)
    replay, p = np.random.default_rng(7), softmax_over_top_k(logits[0], 0.7, 4)
    assert text == "a" + "".join(vocab.idx_to_char[replay.choice(10, p=p)] for _ in range(40))
    assert len(set(text[1:])) > 1 and set(text[1:]) <= {vocab.idx_to_char[i]
                                                        for i in np.flatnonzero(p)}


def test_generation_refuses_a_top_k_below_1_and_a_temperature_that_is_not_finite(ops, corpus,
                                                                                 trained):
    """``top_k=0`` would keep every character (the sort's ``[-0]`` is its smallest) and an
    infinite temperature would divide by it: both are refused before any step."""
    params = model.params_to_backend(ops, trained)
    for top_k in (0, -2):
        with pytest.raises(ValueError, match=f"top_k must be a positive integer, got {top_k}"):
            predict_rnn(ops, "分开", 5, params, corpus.vocab, temperature=1.0, top_k=top_k)
    for temperature in (float("inf"), float("nan"), -1.0):
        with pytest.raises(ValueError, match="temperature must be 0 .greedy. or a positive "
                                             "finite number"):
            predict_rnn(ops, "分开", 5, params, corpus.vocab, temperature=temperature)


def test_top_k_alone_samples_at_temperature_1_and_top_k_at_0_is_refused(ops, corpus, trained):
    """As ``generate --top-k`` does: ``top_k`` only means something when sampling, so left
    without a temperature it samples at 1 (the model's own distribution), the same draws as
    ``temperature=1``, not greedy; with ``temperature=0`` it would be ignored, and is refused."""
    params = model.params_to_backend(ops, trained)
    alone = predict_rnn(ops, "分开", 30, params, corpus.vocab, top_k=5, seed=2)
    assert alone == predict_rnn(ops, "分开", 30, params, corpus.vocab, temperature=1.0, top_k=5,
                                seed=2)
    assert alone != predict_rnn(ops, "分开", 30, params, corpus.vocab)          # greedy
    with pytest.raises(ValueError, match="top_k=5 samples among the likeliest characters, but "
                                         "temperature 0 always takes the likeliest one"):
        predict_rnn(ops, "分开", 5, params, corpus.vocab, temperature=0, top_k=5)


def test_a_prefix_with_unseen_characters_is_refused_with_them_listed(ops, corpus, trained):
    params = model.params_to_backend(ops, trained)
    with pytest.raises(VocabularyError, match="'Q', 'Z'"):
        predict_rnn(ops, "分Q开Z", 5, params, corpus.vocab)
    with pytest.raises(ValueError, match="prefix is empty"):
        predict_rnn(ops, "", 5, params, corpus.vocab)


def test_book_defaults_name_the_books_runs():
    rnn = {"cell": "rnn", "variant": "book", "num_epochs": 250, "pred_period": 50}
    assert train.book_defaults() == {"model": "scratch", "optimizer": "sgd", "lr": 100.0,
                                     "sampling": "random", "init": "normal", **rnn}
    assert train.book_defaults("concise", "sgd")["sampling"] == "consecutive"
    assert train.book_defaults("concise", "adam") == {
        "model": "concise", "optimizer": "adam", "lr": 1e-3, "sampling": "consecutive",
        "init": "uniform", **rnn}
    # The GRU and LSTM sections: 160 epochs printed every 40, consecutive sampling; the PyTorch
    # port's Adam at lr 0.01; the frameworks' GRU layers compute the reset-after formula.
    for cell in ("gru", "lstm"):
        scratch = train.book_defaults(cell=cell)
        assert (scratch["num_epochs"], scratch["pred_period"], scratch["sampling"],
                scratch["lr"], scratch["variant"]) == (160, 40, "consecutive", 100.0, "book")
        assert train.book_defaults("concise", "adam", cell)["lr"] == 1e-2
    assert train.book_defaults("concise", "sgd", "gru")["variant"] == "reset_after"
    assert train.book_defaults("concise", "sgd", "lstm")["variant"] == "book"
    with pytest.raises(ValueError, match="unknown cell 'cnn'"):
        train.book_defaults(cell="cnn")