"""Planning: for a latency target (and optional energy and memory caps), the configuration to run.

The caller enumerates configurations (model, quantization, reasoning budget, samples) and predicts
each one's latency, energy and memory from the device profile and its accuracy from the
calibration; :func:`plan` only chooses, so that it stays pure, testable without a model, and fast
enough to run on every request.
"""

from .scheduler import Candidate, CandidateSet, Config, NoFeasiblePlanError, Plan, format_duration, plan

__all__ = ["Candidate", "CandidateSet", "Config", "NoFeasiblePlanError", "Plan", "format_duration", "plan"]
