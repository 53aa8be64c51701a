"""Training, written once: gradient clipping, SGD, perplexity and the book's
``train_and_predict_rnn``. Every backend runs this same loop; only the ops differ.

Semantics (the book's):
* random sampling starts every minibatch from a fresh zero state (its examples are not
  neighbours of the previous batch's);
* consecutive sampling starts each epoch from a fresh state and carries it from batch to batch,
  detached, so gradients stop at the batch boundary (truncated backpropagation through time);
* the gradient of the mean loss is clipped to norm θ (global L2 norm over all parameters), then
  the optimiser steps: ``p -= lr * g`` (SGD, the book's scratch and Gluon runs) or Adam (the
  book's PyTorch run), both in ``rnn_core/optim.py``;
* perplexity is ``exp`` of the mean cross-entropy per character over the epoch.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from rnn_core import bptt, model, sampling
from rnn_core.backend import has
from rnn_core.cells import BOOK_SETTINGS
from rnn_core.concise import ConciseRNN
from rnn_core.data import Corpus
from rnn_core.errors import RNNCoreError, TrainingDiverged, interruption
from rnn_core.ops import Ops, within_numerics
from rnn_core.optim import make_optimizer


@dataclass
class TrainConfig:
    """The book's Jay Chou settings are the defaults."""
    num_hiddens: int = 256
    num_steps: int = 35
    batch_size: int = 32
    lr: float = 1e2
    clipping_theta: float = 1e-2
    num_epochs: int = 250
    pred_period: int = 50
    pred_len: int = 50
    prefixes: Sequence[str] = ("分开", "不分开")
    sampling: str = "random"         # 'random' or 'consecutive'
    seed: int = 0
    grad: str = "auto"               # 'autograd', 'bptt', or 'auto' (bptt on numpy)
    book_path: bool = False          # one-hot inputs, per-step outputs, loss read every batch
    model: str = "scratch"           # 'scratch' (the chapter's) or 'concise' (framework layers)
    optimizer: str = "sgd"           # 'sgd' or 'adam'
    init: str = "normal"             # 'normal' (scratch chapter) or 'uniform' (PyTorch's default)
    cell: str = "rnn"                # a name in rnn_core.cells.CELLS: 'rnn', 'gru' or 'lstm'
    variant: str = "book"            # the cell's formula: 'book', or the GRU's 'reset_after'
    num_layers: int = 1              # layers stacked, each reading the states of the one below


def model_spec(config: TrainConfig) -> dict:
    """The model a config trains, as :func:`rnn_core.model.init_params` takes it."""
    return {"cell": config.cell, "variant": config.variant, "num_layers": config.num_layers}


def weight_shapes(vocab_size: int, config: TrainConfig) -> list:
    """The shapes of the configured model's weights (any cell, any number of layers)."""
    kind = model.params_type(config.cell, config.variant, config.num_layers)
    return model.param_shapes(kind, vocab_size, config.num_hiddens)


def book_defaults(model: str = "scratch", optimizer: str = "sgd", cell: str = "rnn") -> dict:
    """The settings of the book's run for this model, optimiser and cell: the scratch chapter
    (SGD, lr 100; random sampling for the RNN, consecutive for the GRU and LSTM), the Gluon
    concise run (SGD, lr 100, consecutive) or the PyTorch concise run (Adam, lr 0.001 for the RNN
    and 0.01 for the GRU and LSTM, consecutive, PyTorch's default initialisation); 250 epochs
    printed every 50 for the RNN, 160 every 40 for the GRU and LSTM; the concise GRU is the
    frameworks' reset-after GRU. The cells' own settings are in rnn_core.cells.BOOK_SETTINGS."""
    if cell not in BOOK_SETTINGS:
        raise ValueError(f"unknown cell {cell!r}: choose {', '.join(BOOK_SETTINGS)}")
    book = BOOK_SETTINGS[cell]
    return {"model": model, "optimizer": optimizer,
            "lr": {"sgd": 1e2, "adam": book["adam_lr"]}[optimizer],
            "sampling": book["scratch_sampling"] if model == "scratch" else "consecutive",
            "init": "uniform" if (model, optimizer) == ("concise", "adam") else "normal",
            "cell": cell, "variant": book["concise_variant"] if model == "concise" else "book",
            "num_epochs": book["num_epochs"], "pred_period": book["pred_period"]}


