"""What the command-line tools share: turning a user's mistake or a fault into one clear line
and exit 2, and the process-wide settings that belong to a command, never to the library.

:func:`run_main` is every tool's entry point. Before the tool runs it

* opens ``/dev/null`` on a closed standard input, output or error (so that no file the tool
  opens can land on descriptor 1 or 2 and receive printed lines or a framework's log);
* hides the frameworks' start-up log lines (:data:`QUIET_LOGS`, and :data:`START_UP_LINES`, which
  TensorFlow writes whatever its log level) unless the user set the level;
* prints characters that the output's encoding cannot show as ``\\uXXXX`` escapes, with a note;
* turns SIGTERM and SIGHUP into the Ctrl-C a training run already handles (it saves the last
  completed epoch);
* ignores NumPy's overflow warnings (a diverging loss is reported by the trainer instead).
"""
from __future__ import annotations

import argparse
import codecs
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading

from rnn_core import backend
from rnn_core.backend import BACKEND_NAMES, DEVICES
from rnn_core.errors import RNNCoreError, interruption

# Framework log settings the tools choose where the user has not: TensorFlow's C++ start-up notes
# (CPU features, oneDNN) and its oneDNN int64 fallback notice, which it prints at error level
# though nothing is wrong. Real failures still reach the tools as exceptions, printed as one line.
# Set TF_CPP_MIN_LOG_LEVEL=0 to see every line.
QUIET_LOGS = {"TF_CPP_MIN_LOG_LEVEL": "3"}

# What TensorFlow 2.21 writes while it loads whatever TF_CPP_MIN_LOG_LEVEL says: it logs through
# Abseil, which sends every line to stderr until absl::InitializeLog() is called (on CPUs with
# AVX512_VNNI, "oneDNN custom operations are on", twice). Abseil's info, warning and error lines,
# and its note, match; fatal lines and everything else pass.
START_UP_LINES = re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\) is called"
                            rb"|[IWE]\d{4} \d+:\d+:\d+\.\d+ +\d+ \S+:\d+\] ")

# The thread settings the frameworks read when they start (OpenMP: PyTorch, MXNet, NumPy's
# OpenBLAS; MKL: PyTorch; TensorFlow's two pools). compare and bench give every child the same.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
_PARENT_VARIABLE = "RNN_CORE_PARENT_PID"


# ---- options: a bad value is refused in one line that names the option ---------------------------
class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose mistakes are one line (not the usage block, then the error) that
    names the option, the value and the fix, then exit 2, as every other mistake is."""

    def error(self, message):
        self.exit(2, f"error: {message} (python -m {self.prog.split()[-1]} --help lists the "
                     "options)\n")

    def print_help(self, file=None):
        """--help's text, whose write may fail (argparse ignores that: the text of a --help under
        a full disk would be lost without a word)."""
        (file or sys.stdout).write(self.format_help())

    def add_argument(self, *args, **kwargs):
        """A choice is read in any case, as ``--backend`` is: ``--cell GRU`` is ``--cell gru``."""
        if "choices" in kwargs and "type" not in kwargs:
            kwargs["type"] = str.lower
        return super().add_argument(*args, **kwargs)


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


def non_negative_float(text: str) -> float:
    value = _number(text, float)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be 0 or a positive finite number, got {text!r}")
    return value


def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """``--backend``: the one framework a tool runs on."""
    parser.add_argument("--backend", default="numpy",
                        help=f"one of {', '.join(BACKEND_NAMES)} (default numpy)")


def add_backends_option(parser: argparse.ArgumentParser, default: list) -> None:
    """``--backends``: the frameworks a tool runs one after the other (read by
    :func:`rnn_core.backend.backend_names`)."""
    parser.add_argument("--backends", nargs="+", default=default,
                        help=f"any of {', '.join(BACKEND_NAMES)}, separated by spaces or commas "
                             "(default: every one installed)")


def add_device_option(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--device``: auto, cpu or gpu, as :func:`rnn_core.backend.get_backend` takes them."""
    parser.add_argument("--device", default=default, choices=DEVICES,
                        help="auto takes the GPU when the framework sees one; gpu refuses to "
                             f"run without one (default {default})")


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
                                 "anyway; default off)")


