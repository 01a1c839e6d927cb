"""Stopping criteria: whether an experiment looks done, and why.

Two reasons, as SigOpt names them: ``observation_budget_reached`` once the
observations reach the budget, and ``possible_stagnation`` when, for one
optimized metric (no multisolution), none of the last ``5 × dimension``
observations beat the fifth best of those before them.
"""

from __future__ import annotations

import math

from .model import Experiment, Objective, Observation

LOOKBACK_PER_PARAMETER = 5
TOP_RESULTS = 5

BUDGET_REACHED = "observation_budget_reached"
STAGNATION = "possible_stagnation"


def stopping_reasons(exp: Experiment, observations: list[Observation]) -> list[str]:
    """The reasons to stop, given every observation in creation order."""
    reasons = []
    if exp.observation_budget is not None and len(observations) >= exp.observation_budget:
        reasons.append(BUDGET_REACHED)
    if _stagnates(exp, observations):
        reasons.append(STAGNATION)
    return reasons


def _stagnates(exp: Experiment, observations: list[Observation]) -> bool:
    optimized = exp.optimized_metrics
    if len(optimized) != 1 or exp.num_solutions > 1:
        return False
    metric = optimized[0]
    lookback = LOOKBACK_PER_PARAMETER * len(exp.parameters)
    if len(observations) < lookback + TOP_RESULTS:
        return False
    sign = 1.0 if metric.objective is Objective.MAXIMIZE else -1.0

    def value(o: Observation) -> float:
        v = o.value_of(metric.name)
        return -math.inf if o.failed or v is None else sign * v

    before = sorted((value(o) for o in observations[:-lookback]), reverse=True)
    recent_best = max(value(o) for o in observations[-lookback:])
    return before[TOP_RESULTS - 1] >= recent_best