def grad_clipping(ops: Ops, grads: Sequence, theta: float) -> list:
    """The book's ``grad_clipping``: if ``‖g‖ = sqrt(Σ_p Σ g_p²) > θ``, scale every gradient by
    ``θ / ‖g‖``. Written as ``g * θ / max(‖g‖, θ)``, which is the same and never reads the norm
    back to Python, so it can run inside a compiled step."""
    norm = ops.sqrt(sum(ops.sum(g * g) for g in grads))
    scale = theta / ops.clip(norm, min=theta)
    return [g * scale for g in grads]


def perplexity(mean_cross_entropy: float) -> float:
    """``exp`` of the mean cross-entropy per character; ``inf`` where that overflows."""
    try:
        return math.exp(mean_cross_entropy)
    except OverflowError:
        return math.inf


def epochs(count: int) -> str:
    """``'1 epoch'``, ``'250 epochs'``: how the tools and the library say a number of epochs."""
    return f"{count} epoch" if count == 1 else f"{count} epochs"


def resolve_grad(ops: Ops, config: TrainConfig) -> str:
    grad = config.grad
    if grad == "auto":
        return "autograd" if has(ops.name, "autograd") else "bptt"
    if grad not in ("autograd", "bptt"):
        raise ValueError(f"unknown grad {grad!r}: choose autograd, bptt or auto")
    if grad == "autograd" and not has(ops.name, "autograd"):
        raise RNNCoreError(f"the {ops.name} backend has no autograd: use --grad bptt or --grad auto")
    if grad == "bptt" and config.model != "scratch":
        raise RNNCoreError("--grad bptt is the scratch model's hand-written backpropagation: "
                           "the concise model trains with --grad autograd or --grad auto")
    return grad


def make_forward(ops: Ops, vocab_size: int, config: TrainConfig) -> Callable:
    """``forward(X, state, params) -> (O, state)`` of the configured model: the logits
    ``(num_steps * batch, vocab)`` of integer ``X (batch, num_steps)``."""
    model.params_type(config.cell, config.variant, config.num_layers)   # a known model, or why not
    if config.model == "scratch":
        def forward(X, state, params):
            return model.forward(ops, X, state, params, vocab_size, onehot=config.book_path,
                                 per_step=config.book_path)
        return forward
    if config.model == "concise":
        return ConciseRNN(ops, vocab_size, config.num_hiddens, onehot=config.book_path,
                          **model_spec(config)).forward
    raise ValueError(f"unknown model {config.model!r}: choose scratch or concise")


def make_train_step(ops: Ops, vocab_size: int, config: TrainConfig, *,
                    compiled: bool = True) -> Callable:
    """``step(params, opt_state, state, X, Y) -> (params, opt_state, state, loss)``: one
    optimiser step on one minibatch, a pure tensor function, compiled by the backend unless the
    book's path is asked for (or ``compiled`` is False), and run with the backend's numerics
    (``ops.numerics_scope()``). ``opt_state`` starts as ``make_optimizer(...).init(params)``."""
    step = optimiser_step(ops, vocab_size, config)
    if not config.book_path and compiled:
        return ops.compile(step)            # a compiled step enters the scope itself
    return within_numerics(ops, step)


