"""What the command-line tools share: turning a user's mistake into one clear line and exit 2."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading

from rnn_core.errors import RNNCoreError


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None


def add_numerics_options(parser: argparse.ArgumentParser, *, deterministic: bool = True) -> None:
    """``--tf32`` and ``--deterministic``: the backend's numerics (docs/gpu.md)."""
    parser.add_argument("--tf32", action="store_true",
                        help="allow TensorFloat-32 in matrix products on GPUs that have it "
                             "(faster, products rounded to 10-bit mantissas; default: IEEE "
                             "float32 everywhere)")
    if deterministic:
        parser.add_argument("--deterministic", action="store_true",
                            help="deterministic algorithms, so that a run on a GPU, resumed or "
                                 "not, repeats bit for bit (slower; on the CPU runs repeat "
                                 "anyway)")


def numerics_options(args) -> dict:
    """The keyword arguments of ``get_backend`` that the numerics options give."""
    return {"precision": "tf32" if args.tf32 else "float32",
            "deterministic": getattr(args, "deterministic", False)}


def describe_numerics(ops) -> str:
    """``'; TF32 allowed, deterministic'`` for a header line, or ``''`` for the defaults."""
    parts = (["TF32 allowed"] if ops.precision == "tf32" else []) + (
        ["deterministic"] if ops.deterministic else [])
    return "; " + ", ".join(parts) if parts else ""


def run_main(main, argv=None) -> int:
    """Call ``main(argv)``; a user error prints ``error: ...`` (no traceback) and returns 2."""
    import numpy as np
    np.seterr(over="ignore", invalid="ignore")   # a diverging loss is reported by the trainer
    try:
        return main(argv) or 0
    except (RNNCoreError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:     # the reader went away (`| head`): stop quietly
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


PROGRESS = "progress "     # a child's line ``progress {json}`` reports progress as it runs


def run_child(module: str, spec: dict, timeout: float, on_progress=None) -> dict:
    """Run ``python -m module --child SPEC`` in a fresh process (one framework per process, its
    own threads and memory) and return the JSON it prints last, or ``{..., "error": ...}``.
    Lines ``progress {json}`` that it prints before are passed to ``on_progress(record)`` as they
    come."""
    command = [sys.executable, "-m", module, "--child", json.dumps(spec)]
    expired = threading.Event()
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True,
                                   stdin=subprocess.DEVNULL)

        def stop():
            expired.set()
            process.kill()
        timer = threading.Timer(timeout, stop)
        timer.start()
        lines = []
        try:
            for line in process.stdout:
                if line.startswith(PROGRESS):
                    if on_progress is not None:
                        on_progress(json.loads(line[len(PROGRESS):]))
                elif line.strip():
                    lines.append(line)
            process.wait()
        except BaseException:          # Ctrl-C, or a failing callback: leave no child behind
            process.kill()
            process.wait()
            raise
        finally:
            timer.cancel()
        errors.seek(0)
        stderr = errors.read()
    if expired.is_set():
        return {**spec, "error": f"took longer than {timeout:g} s"}
    if process.returncode != 0 or not lines:
        error = (stderr.strip().splitlines() or ["no output"])[-1]
        return {**spec, "error": error}
    return json.loads(lines[-1])


class Progress:
    """A one-line progress bar on a terminal, rewritten after every epoch and erased before any
    other line is printed. Where the output is not a terminal it prints nothing."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stdout
        self.active = self.stream.isatty()
        self.width = width
        self.shown = False

    def update(self, result, num_epochs: int) -> None:
        if not self.active:
            return
        done = int(self.width * result.epoch / num_epochs)
        self.stream.write(f"\r[{'#' * done}{'.' * (self.width - done)}] epoch {result.epoch}/"
                          f"{num_epochs}, perplexity {result.perplexity:.2f}  ")
        self.stream.flush()
        self.shown = True

    def print(self, line: str) -> None:
        if self.shown:
            self.stream.write("\r\033[K")      # erase the bar, then print the line
            self.shown = False
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
