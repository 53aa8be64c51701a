"""Generation: warm the state up on a prefix, then emit one character at a time.

:func:`predict_rnn` is the book's greedy decoding (the most likely next character) by default;
``temperature`` and ``top_k`` sample instead, reproducibly for a given ``rng`` or ``seed``."""
from __future__ import annotations

import numpy as np

from rnn_core import model
from rnn_core.data import Vocab
from rnn_core.ops import Ops


def next_char_distribution(logits: np.ndarray, temperature: float, top_k: int | None):
    """Softmax of ``logits / temperature`` over the ``top_k`` largest logits (all when None)."""
    logits = np.asarray(logits, dtype=np.float64)
    if top_k is not None and top_k < logits.size:
        logits = np.where(logits >= np.sort(logits)[-top_k], logits, -np.inf)
    z = (logits - logits.max()) / temperature     # the largest is 0: no overflow at any T > 0
    p = np.exp(z)
    return p / p.sum()


def sampling_temperature(temperature: float | None, top_k: int | None) -> float:
    """The temperature generation runs at: the one given, or, left out (None), 0 (the book's
    greedy argmax), or 1 (the model's own distribution) with ``top_k``, which only means
    something when sampling. ``top_k`` at temperature 0 is refused: greedy always takes the
    likeliest character, so it would be ignored."""
    if temperature is None:
        return 0.0 if top_k is None else 1.0
    if top_k is not None and temperature == 0:
        raise ValueError(f"top_k={top_k} samples among the likeliest characters, but temperature "
                         "0 always takes the likeliest one: give a temperature above 0 (1 is the "
                         "model's own distribution), or leave out top_k")
    return temperature


def predict_rnn(ops: Ops, prefix: str, num_chars: int, params, vocab: Vocab,
                *, temperature: float | None = None, top_k: int | None = None, rng=None,
                seed: int | None = None, forward=None) -> str:
    """``prefix`` followed by ``num_chars`` generated characters.

    ``temperature=0`` (the default without ``top_k``) is the book's greedy argmax; ``temperature
    > 0`` (1, the default with ``top_k``) samples from the softmax of ``logits / temperature``,
    restricted to the ``top_k`` most likely characters when given, with ``rng`` (a
    ``numpy.random.Generator``) or a new one seeded by ``seed``.
    ``params`` are any model's canonical parameters; ``forward(X, state, params)`` is the model
    (default: the scratch model of that cell)."""
    return "".join(generate_chars(ops, prefix, num_chars, params, vocab, temperature=temperature,
                                  top_k=top_k, rng=rng, seed=seed, forward=forward))


def generate_chars(ops: Ops, prefix: str, num_chars: int, params, vocab: Vocab,
                   *, temperature: float | None = None, top_k: int | None = None, rng=None,
                   seed: int | None = None, forward=None):
    """:func:`predict_rnn` one piece at a time: the prefix (as the vocabulary reads it), then
    each generated character as soon as it is chosen, so a long text can be printed as it grows.
    The arguments are checked before the first piece."""
    if not prefix:
        raise ValueError("the prefix is empty: give at least one character to start from, "
                         "for example --prefixes 分开")
    if num_chars < 0:
        raise ValueError(f"num_chars must be 0 or more, got {num_chars}")
    if temperature is not None and not (temperature >= 0 and np.isfinite(temperature)):
        raise ValueError(f"temperature must be 0 (greedy) or a positive finite number, "
                         f"got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k}")
    temperature = sampling_temperature(temperature, top_k)
    prefix_indices = vocab.encode(prefix)
    if temperature > 0 and rng is None:
        rng = np.random.default_rng(seed)
    if forward is None:
        def forward(X, state, params):
            return model.forward(ops, X, state, params, vocab.vocab_size)
    return _generate(ops, prefix_indices, num_chars, params, vocab, temperature, top_k, rng,
                     forward)


def _generate(ops, prefix_indices, num_chars, params, vocab, temperature, top_k, rng, forward):
    yield vocab.decode(prefix_indices)
    state = model.init_state(ops, params, 1)
    current = prefix_indices[0]
    for t in range(num_chars + len(prefix_indices) - 1):
        X = ops.asarray(np.array([[current]]))                       # (1, 1)
        with ops.numerics_scope():          # per character: the caller runs between them
            O, state = forward(X, state, params)                     # (1, vocab)
        if t < len(prefix_indices) - 1:
            current = prefix_indices[t + 1]  # still reading the prefix: its next one is known
            continue
        if temperature == 0:
            current = int(ops.to_numpy(ops.argmax(O, axis=1)).reshape(-1)[0])
        else:
            p = next_char_distribution(ops.to_numpy(O)[0], temperature, top_k)
            current = int(rng.choice(p.size, p=p))
        yield vocab.idx_to_char[current]
