"""The fitted latency model: prefill time over prompt length, decode-step time over batch and context.

Forms start from EdgeReasoning's (prefill ``a·P² + b·P + c`` over a padded length; each decode
token ``n + m·context``) plus a batch term, and the profile keeps whichever form predicts
*held-out* points best (leave-one-out), because on a CPU the batch cost is not the GPU's nearly
free ``1 + 0.045·N`` and the best form differs per device.

Every form is linear in its coefficients over monomials ``N^a · c^b`` (b ≤ 1 for decode), so a
whole run — the sum of ``B + A`` steps over a growing context — has a closed form and the planner
can predict hundreds of configurations in microseconds.

Fitting minimises *relative* error (the planner's margins are relative) by least squares with a
non-negativity rule written here by hand (numpy has no NNLS and scipy is not a runtime
dependency): a coefficient that comes out negative is dropped and the rest refitted, so every
prediction stays positive and monotone in length, batch and context.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EdgeTTSError

PAD = 128  # EdgeReasoning's padding of the prompt to the tensor-core tile

# Prefill forms: feature columns of the prompt length L.
PREFILL_FORMS: dict[str, tuple[str, ...]] = {
    "linear": ("1", "L"),
    "quadratic": ("1", "L", "L^2"),
    "padded-quadratic": ("1", "P", "P^2"),
}
# Decode-step forms: feature columns of batch N and context c (tokens already in the cache).
DECODE_FORMS: dict[str, tuple[str, ...]] = {
    "batch-linear": ("1", "N", "N*c"),
    "batch-linear+context": ("1", "N", "c", "N*c"),
    "batch-quadratic": ("1", "N", "N^2", "N*c"),
}
QUANTILES = (0.5, 0.9, 0.95, 0.99)
FORM_TIE = 1e-9  # leave-one-out MAPEs closer than this are a tie


def prefill_features(names: tuple[str, ...], length: np.ndarray) -> np.ndarray:
    length = np.asarray(length, dtype=np.float64)
    padded = np.ceil(length / PAD) * PAD
    columns = {"1": np.ones_like(length), "L": length, "L^2": length**2, "P": padded, "P^2": padded**2}
    return np.stack([columns[n] for n in names], axis=-1)


def decode_features(names: tuple[str, ...], batch: np.ndarray, context: np.ndarray) -> np.ndarray:
    batch, context = np.broadcast_arrays(np.asarray(batch, np.float64), np.asarray(context, np.float64))
    columns = {"1": np.ones_like(batch), "N": batch, "N^2": batch**2, "c": context, "N*c": batch * context}
    return np.stack([columns[n] for n in names], axis=-1)


def decode_sum_features(names: tuple[str, ...], batch, start, steps) -> np.ndarray:
    """Features summed over ``steps`` decode steps at contexts ``start, start+1, …``: context
    enters every form linearly, so the sum needs only ``Σc = steps·start + steps(steps−1)/2``."""
    batch, start, steps = np.broadcast_arrays(*(np.asarray(x, np.float64) for x in (batch, start, steps)))
    context_sum = steps * start + steps * (steps - 1) / 2
    columns = {
        "1": steps,
        "N": batch * steps,
        "N^2": batch**2 * steps,
        "c": context_sum,
        "N*c": batch * context_sum,
    }
    return np.stack([columns[n] for n in names], axis=-1)


@dataclass
class Fit:
    """One fitted phase (prefill or decode): the winning form, its coefficients, the spread of
    its held-out relative errors, and the leave-one-out error of every form tried."""

    form: str
    features: tuple[str, ...]
    coefficients: np.ndarray
    residual: dict[str, float]  # held-out error summary, see residual_summary
    candidates: dict[str, float]  # form -> leave-one-out MAPE

    def to_dict(self) -> dict[str, object]:
        return {
            "form": self.form,
            "features": list(self.features),
            "coefficients": [float(f"{c:.6g}") for c in self.coefficients],
            "residual": {k: round(v, 5) for k, v in self.residual.items()},
            "candidates": {k: round(v, 5) for k, v in self.candidates.items()},
        }

    @classmethod
    def from_dict(cls, data: dict, known: dict[str, tuple[str, ...]], where: str) -> Fit:
        try:
            form = str(data["form"])
            features = tuple(str(f) for f in data["features"])
            coefficients = np.asarray([float(c) for c in data["coefficients"]], dtype=np.float64)
            residual = {str(k): float(v) for k, v in (data.get("residual") or {}).items()}
            candidates = {str(k): float(v) for k, v in (data.get("candidates") or {}).items()}
        except (KeyError, TypeError, ValueError) as err:
            raise EdgeTTSError(
                f"{where}: malformed latency fit ({err}); run `edgetts profile` again"
            ) from None
        allowed = {f for names in known.values() for f in names}
        if len(features) != len(coefficients) or not set(features) <= allowed:
            raise EdgeTTSError(
                f"{where}: latency fit has features {list(features)} with {len(coefficients)} coefficients; "
                "run `edgetts profile` again"
            )
        return cls(form, features, coefficients, residual, candidates)

    def margin(self, quantile: float) -> float:
        """Relative margin to add for an upper-quantile prediction (0 for the mean)."""
        if quantile <= 0.5:
            return 0.0
        key = f"q{round(quantile * 100)}"
        return max(0.0, self.residual.get(key, self.residual.get("q99", 0.0)))


def fit_nonnegative(features: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Least squares on relative error with every coefficient ≥ 0 (see the module docstring)."""
    weighted = features / measured[:, None]
    active = list(range(features.shape[1]))
    coefficients = np.zeros(features.shape[1])
    while active:
        solution, *_ = np.linalg.lstsq(weighted[:, active], np.ones(len(measured)), rcond=None)
        if (solution >= 0).all():
            coefficients[active] = solution
            return coefficients
        active = [a for a, value in zip(active, solution, strict=True) if value >= 0]
    return coefficients


