"""The samplers: the book's batches, on every backend alike."""
import random

import numpy as np
import pytest

from rnn_core import sampling
from rnn_core.errors import CorpusError


def book_random_batches(corpus_indices, batch_size, num_steps, rng=random):
    """The book's random sampler, restated here as its text describes it: cut the corpus into
    (len - 1) // num_steps examples, shuffle the list of their numbers with the global ``random``
    (or ``rng``), and read them batch_size at a time."""
    num_examples = (len(corpus_indices) - 1) // num_steps
    example_indices = list(range(num_examples))
    rng.shuffle(example_indices)
    for i in range(num_examples // batch_size):
        chosen = example_indices[i * batch_size:(i + 1) * batch_size]
        yield ([list(corpus_indices[j * num_steps:(j + 1) * num_steps]) for j in chosen],
               [list(corpus_indices[j * num_steps + 1:(j + 1) * num_steps + 1]) for j in chosen])


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_random_sampler_gives_the_books_batches_for_the_same_random_state(seed):
    corpus = list(range(1000, 1000 + 503))
    random.seed(seed)
    expected = list(book_random_batches(corpus, 4, 7))
    got = list(sampling.data_iter_random(corpus, 4, 7, rng=random.Random(seed)))
    assert len(got) == len(expected) == (502 // 7) // 4
    for (X, Y), (bX, bY) in zip(got, expected):
        assert X.dtype == np.int64 and X.shape == (4, 7)
        np.testing.assert_array_equal(X, bX)
        np.testing.assert_array_equal(Y, bY)


def test_random_sampler_without_rng_uses_the_global_random_state():
    corpus = list(range(300))
    random.seed(7)
    expected = list(book_random_batches(corpus, 3, 5))
    random.seed(7)
    got = list(sampling.data_iter_random(corpus, 3, 5))
    for (X, Y), (bX, bY) in zip(got, expected):
        np.testing.assert_array_equal(X, bX)
        np.testing.assert_array_equal(Y, bY)


def test_random_sampler_labels_are_the_next_character_and_no_example_repeats():
    corpus = np.arange(10_000) * 3 % 9973     # distinct values: position is recoverable
    seen = set()
    for X, Y in sampling.data_iter_random(corpus, 32, 35, rng=random.Random(3)):
        for x, y in zip(X, Y):
            start = int(np.flatnonzero(corpus == x[0])[0])
            np.testing.assert_array_equal(x, corpus[start:start + 35])
            np.testing.assert_array_equal(y, corpus[start + 1:start + 36])
            assert start % 35 == 0 and start not in seen
            seen.add(start)
    assert len(seen) == ((10_000 - 1) // 35) // 32 * 32


def test_consecutive_batches_continue_where_the_previous_ones_stopped():
    corpus = np.arange(1000)
    batches = list(sampling.data_iter_consecutive(corpus, 4, 9))
    batch_len = 1000 // 4
    assert len(batches) == (batch_len - 1) // 9 == sampling.num_batches(1000, 4, 9, "consecutive")
    for k, (X, Y) in enumerate(batches):
        np.testing.assert_array_equal(Y, X + 1)
        for row in range(4):   # row r reads corpus[r*batch_len :] left to right
            assert X[row, 0] == row * batch_len + k * 9
        if k:
            np.testing.assert_array_equal(X[:, 0], batches[k - 1][0][:, -1] + 1)


def test_second_edition_variants_keep_the_shift_and_the_continuation():
    corpus = np.arange(2000)
    rng = random.Random(5)
    for X, Y in sampling.data_iter_random_offset(corpus, 8, 10, rng=rng):
        np.testing.assert_array_equal(Y, X + 1)
        np.testing.assert_array_equal(X, X[:, :1] + np.arange(10))
    previous = None
    for X, Y in sampling.data_iter_consecutive_offset(corpus, 8, 10, rng=rng):
        np.testing.assert_array_equal(Y, X + 1)
        if previous is not None:
            np.testing.assert_array_equal(X[:, 0], previous[:, -1] + 1)
        previous = X


def second_edition_random_batches(corpus_indices, batch_size, num_steps, rng):
    """The second edition's random sampler (``seq_data_iter_random``), restated as its text
    describes it: drop a random 0..num_steps-1 characters from the start, then sample as the
    first edition does."""
    offset = rng.randint(0, num_steps - 1)
    return book_random_batches(corpus_indices[offset:], batch_size, num_steps, rng)


@pytest.mark.parametrize("seed", range(8))
def test_the_second_editions_random_sampler_gives_its_batches(seed):
    """Eight seeds: the offset is drawn from 0..6 and the book's batches follow from it."""
    corpus = list(range(1000, 1000 + 503))
    expected = list(second_edition_random_batches(corpus, 4, 7, random.Random(seed)))
    got = list(sampling.data_iter_random_offset(corpus, 4, 7, rng=random.Random(seed)))
    assert len(got) == len(expected)
    for (X, Y), (bX, bY) in zip(got, expected):
        np.testing.assert_array_equal(X, bX)
        np.testing.assert_array_equal(Y, bY)


@pytest.mark.parametrize("sampler,needed", [
    (sampling.data_iter_random, 32 * 35 + 1),
    (sampling.data_iter_consecutive, 32 * 36),
    (sampling.data_iter_random_offset, 32 * 35 + 35),
    (sampling.data_iter_consecutive_offset, 32 * 35 + 36),
])
def test_a_corpus_too_short_for_one_batch_says_the_lengths(sampler, needed):
    with pytest.raises(ValueError, match=f"has {needed - 1} characters.*at least {needed}") as info:
        sampler(list(range(needed - 1)), 32, 35)
    assert isinstance(info.value, CorpusError)
    assert len(list(sampler(list(range(needed)), 32, 35))) >= 1


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_batch_size_and_num_steps_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        sampling.data_iter_random(list(range(100)), bad, 5)
    with pytest.raises(ValueError, match="num_steps must be a positive integer"):
        sampling.data_iter_consecutive(list(range(100)), 2, bad)


def test_every_backend_receives_identical_batches(all_ops):
    corpus = np.arange(5000) % 97
    for make in (lambda: sampling.data_iter_random(corpus, 8, 12, rng=random.Random(9)),
                 lambda: sampling.data_iter_consecutive(corpus, 8, 12)):
        reference = [(X.copy(), Y.copy()) for X, Y in make()]
        for ops in all_ops:
            for (X, Y), (rX, rY) in zip(make(), reference):
                np.testing.assert_array_equal(ops.to_numpy(ops.asarray(X)), rX)
                np.testing.assert_array_equal(ops.to_numpy(ops.asarray(Y)), rY)
