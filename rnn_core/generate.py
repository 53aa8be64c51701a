"""``python -m rnn_core.generate --checkpoint PATH --backend B --prefix 分开``: continue a prefix
with a trained model, on any backend, whichever backend trained it.

Greedy (the book's ``predict_rnn``) by default; ``--temperature T`` samples from
``softmax(logits / T)``, ``--top-k K`` among the K most likely characters, reproducibly with
``--seed``."""
from __future__ import annotations

import argparse
import sys

from rnn_core import checkpoint, cli, model
from rnn_core.backend import BACKEND_NAMES, DEVICES, get_backend
from rnn_core.data import Vocab
from rnn_core.predict import predict_rnn
from rnn_core.train import TrainConfig, make_forward


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m rnn_core.generate",
                                description=__doc__.split("\n")[0].strip("`"))
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="written by run --save")
    p.add_argument("--backend", default="numpy", help=f"one of {', '.join(BACKEND_NAMES)}")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--prefix", nargs="+", default=["分开"], help="one or more prefixes")
    p.add_argument("--num-chars", type=cli.positive_int, default=50)
    p.add_argument("--temperature", type=float, default=0.0,
                   help="0 (default): greedy; above 0: sample from softmax(logits / T)")
    p.add_argument("--top-k", type=cli.positive_int, default=None)
    p.add_argument("--seed", type=int, default=0)
    cli.add_numerics_options(p, deterministic=False)
    args = p.parse_args(argv)
    if args.temperature < 0:
        raise ValueError(f"--temperature must be 0 (greedy) or positive, got {args.temperature}")
    saved = checkpoint.load(args.checkpoint)
    ops = get_backend(args.backend, args.device, **cli.numerics_options(args))
    vocab = Vocab.from_list(saved.idx_to_char, unk=saved.unk)
    kind = saved.config.get("model", "scratch")
    if kind == "concise" and ops.name == "numpy":
        kind = "scratch"   # the same weights and maths; NumPy has no RNN layer
    config = TrainConfig(num_hiddens=model.num_hiddens(saved.params), model=kind,
                         **{k: v for k, v in saved.config.items()
                            if k in ("cell", "variant", "num_layers")})
    forward = make_forward(ops, vocab.vocab_size, config)
    params = model.params_to_backend(ops, saved.params)
    for prefix in args.prefix:
        print(predict_rnn(ops, prefix, args.num_chars, params, vocab, temperature=args.temperature,
                          top_k=args.top_k, seed=args.seed, forward=forward))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
