"""``python -m rnn_core.bench``: training throughput of every backend, model and path, against
what this machine's matrix products allow.

For each installed backend, cell (``--cells``: rnn by default, gru, lstm), model (scratch,
concise) and path (the book's: one-hot inputs,
per-step output projection, the loss read back after every batch, nothing compiled; the fast
one: row lookup, one output projection, the loss read once per epoch, the step compiled where the
framework offers it), a fresh child process trains a few epochs and reports tokens per second,
seconds per epoch and its peak resident memory. Each child also measures its framework's float32
matrix-product rate on a large square product, ``rate_large``, and on the recurrent shape
``(batch, hidden)·(hidden, hidden)`` (shown; on a GPU it is bound by kernel launches). The bound
is every FLOP at the dense rate (docs/benchmarks.md derives it):

    FLOPs per trained token = 6·gates·hidden² (recurrent: one product per gate forward, and
                                               two backward; gates: rnn 1, gru 3, lstm 4)
                            + 6·hidden·vocab (output projection, likewise)
    tokens/s bound = rate_large / FLOPs per token

(each layer above the first adds its input products, 6·gates·hidden² more).

No program of this algorithm does its products faster than the device's dense rate, so no row can
beat the bound; if one does, the large product undershot the device's rate, and the bound is
raised to that row's figure (the table says so). "of bound" uses the best rate of all frameworks;
"of own bound" the row's own framework's, which says how close a path comes to what that
framework's matrix product allows.

Every measurement runs ``--repeats`` times (3), in rotation over the rows, and the table shows
the median run. ``--json PATH`` writes the same figures for tools, every run's tokens/s included.
Figures are only comparable within one invocation. ``--device gpu`` is refused before anything
runs where no named backend has a GPU build or a named framework sees no GPU.

Every child gets the same thread settings: ``--threads`` (by default every CPU this process may
use) in ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and TensorFlow's two
pools (``cli.THREAD_VARIABLES``), instead of each framework's own default; the table's header
says how many. A child that fails has its whole error output printed; when bench is interrupted,
terminated or killed, the running child is ended too. After Ctrl-C or SIGTERM the rows measured
so far are still printed and written (--json), a row not measured yet marked "interrupted" (or
"stopped by SIGTERM"), and bench then ends as a stopped run does.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time

import numpy as np

from rnn_core import cli
from rnn_core.backend import (BACKEND_NAMES, backend_names, check_installed, has,
                              is_installed)
from rnn_core.cells import CELLS, get_cell
from rnn_core.errors import interruption
from rnn_core.ops import in_numerics_scope

LARGE = 1024      # the large product: (1024, 1024)·(1024, 1024)


@in_numerics_scope
def matmul_rate(ops, m: int, k: int, seconds: float = 0.5, *, linear: bool = False) -> float:
    """FLOP/s of a chain of dependent ``(m, k)·(k, k)`` products, as a recurrence runs them, by
    ``ops.matmul`` or (``linear``) by ``ops.linear`` with a zero bias, which is how the fast path
    projects the outputs. The chain multiplies by an orthogonal matrix, so values stay finite."""
    rng = np.random.default_rng(0)
    Q = ops.asarray(np.linalg.qr(rng.normal(size=(k, k)))[0].astype(np.float32))
    x = ops.asarray(rng.normal(size=(m, k)).astype(np.float32))
    zero = ops.zeros((k,))

    def product(x):
        return ops.linear(x, Q, zero) if linear else ops.matmul(x, Q)

    for _ in range(3):
        x = product(x)
    ops.to_numpy(x)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            x = product(x)
        ops.to_numpy(x)              # waits for the chain on asynchronous frameworks
        reps += 10
    return 2.0 * m * k * k * reps / (time.perf_counter() - start)


def flops_per_token(num_hiddens: int, vocab_size: int, cell: str = "rnn", num_layers: int = 1):
    """(recurrent, output) FLOPs per trained token of the fast path, forward and backward: each
    gate's ``H·W_h?`` (and, above the first layer, ``X·W_x?``) is one product forward and two
    backward (``dH``, ``dW``); the first layer's inputs are looked up, no product."""
    gates = len(get_cell(cell).gates)
    return (6 * gates * num_hiddens ** 2 * (2 * num_layers - 1),
            6 * num_hiddens * vocab_size)


def bound_tokens_per_second(num_hiddens, vocab_size, rate_large, cell="rnn") -> float:
    """Tokens per second if every FLOP ran at the dense matrix-product rate."""
    return rate_large / sum(flops_per_token(num_hiddens, vocab_size, cell))


