"""Run a command-line tool with operating-system faults injected (a helper of the tests):

    python tests/faults.py FAULT[;FAULT...] MODULE [ARGS...]

The tool runs as ``python -m MODULE ARGS`` would, through its own ``__main__``, with these faults:

* ``enospc-after=N``: after N successful ``fsync`` calls on regular files, every further one
  fails with ENOSPC, as a disk that fills up during training does (the first N saves succeed);
* ``free-bytes=N``: every disk reports N bytes free;
* ``interrupt-at-epoch=N``: Ctrl-C arrives during epoch N;
* ``terminate-in-extension-at-epoch=N``: SIGTERM arrives during epoch N while a C extension runs
  Python code of ours, and the extension reports it as ``SystemError`` raised from it;
* ``signal-at-child=N:NAME``: signal NAME (SIGINT, as Ctrl-C, or SIGTERM) arrives while compare
  or bench runs its Nth child process (``cli.run_child``): at the child's first progress line
  where the tool follows its progress (compare), else as the child starts (bench);
* ``child-fails=N``: compare's or bench's Nth child process fails at once, with the error
  ``error: the child failed (injected)``;
* ``mallopt-log=PATH``: glibc's ``mallopt`` is replaced by one that appends its arguments to
  PATH (and changes nothing).
"""
import ctypes
import errno
import os
import runpy
import signal
import stat
import sys


def fail(code, path=None):
    raise OSError(code, os.strerror(code), path)


def enospc_after(count):
    real, calls = os.fsync, [0]

    def fsync(descriptor):
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            calls[0] += 1
            if calls[0] > int(count):
                fail(errno.ENOSPC)
        return real(descriptor)
    os.fsync = fsync


def free_bytes(count):
    import shutil
    real = shutil.disk_usage

    def disk_usage(path):
        total, used, _ = real(path)
        return type(real(path))(total, used, int(count))
    shutil.disk_usage = disk_usage


def raise_at_epoch(epoch, error):
    from rnn_core import train
    real = train.train_epoch

    def train_epoch(*args, **kwargs):
        if args[7] == int(epoch):                # train_epoch(ops, epoch_fn, ..., rng, epoch)
            raise error()
        return real(*args, **kwargs)
    train.train_epoch = train_epoch


def interrupt_at_epoch(epoch):
    raise_at_epoch(epoch, KeyboardInterrupt)


def terminate_in_extension_at_epoch(epoch):
    def error():
        from rnn_core.cli import Terminated
        try:
            raise Terminated(signal.SIGTERM)
        except Terminated as interrupt:          # as C code reports what its callback raised
            raise SystemError("<function __numpy_dtype__> returned a result with an exception "
                              "set") from interrupt
    raise_at_epoch(epoch, error)


def signal_at_child(value):
    from rnn_core import cli
    number, name = value.split(":")
    real, calls = cli.run_child, [0]

    def send():
        os.kill(os.getpid(), getattr(signal, name))

    def run_child(module, spec, timeout, on_progress=None, threads=None):
        calls[0] += 1
        if calls[0] != int(number):
            return real(module, spec, timeout, on_progress, threads)
        if on_progress is None:
            send()
            return real(module, spec, timeout, on_progress, threads)
        sent = []

        def progress(record):
            if not sent:
                sent.append(True)
                send()
            on_progress(record)
        return real(module, spec, timeout, progress, threads)
    cli.run_child = run_child


def child_fails(value):
    from rnn_core import cli
    real, calls = cli.run_child, [0]

    def run_child(module, spec, timeout, on_progress=None, threads=None):
        calls[0] += 1
        if calls[0] == int(value):
            return {**spec, "error": "error: the child failed (injected)"}
        return real(module, spec, timeout, on_progress, threads)
    cli.run_child = run_child


def mallopt_log(path):
    real = ctypes.CDLL

    class Recording:
        def __init__(self, library):
            self.library = library

        def __getattr__(self, name):
            if name != "mallopt":
                return getattr(self.library, name)

            def mallopt(parameter, value):
                with open(path, "a") as log:
                    log.write(f"{parameter} {value}\n")
                return 1
            return mallopt

    def cdll(name, *args, **kwargs):
        library = real(name, *args, **kwargs)
        return Recording(library) if name is None else library
    ctypes.CDLL = cdll


FAULTS = {"enospc-after": enospc_after, "free-bytes": free_bytes,
          "interrupt-at-epoch": interrupt_at_epoch,
          "terminate-in-extension-at-epoch": terminate_in_extension_at_epoch,
          "signal-at-child": signal_at_child, "child-fails": child_fails,
          "mallopt-log": mallopt_log}

if __name__ == "__main__":
    faults, module, *arguments = sys.argv[1:]
    sys.path[0] = os.getcwd()          # as `python -m` has it, not this file's folder
    for fault in filter(None, faults.split(";")):
        name, _, value = fault.partition("=")
        FAULTS[name](value)
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
