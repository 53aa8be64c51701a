"""Errors a user can cause and fix. The command-line tools print their message, without a
traceback, and exit with status 2; library callers can catch them by the built-in class too."""


class RNNCoreError(Exception):
    """A mistake in what the user asked for: the message names the value and the fix."""


class BackendUnavailable(RNNCoreError, ImportError):
    """The backend's framework is not installed (or does not import)."""


class DeviceUnavailable(RNNCoreError, RuntimeError):
    """A GPU was asked for where the framework sees none."""


class CorpusError(RNNCoreError, ValueError):
    """A corpus that is missing, unreadable, empty, or too short for one batch."""


class VocabularyError(RNNCoreError, ValueError):
    """Text with characters the vocabulary has never seen (and it has no ``<unk>``)."""


class TrainingDiverged(RNNCoreError, FloatingPointError):
    """The loss became NaN or infinite."""


class OutputError(RNNCoreError, OSError):
    """An output file (``--save``, ``--plot``, ``--json``) that cannot or must not be written: a
    folder, a device, one of the run's inputs, no permission, no space left."""
