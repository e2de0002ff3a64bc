"""Durations as users write them: ``500ms``, ``0.5s``, ``2s``, ``1m`` (a bare number is seconds)."""

from __future__ import annotations

import re

from .errors import EdgeTTSError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``; a one-line error that shows the accepted forms otherwise."""
    match = _DURATION.match(str(text))
    if not match:
        raise EdgeTTSError(f"cannot read the duration {text!r}: write it like 500ms, 0.5s, 2s or 1m")
    seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise EdgeTTSError(f"the duration {text!r} is not positive")
    return seconds