def numerics_options(args) -> dict:
    """The keyword arguments of ``get_backend`` that the numerics options give."""
    return {"precision": "tf32" if args.tf32 else "float32",
            "deterministic": getattr(args, "deterministic", False)}


def describe_numerics(ops, on_cpu: bool | None = None) -> str:
    """``'; TF32 allowed, deterministic'`` for a header line, or ``''`` for the defaults. On the
    CPU, which has no TF32, it says so: ``'; TF32 allowed (none on the CPU)'``. ``ops``: a backend
    (it knows its device) or a :class:`rnn_core.api.TrainResult` (``on_cpu`` given)."""
    on_cpu = ops.device != ops.gpu_device if on_cpu is None else on_cpu
    parts = ([f"TF32 allowed{' (none on the CPU)' * on_cpu}"] if ops.precision == "tf32" else []
             ) + (["deterministic"] if ops.deterministic else [])
    return "; " + ", ".join(parts) if parts else ""


# ---- the entry point -------------------------------------------------------------------------
class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled where Ctrl-C is: training saves its last completed epoch."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def run_main(main, argv=None) -> int:
    """Call ``main(argv)`` as a command (see the module doc). A user error or a fault prints
    ``error: ...`` (no traceback) and returns 2; Ctrl-C returns 130, SIGTERM 143, SIGHUP 129."""
    _open_closed_standard_streams()
    quiet_framework_logs(os.environ)
    backend.framework_import_context = start_up_lines_hidden
    _escape_what_stdout_cannot_show()
    sys.stdout = _NamedStdout(sys.stdout)
    _handle_termination_signals()
    import numpy as np
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            status = main(argv) or 0
        try:                    # what is still buffered: here a full disk under stdout shows
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as error:
            discard_stdout()
            raise RNNCoreError(_stdout_failed(error)) from error
        return status
    except BrokenPipeError:     # the reader went away (`| head`) and nothing was left to save
        discard_stdout()
        return 0
    except (RNNCoreError, ValueError) as error:
        return _fail(error)
    except SystemExit:          # argparse's --help, whose text may not reach a full disk
        failed = _flush_or_drop_stdout()
        if failed is not None and not isinstance(failed, BrokenPipeError):
            return _fail(_stdout_failed(failed))
        raise
    except MemoryError as error:
        return _fail(f"out of memory ({error or 'an allocation failed'}): lower --hidden, "
                     "--batch-size or --num-steps, or close other programs")
    except OSError as error:    # a fault the tool met where it had no more specific message
        if error.filename == _NamedStdout.name:     # a print, longer than the buffer or flushed
            discard_stdout()
            return _fail(_stdout_failed(error))
        where = f" ({error.filename})" if error.filename else ""
        return _fail(f"{error.strerror or error}{where}: check that file or folder, its "
                     "permissions and the free space on its disk")
    except BaseException as error:      # Ctrl-C or a signal, maybe wrapped by an extension
        interrupt = interruption(error)
        if interrupt is None:
            raise
        _say(describe_interruption(interrupt))
        return 128 + getattr(interrupt, "signum", signal.SIGINT)


def describe_interruption(interrupt: KeyboardInterrupt) -> str:
    """``'interrupted'`` for Ctrl-C, ``'stopped by SIGTERM'`` (or SIGHUP) for a signal: the
    last line :func:`run_main` prints, and what compare and bench record for the work it
    stopped."""
    signum = getattr(interrupt, "signum", signal.SIGINT)
    return "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"


def _fail(error) -> int:
    _flush_or_drop_stdout()     # what was printed before the error goes first
    _say(f"error: {error}")
    return 2


