"""Milliseconds per training step of one backend and path, and where they go: the profiling
behind docs/benchmarks.md.

    RNN_CORE_DATA=../shared/data python docs/scripts/step_time.py numpy fast
    RNN_CORE_DATA=../shared/data python docs/scripts/step_time.py torch fast --grad bptt
    RNN_CORE_DATA=../shared/data python docs/scripts/step_time.py mxnet fast --profile
    RNN_CORE_DATA=../shared/data python docs/scripts/step_time.py numpy fast --cell lstm

Jay Chou settings, random sampling, SGD. Ten steps warm up (compilation, tracing, the allocator),
then fifty are timed, with the losses read once at the end as the fast path does. ``--profile``
then prints the framework's own profile of twenty more steps: ``cProfile`` for NumPy,
``torch.profiler`` for PyTorch, MXNet's aggregate profiler, and TensorFlow's nothing (its step is
one compiled call)."""
import argparse
import random
import sys
import time

import numpy as np

from rnn_core import get_backend, model
from rnn_core.cli import run_main
from rnn_core.data import load_corpus
from rnn_core.cells import CELLS
from rnn_core.train import (TrainConfig, data_iter, init_optimizer_state, make_train_step,
                            model_spec)


def main(argv=None):
    p = argparse.ArgumentParser(prog="docs/scripts/step_time.py")
    p.add_argument("backend")
    p.add_argument("path", choices=("book", "fast"))
    p.add_argument("--model", choices=("scratch", "concise"), default="scratch")
    p.add_argument("--grad", choices=("auto", "autograd", "bptt"), default="auto")
    p.add_argument("--cell", choices=tuple(CELLS), default="rnn")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)

    ops = get_backend(args.backend, "cpu")
    corpus = load_corpus("jaychou")
    V = corpus.vocab.vocab_size
    config = TrainConfig(book_path=args.path == "book", model=args.model, grad=args.grad,
                         cell=args.cell)
    params = model.get_params(ops, V, config.num_hiddens, config.seed, **model_spec(config))
    opt_state = init_optimizer_state(ops, config, params)
    step = make_train_step(ops, V, config)
    rng, batches = random.Random(config.seed), []
    while len(batches) < 80:
        batches += [(ops.asarray(X), ops.asarray(Y))
                    for X, Y in data_iter(config, corpus.corpus_indices, rng)]

    def run(minibatches):
        nonlocal params, opt_state
        losses = []
        for X, Y in minibatches:
            state = model.init_state(ops, params, config.batch_size)
            params, opt_state, _, loss = step(params, opt_state, state, X, Y)
            losses.append(loss)
        return [float(np.asarray(ops.to_numpy(l)).reshape(())) for l in losses]

    run(batches[:10])
    start = time.perf_counter()
    losses = run(batches[10:60])
    seconds = (time.perf_counter() - start) / 50
    tokens = config.batch_size * config.num_steps
    print(f"{args.backend} {args.model} {args.cell} {args.path} ({args.grad}): "
          f"{1e3 * seconds:.1f} ms a step, {tokens / seconds:,.0f} tokens/s; "
          f"last loss {losses[-1]:.6f}")
    if args.profile:
        profile(ops.name, lambda: run(batches[60:80]))


def profile_numpy(work):
    import cProfile
    import pstats
    profiler = cProfile.Profile()
    profiler.runcall(work)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def profile_torch(work):
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        work()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def profile_mxnet(work):
    import os
    import tempfile

    import mxnet as mx
    # The aggregate table is all we print; the trace MXNet also writes goes to a temporary
    # folder, not into the working directory (its default, profile.json there).
    trace = os.path.join(tempfile.mkdtemp(prefix="rnn-core-profile-"), "profile.json")
    mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename=trace)
    mx.profiler.set_state("run")
    work()
    mx.nd.waitall()
    mx.profiler.set_state("stop")
    print(mx.profiler.dumps(sort_by="total", ascending=False))


# backend -> its framework's profiler; the others' step is one compiled call, nothing to split.
PROFILERS = {"numpy": profile_numpy, "torch": profile_torch, "mxnet": profile_mxnet}


def profile(name, work):
    if name not in PROFILERS:
        print(f"no profile for {name}: its step is one compiled call")
        return
    PROFILERS[name](work)


if __name__ == "__main__":
    sys.exit(run_main(main))
