"""``python -m rnn_core.generate --checkpoint PATH --backend B --prefix 分开``: continue a prefix
with a trained model, on any backend, whichever backend trained it.

Greedy (the book's ``predict_rnn``) by default; ``--temperature T`` samples from
``softmax(logits / T)``, ``--top-k K`` among the K most likely characters (at temperature 1
unless ``--temperature`` says otherwise), reproducibly with ``--seed``. Without ``--prefix``, the
prefixes the model was trained with are continued. The text is printed as it is generated."""
from __future__ import annotations

import argparse
import sys
import time

from rnn_core import checkpoint, cli, model
from rnn_core.backend import get_backend, has
from rnn_core.data import Vocab, preprocessing_of, usable_prefix
from rnn_core.errors import RNNCoreError
from rnn_core.predict import generate_chars
from rnn_core.train import TrainConfig, make_forward


def parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        prog="python -m rnn_core.generate",
        description="Continue one or more prefixes with a model that python -m rnn_core.run "
                    "--save trained, on any backend.")
    p.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="the checkpoint written by python -m rnn_core.run --save (required)")
    cli.add_backend_option(p)
    cli.add_device_option(p)
    p.add_argument("--prefix", nargs="+", default=None,
                   help="one or more prefixes to continue (default: the prefixes the model was "
                        "trained with, for example 分开 不分开)")
    p.add_argument("--num-chars", type=cli.positive_int, default=50,
                   help="characters to generate after each prefix (default 50)")
    p.add_argument("--temperature", type=cli.non_negative_float, default=None,
                   help="0: greedy, always the most likely character; above 0: sample from "
                        "softmax(logits / T) (default 0, or 1 with --top-k)")
    p.add_argument("--top-k", type=cli.positive_int, default=None,
                   help="sample among the K most likely characters only (default: all of them)")
    p.add_argument("--seed", type=cli.non_negative_int, default=0,
                   help="seeds the sampling: same seed, same text (default 0)")
    cli.add_numerics_options(p, deterministic=False)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.top_k is not None and args.temperature == 0:     # the library's rule, in options
        raise RNNCoreError(f"--top-k {args.top_k} samples among the likeliest characters, "
                           "but --temperature 0 always takes the likeliest one: give "
                           "--temperature above 0 (1 is the model's own distribution) or "
                           "leave out --top-k")
    saved = checkpoint.load(args.checkpoint)
    how = preprocessing_of(saved.corpus)
    trained_with = list(saved.config.get("prefixes") or [])
    vocab = Vocab.from_list(saved.idx_to_char, unk=saved.unk)
    example = (trained_with or [vocab.idx_to_char[-1]])[0]
    prefixes = [usable_prefix(given, how, vocab, "--prefix", example)
                for given in args.prefix or trained_with or [example]]
    ops = get_backend(args.backend, args.device, **cli.numerics_options(args))
    kind = saved.config.get("model", "scratch")
    if kind == "concise" and not has(ops.name, "layers"):
        kind = "scratch"   # the same weights and maths, where the framework has no RNN layer
    config = TrainConfig(num_hiddens=model.num_hiddens(saved.params), model=kind,
                         **{k: v for k, v in saved.config.items()
                            if k in ("cell", "variant", "num_layers")})
    forward = make_forward(ops, vocab.vocab_size, config)
    params = model.params_to_backend(ops, saved.params)
    for prefix in prefixes:
        pieces = generate_chars(ops, prefix, args.num_chars, params, vocab,
                                temperature=args.temperature, top_k=args.top_k,
                                seed=args.seed, forward=forward)
        shown = time.monotonic()
        for piece in pieces:            # a long text appears as it grows, not at the end
            sys.stdout.write(piece)
            if time.monotonic() - shown > 0.2:
                sys.stdout.flush()
                shown = time.monotonic()
        sys.stdout.write("\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
