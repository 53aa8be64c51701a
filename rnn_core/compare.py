"""``python -m rnn_core.compare --backends numpy torch tf mxnet``: the same model, from the same
seed, on each backend, side by side.

Each backend trains in its own process and reports its perplexity curve; the table gives the
final perplexity, the largest difference of each loss curve (mean cross-entropy per epoch) from
the NumPy reference's, seconds per epoch and tokens per second; ``--plot PATH`` overlays the
curves in a PNG. The concise model has no NumPy layer: its reference is the NumPy scratch model
on the same weights, the same function."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from rnn_core import cli
from rnn_core.backend import BACKEND_NAMES, canonical_name


def child(spec: dict) -> dict:
    from rnn_core import get_backend
    from rnn_core.data import load_corpus
    from rnn_core.train import TrainConfig, train_and_predict_rnn

    ops = get_backend(spec["backend"], spec["device"], precision=spec["precision"],
                      deterministic=spec["deterministic"])
    corpus = load_corpus(spec["corpus"])
    config = TrainConfig(**spec["config"])
    if ops.name == "numpy" and config.model == "concise":
        config.model = "scratch"          # the same weights and maths; NumPy has no RNN layer
    _, history = train_and_predict_rnn(ops, corpus, config, log=lambda line: None)
    timed = history[1:] or history          # the first epoch also compiles and warms caches
    s_per_epoch = float(np.median([epoch.seconds for epoch in timed]))
    return {"backend": ops.name, "device": ops.device, "precision": ops.precision,
            "deterministic": ops.deterministic, "model": config.model,
            "perplexity": [epoch.perplexity for epoch in history], "s_per_epoch": s_per_epoch,
            "tokens_per_s": timed[0].tokens / s_per_epoch}


def table(results: list, reference: str = "numpy") -> str:
    ref = next((r for r in results if r["backend"] == reference and "error" not in r), None)
    lines = ["| backend | final perplexity | largest loss difference from numpy | s/epoch | "
             "tokens/s |", "| --- | ---: | ---: | ---: | ---: |"]   # s/epoch: median, 2nd epoch on
    for r in results:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['error']} |  |  |  |")
            continue
        if ref is None:
            difference = "no numpy run"
        else:
            own = np.log(np.array(r["perplexity"]))
            difference = f"{np.max(np.abs(own - np.log(np.array(ref['perplexity'])))):.2e}"
        lines.append(f"| {r['backend']} | {r['perplexity'][-1]:.3f} | {difference} | "
                     f"{r['s_per_epoch']:.3f} | {r['tokens_per_s']:,.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m rnn_core.compare",
                                description=__doc__.split("\n")[0].strip("`"))
    p.add_argument("--backends", nargs="+", default=list(BACKEND_NAMES))
    p.add_argument("--model", choices=("scratch", "concise"), default="scratch")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument("--corpus", default=None)
    p.add_argument("--epochs", type=cli.positive_int, default=50)
    p.add_argument("--sampling", choices=("random", "consecutive"), default=None)
    p.add_argument("--hidden", type=cli.positive_int, default=256)
    p.add_argument("--lr", type=cli.positive_float, default=None)
    p.add_argument("--clip", type=cli.positive_float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "gpu"))
    cli.add_numerics_options(p)
    p.add_argument("--plot", metavar="PATH", help="write the perplexity curves as a PNG")
    p.add_argument("--json", metavar="PATH", help="write the curves and figures as JSON")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    from rnn_core.train import book_defaults
    given = {"lr": args.lr, "sampling": args.sampling}
    config = {**book_defaults(args.model, args.optimizer),
              **{k: v for k, v in given.items() if v is not None},
              "num_epochs": args.epochs, "num_hiddens": args.hidden, "clipping_theta": args.clip,
              "seed": args.seed, "pred_period": 0}
    results = []
    for backend in dict.fromkeys(canonical_name(b) for b in args.backends):
        spec = {"backend": backend, "device": args.device, "corpus": args.corpus,
                "config": config, **cli.numerics_options(args)}
        results.append(cli.run_child("rnn_core.compare", spec, timeout=3600))
        r = results[-1]
        print(f"  {backend}: " + (r["error"] if "error" in r else
              f"perplexity {r['perplexity'][-1]:.3f}"), file=sys.stderr, flush=True)
    if all("error" in r for r in results):
        raise ValueError("every backend failed: " + results[0]["error"])
    print(f"{args.model} model, {args.optimizer}, {args.epochs} epochs, seed {args.seed}, "
          f"corpus {args.corpus or 'lyrics_zh'}"
          + "".join(f", {o}" for o, on in (("TF32 allowed", args.tf32),
                                          ("deterministic", args.deterministic)) if on))
    print(table(results))
    if args.plot:
        from rnn_core.plot import perplexity_plot
        curves = {r["backend"]: r["perplexity"] for r in results if "error" not in r}
        perplexity_plot(curves, args.plot, f"{args.model} model, {args.epochs} epochs, same seed")
        print(f"plot: {args.plot}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"config": config, "results": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
