"""User-facing errors.

Every failure a user can cause (bad source, corrupt file, missing package, no network) is raised
as an :class:`EdgeTTSError` whose message is one line saying what went wrong *and what to do*.
The CLI prints exactly that line and exits non-zero; anything else is a bug and keeps its
traceback so that it gets reported.
"""


class EdgeTTSError(Exception):
    """A failure the user can act on; ``str(err)`` is the whole one-line message."""


class ModelNotFoundError(EdgeTTSError):
    """The named model is neither in the store nor a known source."""


class ConversionError(EdgeTTSError):
    """Converting a source to a store entry failed; nothing was left in the store."""


class CorruptModelError(EdgeTTSError):
    """A store entry's files do not match its manifest (truncated, edited, missing)."""


class UnsupportedPrecisionError(EdgeTTSError):
    """The model's precision cannot run on this device (e.g. FP8 on a Jetson Orin or a CPU)."""
