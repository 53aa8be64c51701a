"""The book's GRU and the reset-after GRU on one set of weights, and each framework's own GRU layer.

    python docs/scripts/gru_formulas.py                                  # random weights
    RNN_CORE_DATA=../shared/data python docs/scripts/gru_formulas.py --checkpoint gru.npz

Random weights: the test problem's sizes (vocabulary 23, hidden 16, 4 sequences of 6 steps),
every weight from N(0, 0.3²). A checkpoint: a GRU trained by ``python -m rnn_core.run --cell gru
--save gru.npz``, of either formula; its weights run under both formulas (the reset-after formula
with its ``b_hh``, which the book's formula has no place for, or with ``b_hh = 0`` when the
checkpoint is the book's), on 4 sequences of 35 characters of its corpus, and each formula's
perplexity over the whole corpus is printed too.

Prints, for the logits, the largest and mean difference of each computation from each scratch
formula: the scratch formulas themselves, then every framework's GRU layer that is installed
(PyTorch ``nn.GRU``, Keras ``GRU`` with ``reset_after`` False and True, Gluon ``rnn.GRU``, Flax
``GRUCell``)."""
import argparse
import math

import numpy as np

from rnn_core import checkpoint, get_backend, model, sampling
from rnn_core.backend import BACKEND_NAMES, has
from rnn_core.concise import ConciseRNN
from rnn_core.data import load_corpus
from rnn_core.errors import RNNCoreError


def both_formulas(params):
    """The same weights as the book's GRU and as the reset-after GRU."""
    fields = params._asdict()
    b_hh = fields.pop("b_hh", np.zeros_like(fields["b_h"]))
    return (model.params_type("gru", "book")(**fields),
            model.params_type("gru", "reset_after")(**fields, b_hh=b_hh))


def perplexity(ops, params, corpus_indices, batch_size=32, num_steps=35):
    """exp of the mean cross-entropy over the corpus, read once in order, the state carried."""
    state, total, count = model.init_state(ops, params, batch_size), 0.0, 0
    for X, Y in sampling.data_iter_consecutive(corpus_indices, batch_size, num_steps):
        loss, state = model.loss(ops, params, state, X, Y, params.W_hq.shape[1])
        total, count = total + float(loss), count + 1
    return math.exp(total / count)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", help="a GRU trained with run --cell gru --save")
    args = p.parse_args()
    numpy_ops = get_backend("numpy")
    if args.checkpoint:
        saved = checkpoint.load(args.checkpoint)
        if saved.config.get("cell") != "gru":
            raise SystemExit(f"error: {args.checkpoint} holds a {saved.config.get('cell', 'rnn')}"
                             " model, not a GRU: train one with --cell gru --save")
        corpus = load_corpus(saved.corpus, max_chars=saved.max_chars)
        book, after = both_formulas(saved.params)
        X = np.array(corpus.corpus_indices[:4 * 35]).reshape(4, 35)
        state = (np.zeros((4, model.num_hiddens(book)), np.float32),)
        print(f"{args.checkpoint}: a {saved.config['variant']} GRU trained {saved.epoch} epochs "
              f"on {corpus.name}")
        for name, params in (("book", book), ("reset_after", after)):
            print(f"perplexity of the {name} formula over the corpus: "
                  f"{perplexity(numpy_ops, params, corpus.corpus_indices):.2f}")
    else:
        rng = np.random.default_rng(0)
        vocab, hidden = 23, 16
        kind = model.params_type("gru", "book")
        book, after = both_formulas(kind(*(
            rng.normal(scale=0.3, size=shape).astype(np.float32)
            for shape in model.param_shapes(kind, vocab, hidden))))
        X = rng.integers(0, vocab, size=(4, 6))
        state = (rng.normal(scale=0.5, size=(4, hidden)).astype(np.float32),)
    vocab, hidden = book.W_hq.shape[1], model.num_hiddens(book)
    reference = {name: model.forward(numpy_ops, X, state, params, vocab)[0]
                 for name, params in (("book", book), ("reset_after", after))}
    print("\n| logits | vs book: max | mean | vs reset_after: max | mean |\n"
          "| --- | --- | --- | --- | --- |")
    rows = [(f"scratch {name}", O) for name, O in reference.items()]
    for backend in BACKEND_NAMES:
        if not has(backend, "layers"):
            continue
        try:
            ops = get_backend(backend, "cpu")
        except RNNCoreError:
            continue                                  # not installed here
        for variant, params in (("book", book), ("reset_after", after)):
            try:
                net = ConciseRNN(ops, vocab, hidden, cell="gru", variant=variant, onehot=True)
            except RNNCoreError:
                rows.append((f"{backend} {variant}", None))
                continue
            O, _ = net.forward(ops.asarray(X), (ops.asarray(state[0]),),
                               model.params_to_backend(ops, params))
            rows.append((f"{backend} {variant}", ops.to_numpy(O)))
    for name, O in rows:
        if O is None:
            print(f"| {name} | no such layer | | | |")
            continue
        cells = [f"{np.abs(O - R).max():.2g} | {np.abs(O - R).mean():.2g}"
                 for R in reference.values()]
        print(f"| {name} | {' | '.join(cells)} |")
    print(f"\n(logits of mean size {np.abs(reference['book']).mean():.2g})")


if __name__ == "__main__":
    main()
