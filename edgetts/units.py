"""Quantities as users write them on the command line: durations (``500ms``, ``0.5s``, ``2s``,
``1m``) and energies (``5J``, ``500mJ``).

The unit is mandatory: ``--latency 500`` could mean 500 ms or 500 s, and guessing wrong by a
factor of a thousand plans a robot's answer for the wrong deadline, so a bare number is refused
with the forms that are accepted.
"""

from __future__ import annotations

import re

from .errors import EdgeTTSError

_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+))"
_DURATION = re.compile(rf"^\s*{_NUMBER}\s*(ms|s|m|min)\s*$", re.IGNORECASE)
_ENERGY = re.compile(rf"^\s*{_NUMBER}\s*(mj|j)\s*$", re.IGNORECASE)
_BARE = re.compile(rf"^\s*{_NUMBER}\s*$")
_UNIT_SECONDS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0}
_UNIT_JOULES = {"mj": 1e-3, "j": 1.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``; a one-line error that shows the accepted forms otherwise."""
    match = _DURATION.match(str(text))
    if not match:
        if _BARE.match(str(text)):
            value = str(text).strip()
            raise EdgeTTSError(f"the duration {text!r} has no unit: add one ({value}ms, {value}s)")
        raise EdgeTTSError(f"cannot read the duration {text!r}: write it like 500ms, 0.5s, 2s or 1m")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if seconds <= 0:
        raise EdgeTTSError(f"the duration {text!r} is not positive")
    return seconds


def parse_energy(text: str | None) -> float | None:
    """Joules in ``text`` (None: no cap); a one-line error that shows the accepted forms otherwise."""
    if text is None:
        return None
    match = _ENERGY.match(str(text))
    if not match:
        if _BARE.match(str(text)):
            value = str(text).strip()
            raise EdgeTTSError(f"the energy {text!r} has no unit: add one ({value}J, {value}mJ)")
        raise EdgeTTSError(f"cannot read the energy {text!r}: write it like 5J or 500mJ")
    joules = float(match.group(1)) * _UNIT_JOULES[match.group(2).lower()]
    if joules <= 0:
        raise EdgeTTSError(f"the energy cap {text!r} is not positive")
    return joules
