"""``python -m rnn_core.run --backend B``: train the chapter's char-RNN and print the book's lines.

    epoch 50, perplexity 69.88, time 0.21 sec
     - 分开...
     - 不分开...

The defaults are the book's Jay Chou settings; ``--help`` lists every option. ``--model concise``
trains the framework's own RNN layer instead (consecutive sampling by default, as in the book's
concise runs; ``--optimizer adam`` defaults to the book's PyTorch learning rate 1e-3).
``--save PATH`` writes a checkpoint any backend can load; ``--resume PATH`` continues one.
"""
from __future__ import annotations

import argparse
import sys

from rnn_core import checkpoint, cli
from rnn_core.backend import BACKEND_NAMES, DEVICES, get_backend
from rnn_core.cells import CELLS
from rnn_core.data import DEFAULT_MAX_CHARS, NAMED_CORPORA, load_corpus
from rnn_core.train import (TrainConfig, book_defaults, make_forward, resolve_grad,
                             train_and_predict_rnn)

# Options that define the model and its training: from the book (or the checkpoint) unless given.
HYPERPARAMETERS = {"hidden": "num_hiddens", "num_steps": "num_steps", "batch_size": "batch_size",
                   "lr": "lr", "clip": "clipping_theta", "sampling": "sampling", "seed": "seed",
                   "grad": "grad", "model": "model", "optimizer": "optimizer", "init": "init",
                   "cell": "cell", "variant": "variant", "layers": "num_layers"}


def parser() -> argparse.ArgumentParser:
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
    p.add_argument("--max-chars", type=cli.non_negative_int, default=None,
                   help=f"keep the corpus's first N characters; 0 keeps all "
                        f"(default {DEFAULT_MAX_CHARS})")
    p.add_argument("--model", choices=("scratch", "concise"), default=None,
                   help="scratch: the chapter's RNN (default); concise: the framework's RNN layer")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default=None, help="default sgd")
    p.add_argument("--cell", choices=tuple(CELLS), default=None,
                   help="rnn (default), gru or lstm; each with its book settings (160 epochs, "
                        "consecutive sampling for the gru and lstm)")
    p.add_argument("--variant", choices=sorted({v for c in CELLS.values() for v in c}),
                   default=None, help="the gru's formula: book (default for scratch) or "
                                      "reset_after (the frameworks' layers; default for concise)")
    p.add_argument("--layers", type=cli.positive_int, default=None,
                   help="recurrent layers stacked (default 1)")
    p.add_argument("--init", choices=("normal", "uniform"), default=None,
                   help="normal: N(0, 0.01²) weights, zero biases (the scratch chapter); uniform: "
                        "PyTorch's default U(±1/√hidden) (default for --model concise "
                        "--optimizer adam, as in the book's PyTorch run; normal otherwise)")
    p.add_argument("--sampling", choices=("random", "consecutive"), default=None,
                   help="default: random for scratch, consecutive for concise (as in the book)")
    p.add_argument("--epochs", type=cli.positive_int, default=None,
                   help="train until this epoch (default 250; 160 for the gru and lstm)")
    p.add_argument("--num-steps", type=cli.positive_int, default=None, help="default 35")
    p.add_argument("--batch-size", type=cli.positive_int, default=None, help="default 32")
    p.add_argument("--hidden", type=cli.positive_int, default=None, help="default 256")
    p.add_argument("--lr", type=cli.positive_float, default=None,
                   help="learning rate (default: 100 with sgd, 0.001 with adam, as in the book)")
    p.add_argument("--clip", type=cli.positive_float, default=None,
                   help="gradient clipping threshold θ, global L2 norm (default 0.01)")
    p.add_argument("--pred-period", type=cli.positive_int, default=None,
                   help="default 50; 40 for the gru and lstm")
    p.add_argument("--pred-len", type=cli.positive_int, default=None, help="default 50")
    p.add_argument("--prefixes", nargs="+", default=None, help="default: 分开 不分开")
    p.add_argument("--seed", type=int, default=None,
                   help="seeds the weights and the sampler (default 0): same seed, same numbers")
    p.add_argument("--grad", choices=("auto", "autograd", "bptt"), default=None,
                   help="autograd: the framework's; bptt: the hand-written backpropagation "
                        "through time (default auto: bptt on numpy, autograd elsewhere)")
    p.add_argument("--book-path", action="store_true",
                   help="run exactly the book's way: one-hot inputs, per-step outputs, "
                        "the loss read after every batch (same numbers, slower)")
    p.add_argument("--save", metavar="PATH",
                   help="write a checkpoint (.npz) every --pred-period epochs, at the end, "
                        "and on Ctrl-C")
    p.add_argument("--resume", metavar="PATH",
                   help="continue the training a checkpoint recorded, up to --epochs")
    p.add_argument("--plot", metavar="PATH", help="save the perplexity curve as a PNG")
    p.add_argument("--quiet", action="store_true",
                   help="print only the last epoch's lines (and no progress bar)")
    cli.add_numerics_options(p)
    return p


