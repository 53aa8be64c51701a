"""Errors a user can cause and fix. The command-line tools print their message, without a
traceback, and exit with status 2; library callers can catch them by the built-in class too."""
from __future__ import annotations


class RNNCoreError(Exception):
    """A mistake in what the user asked for: the message names the value and the fix."""


class BackendUnavailable(RNNCoreError, ImportError):
    """The backend's framework is not installed (or does not import)."""


class DeviceUnavailable(RNNCoreError, RuntimeError):
    """A GPU was asked for where the framework sees none."""


class CorpusError(RNNCoreError, ValueError):
    """A corpus that is missing, unreadable, empty, or too short for one batch."""


class CorpusTooShort(CorpusError):
    """A corpus too short for one batch. ``facts`` is the message without the advice, for a tool
    whose options differ (``bench`` has no ``--max-chars``) to give its own."""

    def __init__(self, facts: str, fix: str = ""):
        super().__init__(f"{facts}. {fix}" if fix else facts)
        self.facts = facts


class VocabularyError(RNNCoreError, ValueError):
    """Text with characters the vocabulary has never seen (and it has no ``<unk>``)."""


class TrainingDiverged(RNNCoreError, FloatingPointError):
    """The loss, the perplexity or the weights became NaN or infinite. ``facts`` is the message
    without the advice, for the training loop to add what it saved, or that a resumed run's
    settings are its checkpoint's."""

    def __init__(self, facts: str, fix: str = ""):
        super().__init__(f"{facts}: {fix}" if fix else facts)
        self.facts, self.fix = facts, fix


class OutputError(RNNCoreError, OSError):
    """An output file (``--save``, ``--plot``, ``--json``) that cannot or must not be written: a
    folder, a device, one of the run's inputs, no permission, no space left."""


def interruption(error: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C, SIGTERM or SIGHUP behind ``error``: ``error`` itself, or an exception it was
    raised from or during; ``None`` for every other error.

    A signal's handler raises in whatever Python code runs when the signal arrives, also in code
    that a C extension called back (CI once saw NumPy ask a JAX scalar type for its hash); the
    extension then reports ``SystemError`` raised from the ``KeyboardInterrupt``."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
