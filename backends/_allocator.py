"""Large buffers kept for reuse between training steps, for the backends whose arrays come from
the C library's ``malloc`` (NumPy and PyTorch on the CPU; TensorFlow and MXNet pool their own).

By default glibc serves every buffer over 128 KiB to 32 MiB with a fresh ``mmap`` once it has
seen one freed, and hands freed memory at the top of the heap back to the OS. A training step
allocates the same buffers every time (logits ``(num_steps * batch, vocab)`` are 4.6 MB at the
Jay Chou settings), so each step pays again for the kernel to map and zero them page by page.
Raising both thresholds keeps them: the first step faults the pages in, later steps reuse them.
This is the CPU counterpart of the "buffers allocated once" that a compiled graph plans.

The setting is process-wide, so the library never makes it: the command-line tools do
(``rnn_core.cli.keep_freed_buffers``, for a backend whose ``malloc_arrays`` is true, on the fast
path: ``run``, and the children of ``compare`` and ``bench``). A notebook can call
:func:`keep_freed_buffers` itself, or set ``MALLOC_MMAP_THRESHOLD_=33554432
MALLOC_TRIM_THRESHOLD_=268435456`` in the environment before starting Python.
"""
import ctypes
import sys

M_TRIM_THRESHOLD = -1          # glibc's <malloc.h> parameter numbers
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20      # glibc's largest allowed value (on 64-bit): buffers up to 32 MiB
TRIM_THRESHOLD = 256 << 20     # keep up to 256 MiB of freed memory instead of returning it

_kept = None


def keep_freed_buffers() -> bool:
    """Ask glibc to keep freed buffers for reuse (once per process). Returns whether it did;
    elsewhere (macOS, Windows, musl) it changes nothing and returns False."""
    global _kept
    if _kept is None:
        _kept = False
        if sys.platform.startswith("linux"):
            try:
                mallopt = ctypes.CDLL(None).mallopt
            except (OSError, AttributeError):
                return _kept
            mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
            _kept = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                         and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _kept
