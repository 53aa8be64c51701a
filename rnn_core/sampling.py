"""Reading a corpus in minibatches: the chapter's two samplers, written once.

Both yield ``(X, Y)`` pairs of NumPy int64 arrays shaped ``(batch_size, num_steps)``, where ``Y`` is
``X`` shifted one character on in the corpus: the next character is the label. A backend consumes
them with ``ops.asarray``, so every backend sees identical batches.

* :func:`data_iter_random` (random sampling): the corpus is cut into ``num_examples`` examples of
  ``num_steps`` characters; an epoch visits them in a shuffled order, ``batch_size`` at a time.
  Two examples in a batch need not be neighbours, so the hidden state is reset for every batch.
* :func:`data_iter_consecutive` (consecutive sampling): the corpus is laid out in ``batch_size``
  rows and read left to right, so row ``i`` of one batch continues row ``i`` of the previous one;
  the hidden state can be carried over (and detached) between batches.

The random choices use a ``random.Random`` (default: the ``random`` module itself), exactly as the
book's utility package does after ``random.seed``: the same state gives the book's batches.
The ``*_offset`` variants are the book's second edition (``seq_data_iter_random`` and
``seq_data_iter_sequential``), which also start each epoch at a random offset.
"""
from __future__ import annotations

import random as _random

import numpy as np

from rnn_core.errors import CorpusTooShort


def _check(corpus_indices, batch_size, num_steps, needed, sampler):
    """The corpus as an int64 array, after checking the sizes give at least one batch."""
    for label, value in (("batch_size", batch_size), ("num_steps", num_steps)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    corpus = np.asarray(corpus_indices, dtype=np.int64).reshape(-1)
    if len(corpus) < needed:
        raise CorpusTooShort(
            f"the corpus has {len(corpus)} characters, too short for one batch of {sampler} "
            f"sampling with batch_size={batch_size}, num_steps={num_steps}: it needs at least "
            f"{needed}", "Use a longer corpus (or --max-chars 0 to keep all of it), or a smaller "
            "--batch-size or --num-steps")
    return corpus


def _random_batches(corpus, batch_size, num_steps, rng):
    """Shuffle the example starts 0, num_steps, 2*num_steps, ... and read them batch by batch."""
    num_examples = (len(corpus) - 1) // num_steps
    epoch_size = num_examples // batch_size
    example_indices = list(range(num_examples))
    rng.shuffle(example_indices)          # the book's random.shuffle, on the caller's state
    steps = np.arange(num_steps)
    for i in range(epoch_size):
        batch_indices = np.array(example_indices[i * batch_size: (i + 1) * batch_size])
        starts = batch_indices[:, None] * num_steps + steps    # (batch_size, num_steps)
        yield corpus[starts], corpus[starts + 1]


def _consecutive_batches(corpus, batch_size, num_steps):
    """Lay the corpus out in batch_size rows and cut them into num_steps-wide windows."""
    batch_len = len(corpus) // batch_size
    indices = corpus[: batch_size * batch_len].reshape(batch_size, batch_len)
    epoch_size = (batch_len - 1) // num_steps
    for i in range(epoch_size):
        i = i * num_steps
        yield indices[:, i: i + num_steps], indices[:, i + 1: i + num_steps + 1]


def data_iter_random(corpus_indices, batch_size, num_steps, rng=None):
    """Random sampling, as the book's ``data_iter_random``: yields ``(X, Y)``, each
    ``(batch_size, num_steps)``, for ``((len - 1) // num_steps) // batch_size`` batches."""
    corpus = _check(corpus_indices, batch_size, num_steps, batch_size * num_steps + 1, "random")
    return _random_batches(corpus, batch_size, num_steps, rng or _random)


def data_iter_consecutive(corpus_indices, batch_size, num_steps):
    """Consecutive sampling, as the book's ``data_iter_consecutive``: yields ``(X, Y)``, each
    ``(batch_size, num_steps)``, for ``(len // batch_size - 1) // num_steps`` batches."""
    corpus = _check(corpus_indices, batch_size, num_steps, batch_size * (num_steps + 1),
                    "consecutive")
    return _consecutive_batches(corpus, batch_size, num_steps)


def data_iter_random_offset(corpus_indices, batch_size, num_steps, rng=None):
    """The second edition's ``seq_data_iter_random``: drop a random ``0..num_steps-1`` characters
    from the start, then sample at random as :func:`data_iter_random` does."""
    corpus = _check(corpus_indices, batch_size, num_steps, batch_size * num_steps + num_steps,
                    "random")
    rng = rng or _random
    corpus = corpus[rng.randint(0, num_steps - 1):]
    return _random_batches(corpus, batch_size, num_steps, rng)


def data_iter_consecutive_offset(corpus_indices, batch_size, num_steps, rng=None):
    """The second edition's ``seq_data_iter_sequential``: start at a random offset
    ``0..num_steps``, keep a multiple of ``batch_size`` characters, read rows consecutively."""
    corpus = _check(corpus_indices, batch_size, num_steps,
                    batch_size * num_steps + num_steps + 1, "consecutive")
    rng = rng or _random
    offset = rng.randint(0, num_steps)
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = corpus[offset: offset + num_tokens].reshape(batch_size, -1)
    Ys = corpus[offset + 1: offset + 1 + num_tokens].reshape(batch_size, -1)
    return ((Xs[:, i: i + num_steps], Ys[:, i: i + num_steps])
            for i in range(0, num_steps * (Xs.shape[1] // num_steps), num_steps))


def num_batches(corpus_length, batch_size, num_steps, sampling):
    """How many batches one epoch yields (the book's formulas), without reading the corpus."""
    if sampling == "random":
        return ((corpus_length - 1) // num_steps) // batch_size
    if sampling == "consecutive":
        return (corpus_length // batch_size - 1) // num_steps
    raise ValueError(f"unknown sampling {sampling!r}: choose random or consecutive")