def honest_bound(num_hiddens, vocab_size, rate_large, rows, cell="rnn") -> tuple:
    """``(bound, source)``: the dense-rate bound, or the fastest of ``rows`` where it is faster
    (a bound below a measured program would be no bound)."""
    bound = bound_tokens_per_second(num_hiddens, vocab_size, rate_large, cell)
    fastest = max((r["tokens_per_s"] for r in rows), default=0.0)
    return (bound, "matmul") if bound >= fastest else (fastest, "fastest row")


def child(spec: dict) -> dict:
    """Run in a fresh process: measure one backend, model and path."""
    from rnn_core import get_backend
    from rnn_core.data import load_corpus
    from rnn_core.train import (TrainConfig, book_defaults, init_optimizer_state,
                                make_train_epoch, model_spec, train_epoch)
    from rnn_core import model
    import random

    cli.become_child()
    if spec.get("probe"):       # cli.check_gpus: whether this framework sees a GPU
        return cli.probe_gpu(spec)
    ops = get_backend(spec["backend"], spec["device"], precision=spec["precision"],
                      deterministic=spec["deterministic"])
    if spec["path"] == "fast":      # the book's path allocates as the book's code does
        cli.keep_freed_buffers(ops)
    corpus = load_corpus(spec["corpus"])
    V = corpus.vocab.vocab_size
    config = TrainConfig(num_hiddens=spec["hidden"], num_steps=spec["num_steps"],
                         batch_size=spec["batch_size"], sampling="random",
                         model=spec["model"], book_path=spec["path"] == "book",
                         optimizer="sgd", lr=1e2, clipping_theta=1e-2, pred_period=0,
                         cell=spec["cell"],
                         variant=book_defaults(spec["model"], "sgd", spec["cell"])["variant"])
    params = model.get_params(ops, V, config.num_hiddens, 0, **model_spec(config))
    opt_state = init_optimizer_state(ops, config, params)
    epoch_fn = make_train_epoch(ops, V, config)
    rng = random.Random(0)
    seconds, tokens = [], 0
    for epoch in range(spec["warmup"] + spec["epochs"]):
        params, opt_state, result = train_epoch(ops, epoch_fn, params, opt_state, config,
                                                corpus.corpus_indices, rng, epoch + 1)
        if epoch >= spec["warmup"]:
            seconds.append(result.seconds)
            tokens += result.tokens
    rates = {"large": max(matmul_rate(ops, LARGE, LARGE),
                          matmul_rate(ops, LARGE, LARGE, linear=True)),
             "recurrent": matmul_rate(ops, config.batch_size, config.num_hiddens)}
    return {"backend": ops.name, "version": ops.version, "device": ops.device,
            "precision": ops.precision, "deterministic": ops.deterministic,
            "model": spec["model"], "path": spec["path"], "cell": spec["cell"], "vocab_size": V,
            "tokens_per_s": tokens / sum(seconds), "s_per_epoch": float(np.median(seconds)),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "matmul_flops": rates}


def median_run(runs: list) -> dict:
    """One row from repeated runs of one measurement: the run of median tokens/s, with every
    run's tokens/s kept, the largest peak memory, and the best matrix-product rates seen."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return runs[0]
    good.sort(key=lambda r: r["tokens_per_s"])
    row = dict(good[(len(good) - 1) // 2])
    row["runs_tokens_per_s"] = [r["tokens_per_s"] for r in runs if "error" not in r]
    row["peak_rss_mib"] = max(r["peak_rss_mib"] for r in good)
    row["matmul_flops"] = {kind: max(r["matmul_flops"][kind] for r in good)
                           for kind in good[0]["matmul_flops"]}
    return row


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    import os
    return f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def summarise(results: list, hidden: int, threads: int | None = None) -> dict:
    """The machine's rates (best over frameworks), each cell's bound, and each row's ratios. The
    top-level bound and FLOPs are the first row's cell's; ``cells`` has every cell's."""
    good = [r for r in results if "error" not in r]
    rates = {kind: max(r["matmul_flops"][kind] for r in good) for kind in ("large", "recurrent")}
    vocab = good[0]["vocab_size"]
    own_rates = {backend: {kind: max(r["matmul_flops"][kind] for r in good
                                     if r["backend"] == backend) for kind in rates}
                 for backend in {r["backend"] for r in good}}     # each framework's best
    cells = {}
    for cell in dict.fromkeys(r.get("cell", "rnn") for r in good):
        rows = [r for r in good if r.get("cell", "rnn") == cell]
        bound, source = honest_bound(hidden, vocab, rates["large"], rows, cell)
        own_bounds = {backend: honest_bound(hidden, vocab, own["large"],
                                            [r for r in rows if r["backend"] == backend], cell)[0]
                      for backend, own in own_rates.items()}
        cells[cell] = {"flops_per_token": sum(flops_per_token(hidden, vocab, cell)),
                       "bound_tokens_per_s": bound, "bound_source": source,
                       "own_bound_tokens_per_s": own_bounds}
        for r in rows:
            r["share_of_bound"] = r["tokens_per_s"] / bound
            r["share_of_own_bound"] = r["tokens_per_s"] / own_bounds[r["backend"]]
            book = next((b for b in rows if (b["backend"], b["model"], b["path"]) ==
                         (r["backend"], r["model"], "book")), None)
            r["speedup_over_book"] = r["tokens_per_s"] / book["tokens_per_s"] if book else None
    first = cells[good[0].get("cell", "rnn")]
    return {"machine": machine(), "threads": threads,
            "devices": sorted({r["device"] for r in good}),
            "precision": good[0].get("precision", "float32"),
            "deterministic": good[0].get("deterministic", False),
            "matmul_flops": rates, "own_matmul_flops": own_rates, "vocab_size": vocab,
            "repeats": max(len(r.get("runs_tokens_per_s", [1])) for r in results),
            **first, "cells": cells, "results": results}