def _held_out_predictions(features: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Each point predicted by a fit on all the others (leave-one-out)."""
    predicted = np.empty(len(measured))
    for i in range(len(measured)):
        keep = np.arange(len(measured)) != i
        predicted[i] = features[i] @ fit_nonnegative(features[keep], measured[keep])
    return predicted


def residual_summary(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """``mape``/``max``: |predicted − measured| / measured. ``qNN``: quantiles of how much slower
    reality was than predicted (measured / predicted − 1), the margin an upper-quantile
    prediction adds."""
    predicted, measured = np.asarray(predicted, np.float64), np.asarray(measured, np.float64)
    error = np.abs(predicted - measured) / measured
    slower = measured / predicted - 1
    summary = {"mape": float(np.mean(error)), "max": float(np.max(error))}
    for q in QUANTILES:
        summary[f"q{round(q * 100)}"] = float(np.quantile(slower, q))
    return summary


def choose_fit(forms: dict[str, tuple[str, ...]], columns, measured: np.ndarray) -> Fit:
    """Fit every form, keep the one with the lowest leave-one-out MAPE; ``columns(names)`` gives
    a form's feature matrix. Forms with more coefficients than points minus one are skipped."""
    measured = np.asarray(measured, dtype=np.float64)
    if len(measured) < 3 or (measured <= 0).any():
        raise EdgeTTSError(f"cannot fit a latency model to {len(measured)} points; measure at least 3")
    scored = {}
    for form, names in forms.items():
        if len(names) >= len(measured):
            continue
        features = columns(names)
        predicted = _held_out_predictions(features, measured)
        scored[form] = (float(np.mean(np.abs(predicted / measured - 1))), names, features, predicted)
    if not scored:
        raise EdgeTTSError(f"{len(measured)} points are too few to choose a latency form; measure more")
    # Errors this close are the same fit computed two ways (float noise on exact data decided the
    # form differently across numpy builds): the simpler form wins the tie.
    lowest = min(value[0] for value in scored.values())
    best = min(scored, key=lambda f: (scored[f][0] > lowest + FORM_TIE, len(scored[f][1]), scored[f][0]))
    _, names, features, predicted = scored[best]
    return Fit(
        form=best,
        features=names,
        coefficients=fit_nonnegative(features, measured),
        residual=residual_summary(predicted, measured),
        candidates={form: value[0] for form, value in scored.items()},
    )


def fit_prefill(lengths, seconds) -> Fit:
    lengths = np.asarray(lengths, dtype=np.float64)
    return choose_fit(PREFILL_FORMS, lambda names: prefill_features(names, lengths), seconds)


def fit_decode(batches, contexts, seconds) -> Fit:
    batches = np.asarray(batches, dtype=np.float64)
    contexts = np.asarray(contexts, dtype=np.float64)
    return choose_fit(DECODE_FORMS, lambda names: decode_features(names, batches, contexts), seconds)


@dataclass
class LatencyModel:
    """Prefill + decode fits of one model on one device, and what a whole run costs."""

    prefill: Fit
    decode: Fit

    def prefill_s(self, prompt_tokens, quantile: float = 0.5) -> np.ndarray:
        base = prefill_features(self.prefill.features, prompt_tokens) @ self.prefill.coefficients
        return base * (1 + self.prefill.margin(quantile))

    def step_s(self, batch, context, quantile: float = 0.5) -> np.ndarray:
        base = decode_features(self.decode.features, batch, context) @ self.decode.coefficients
        return base * (1 + self.decode.margin(quantile))

    def run_s(self, prompt_tokens, budget, answer_tokens, samples, force_tokens: int = 0, quantile=0.5):
        """Predicted seconds for one request: prefill, then ``budget`` thinking steps, the forcing
        text (one step at batch 1, one step per token in a batch: see the generator), and
        ``answer_tokens`` answer steps, all with ``samples`` rows over a growing context.
        Arrays broadcast, so the planner predicts every configuration in one call."""
        samples = np.asarray(samples, dtype=np.float64)
        steps = np.asarray(budget, np.float64) + self.forced_steps(samples, force_tokens, answer_tokens)
        decode = decode_sum_features(self.decode.features, samples, prompt_tokens, steps)
        decode_s = (decode @ self.decode.coefficients) * (1 + self.decode.margin(quantile))
        return self.prefill_s(prompt_tokens, quantile) + decode_s

    @staticmethod
    def forced_steps(samples, force_tokens: int, answer_tokens: int) -> np.ndarray:
        """Decode steps after the budget: the forcing text (fed in one step at batch 1, a token a
        step in a batch: see the generator) and the answer."""
        samples = np.asarray(samples, dtype=np.float64)
        return np.where(samples > 1, force_tokens, np.minimum(force_tokens, 1)) + answer_tokens

    def to_dict(self) -> dict[str, object]:
        return {"prefill": self.prefill.to_dict(), "decode": self.decode.to_dict()}

    @classmethod
    def from_dict(cls, data: dict, where: str) -> LatencyModel:
        if not isinstance(data, dict) or "prefill" not in data or "decode" not in data:
            raise EdgeTTSError(f"{where}: no prefill/decode latency fit; run `edgetts profile` again")
        return cls(
            Fit.from_dict(data["prefill"], PREFILL_FORMS, where),
            Fit.from_dict(data["decode"], DECODE_FORMS, where),
        )
