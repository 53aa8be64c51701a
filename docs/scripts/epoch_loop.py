"""Tokens per second of the fast path's epoch as one program (``ops.compile_loop``) against the
same epoch with one compiled call per minibatch from Python (``rnn_core.ops.python_loop``, what
every backend falls back on): the measurement behind docs/benchmarks.md's "One program per
epoch".

    RNN_CORE_DATA=../shared/data python docs/scripts/epoch_loop.py --backends tf jax
    RNN_CORE_DATA=../shared/data python docs/scripts/epoch_loop.py --cells rnn lstm --epochs 8

Jay Chou settings (hidden 256, batch 32, 35 steps, SGD lr 100, θ 0.01), the scratch model,
random sampling. Each backend and cell trains two models from the same weights, one per loop,
alternating epoch by epoch so that both see the same machine; the first epoch of each (tracing
and compiling) is reported on its own, then the median of the others. The two must print the
same perplexities (within float32 rounding): the check is printed beside the speeds."""
import argparse
import random
import statistics
import sys

from rnn_core import cli, get_backend, model
from rnn_core.data import load_corpus
from rnn_core.ops import python_loop
from rnn_core.train import (TrainConfig, book_defaults, init_optimizer_state, make_train_epoch,
                            model_spec, train_epoch)


class OneCallPerMinibatch:
    """A backend whose ``compile_loop`` is the Python loop over its compiled step."""

    def __init__(self, ops):
        self._ops = ops

    def __getattr__(self, name):
        return getattr(self._ops, name)

    def compile_loop(self, f):
        return python_loop(self._ops, f)


def measure(ops, corpus, cell, epochs):
    V = corpus.vocab.vocab_size
    config = TrainConfig(sampling="random", cell=cell, pred_period=0,
                         variant=book_defaults("scratch", "sgd", cell)["variant"])
    runs = {}
    for loop, backend in (("epoch", ops), ("minibatch", OneCallPerMinibatch(ops))):
        params = model.get_params(ops, V, config.num_hiddens, config.seed, **model_spec(config))
        runs[loop] = {"fn": make_train_epoch(backend, V, config), "params": params,
                      "opt": init_optimizer_state(ops, config, params),
                      "rng": random.Random(config.seed), "results": []}
    for epoch in range(1, epochs + 2):
        for run in runs.values():
            run["params"], run["opt"], result = train_epoch(
                ops, run["fn"], run["params"], run["opt"], config, corpus.corpus_indices,
                run["rng"], epoch)
            run["results"].append(result)
    return runs


def main(argv=None):
    p = argparse.ArgumentParser(prog="docs/scripts/epoch_loop.py",
                                description="The epoch as one program against one call per "
                                            "minibatch, in tokens per second.")
    p.add_argument("--backends", nargs="+", default=["tf", "jax"], help="default: tf jax")
    p.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"],
                   help="default: rnn gru lstm")
    p.add_argument("--epochs", type=cli.positive_int, default=5,
                   help="timed epochs after the first (default: 5)")
    cli.add_device_option(p)
    args = p.parse_args(argv)
    corpus = load_corpus("jaychou")
    print("backend  version  device  cell  | first epoch: one program, per minibatch (s) | "
          "tokens/s: one program, per minibatch, ratio | perplexity after the last epoch")
    for name in args.backends:
        ops = get_backend(name, args.device)
        for cell in args.cells:
            runs = measure(ops, corpus, cell, args.epochs)
            first = [run["results"][0].seconds for run in runs.values()]
            rates = [statistics.median(r.tokens / r.seconds for r in run["results"][1:])
                     for run in runs.values()]
            ppl = [run["results"][-1].perplexity for run in runs.values()]
            print(f"{ops.name} {ops.version} {ops.device} {cell} | {first[0]:.2f} {first[1]:.2f} | "
                  f"{rates[0]:,.0f} {rates[1]:,.0f} {rates[0] / rates[1]:.2f}x | "
                  f"{ppl[0]:.4f} {ppl[1]:.4f}", flush=True)


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