def table(summary: dict) -> str:
    rates = summary["matmul_flops"]
    numerics = ("TF32 allowed" if summary["precision"] == "tf32" else "IEEE float32") + (
        ", deterministic" if summary["deterministic"] else "")
    how = (f"every FLOP at the {LARGE}³ rate" if summary["bound_source"] == "matmul" else
           f"the fastest row, above every FLOP at the {LARGE}³ rate")
    per_cell = "; ".join(f"{cell}: {c['flops_per_token'] / 1e6:.2f} MFLOP per trained token, "
                         f"bound {c['bound_tokens_per_s']:,.0f} tokens/s"
                         for cell, c in summary.get("cells", {}).items()) or (
        f"{summary['flops_per_token'] / 1e6:.2f} MFLOP per trained token; "
        f"bound {summary['bound_tokens_per_s']:,.0f} tokens/s")
    lines = [f"machine: {summary['machine']}; devices {', '.join(summary['devices'])}; "
             f"{numerics}",
             f"matmul: {rates['large'] / 1e9:.1f} GFLOP/s at {LARGE}³, "
             f"{rates['recurrent'] / 1e9:.1f} GFLOP/s at the recurrent shape; "
             f"{per_cell} ({how}); each row the median of {summary['repeats']} run(s)"
             + (f", {summary['threads']} threads per child" if summary.get("threads") else ""),
             "",
             "| backend | model | path | cell | tokens/s | s/epoch | peak MiB | fast/book "
             "| of bound | of own bound |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in summary["results"]:
        cell = r.get("cell", "rnn")
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['model']} | {r['path']} | {cell} | "
                         f"{cli.last_line(r['error'])} ||||||")
            continue
        speedup = f"{r['speedup_over_book']:.1f}×" if r["path"] == "fast" and r[
            "speedup_over_book"] else ""
        lines.append(f"| {r['backend']} | {r['model']} | {r['path']} | {cell} | "
                     f"{r['tokens_per_s']:,.0f} | "
                     f"{r['s_per_epoch']:.3f} | {r['peak_rss_mib']:.0f} | {speedup} | "
                     f"{100 * r['share_of_bound']:.0f}% | {100 * r['share_of_own_bound']:.0f}% |")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        prog="python -m rnn_core.bench",
        description="Measure the training throughput of every backend, model, path and cell, "
                    "each in a fresh process, against what this machine's matrix products allow.")
    cli.add_backends_option(p, default=[name for name in BACKEND_NAMES if is_installed(name)])
    p.add_argument("--models", nargs="+", choices=("scratch", "concise"),
                   default=["scratch", "concise"], help="default: scratch concise")
    p.add_argument("--paths", nargs="+", choices=("book", "fast"), default=["book", "fast"],
                   help="book: the book's way; fast: compiled, one output product "
                        "(default: book fast)")
    p.add_argument("--cells", nargs="+", choices=tuple(CELLS), default=["rnn"],
                   help="the cells to measure, each with its own bound (default rnn)")
    p.add_argument("--corpus", default="jaychou",
                   help="a corpus name or a .txt/.zip path (default jaychou)")
    p.add_argument("--hidden", type=cli.positive_int, default=256,
                   help="hidden units (default 256)")
    p.add_argument("--batch-size", type=cli.positive_int, default=32,
                   help="examples per minibatch (default 32)")
    p.add_argument("--num-steps", type=cli.positive_int, default=35,
                   help="time steps per example (default 35)")
    p.add_argument("--epochs", type=cli.positive_int, default=10,
                   help="timed epochs (default 10)")
    p.add_argument("--warmup", type=cli.non_negative_int, default=1,
                   help="untimed epochs first: compilation, caches (default 1)")
    cli.add_device_option(p, default="cpu")
    cli.add_numerics_options(p)
    p.add_argument("--repeats", type=cli.positive_int, default=3,
                   help="runs of every measurement, in rotation; the table shows the median "
                        "(default 3)")
    p.add_argument("--threads", type=cli.positive_int, default=cli.available_cpus(),
                   help="threads each child's framework may use, the same for every row "
                        f"(default: the CPUs this process may use, here {cli.available_cpus()})")
    p.add_argument("--timeout", type=cli.positive_float, default=900.0,
                   help="seconds allowed for one measurement (default 900)")
    p.add_argument("--json", metavar="PATH",
                   help="also write the figures as JSON (default: none)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p


def check_before_children(args) -> None:
    """The corpus every child trains on, its first batch, and the memory of each cell's model,
    checked once before any child starts: a mistake is one line, not one per row and a summary.
    bench has no --max-chars (it always trains on a corpus's first DEFAULT_MAX_CHARS characters),
    so its advice is its own."""
    from rnn_core import run
    from rnn_core.data import DEFAULT_MAX_CHARS, load_corpus
    from rnn_core.errors import CorpusTooShort
    from rnn_core.sampling import data_iter_random
    from rnn_core.train import TrainConfig, book_defaults
    corpus = load_corpus(args.corpus)           # as child() loads it
    for cell in args.cells:
        run.check_memory(corpus.vocab.vocab_size, TrainConfig(
            num_hiddens=args.hidden, num_steps=args.num_steps, batch_size=args.batch_size,
            cell=cell, variant=book_defaults("scratch", "sgd", cell)["variant"]))
    try:
        data_iter_random(corpus.corpus_indices, args.batch_size, args.num_steps)
    except CorpusTooShort as error:
        longer = (" or a longer --corpus" if len(corpus.chars) < DEFAULT_MAX_CHARS else
                  f" (bench trains on the first {DEFAULT_MAX_CHARS:,} characters of a corpus)")
        raise CorpusTooShort(error.facts, f"Give a smaller --batch-size or --num-steps{longer}"
                             ) from None


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    from rnn_core import outputs
    if args.json:
        outputs.check_output(args.json, "--json", "json")
    backends = backend_names(args.backends)
    for name in backends:       # one missing framework is one line before any measurement
        check_installed(name)
    check_before_children(args)
    if args.device == "gpu":
        cli.check_gpus("rnn_core.bench", backends, args)
    specs = [dict(backend=backend, model=model_kind, path=path, cell=cell, corpus=args.corpus,
                  hidden=args.hidden, batch_size=args.batch_size, num_steps=args.num_steps,
                  epochs=args.epochs, warmup=args.warmup, device=args.device,
                  **cli.numerics_options(args))
             for cell in args.cells
             for backend in backends
             for model_kind in args.models if model_kind == "scratch" or has(backend, "layers")
             for path in args.paths]                 # the concise model needs the framework's layer
    if not specs:
        able = ", ".join(name for name in BACKEND_NAMES if has(name, "layers"))
        raise ValueError(f"--models concise: nothing to measure, as {' and '.join(backends)} "
                         f"has no RNN layer of its own; add --models scratch, or --backends one "
                         f"of {able}")
    runs = [[] for _ in specs]
    try:
        for repeat in range(args.repeats):  # in rotation, so slow spells of a shared machine
            for spec, spec_runs in zip(specs, runs):          # fall on every row alike
                r = cli.run_child("rnn_core.bench", spec, args.timeout, threads=args.threads)
                spec_runs.append(r)
                print(f"  {spec['backend']} {spec['model']} {spec['path']} {spec['cell']} "
                      f"({repeat + 1}/{args.repeats}): "
                      + (r["error"].replace("\n", "\n    ") if "error" in r else
                         f"{r['tokens_per_s']:,.0f} tokens/s"), file=sys.stderr, flush=True)
        interrupt = None
    except BaseException as error:  # Ctrl-C, SIGTERM: the rows measured so far are still shown
        interrupt = interruption(error)
        if interrupt is None:
            raise
    results = [median_run(spec_runs) if spec_runs else
               {**spec, "error": cli.describe_interruption(interrupt)}
               for spec, spec_runs in zip(specs, runs)]
    if all("error" in r for r in results):
        if interrupt is not None:
            raise interrupt
        raise ValueError("every measurement failed: " + cli.last_line(results[0]["error"]))
    summary = summarise(results, args.hidden, args.threads)
    if args.json:           # first: a reader that stops early (| head) does not lose it
        outputs.write_atomically(args.json, json.dumps(summary, indent=2).encode(),
                                 "the JSON file")
    print(table(summary))
    if interrupt is not None:
        sys.stdout.flush()
        raise interrupt         # run_main's last line and exit status, as for any stopped run
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
