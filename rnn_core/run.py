"""``python -m rnn_core.run --backend B``: train the chapter's char-RNN and print the book's lines.

    epoch 50, perplexity 69.88, time 0.21 sec
     - 分开...
     - 不分开...

The defaults are the book's Jay Chou settings; ``--help`` lists every option. ``--model concise``
trains the framework's own RNN layer instead (consecutive sampling by default, as in the book's
concise runs; ``--optimizer adam`` defaults to the book's PyTorch learning rate, 1e-3 for the
RNN and 1e-2 for the GRU and LSTM).
``--save PATH`` writes a checkpoint any backend can load; ``--resume PATH`` continues one.
Every run ends with its last epoch's lines, whatever ``--epochs`` and ``--pred-period`` are.

Before the first epoch, the outputs are checked (``rnn_core/outputs.py``) and the model's memory
is estimated, so that a run that cannot save or cannot fit says so at once, not hours later.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

from rnn_core import checkpoint, cli, outputs
from rnn_core.backend import BACKEND_NAMES, get_backend, has
from rnn_core.cells import CELLS
from rnn_core.data import (DEFAULT_MAX_CHARS, NAMED_CORPORA, first_word, load_corpus,
                           usable_prefix)
from rnn_core.errors import CorpusError, RNNCoreError, VocabularyError
from rnn_core.train import (TrainConfig, book_defaults, data_iter, epochs, make_forward,
                             resolve_grad, train_and_predict_rnn, weight_shapes)

MAX_PRED_LEN = 100_000       # longer texts: python -m rnn_core.generate, which prints as it goes
PLOT_BYTES = 200_000         # room for the PNG, checked before training

# Options that define the model and its training: from the book (or the checkpoint) unless given.
HYPERPARAMETERS = {"hidden": "num_hiddens", "num_steps": "num_steps", "batch_size": "batch_size",
                   "lr": "lr", "clip": "clipping_theta", "sampling": "sampling", "seed": "seed",
                   "grad": "grad", "model": "model", "optimizer": "optimizer", "init": "init",
                   "cell": "cell", "variant": "variant", "layers": "num_layers"}


def parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        prog="python -m rnn_core.run",
        description="Train the character-level RNN of Dive into Deep Learning on one backend, "
                    "printing the perplexity and a continuation of each prefix as the book does.")
    cli.add_backend_option(p)
    add_training_options(p)
    p.add_argument("--save", metavar="PATH",
                   help="write a checkpoint (.npz) every --pred-period epochs, at the end, "
                        "and on Ctrl-C or SIGTERM (default: none)")
    p.add_argument("--resume", metavar="PATH",
                   help="continue the training a checkpoint recorded, up to --epochs "
                        "(default: none)")
    p.add_argument("--plot", metavar="PATH",
                   help="save the perplexity curve as a PNG at exactly PATH (default: none)")
    p.add_argument("--quiet", action="store_true",
                   help="print only the last epoch's lines, and no progress bar (default off)")
    return p


def add_training_options(p: argparse.ArgumentParser) -> None:
    """The options of a training run on any backend: the device, the corpus, the model, its
    hyperparameters, what is printed, and the numerics. ``compare`` takes them too."""
    cli.add_device_option(p)
    p.add_argument("--corpus", default=None,
                   help=f"{', '.join(NAMED_CORPORA)} or a .txt/.zip path "
                        "(default: lyrics_zh, the small corpus in data/)")
    p.add_argument("--max-chars", type=cli.non_negative_int, default=None,
                   help=f"keep the corpus's first N characters; 0 keeps all "
                        f"(default {DEFAULT_MAX_CHARS})")
    p.add_argument("--model", choices=("scratch", "concise"), default=None,
                   help="scratch: the chapter's RNN; concise: the framework's RNN layer "
                        "(default scratch)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default=None,
                   help="sgd, as in the scratch chapter, or adam, as in the book's PyTorch run "
                        "(default sgd)")
    p.add_argument("--cell", choices=tuple(CELLS), default=None,
                   help="rnn, gru or lstm, each with its book settings: 160 epochs and "
                        "consecutive sampling for the gru and lstm (default rnn)")
    p.add_argument("--variant", choices=sorted({v for c in CELLS.values() for v in c}),
                   default=None, help="the gru's formula: book (default for scratch) or "
                                      "reset_after (the frameworks' layers; default for concise)")
    p.add_argument("--layers", type=cli.positive_int, default=None,
                   help="recurrent layers stacked (default 1)")
    p.add_argument("--init", choices=("normal", "uniform"), default=None,
                   help="normal: N(0, 0.01²) weights, zero biases (the scratch chapter); uniform: "
                        "PyTorch's default U(±1/√hidden) (default uniform for --model concise "
                        "--optimizer adam, as in the book's PyTorch run; normal otherwise)")
    p.add_argument("--sampling", choices=("random", "consecutive"), default=None,
                   help="how minibatches are drawn (default: random for scratch, consecutive "
                        "for concise, as in the book)")
    p.add_argument("--epochs", type=cli.positive_int, default=None,
                   help="train until this epoch (default 250; 160 for the gru and lstm)")
    p.add_argument("--num-steps", type=cli.positive_int, default=None,
                   help="time steps per example (default 35)")
    p.add_argument("--batch-size", type=cli.positive_int, default=None,
                   help="examples per minibatch (default 32)")
    p.add_argument("--hidden", type=cli.positive_int, default=None,
                   help="hidden units (default 256)")
    p.add_argument("--lr", type=cli.positive_float, default=None,
                   help="learning rate (default: 100 with sgd; with adam 0.001 for the rnn, 0.01 "
                        "for the gru and lstm; as in the book)")
    p.add_argument("--clip", type=cli.positive_float, default=None,
                   help="gradient clipping threshold θ, global L2 norm (default 0.01)")
    p.add_argument("--pred-period", type=cli.positive_int, default=None,
                   help="print the perplexity every N epochs and after the last one, with "
                        "the generated text (compare: a row of its table) (default 50; 40 for "
                        "the gru and lstm)")
    p.add_argument("--pred-len", type=cli.positive_int, default=None,
                   help=f"characters generated after each prefix, at most {MAX_PRED_LEN:,} "
                        "(default 50)")
    p.add_argument("--prefixes", nargs="+", default=None,
                   help="the texts to continue (default: the corpus's: 分开 不分开 for the lyrics, "
                        "'time traveller' 'traveller' for timemachine, a file's first word)")
    p.add_argument("--seed", type=cli.non_negative_int, default=None,
                   help="seeds the weights and the sampler: same seed, same numbers (default 0)")
    p.add_argument("--grad", choices=("auto", "autograd", "bptt"), default=None,
                   help="autograd: the framework's; bptt: the hand-written backpropagation "
                        "through time (default auto: bptt on numpy, autograd elsewhere)")
    p.add_argument("--book-path", action="store_true",
                   help="run exactly the book's way: one-hot inputs, per-step outputs, "
                        "the loss read after every batch (same numbers, slower; default off)")
    cli.add_numerics_options(p)


def usable_prefixes(given, corpus) -> tuple:
    """The prefixes as the corpus's preprocessing writes them, or one line naming --prefixes and
    the fix (empty, nothing left after the preprocessing, unknown characters); run and compare.
    The corpus's own default prefixes, where the text kept for training (--max-chars) lacks
    them, ask for more text or other prefixes."""
    try:
        return tuple(usable_prefix(prefix, corpus.preprocessing, corpus.vocab, "--prefixes",
                                   corpus.prefixes[0]) for prefix in given)
    except VocabularyError:
        if given is not corpus.prefixes:
            raise
        raise VocabularyError(
            f"the corpus's default prefixes {', '.join(map(repr, given))} are not all in the "
            f"{len(corpus.chars):,} characters kept for training (--max-chars "
            f"{corpus.max_chars}): keep more (--max-chars 0 keeps all) or give --prefixes from "
            f"the kept text, for example --prefixes {first_word(corpus.chars)[0]}") from None


def check_pred_len(pred_len: int) -> None:
    """Refuse a --pred-len longer than a training log prints (run and compare)."""
    if pred_len > MAX_PRED_LEN:
        raise RNNCoreError(f"--pred-len {pred_len} is more than the {MAX_PRED_LEN:,} "
                           "characters a training log prints: write long texts with python -m "
                           "rnn_core.generate --checkpoint PATH --num-chars N, which prints as it "
                           "goes")


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
        corpus = resumed_corpus(args, saved)
        checkpoint.check_compatible(saved, corpus.vocab.idx_to_char, config.num_hiddens,
                                    corpus.spec)
    else:
        config = book_config(args)
        corpus = load_corpus(args.corpus, max_chars=DEFAULT_MAX_CHARS if args.max_chars is None
                             else args.max_chars)
    for option, field in (("epochs", "num_epochs"), ("pred_period", "pred_period"),
                          ("pred_len", "pred_len")):
        if getattr(args, option) is not None:
            setattr(config, field, getattr(args, option))
    config.book_path = config.book_path or args.book_path   # the same numbers, either path
    check_pred_len(config.pred_len)
    config.prefixes = usable_prefixes(args.prefixes if args.prefixes is not None else (
        config.prefixes if saved is not None else corpus.prefixes), corpus)
    if saved is not None and config.num_epochs <= saved.epoch:
        raise checkpoint.CheckpointError(
            f"the checkpoint has already trained {epochs(saved.epoch)}: give --epochs above "
            f"{saved.epoch} to train further")
    ops = get_backend(args.backend, args.device, **cli.numerics_options(args))
    if saved is not None and config.model == "concise" and not has(ops.name, "layers"):
        able = ", ".join(name for name in BACKEND_NAMES if has(name, "layers"))
        raise checkpoint.CheckpointError(
            f"{args.resume} holds the concise model (a framework's own RNN layer), and the "
            f"{ops.name} backend has none: resume it with --backend one of {able} (python -m "
            f"rnn_core.generate runs it on {ops.name} as the scratch model, the same maths)")
    resolve_grad(ops, config)
    make_forward(ops, corpus.vocab.vocab_size, config)
    data_iter(config, corpus.corpus_indices, random.Random(0))   # too short for one batch
    check_memory(corpus.vocab.vocab_size, config)
    check_outputs(args, corpus, config)
    if not config.book_path:    # the book's path allocates as the book's code does
        cli.keep_freed_buffers(ops)
    header = (f"backend {ops.name} {ops.version} on {ops.device}{cli.describe_numerics(ops)}; "
              f"corpus {corpus.name}: "
              f"{len(corpus.chars)} characters, vocab_size {corpus.vocab.vocab_size}; "
              f"{config.model} model, {config.cell} ({config.variant}), {config.num_layers} "
              f"layer{'s' if config.num_layers > 1 else ''}, {config.init} init, "
              f"{config.sampling} sampling, "
              f"{config.optimizer} lr {config.lr:g}, grad {config.grad}"
              + (f"; resuming after epoch {saved.epoch}" if saved else ""))
    written = [path for path in (args.save, args.plot) if path]
    out = cli.Progress(bar=not args.quiet,
                       keep_going=f"writes {' and '.join(written)}" if written else None)
    last_block = []             # --quiet: only the last epoch's lines, printed at the end
    if args.quiet:
        def log(line):
            if line.startswith("epoch"):
                last_block.clear()
            last_block.append(line)
    else:
        log = out.print
        log(header)
    try:
        _, history = train_and_predict_rnn(
            ops, corpus, config, log=log, resume=saved, save=args.save,
            on_epoch=None if args.quiet else out.update)
    finally:
        out.close()
        for line in last_block:
            out.print(line)
    if args.plot:
        from rnn_core.plot import perplexity_plot
        curve = (list(saved.history) if saved else []) + [r.perplexity for r in history]
        perplexity_plot({ops.name: curve}, args.plot, f"{config.model} model on {ops.name}")
        out.print(f"plot: {args.plot}")
    return 0


def resumed_corpus(args, saved: checkpoint.Checkpoint):
    """The corpus a checkpoint was trained on, or the one ``--corpus`` names if it has moved
    (its vocabulary must be the checkpoint's, which :func:`checkpoint.check_compatible` checks)."""
    if args.max_chars is not None and args.max_chars != saved.max_chars:
        raise checkpoint.CheckpointError(
            f"--max-chars {args.max_chars} contradicts the checkpoint (trained on the first "
            f"{saved.max_chars} characters of {saved.corpus!r}): leave it out to resume")
    try:
        return load_corpus(args.corpus or saved.corpus, max_chars=saved.max_chars)
    except CorpusError as error:
        if args.corpus:
            raise
        raise CorpusError(f"{error}. The checkpoint was trained on {saved.corpus!r}: give "
                          "--corpus PATH to say where that text is now") from error


def memory_needed(vocab_size: int, config: TrainConfig) -> int:
    """Bytes a training run needs at least, roughly: float32 weights four times over (the
    weights, their gradients, the update, the copy made on the way to the device), Adam's two
    moments, the largest weight drawn in float64 first, and a minibatch's activations (each
    layer's gates and states and their gradients at every step; the logits, their softmax and
    its gradient; one-hot inputs)."""
    sizes = [math.prod(shape) for shape in weight_shapes(vocab_size, config)]
    copies = 4 + (2 if config.optimizer == "adam" else 0)
    gates = sum(len(shape) == 2 and shape[0] == shape[1] == config.num_hiddens
                for shape in weight_shapes(vocab_size, config))       # the W_h* of every layer
    per_step = 4 * gates * config.num_hiddens + 4 * vocab_size
    activations = config.num_steps * config.batch_size * per_step
    return 4 * (sum(sizes) * copies + activations) + 8 * max(sizes)


def check_memory(vocab_size: int, config: TrainConfig) -> None:
    """Refuse, before allocating, a model too large for this machine's memory (run, and compare
    and bench before their first child), naming the options that make it smaller."""
    layers = f"{config.num_layers} layers of " if config.num_layers > 1 else ""
    cli.check_memory(memory_needed(vocab_size, config),
                     f"a model of {layers}{config.num_hiddens} hidden units on {vocab_size} "
                     f"characters, in batches of {config.batch_size} × {config.num_steps} steps,",
                     "lower --hidden" + (", --layers" if config.num_layers > 1 else "")
                     + ", --batch-size or --num-steps")


def check_outputs(args, corpus, config: TrainConfig) -> None:
    """Refuse, before the first epoch, a --save or --plot that cannot or must not be written."""
    outputs.check_distinct({"--corpus": corpus.source, "--resume": args.resume,
                            "--save": args.save, "--plot": args.plot},
                           may_share=(("--save", "--resume"),))   # continuing a checkpoint
    if args.save is not None:
        V = corpus.vocab.vocab_size
        checkpoint.check_save_path(args.save, "--save", weight_shapes(V, config), V, config)
    if args.plot is not None:
        suffix = Path(args.plot).suffix
        if suffix and suffix.lower() != ".png":
            raise RNNCoreError(f"--plot {args.plot}: the plot is a PNG image, not {suffix}: "
                               f"give a name ending in .png, for example --plot "
                               f"{Path(args.plot).with_suffix('.png')}")
        outputs.check_output(args.plot, "--plot", "png", PLOT_BYTES)


def command() -> int:
    """The ``rnn-core`` console script: :func:`main` as a command."""
    return cli.run_main(main)


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
