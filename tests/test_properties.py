"""Property-based tests (Hypothesis): the samplers on random corpora and sizes, and the corpus
loader on random bytes and malformed archives."""
import io
import random
import warnings
import zipfile

import numpy as np
from hypothesis import HealthCheck, example, given, settings, strategies as st

from rnn_core import sampling
from rnn_core.data import load_corpus
from rnn_core.errors import CorpusError

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

sizes = st.tuples(st.integers(1, 6), st.integers(1, 9), st.integers(0, 400))  # batch, steps, extra


def corpus_of(batch_size, num_steps, extra, needed):
    """Distinct values 0..L-1, so every window says where it was cut from."""
    return np.arange(needed + extra)


@SETTINGS
@given(sizes, st.integers(0, 2 ** 32 - 1))
def test_random_sampler_properties(size, seed):
    batch_size, num_steps, extra = size
    corpus = corpus_of(batch_size, num_steps, extra, batch_size * num_steps + 1)
    batches = list(sampling.data_iter_random(corpus, batch_size, num_steps, random.Random(seed)))
    assert len(batches) == ((len(corpus) - 1) // num_steps) // batch_size       # the book's count
    starts = []
    for X, Y in batches:
        assert X.shape == Y.shape == (batch_size, num_steps)
        np.testing.assert_array_equal(Y, X + 1)                  # Y is X shifted by one
        np.testing.assert_array_equal(X, X[:, :1] + np.arange(num_steps))   # contiguous windows
        starts += list(X[:, 0])
    assert len(starts) == len(set(starts))                       # no example twice in an epoch
    assert all(s % num_steps == 0 for s in starts)


@SETTINGS
@given(sizes)
def test_consecutive_sampler_properties(size):
    batch_size, num_steps, extra = size
    corpus = corpus_of(batch_size, num_steps, extra, batch_size * (num_steps + 1))
    batches = list(sampling.data_iter_consecutive(corpus, batch_size, num_steps))
    assert len(batches) == (len(corpus) // batch_size - 1) // num_steps        # the book's count
    assert len(batches) == sampling.num_batches(len(corpus), batch_size, num_steps, "consecutive")
    for k, (X, Y) in enumerate(batches):
        np.testing.assert_array_equal(Y, X + 1)
        if k:                                                    # continues the previous batch
            np.testing.assert_array_equal(X[:, 0], batches[k - 1][0][:, -1] + 1)


@SETTINGS
@given(sizes, st.integers(0, 2 ** 32 - 1))
def test_second_edition_samplers_properties(size, seed):
    batch_size, num_steps, extra = size
    corpus = corpus_of(batch_size, num_steps, extra, batch_size * num_steps + num_steps + 1)
    rng = random.Random(seed)
    for X, Y in sampling.data_iter_random_offset(corpus, batch_size, num_steps, rng):
        np.testing.assert_array_equal(Y, X + 1)
    previous = None
    for X, Y in sampling.data_iter_consecutive_offset(corpus, batch_size, num_steps, rng):
        np.testing.assert_array_equal(Y, X + 1)
        if previous is not None:
            np.testing.assert_array_equal(X[:, 0], previous[:, -1] + 1)
        previous = X


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 9), st.integers(0, 60))
def test_too_short_is_a_value_error_never_an_empty_epoch(batch_size, num_steps, length):
    corpus = np.arange(length)
    for sampler in (sampling.data_iter_random, sampling.data_iter_consecutive):
        try:
            batches = list(sampler(corpus, batch_size, num_steps))
        except ValueError as error:
            assert str(length) in str(error)
        else:
            assert batches


# ---- the corpus loader on hostile input ------------------------------------------------------
@SETTINGS
@given(st.binary(max_size=2000))
def test_random_bytes_load_or_raise_the_documented_error(tmp_path, data):
    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    try:
        corpus = load_corpus(path)
    except CorpusError:
        return
    assert corpus.chars and corpus.vocab.vocab_size == len(set(corpus.chars))


def zip_bytes(members, compression):
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", compression) as archive:
        warnings.simplefilter("ignore")       # duplicate names are one of the malformations
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["a.txt", "b.txt", "dir/", "c.md", "__MACOSX/x"]),
                          st.binary(max_size=200)), max_size=4),
       st.integers(0, 400), st.binary(max_size=20),
       st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2]),
       st.integers(0, 399), st.integers(0, 255))
@example(members=[("a.txt", b"\x00"), ("__MACOSX/x", b"\x00"), ("a.txt", b"\x00"),
                  ("dir/", b"\x00\x00\x00")], cut=0, junk=b"", compression=zipfile.ZIP_DEFLATED,
         flip=311, value=0)          # a member's name damaged to '' (an IndexError once)
def test_malformed_archives_load_or_raise_the_documented_error(tmp_path, members, cut, junk,
                                                              compression, flip, value):
    data = zip_bytes(members, compression)
    flipped = bytearray(data)
    if flipped:
        flipped[flip % len(flipped)] = value       # one damaged byte anywhere
    for variant in (data, data[:cut], junk + data, data[:cut] + junk, bytes(flipped)):
        path = tmp_path / "corpus.zip"
        path.write_bytes(variant)
        try:
            corpus = load_corpus(path)
        except CorpusError:
            continue
        assert corpus.chars