def _flush_or_drop_stdout() -> Exception | None:
    """Flush what is printed. Where stdout cannot take it, drop it (or Python tries again at
    exit, prints a traceback and exits 120) and return the error."""
    try:
        sys.stdout.flush()
        return None
    except (OSError, ValueError) as error:
        discard_stdout()
        return error


def _stdout_failed(error: Exception) -> str:
    return (f"cannot write to standard output ({_reason(error)}): check where it goes (a full "
            "disk?), or redirect it")


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass                    # stderr is gone too: the exit status is all that is left


def quiet_framework_logs(environ) -> None:
    """Set :data:`QUIET_LOGS` in ``environ`` where the user has not set them (theirs win)."""
    for name, value in QUIET_LOGS.items():
        environ.setdefault(name, value)


@contextlib.contextmanager
def start_up_lines_hidden():
    """While a framework loads (``backend.framework_import_context`` in the tools): what it writes
    to descriptor 2 passes through a pipe, as it comes, less :data:`START_UP_LINES`; only where
    TF_CPP_MIN_LOG_LEVEL is :data:`QUIET_LOGS`' (the user's own level shows every line)."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") != QUIET_LOGS["TF_CPP_MIN_LOG_LEVEL"]:
        yield
        return
    sys.stderr.flush()
    stderr = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with open(read_end, "rb") as lines:
            for line in lines:
                if not START_UP_LINES.match(line):
                    _write_all(stderr, line)
    forwarder = threading.Thread(target=forward, daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(stderr, 2)          # the pipe's last writer goes, so forward() ends
        forwarder.join(timeout=10)  # (a process the framework started may still hold it)
        if not forwarder.is_alive():
            os.close(stderr)


def _write_all(descriptor: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(descriptor, data):]
    except OSError:         # stderr is gone: nothing can be said
        pass


def _open_closed_standard_streams() -> None:
    """A standard stream that is closed (``>&-``) reads and writes /dev/null instead. Python sets
    ``sys.stdout`` to None where descriptor 1 was closed at start; by now another file may hold
    that number (libffi 3.5 keeps one open for its trampolines once ctypes loads), so such a
    stream gets a descriptor of its own. A descriptor closed later gets /dev/null in its place."""
    closed = []
    for descriptor, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode, encoding="utf-8"))
            closed.append(name)
            continue
        try:
            os.fstat(descriptor)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != descriptor:
                os.dup2(null, descriptor)
                os.close(null)
            setattr(sys, name, open(descriptor, mode, encoding="utf-8", closefd=False))
            closed.append(name)
    if "stdout" in closed:
        _say("note: standard output is closed, so nothing is printed (a --save, --plot or --json "
             "file is still written); redirect it to a file (> run.log) to keep the lines")


class _NamedStdout:
    """``sys.stdout`` of a command: a write or flush that fails raises its error with
    ``filename`` set to ``<stdout>``, so that a print that meets a full disk (one longer than the
    buffer, or flushed at once) is named as standard output's, not as some file's."""
    name = "<stdout>"

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        return self._named(self._stream.write, text)

    def flush(self):
        return self._named(self._stream.flush)

    def _named(self, call, *args):
        try:
            return call(*args)
        except OSError as error:
            error.filename = error.filename or self.name
            raise

    def __getattr__(self, attribute):       # everything else is the stream's own
        return getattr(self._stream, attribute)


def discard_stdout() -> None:
    """Send what is still to be printed to /dev/null (the reader went away)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def _escape_what_stdout_cannot_show() -> None:
    """Characters the output encoding cannot show (Chinese under PYTHONIOENCODING=ascii) are
    printed as ``\\uXXXX`` escapes: nothing is lost, the text can be decoded later, and the run
    goes on. A note says so once, with the fix."""
    stream = sys.stdout
    if getattr(stream, "errors", None) != "strict" or not hasattr(stream, "reconfigure"):
        return                  # the user chose how to handle it (PYTHONIOENCODING=...:replace)
    noted = []

    def escape(error):
        if not noted:
            noted.append(True)
            _say(f"note: the output encoding ({stream.encoding}) cannot show some characters; "
                 "they are printed as \\u escapes. Set PYTHONIOENCODING=utf-8 (or a UTF-8 "
                 "locale, LANG=C.UTF-8) to see them")
        return codecs.backslashreplace_errors(error)
    codecs.register_error("rnn_core.escape", escape)
    try:
        stream.reconfigure(errors="rnn_core.escape")
    except (ValueError, OSError):
        pass


