"""``python -m rnn_core.compare --backends numpy torch tf``: the same model, from the same seed and
weights, trained on each backend, side by side: the classroom's view of "one algorithm, every
framework".

It takes ``run``'s options (corpus, model, sampling, epochs, learning rate, clipping, hidden size,
prefixes, seed, ...), with the same book defaults. Each backend trains in a process of its own
(its own threads and memory, so the timings are comparable), through :func:`rnn_core.api.train`;
a progress line follows the epochs. Then it prints the perplexity of every backend by epoch
(every ``--pred-period`` epochs, and the last), a summary (final perplexity, the largest
difference of each loss curve from the NumPy reference's, seconds per epoch, tokens per second),
and the text every backend generates from each prefix, side by side. ``--plot FILE`` draws every
backend's curve on one figure; ``--json FILE`` keeps the numbers. The concise model has no NumPy
layer: its reference is the NumPy scratch model on the same weights, the same function.
NumPy has no GPU build and is the CPU reference with any ``--device``; ``--device gpu`` is refused
before any training where no named backend has a GPU build or a framework sees no GPU.

Every child gets the same thread settings (``--threads``, by default every CPU this process may
use, in ``OMP_NUM_THREADS`` and the others of ``cli.THREAD_VARIABLES``), so that the seconds per
epoch of the rows are comparable. A backend whose framework is not installed is refused before
any training. A child that fails has its whole error output printed, and once the others' results
are shown compare ends with one line naming it, and exit status 2; when
compare is interrupted, terminated or killed, the running child is ended too. After Ctrl-C or
SIGTERM the backends that finished are still printed and written (--json, --plot), the stopped
and unstarted ones listed as skipped, and compare then ends as a stopped run does."""
from __future__ import annotations

import argparse
import io
import json
import random
import sys
from pathlib import Path

import numpy as np

from rnn_core import api, cli, outputs, run
from rnn_core.backend import backend_names, check_installed, get_backend, has
from rnn_core.data import DEFAULT_MAX_CHARS, load_corpus
from rnn_core.errors import interruption
from rnn_core.train import data_iter, epochs

# run's options -> TrainConfig fields (the others are run's hyperparameters, run.HYPERPARAMETERS).
LENGTHS = {"epochs": "num_epochs", "pred_period": "pred_period", "pred_len": "pred_len",
           "prefixes": "prefixes"}


def parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        prog="python -m rnn_core.compare",
        description="Train the same model, from the same seed, on several backends and show "
                    "their perplexities, timings and generated text side by side.")
    cli.add_backends_option(p, default=list(api.available_backends()))
    run.add_training_options(p)                # run's own, so that the two tools cannot drift
    p.add_argument("--threads", type=cli.positive_int, default=cli.available_cpus(),
                   help="threads each backend's process may use, the same for every backend "
                        f"(default: the CPUs this process may use, here {cli.available_cpus()})")
    p.add_argument("--plot", metavar="FILE",
                   help="draw every backend's curve on one figure, a PNG at exactly FILE "
                        "(default: none)")
    p.add_argument("--json", metavar="FILE",
                   help="write the settings and every backend's result (default: none)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p


def settings(args) -> dict:
    """The TrainConfig fields the user gave: the rest are the book's (api.make_config)."""
    fields = {**run.HYPERPARAMETERS, **LENGTHS}
    given = {field: getattr(args, option) for option, field in fields.items()
             if getattr(args, option, None) is not None}
    if "prefixes" in given:
        given["prefixes"] = tuple(given["prefixes"])
    if getattr(args, "book_path", False):
        given["book_path"] = True
    return given


def child(spec: dict) -> dict:
    """One backend's run, in its own process: a ``progress`` line per epoch, then the result."""
    def report(result, num_epochs):
        print(cli.PROGRESS + json.dumps({"epoch": result.epoch, "num_epochs": num_epochs,
                                     "perplexity": result.perplexity}), flush=True)

    cli.become_child()
    if spec.get("probe"):       # cli.check_gpus: whether this framework sees a GPU
        return cli.probe_gpu(spec)
    if not spec["settings"].get("book_path"):     # as run does on the fast path
        name = spec["backend"]
        cli.keep_freed_buffers(get_backend(name, spec["device"] if has(name, "gpu") else "cpu",
                                           **spec["numerics"]))
    config = api.make_config(**spec["settings"])
    result = api._train_for_comparison(spec["backend"], spec["corpus"], config,
                                       device=spec["device"], max_chars=spec["max_chars"],
                                       numerics=spec["numerics"], on_epoch=report)
    return result.to_dict()


class Board:
    """What the user sees while the backends train: on a terminal, a progress bar per backend
    rewritten after every epoch; elsewhere, one line per backend when it finishes."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.bar = cli.Progress(self.stream)

    def start(self, name: str, k: int, n: int):
        self.label = f"{name} ({k}/{n})"
        if self.bar.active:                   # until the first epoch: the framework loads
            self.stream.write(f"\r\033[K{self.label}: starting")
            self.stream.flush()

    def epoch(self, record: dict):
        from rnn_core.train import EpochResult
        self.bar.update(EpochResult(record["epoch"], record["perplexity"], 0.0, 0, None),
                        record["num_epochs"])
        if self.bar.active:
            self.stream.write(self.label)     # after the bar: which backend it is
            self.stream.flush()

    def done(self, line: str):
        if self.bar.active:
            self.stream.write("\r\033[K")
        self.bar.print(f"  {line}")


def check_outputs(args) -> None:
    """Refuse, before any backend trains, a --plot or --json that cannot or must not be written."""
    outputs.check_distinct({"--corpus": args.corpus if args.corpus and Path(args.corpus).exists()
                            else None, "--plot": args.plot, "--json": args.json})
    if args.plot:
        if Path(args.plot).suffix.lower() not in ("", ".png"):
            raise ValueError(f"--plot {args.plot}: the plot is a PNG image: give a name ending "
                             f"in .png, for example --plot {Path(args.plot).with_suffix('.png')}")
        outputs.check_output(args.plot, "--plot", "png", run.PLOT_BYTES)
    if args.json:
        outputs.check_output(args.json, "--json", "json")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    given = settings(args)
    config = api.make_config(**given)            # refuses a bad setting before any training
    run.check_pred_len(config.pred_len)
    max_chars = DEFAULT_MAX_CHARS if args.max_chars is None else args.max_chars
    # The corpus, the prefixes and the batch shape, checked here as run checks them, so that a
    # mistake is one line before any child starts, not one per child and a summary of them.
    corpus = load_corpus(args.corpus, max_chars=max_chars)
    prefixes = run.usable_prefixes(args.prefixes if args.prefixes is not None
                                   else corpus.prefixes, corpus)
    data_iter(config, corpus.corpus_indices, random.Random(0))   # too short for one batch
    run.check_memory(corpus.vocab.vocab_size, config)
    check_outputs(args)
    names = backend_names(args.backends)
    for name in names:          # one missing framework is one line before any training
        check_installed(name)
    if not names:
        raise ValueError("--backends: no backend to compare; name at least one, for example "
                         "--backends numpy torch")
    if args.device == "gpu":
        cli.check_gpus("rnn_core.compare", names, args)
    board, results, skipped = Board(), {}, {}
    interrupt = None        # Ctrl-C or SIGTERM: the backends that finished are still shown
    for k, name in enumerate(names, start=1):
        board.start(name, k, len(names))
        spec = {"backend": name, "device": args.device, "corpus": args.corpus,
                "max_chars": max_chars, "numerics": cli.numerics_options(args),
                "settings": {**given, "prefixes": prefixes}}
        try:
            outcome = cli.run_child("rnn_core.compare", spec, timeout=3600,
                                    on_progress=board.epoch, threads=args.threads)
        except BaseException as error:
            interrupt = interruption(error)
            if interrupt is None:
                raise
            why = cli.describe_interruption(interrupt)
            board.done(f"{name}: {why}")
            skipped[name] = why
            skipped.update({later: f"not started ({why})" for later in names[k:]})
            break
        if "error" in outcome:          # the table keeps its last line; here, all of it
            skipped[name] = cli.last_line(outcome["error"])
            board.done(f"{name}: " + outcome["error"].replace("\n", "\n    "))
            continue
        results[name] = api.TrainResult.from_dict(outcome)
        r = results[name]
        board.done(f"{name}: perplexity {r.perplexities[-1]:.3f} after {epochs(len(r.history))}, "
                   f"{float(np.median(r.seconds[1:] or r.seconds)):.3f} s/epoch on {r.device}")
    board.bar.close()
    if interrupt is not None and not results:
        raise interrupt
    if not results:         # each one's error is printed above, as it failed
        raise ValueError(f"every backend failed: {', '.join(skipped)} (the errors are above)")
    comparison = api.Comparison(results, skipped, interrupted=interrupt is not None)
    if args.plot:           # the files first: a reader that stops early (| head) loses nothing
        image = io.BytesIO()
        comparison.figure().savefig(image, format="png")
        outputs.write_atomically(args.plot, image.getvalue(), "the plot")
    if args.json:
        outputs.write_atomically(args.json, json.dumps(
            {"settings": given, "config": results[next(iter(results))].to_dict()["config"],
             "threads": args.threads,
             "results": [r.to_dict() | {"perplexity": r.perplexities} for r in results.values()],
             "skipped": skipped}, indent=2, ensure_ascii=False).encode("utf-8"), "the JSON file")
    print(f"{config.model} model, {config.optimizer} lr {config.lr:g}, clip {config.clipping_theta:g}, "
          f"{config.sampling} sampling, hidden {config.num_hiddens}, {epochs(config.num_epochs)}, "
          f"seed {config.seed}, corpus {args.corpus or 'lyrics_zh'}, {args.threads} threads per "
          "backend" + cli.describe_numerics(next(iter(results.values())), on_cpu=not any(
              r.on_gpu for r in results.values())))
    print("\nperplexity by epoch\n" + comparison.table(every=args.pred_period))
    print("\n" + comparison.summary())
    print("\ngenerated text (greedy)\n" + comparison.samples_text())
    if args.plot:
        print(f"\nplot: {args.plot}")
    if interrupt is not None:
        sys.stdout.flush()
        raise interrupt         # run_main's last line and exit status, as for any stopped run
    if skipped:             # a backend that was asked for and failed fails the command
        sys.stdout.flush()
        raise ValueError(f"{' and '.join(skipped)} failed (the error{'s are' if len(skipped) > 1 else ' is'} "
                         f"above); the results shown are {' and '.join(results)}'s")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
