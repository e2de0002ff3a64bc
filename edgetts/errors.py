"""User-facing errors.

Every failure a user can cause (bad source, corrupt file, missing package, no network) is raised
as an :class:`EdgeTTSError` whose message is one line saying what went wrong *and what to do*.
The CLI prints exactly that line and exits non-zero; anything else is a bug and keeps its
traceback so that it gets reported.
"""

from concurrent.futures import CancelledError


class EdgeTTSError(Exception):
    """A failure the user can act on; ``str(err)`` is the whole one-line message. ``code`` is
    the machine-readable name the services answer with (HTTP error bodies, ROS 2 answers)."""

    code = "bad_request"


class ModelNotFoundError(EdgeTTSError):
    """The named model is neither in the store nor a known source."""


class ConversionError(EdgeTTSError):
    """Converting a source to a store entry failed; nothing was left in the store."""


class CorruptModelError(EdgeTTSError):
    """A store entry's files do not match its manifest (truncated, edited, missing)."""


class UnsupportedPrecisionError(EdgeTTSError):
    """The model's precision cannot run on this device (e.g. FP8 on a Jetson Orin or a CPU)."""


class NoFeasiblePlanError(EdgeTTSError):
    """No configuration meets the latency target, or the energy / memory caps exclude them all."""

    code = "infeasible"


class DeadlineUnreachableError(NoFeasiblePlanError):
    """Nothing fits in the time a request has left (after the work queued ahead of it): it is
    refused at once rather than answered late. ``fastest_ms``: the fastest configuration's
    predicted latency, so a caller knows what target would be met."""

    code = "deadline_unreachable"

    def __init__(self, message: str, fastest_ms: float):
        super().__init__(message)
        self.fastest_ms = fastest_ms


class RequestCancelledError(EdgeTTSError, CancelledError):
    """The caller cancelled the request (a client disconnected, a ROS goal was cancelled) while
    it was decoding; a subclass of ``concurrent.futures.CancelledError``, what a cancelled
    request that had not started raises, so one ``except`` covers both."""

    code = "cancelled"


class EngineClosedError(EdgeTTSError):
    """The engine was closed (the server is shutting down) before the request could run."""

    code = "shutting_down"


class NoAnswerError(EdgeTTSError):
    """No sample gave an answer that could be read: a failure, never a silent null."""

    code = "no_answer"


class DeadlineMissedError(EdgeTTSError):
    """The answer came after the deadline (the device was slower than its profile said)."""

    code = "deadline_missed"
