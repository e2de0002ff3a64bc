"""Run-time latency correction: what runs measure, fed back into what the planner predicts.

A profile is measured once; the device it describes then warms, throttles, changes clocks and
shares its cores with perception and control. So every planned run compares its measured
prefill and decode times with the profile's prediction for exactly what it ran (its prompt, and
per step the rows still decoding and the context), and the planner scales the profile's
predictions by a per-model factor per phase.

The factor is the median of the last WINDOW ratios (measured / predicted), bounded to
[MIN_FACTOR, MAX_FACTOR], and applies only once MIN_RUNS runs are in: a median ignores a single
outlier (one run that a page fault or a burst of other load slowed), a mean would not. It is a
plain sliding median rather than an exponentially weighted one: with a window this short the
window *is* the forgetting, and it stays explainable ("the median of the last 16 runs").

Drift: when the last DRIFT_RUNS decode ratios all fall outside the profile's own residual band
(the spread of its held-out errors), the device is no longer the one profiled; answers say
``drift`` and the advice is to re-profile. The state is saved next to the profile
(``profiles/<device>.correction.yaml``) so that a restarted service starts corrected.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..atomic import write_text_atomic
from ..profiling.latency_model import Fit, LatencyModel

WINDOW = 16
MIN_RUNS = 3
MIN_FACTOR, MAX_FACTOR = 0.5, 4.0
DRIFT_RUNS = 5
SAVE_EVERY_S = 10.0  # a file write with fsync costs ~3 ms: not on every request's path
MIN_BAND = 0.10  # ± 10 %: runs of one configuration differ this much on a quiet machine
MIN_PREDICTED_S = 1e-3  # a phase predicted shorter than this says nothing about the device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Factors:
    prefill: float = 1.0
    decode: float = 1.0
    runs: int = 0  # how many runs they come from (0: none yet, the profile as measured)

    def to_dict(self) -> dict[str, float]:
        return {"prefill": round(self.prefill, 4), "decode": round(self.decode, 4), "runs": self.runs}


def corrected(latency: LatencyModel, factors: Factors) -> LatencyModel:
    """The profile's latency model with every prediction scaled by ``factors`` (the fits are
    linear in their coefficients, so scaling them scales the mean and every quantile alike)."""
    if factors.prefill == 1.0 and factors.decode == 1.0:
        return latency
    return LatencyModel(_scaled(latency.prefill, factors.prefill), _scaled(latency.decode, factors.decode))


def _scaled(fit: Fit, factor: float) -> Fit:
    return Fit(fit.form, fit.features, fit.coefficients * factor, fit.residual, fit.candidates)


def predicted_decode_s(latency: LatencyModel, prompt_tokens: int, steps: Sequence[int]) -> float:
    """The profile's (mean) decode time for a run whose sample i took ``steps[i]`` model steps:
    at step t the batch holds the samples with more than t steps, over a context of
    ``prompt_tokens + t``, as the generator drops finished rows."""
    if not steps or max(steps) <= 0:
        return 0.0
    lengths = np.asarray(steps)
    t = np.arange(int(lengths.max()))
    rows = (lengths[None, :] > t[:, None]).sum(axis=1)
    return float(np.sum(latency.step_s(rows, prompt_tokens + t)))


def ratios(
    latency: LatencyModel, prompt_tokens: int, prefill_s: float, decode_s: float, steps: Sequence[int]
) -> tuple[float | None, float | None]:
    """measured / predicted for the prefill and for the decode steps of one run (None where the
    phase was too short to say anything)."""
    predicted_prefill = float(latency.prefill_s(prompt_tokens))
    predicted_decode = predicted_decode_s(latency, prompt_tokens, steps)
    prefill = prefill_s / predicted_prefill if predicted_prefill >= MIN_PREDICTED_S else None
    decode = decode_s / predicted_decode if predicted_decode >= MIN_PREDICTED_S else None
    return prefill, decode


def band(latency: LatencyModel) -> tuple[float, float]:
    """measured / predicted within which the profile's own held-out points fell: ± their
    largest relative error, and never narrower than ± MIN_BAND (run-to-run noise)."""
    half = max(latency.decode.residual.get("max", MIN_BAND), MIN_BAND)
    return 1 - half, 1 + half


class Correction:
    """Per-model ratios and the factors they give; one per Engine (thread-safe enough: appends
    and reads of deques under the GIL, and one decode worker writes)."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._saved_at = float("-inf")
        self._prefill: dict[str, deque[float]] = {}
        self._decode: dict[str, deque[float]] = {}

    def observe(self, model: str, prefill: float | None, decode: float | None) -> None:
        for history, value in ((self._prefill, prefill), (self._decode, decode)):
            if value is not None and np.isfinite(value) and value > 0:
                history.setdefault(model, deque(maxlen=WINDOW)).append(float(value))

    def factors(self, model: str) -> Factors:
        prefill, decode = self._prefill.get(model, ()), self._decode.get(model, ())
        return Factors(_median(prefill), _median(decode), max(len(prefill), len(decode)))

    def drifting(self, model: str, latency: LatencyModel) -> bool:
        """The last DRIFT_RUNS decode ratios all outside the profile's residual band."""
        recent = list(self._decode.get(model, ()))[-DRIFT_RUNS:]
        low, high = band(latency)
        return len(recent) == DRIFT_RUNS and all(not low <= r <= high for r in recent)

    def to_dict(self) -> dict:
        models = sorted(set(self._prefill) | set(self._decode))
        return {
            "updated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "window": WINDOW,
            "models": {
                m: {
                    "factors": self.factors(m).to_dict(),
                    "prefill_ratios": [round(r, 4) for r in self._prefill.get(m, ())],
                    "decode_ratios": [round(r, 4) for r in self._decode.get(m, ())],
                }
                for m in models
            },
        }

    def save(self, force: bool = False) -> None:
        """Write the state next to the profile, at most every SAVE_EVERY_S unless ``force`` (the
        engine forces it on close): a restart loses at most those seconds of ratios."""
        if self.path is None or (not force and time.monotonic() - self._saved_at < SAVE_EVERY_S):
            return
        write_text_atomic(self.path, yaml.safe_dump(self.to_dict(), sort_keys=False))
        self._saved_at = time.monotonic()

    @classmethod
    def load(cls, path: Path) -> Correction:
        """The saved state, or a fresh one where there is none. A damaged file must not stop
        every plan: it is moved aside to ``<name>.damaged`` (kept, not lost) with a warning, and
        the correction starts afresh, which costs only MIN_RUNS runs to rebuild."""
        correction = cls(path)
        if not path.exists():
            return correction
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for model, entry in (data.get("models") or {}).items():
                correction._prefill[model] = deque(
                    map(float, entry.get("prefill_ratios") or []), maxlen=WINDOW
                )
                correction._decode[model] = deque(map(float, entry.get("decode_ratios") or []), maxlen=WINDOW)
        except (yaml.YAMLError, AttributeError, TypeError, ValueError, UnicodeDecodeError) as err:
            aside = path.with_name(path.name + ".damaged")
            path.replace(aside)
            log.warning(
                "%s is not a latency correction (%s): moved to %s, starting afresh",
                path, str(err).splitlines()[0], aside.name,
            )  # fmt: skip
            return cls(path)
        return correction

    def forget(self, model: str) -> None:
        """Drop ``model``'s ratios: its profile was just measured again, so the profile itself
        now holds what the ratios were correcting for."""
        self._prefill.pop(model, None)
        self._decode.pop(model, None)
        self._saved_at = float("-inf")  # the next save writes at once


def _median(history) -> float:
    if len(history) < MIN_RUNS:
        return 1.0
    return float(np.clip(np.median(list(history)), MIN_FACTOR, MAX_FACTOR))