def book_config(args) -> TrainConfig:
    """The book's settings, with the options the user gave."""
    given = {field: getattr(args, option) for option, field in HYPERPARAMETERS.items()
             if getattr(args, option) is not None}
    defaults = book_defaults(args.model or "scratch", args.optimizer or "sgd", args.cell or "rnn")
    return TrainConfig(**{**defaults, **given})


def resumed_config(args, saved: checkpoint.Checkpoint) -> TrainConfig:
    """The checkpoint's settings; an option that contradicts them is refused."""
    fields = {k: v for k, v in saved.config.items() if k in TrainConfig.__dataclass_fields__}
    for option, field in HYPERPARAMETERS.items():
        value = getattr(args, option)
        if value is not None and value != fields.get(field):
            raise checkpoint.CheckpointError(
                f"--{option.replace('_', '-')} {value} contradicts the checkpoint, which was "
                f"trained with {field}={fields.get(field)!r}: leave the option out to resume")
    fields["prefixes"] = tuple(fields.get("prefixes", TrainConfig.prefixes))
    return TrainConfig(**fields)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    saved = checkpoint.load(args.resume) if args.resume else None
    if saved is not None:
        config = resumed_config(args, saved)
        for option, value in (("--corpus", args.corpus), ("--max-chars", args.max_chars)):
            if value is not None and str(value) != str(
                    saved.corpus if option == "--corpus" else saved.max_chars):
                raise checkpoint.CheckpointError(
                    f"{option} {value} contradicts the checkpoint (trained on corpus "
                    f"{saved.corpus!r}, max_chars {saved.max_chars}): leave it out to resume")
        corpus = load_corpus(saved.corpus, max_chars=saved.max_chars)
    else:
        config = book_config(args)
        corpus = load_corpus(args.corpus, max_chars=DEFAULT_MAX_CHARS if args.max_chars is None
                             else args.max_chars)
    for option, field in (("epochs", "num_epochs"), ("pred_period", "pred_period"),
                          ("pred_len", "pred_len")):
        if getattr(args, option) is not None:
            setattr(config, field, getattr(args, option))
    if args.prefixes is not None:
        config.prefixes = tuple(args.prefixes)
    if saved is not None and config.num_epochs <= saved.epoch:
        raise checkpoint.CheckpointError(
            f"the checkpoint has already trained {saved.epoch} epochs: give --epochs above "
            f"{saved.epoch} to train further")
    ops = get_backend(args.backend, args.device, **cli.numerics_options(args))
    for prefix in config.prefixes:      # fail before training, not after it
        if not prefix:
            raise ValueError("--prefixes: a prefix is empty; give at least one character to "
                             "start from, for example --prefixes 分开")
        corpus.vocab.encode(prefix)
    resolve_grad(ops, config)
    make_forward(ops, corpus.vocab.vocab_size, config)
    if saved is not None:
        checkpoint.check_compatible(saved, corpus.vocab.idx_to_char, config.num_hiddens)
    header = (f"backend {ops.name} {ops.version} on {ops.device}{cli.describe_numerics(ops)}; "
              f"corpus {corpus.name}: "
              f"{len(corpus.chars)} characters, vocab_size {corpus.vocab.vocab_size}; "
              f"{config.model} model, {config.cell} ({config.variant}), {config.num_layers} "
              f"layer{'s' if config.num_layers > 1 else ''}, {config.init} init, "
              f"{config.sampling} sampling, "
              f"{config.optimizer} lr {config.lr:g}, grad {config.grad}"
              + (f"; resuming after epoch {saved.epoch}" if saved else ""))
    progress = cli.Progress() if not args.quiet else None
    lines = []                  # --quiet: only the last block of lines is printed, at the end
    log = lines.append if args.quiet else progress.print
    if not args.quiet:
        log(header)
    try:
        _, history = train_and_predict_rnn(
            ops, corpus, config, log=log, resume=saved, save=args.save,
            on_epoch=progress.update if progress else None)
    finally:
        if progress:
            progress.close()
    if args.quiet:
        last = max((i for i, line in enumerate(lines) if line.startswith("epoch")), default=None)
        for line in ([] if last is None else lines[last:]) or [
                f"epoch {history[-1].epoch}, perplexity {history[-1].perplexity:.2f}"]:
            print(line)
    if args.plot:
        from rnn_core.plot import perplexity_plot
        curve = (list(saved.history) if saved else []) + [r.perplexity for r in history]
        perplexity_plot({ops.name: curve}, args.plot, f"{config.model} model on {ops.name}")
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
