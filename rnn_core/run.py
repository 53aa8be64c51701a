"""``python -m rnn_core.run --backend B``: train the chapter's char-RNN and print the book's lines.

    epoch 50, perplexity 69.88, time 0.21 sec
     - 分开...
     - 不分开...

The defaults are the book's Jay Chou settings; ``--help`` lists every option. ``--model concise``
trains the framework's own RNN layer instead (consecutive sampling by default, as in the book's
concise runs; ``--optimizer adam`` defaults to the book's PyTorch learning rate 1e-3).
"""
from __future__ import annotations

import argparse
import sys

from rnn_core import cli
from rnn_core.backend import BACKEND_NAMES, DEVICES, get_backend
from rnn_core.data import DEFAULT_MAX_CHARS, NAMED_CORPORA, load_corpus
from rnn_core.train import TrainConfig, make_forward, resolve_grad, train_and_predict_rnn


def parser() -> argparse.ArgumentParser:
    book = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m rnn_core.run",
        description="Train the character-level RNN of Dive into Deep Learning on one backend.")
    p.add_argument("--backend", default="numpy",
                   help=f"one of {', '.join(BACKEND_NAMES)} (default numpy)")
    p.add_argument("--device", default="auto", choices=DEVICES,
                   help="auto takes the GPU when the framework sees one (default auto)")
    p.add_argument("--corpus", default=None,
                   help=f"{', '.join(NAMED_CORPORA)} or a .txt/.zip path "
                        "(default: lyrics_zh, the small corpus in data/)")
    p.add_argument("--max-chars", type=cli.non_negative_int, default=DEFAULT_MAX_CHARS,
                   help="keep the corpus's first N characters; 0 keeps all (default 10000)")
    p.add_argument("--model", choices=("scratch", "concise"), default="scratch",
                   help="scratch: the chapter's RNN; concise: the framework's RNN layer")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument("--init", choices=("normal", "uniform"), default=None,
                   help="normal: N(0, 0.01²) weights, zero biases (the scratch chapter); uniform: "
                        "PyTorch's default U(±1/√hidden) (default for --model concise "
                        "--optimizer adam, as in the book's PyTorch run; normal otherwise)")
    p.add_argument("--sampling", choices=("random", "consecutive"), default=None,
                   help="default: random for scratch, consecutive for concise (as in the book)")
    p.add_argument("--epochs", type=cli.positive_int, default=book.num_epochs)
    p.add_argument("--num-steps", type=cli.positive_int, default=book.num_steps)
    p.add_argument("--batch-size", type=cli.positive_int, default=book.batch_size)
    p.add_argument("--hidden", type=cli.positive_int, default=book.num_hiddens)
    p.add_argument("--lr", type=cli.positive_float, default=None,
                   help="learning rate (default: 100 with sgd, 0.001 with adam, as in the book)")
    p.add_argument("--clip", type=cli.positive_float, default=book.clipping_theta,
                   help="gradient clipping threshold θ (global L2 norm)")
    p.add_argument("--pred-period", type=cli.positive_int, default=book.pred_period)
    p.add_argument("--pred-len", type=cli.positive_int, default=book.pred_len)
    p.add_argument("--prefixes", nargs="+", default=list(book.prefixes))
    p.add_argument("--seed", type=int, default=book.seed,
                   help="seeds the weights and the sampler (default 0): same seed, same numbers")
    p.add_argument("--grad", choices=("auto", "autograd", "bptt"), default="auto",
                   help="autograd: the framework's; bptt: the hand-written backpropagation "
                        "through time (auto: bptt on numpy, autograd elsewhere)")
    p.add_argument("--book-path", action="store_true",
                   help="run exactly the book's way: one-hot inputs, per-step outputs, "
                        "the loss read after every batch (same numbers, slower)")
    return p


def main(argv=None) -> int:
    book = TrainConfig()
    args = parser().parse_args(argv)
    ops = get_backend(args.backend, args.device)
    corpus = load_corpus(args.corpus, max_chars=args.max_chars)
    config = TrainConfig(
        num_hiddens=args.hidden, num_steps=args.num_steps, batch_size=args.batch_size,
        lr=args.lr or {"sgd": book.lr, "adam": 1e-3}[args.optimizer], clipping_theta=args.clip, num_epochs=args.epochs,
        pred_period=args.pred_period, pred_len=args.pred_len, prefixes=tuple(args.prefixes),
        sampling=args.sampling or ("random" if args.model == "scratch" else "consecutive"),
        seed=args.seed, grad=args.grad, book_path=args.book_path, model=args.model,
        optimizer=args.optimizer,
        init=args.init or ("uniform" if (args.model, args.optimizer) == ("concise", "adam")
                           else "normal"))
    for prefix in config.prefixes:      # fail before training, not after it
        corpus.vocab.encode(prefix)
    resolve_grad(ops, config)
    make_forward(ops, corpus.vocab.vocab_size, config)
    print(f"backend {ops.name} {ops.version} on {ops.device}; corpus {corpus.name}: "
          f"{len(corpus.chars)} characters, vocab_size {corpus.vocab.vocab_size}; "
          f"{config.model} model, {config.init} init, {config.sampling} sampling, "
          f"{config.optimizer} lr {config.lr:g}, grad {args.grad}", flush=True)
    train_and_predict_rnn(ops, corpus, config, log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
