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
    return _quantity(text, _DURATION, _UNIT_SECONDS, "duration", ("ms", "s"), "500ms, 0.5s, 2s or 1m")


def parse_energy(text: str | None) -> float | None:
    """Joules in ``text`` (None: no cap); a one-line error that shows the accepted forms otherwise."""
    if text is None:
        return None
    return _quantity(text, _ENERGY, _UNIT_JOULES, "energy", ("J", "mJ"), "5J or 500mJ", "energy cap")


def _quantity(
    text: str, pattern: re.Pattern, scale: dict[str, float], name: str, suggested: tuple[str, str],
    forms: str, limit_name: str | None = None,
) -> float:  # fmt: skip
    """``text`` read by ``pattern`` (number, unit) in the base unit; a bare number is named as
    missing its unit (with ``suggested`` units), anything else shows the accepted ``forms``."""
    match = pattern.match(str(text))
    if not match:
        if _BARE.match(str(text)):
            value = str(text).strip()
            raise EdgeTTSError(
                f"the {name} {text!r} has no unit: add one ({value}{suggested[0]}, {value}{suggested[1]})"
            )
        raise EdgeTTSError(f"cannot read the {name} {text!r}: write it like {forms}")
    amount = float(match.group(1)) * scale[match.group(2).lower()]
    if amount <= 0:
        raise EdgeTTSError(f"the {limit_name or name} {text!r} is not positive")
    return amount