def optimiser_step(ops: Ops, vocab_size: int, config: TrainConfig) -> Callable:
    """:func:`make_train_step`'s step as a plain function, for a caller that compiles it or runs
    it within its own numerics scope."""
    grad = resolve_grad(ops, config)
    forward = make_forward(ops, vocab_size, config)
    optimizer = make_optimizer(ops, config.optimizer, config.lr)

    def loss(params, state, X, Y):
        O, state = forward(X, state, params)
        return model.cross_entropy(ops, O, model.labels(ops, Y)), state

    if not config.book_path:     # the fast path differentiates the loss as one graph (MXNet)
        loss = ops.graph(loss)

    def step(params, opt_state, state, X, Y):
        if grad == "bptt":
            (l, state), grads = bptt.loss_and_grad_bptt(
                ops, params, state, X, Y, vocab_size, onehot=config.book_path,
                per_step=config.book_path)
        else:
            (l, state), grads = ops.value_and_grad(
                lambda ps: loss(type(params)(*ps), state, X, Y), params)
        grads = grad_clipping(ops, grads, config.clipping_theta)
        params, opt_state = optimizer.update(params, grads, opt_state)
        return params, opt_state, state, l

    return step


def make_train_epoch(ops: Ops, vocab_size: int, config: TrainConfig) -> Callable:
    """``epoch(params, opt_state, batches) -> (params, opt_state, losses)``: one optimiser step
    per minibatch ``(X, Y)`` of ``batches`` (NumPy arrays ``(batch, num_steps)``), with the
    state the sampling asks for, and each step's loss, a NumPy array ``(num_batches,)``.

    The fast path is one program for the whole epoch where the framework compiles loops
    (:meth:`rnn_core.ops.Ops.compile_loop`), and reads the losses back once. The book's path runs
    step by step and reads each loss as soon as its step is done, as the book does. Either runs
    with the backend's numerics (``ops.numerics_scope()``)."""
    step = optimiser_step(ops, vocab_size, config)
    check_sampling(config.sampling)
    fresh_state = config.sampling == "random"

    def minibatch(carry, XY):
        params, opt_state, state = carry
        X, Y = XY                                            # (batch, num_steps) each
        if fresh_state:          # random sampling: these examples do not follow the last ones
            state = model.init_state(ops, params, X.shape[0])
        else:                    # consecutive: carry the state on, cut from the last graph
            state = tuple(ops.stop_gradient(s) for s in state)
        params, opt_state, state, loss = step(params, opt_state, state, X, Y)
        return (params, opt_state, state), loss

    loop = None if config.book_path else ops.compile_loop(minibatch)

    def epoch(params, opt_state, batches):
        state = model.init_state(ops, params, config.batch_size)
        if not batches:
            return params, opt_state, np.zeros(0)
        if loop is None:
            losses = []
            for X, Y in batches:
                (params, opt_state, state), loss = minibatch((params, opt_state, state),
                                                             (ops.asarray(X), ops.asarray(Y)))
                losses.append(float(ops.to_numpy(loss).reshape(())))
            return params, opt_state, np.array(losses)
        Xs, Ys = (ops.asarray(np.stack(arrays)) for arrays in zip(*batches))
        (params, opt_state, _), losses = loop((params, opt_state, state), (Xs, Ys))
        return params, opt_state, ops.to_numpy(losses).reshape(-1).astype(np.float64)

    return within_numerics(ops, epoch)


def init_optimizer_state(ops: Ops, config: TrainConfig, params):
    return make_optimizer(ops, config.optimizer, config.lr).init(params)


def check_sampling(name: str) -> None:
    if name not in ("random", "consecutive"):
        raise ValueError(f"unknown sampling {name!r}: choose random or consecutive")


def data_iter(config: TrainConfig, corpus_indices, rng: random.Random):
    check_sampling(config.sampling)
    if config.sampling == "random":
        return sampling.data_iter_random(corpus_indices, config.batch_size, config.num_steps, rng)
    return sampling.data_iter_consecutive(corpus_indices, config.batch_size, config.num_steps)


@dataclass
class EpochResult:
    epoch: int
    perplexity: float
    seconds: float
    tokens: int
    batch_losses: np.ndarray = field(repr=False)