def _handle_termination_signals() -> None:
    def terminate(signum, frame):
        raise Terminated(signum)
    for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        # Only where nothing else was set up: `nohup` ignores SIGHUP, and that must stay so.
        if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, terminate)


# ---- printing during training -----------------------------------------------------------------
class Progress:
    """A one-line progress bar on a terminal, rewritten after every epoch and erased before any
    other line is printed. Where the output is not a terminal it prints nothing.

    When standard output breaks (``| head`` exits, the terminal goes): with ``keep_going`` (a
    phrase such as "saves ck.npz") the run goes on and prints nothing more, after one note on
    stderr; without it, ``BrokenPipeError`` stops the run quietly, as any Unix tool stops."""

    def __init__(self, stream=None, width: int = 30, *, bar: bool = True,
                 keep_going: str | None = None):
        self.stream = stream or sys.stdout
        self.active = bar and self.stream.isatty()
        self.width = width
        self.shown = False
        self.keep_going = keep_going
        self.broken = False

    def update(self, result, num_epochs: int) -> None:
        if not self.active:
            return
        done = int(self.width * result.epoch / num_epochs)
        self._write(f"\r[{'#' * done}{'.' * (self.width - done)}] epoch {result.epoch}/"
                    f"{num_epochs}, perplexity {result.perplexity:.2f}  ")
        self.shown = True

    def print(self, line: str) -> None:
        if self.shown:
            self._write("\r\033[K")      # erase the bar, then print the line
            self.shown = False
        self._write(line + "\n")

    def close(self) -> None:
        if self.shown:
            self._write("\r\033[K")

    def _write(self, text: str) -> None:
        if self.broken:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError) as error:      # ValueError: the stream was closed
            if self.keep_going is None:
                if isinstance(error, BrokenPipeError):
                    raise
                raise RNNCoreError(_stdout_failed(error)) from error
            self.broken = True
            if self.stream is sys.stdout:
                discard_stdout()
            _say(f"note: cannot write to standard output any more ({_reason(error)}); "
                 f"training goes on and {self.keep_going}, printing nothing more")


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


# ---- settings that belong to the command, not the library ---------------------------------------
def keep_freed_buffers(ops) -> bool:
    """Ask glibc to keep large freed buffers for the next training step, for the backends whose
    arrays come from ``malloc`` (``ops.malloc_arrays``: NumPy, PyTorch). Process-wide, so only
    the command-line tools call it (backends/_allocator.py says why). Returns whether it did."""
    if not getattr(ops, "malloc_arrays", False):
        return False
    from rnn_core.backends._allocator import keep_freed_buffers as keep  # ops loaded the package
    return keep()


def available_memory() -> int | None:
    """Bytes of memory this machine can give a new allocation without swapping, or None."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(needed: int, what: str, fix: str) -> None:
    """Refuse, before allocating, a model that cannot fit in this machine's memory."""
    available = available_memory()
    if available is not None and needed > available:
        raise RNNCoreError(f"{what} needs about {_gigabytes(needed)} of memory and this machine "
                           f"has {_gigabytes(available)} available: {fix}")


def _gigabytes(num_bytes: int) -> str:
    return f"{num_bytes / 1e9:,.1f} GB" if num_bytes >= 1e8 else f"{num_bytes / 1e6:,.0f} MB"


