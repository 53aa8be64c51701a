"""Training, written once: gradient clipping, SGD, perplexity and the book's
``train_and_predict_rnn``. Every backend runs this same loop; only the ops differ.

Semantics (the book's):
* random sampling starts every minibatch from a fresh zero state (its examples are not
  neighbours of the previous batch's);
* consecutive sampling starts each epoch from a fresh state and carries it from batch to batch,
  detached, so gradients stop at the batch boundary (truncated backpropagation through time);
* the gradient of the mean loss is clipped to norm θ (global L2 norm over all parameters), then
  ``p -= lr * g``;
* perplexity is ``exp`` of the mean cross-entropy per character over the epoch.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from rnn_core import bptt, model, sampling
from rnn_core.data import Corpus
from rnn_core.errors import TrainingDiverged
from rnn_core.ops import Ops


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


def grad_clipping(ops: Ops, grads: Sequence, theta: float) -> list:
    """The book's ``grad_clipping``: if ``‖g‖ = sqrt(Σ_p Σ g_p²) > θ``, scale every gradient by
    ``θ / ‖g‖``. Written as ``g * θ / max(‖g‖, θ)``, which is the same and never reads the norm
    back to Python, so it can run inside a compiled step."""
    norm = ops.sqrt(sum(ops.sum(g * g) for g in grads))
    scale = theta / ops.clip(norm, min=theta)
    return [g * scale for g in grads]


def sgd(params: Sequence, grads: Sequence, lr: float):
    """``p - lr * g`` for every parameter (the gradient is already that of the mean loss)."""
    return type(params)(*(p - lr * g for p, g in zip(params, grads)))


def perplexity(mean_cross_entropy: float) -> float:
    """``exp`` of the mean cross-entropy per character; ``inf`` where that overflows."""
    try:
        return math.exp(mean_cross_entropy)
    except OverflowError:
        return math.inf


def resolve_grad(ops: Ops, grad: str) -> str:
    if grad == "auto":
        return "bptt" if ops.name == "numpy" else "autograd"
    if grad not in ("autograd", "bptt"):
        raise ValueError(f"unknown grad {grad!r}: choose autograd, bptt or auto")
    if grad == "autograd" and ops.name == "numpy":
        raise ValueError("the numpy backend has no autograd: use --grad bptt (or auto)")
    return grad


def make_train_step(ops: Ops, vocab_size: int, config: TrainConfig) -> Callable:
    """``step(params, state, X, Y) -> (params, state, loss)``: one SGD step on one minibatch,
    a pure tensor function, compiled by the backend unless the book's path is asked for."""
    grad = resolve_grad(ops, config.grad)
    path = dict(onehot=config.book_path, per_step=config.book_path)

    def step(params, state, X, Y):
        if grad == "bptt":
            (loss, state), grads = bptt.loss_and_grad_bptt(ops, params, state, X, Y, vocab_size)
        else:
            (loss, state), grads = ops.value_and_grad(
                lambda ps: model.loss(ops, model.RNNParams(*ps), state, X, Y, vocab_size, **path),
                params)
        grads = grad_clipping(ops, grads, config.clipping_theta)
        return sgd(params, grads, config.lr), state, loss

    return step if config.book_path else ops.compile(step)


def data_iter(config: TrainConfig, corpus_indices, rng: random.Random):
    if config.sampling == "random":
        return sampling.data_iter_random(corpus_indices, config.batch_size, config.num_steps, rng)
    if config.sampling == "consecutive":
        return sampling.data_iter_consecutive(corpus_indices, config.batch_size, config.num_steps)
    raise ValueError(f"unknown sampling {config.sampling!r}: choose random or consecutive")


@dataclass
class EpochResult:
    epoch: int
    perplexity: float
    seconds: float
    tokens: int
    batch_losses: np.ndarray = field(repr=False)


def train_epoch(ops: Ops, step: Callable, params, config: TrainConfig, corpus_indices,
                rng: random.Random, epoch: int):
    """One pass over the corpus: returns ``(params, EpochResult)``."""
    start = time.perf_counter()
    losses = []                      # scalar tensors; read back once, at the end of the epoch
    state = None
    for X, Y in data_iter(config, corpus_indices, rng):
        if config.sampling == "random" or state is None:
            state = model.init_rnn_state(ops, config.batch_size, config.num_hiddens)
        else:
            state = tuple(ops.stop_gradient(s) for s in state)
        params, state, loss = step(params, state, ops.asarray(X), ops.asarray(Y))
        if config.book_path:        # the book reads the loss after every batch
            loss = float(ops.to_numpy(loss).reshape(()))
        losses.append(loss)
    batch_losses = np.array(losses if config.book_path else
                            [float(ops.to_numpy(l).reshape(())) for l in losses])
    bad = np.flatnonzero(~np.isfinite(batch_losses))
    if bad.size:
        raise TrainingDiverged(
            f"the loss became {batch_losses[bad[0]]} at epoch {epoch}, batch {bad[0] + 1}: "
            f"lower --lr (now {config.lr}) or --clip (now {config.clipping_theta})")
    # Every batch has batch_size * num_steps labels, so the per-label mean is the batch mean.
    mean_loss = float(batch_losses.mean()) if batch_losses.size else math.nan
    tokens = batch_losses.size * config.batch_size * config.num_steps
    return params, EpochResult(epoch, perplexity(mean_loss), time.perf_counter() - start, tokens,
                               batch_losses)


def train_and_predict_rnn(ops: Ops, corpus: Corpus, config: TrainConfig,
                          log: Callable[[str], None] = print, params=None):
    """The book's ``train_and_predict_rnn``: trains, and every ``pred_period`` epochs logs
    ``epoch E, perplexity P, time T sec`` and a continuation of each prefix. Returns
    ``(params, history)`` with one :class:`EpochResult` per epoch."""
    from rnn_core.predict import predict_rnn

    vocab = corpus.vocab
    corpus_indices = corpus.corpus_indices
    rng = random.Random(config.seed)
    if params is None:
        params = model.get_params(ops, vocab.vocab_size, config.num_hiddens, config.seed)
    step = make_train_step(ops, vocab.vocab_size, config)
    history = []
    for epoch in range(1, config.num_epochs + 1):
        params, result = train_epoch(ops, step, params, config, corpus_indices, rng, epoch)
        history.append(result)
        if config.pred_period and epoch % config.pred_period == 0:
            log(f"epoch {epoch}, perplexity {result.perplexity:.2f}, "
                f"time {result.seconds:.2f} sec")
            for prefix in config.prefixes:
                log(" - " + predict_rnn(ops, prefix, config.pred_len, params, vocab))
    return params, history