def train_epoch(ops: Ops, epoch_fn: Callable, params, opt_state, config: TrainConfig,
                corpus_indices, rng: random.Random, epoch: int, max_batches: int | None = None):
    """One pass over the corpus (or its first ``max_batches`` batches) with ``epoch_fn`` (from
    :func:`make_train_epoch`): returns ``(params, opt_state, EpochResult)``."""
    start = time.perf_counter()
    batches = list(itertools.islice(data_iter(config, corpus_indices, rng), max_batches))
    params, opt_state, batch_losses = epoch_fn(params, opt_state, batches)
    bad = np.flatnonzero(~np.isfinite(batch_losses))
    if bad.size:
        raise TrainingDiverged(f"the loss became {batch_losses[bad[0]]} at epoch {epoch}, batch "
                               f"{bad[0] + 1}", diverged_fix(config))
    # Every batch has batch_size * num_steps labels, so the per-label mean is the batch mean.
    mean_loss = float(batch_losses.mean()) if batch_losses.size else math.nan
    if math.isinf(perplexity(mean_loss)):
        raise TrainingDiverged(f"the perplexity became inf at epoch {epoch} (a mean loss of "
                               f"{mean_loss:.4g} per character)", diverged_fix(config))
    tokens = batch_losses.size * config.batch_size * config.num_steps
    return params, opt_state, EpochResult(epoch, perplexity(mean_loss),
                                          time.perf_counter() - start, tokens, batch_losses)


def diverged_fix(config: TrainConfig) -> str:
    return f"lower --lr (now {config.lr}) or --clip (now {config.clipping_theta})"


def first_losses(ops: Ops, corpus: Corpus, config: TrainConfig, num_batches: int, params=None):
    """The losses of the first ``num_batches`` optimiser steps (over as many epochs as that
    takes) from the configured initial weights, or ``params``; and the weights after them."""
    V = corpus.vocab.vocab_size
    if params is None:
        params = model.get_params(ops, V, config.num_hiddens, config.seed, config.init,
                                  **model_spec(config))
    epoch_fn = make_train_epoch(ops, V, config)
    opt_state = init_optimizer_state(ops, config, params)
    rng, losses, epoch = random.Random(config.seed), [], 0
    while len(losses) < num_batches:
        epoch += 1
        params, opt_state, result = train_epoch(ops, epoch_fn, params, opt_state, config,
                                                corpus.corpus_indices, rng, epoch,
                                                max_batches=num_batches - len(losses))
        losses.extend(result.batch_losses)
    return np.array(losses), params