# ---- child processes (compare, bench) ----------------------------------------------------------
def available_cpus() -> int:
    """The logical CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


PROGRESS = "progress "     # a child's line ``progress {json}`` reports progress as it runs


def run_child(module: str, spec: dict, timeout: float, on_progress=None,
              threads: int | None = None) -> dict:
    """Run ``python -m module --child SPEC`` in a fresh process (one framework per process, its
    own threads and memory) and return the JSON it prints last, or ``{..., "error": ...}`` with
    the child's whole error output. Lines ``progress {json}`` that it prints before are passed to
    ``on_progress(record)`` as they come. Every child gets ``threads`` in
    :data:`THREAD_VARIABLES`. When the parent is interrupted or terminated (or killed, on Linux:
    :func:`become_child`), the child is ended too."""
    command = [sys.executable, "-m", module, "--child", json.dumps(spec)]
    environment = {**os.environ, _PARENT_VARIABLE: str(os.getpid())}
    if threads is not None:
        environment.update({name: str(threads) for name in THREAD_VARIABLES})
    expired = threading.Event()
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True,
                                   encoding="utf-8", errors="replace",
                                   stdin=subprocess.DEVNULL, env=environment)

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
        except BaseException:   # Ctrl-C, SIGTERM, or a failing callback: leave no child behind
            process.kill()
            process.wait()
            raise
        finally:
            timer.cancel()
        errors.seek(0)
        stderr = errors.read()
    if expired.is_set():
        return {**spec, "error": f"took longer than {timeout:g} s"}
    if process.returncode == 0 and lines:
        try:
            return json.loads(lines[-1])
        except ValueError:
            pass
    return {**spec, "error": child_error(process.returncode, stderr)}


def check_gpus(module: str, names: list, args) -> None:
    """``--device gpu`` in compare and bench: refuse, before anything trains, a run in which
    nothing would run on a GPU (only NumPy, which has no GPU build), or a backend whose framework
    sees no GPU, with :func:`rnn_core.get_backend`'s own line. Each framework is asked in a
    process of its own (``module``'s child, which hands a ``probe`` spec to :func:`probe_gpu`), as
    it will train; any other failure there is left to that backend's own child to report."""
    from rnn_core.backend import has, no_gpu_build
    from rnn_core.errors import DeviceUnavailable
    if not any(has(name, "gpu") for name in names):
        raise no_gpu_build(names[0])
    for name in names:
        if has(name, "gpu"):
            outcome = run_child(module, {"backend": name, "probe": True,
                                         "numerics": numerics_options(args)},
                                timeout=600, threads=args.threads)
            if "device_error" in outcome:
                raise DeviceUnavailable(outcome["device_error"])


def probe_gpu(spec: dict) -> dict:
    """In a child: the GPU that ``spec['backend']`` takes, or why it has none."""
    from rnn_core.backend import get_backend
    from rnn_core.errors import DeviceUnavailable
    try:
        return {"device": get_backend(spec["backend"], "gpu", **spec["numerics"]).device}
    except DeviceUnavailable as error:
        return {"device_error": str(error)}


def child_error(returncode: int, stderr: str) -> str:
    """A failed child's whole error output, or what its exit status says where it printed none."""
    text = stderr.strip()
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
        died = f"the child process was killed by signal {-returncode} {name}".rstrip()
        if -returncode == signal.SIGKILL:
            died += " (out of memory?)"
        return f"{text}\n{died}" if text else died
    return text or f"the child process exited with status {returncode} and printed nothing"


def last_line(error: str) -> str:
    """The line of a child's error that fits in a table cell: its last (the exception), without
    the ``error:`` that :func:`run_main` puts before a user's mistake."""
    line = error.strip().splitlines()[-1] if error.strip() else "failed"
    return line.removeprefix("error: ")


def become_child() -> None:
    """In a child of :func:`run_child`: end with the parent (Linux), even if it is killed."""
    parent = os.environ.get(_PARENT_VARIABLE)
    if not parent or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):      # the parent died before the line above
        raise Terminated(signal.SIGTERM)