def train_and_predict_rnn(ops: Ops, corpus: Corpus, config: TrainConfig,
                          log: Callable[[str], None] = print, params=None, *,
                          resume=None, save=None, on_epoch: Callable | None = None):
    """The book's ``train_and_predict_rnn``: trains, and every ``pred_period`` epochs (and after
    the last) logs ``epoch E, perplexity P, time T sec`` and a continuation of each prefix
    (``pred_period=0``: never). Returns
    ``(params, history)`` with one :class:`EpochResult` per epoch trained in this call.

    ``resume`` (a :class:`rnn_core.checkpoint.Checkpoint`) continues where it stopped: the same
    weights, optimiser state and sampler state, so the numbers are those of an uninterrupted run.
    ``save`` (a path) writes a checkpoint every ``pred_period`` epochs, at the end, and, on
    Ctrl-C or a loss that becomes NaN, the last completed epoch before the interrupt or the error
    is passed on; a write that fails raises :class:`rnn_core.errors.OutputError` and leaves the
    last good checkpoint as it was.
    ``on_epoch(result, num_epochs)`` is called after every epoch (a progress bar)."""
    from rnn_core import checkpoint
    from rnn_core.predict import predict_rnn

    vocab = corpus.vocab
    corpus_indices = corpus.corpus_indices
    rng = random.Random(config.seed)
    start, perplexities = 1, []
    if resume is not None:
        checkpoint.check_compatible(resume, vocab.idx_to_char, config.num_hiddens,
                                    corpus.spec)
        params = model.params_to_backend(ops, resume.params)
        opt_state = checkpoint.map_tree(ops.asarray, resume.opt_state)
        rng.setstate(resume.rng_state)
        start, perplexities = resume.epoch + 1, list(resume.history)
    else:
        if params is None:
            params = model.get_params(ops, vocab.vocab_size, config.num_hiddens, config.seed,
                                      config.init, **model_spec(config))
        opt_state = init_optimizer_state(ops, config, params)
    epoch_fn = make_train_epoch(ops, vocab.vocab_size, config)
    forward = make_forward(ops, vocab.vocab_size, config)

    def write(epoch, params, opt_state, rng_state):
        checkpoint.save(save, checkpoint.Checkpoint(
            params=model.params_to_numpy(ops, params),
            opt_state=checkpoint.map_tree(ops.to_numpy, opt_state),
            config=dataclasses.asdict(config) | {"prefixes": list(config.prefixes)},
            idx_to_char=vocab.idx_to_char, unk=vocab.unk is not None, corpus=corpus.spec,
            max_chars=corpus.max_chars, epoch=epoch, history=perplexities[:epoch],
            rng_state=rng_state))

    def finite(state):      # a completed epoch whose weights are all float32 numbers, as saved
        with np.errstate(over="ignore"):
            return all(np.isfinite(np.asarray(w, np.float32)).all()
                       for w in model.params_to_numpy(ops, state[1]))

    history = []
    done = (start - 1, params, opt_state, rng.getstate())   # the last completed epoch
    before = None                                           # and the one before it
    saved = start - 1                                       # the last epoch in ``save``
    try:
        for epoch in range(start, config.num_epochs + 1):
            params, opt_state, result = train_epoch(ops, epoch_fn, params, opt_state, config,
                                                    corpus_indices, rng, epoch)
            history.append(result)
            perplexities.append(result.perplexity)
            before, done = done, (epoch, params, opt_state, rng.getstate())
            if on_epoch is not None:
                on_epoch(result, config.num_epochs)
            last = epoch == config.num_epochs
            shown = bool(config.pred_period) and (epoch % config.pred_period == 0 or last)
            if (shown or last) and not finite(done):   # the update after the last batch
                raise TrainingDiverged(f"the weights became inf or NaN in epoch {epoch}",
                                       diverged_fix(config))
            if shown:
                log(f"epoch {epoch}, perplexity {result.perplexity:.2f}, "
                    f"time {result.seconds:.2f} sec")
                for prefix in config.prefixes:
                    log(" - " + predict_rnn(ops, prefix, config.pred_len, params, vocab,
                                            forward=forward))
            if save and (last or (config.pred_period and epoch % config.pred_period == 0)):
                write(*done)
                saved = epoch
    except TrainingDiverged as error:
        advice = [error.fix] if error.fix else []
        if resume is not None and advice:   # a resumed run keeps its checkpoint's settings
            advice[0] += " in a new run (without --resume: it keeps the checkpoint's settings)"
        good = next((state for state in (done, before) if state is not None and
                     state[0] >= start and finite(state)), None)
        if save and good is not None:
            if saved < good[0]:
                write(*good)
                saved = good[0]
            advice.append(f"epoch {saved}, the last before it, is saved in {save}")
        raise TrainingDiverged(error.facts, "; ".join(advice)) from None
    except BaseException as error:
        interrupt = interruption(error)
        if interrupt is None:
            raise
        if save and done[0] >= start:
            write(*done)
            log(f"interrupted during epoch {done[0] + 1}: saved epoch {done[0]} to {save}; "
                f"continue with --resume {save}")
        elif save:
            log(f"interrupted during epoch {start}, before it completed: nothing to save")
        raise interrupt
    return params, history
