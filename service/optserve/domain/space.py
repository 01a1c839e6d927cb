"""The search space of an experiment: activity of conditional parameters, value
checks, and uniform draws over the unconstrained part of the space."""

from __future__ import annotations

import math

import numpy as np

from .model import Assignments, Experiment, Parameter, ParameterType


def constrained_names(exp: Experiment) -> set[str]:
    """Parameters that appear in some linear constraint."""
    return {t.name for lc in exp.linear_constraints for t in lc.terms}


def active_parameters(exp: Experiment, conditionals: Assignments) -> list[Parameter]:
    """Parameters switched on by the given conditional values."""
    return [p for p in exp.parameters if p.is_active(conditionals)]


def draw_conditionals(exp: Experiment, rng: np.random.Generator) -> Assignments:
    return {k.name: k.values[int(rng.integers(len(k.values)))] for k in exp.conditionals}


def draw_value(p: Parameter, rng: np.random.Generator) -> float | int | str:
    """A uniform draw of one parameter (log-uniform for log-scaled ones)."""
    if p.type is ParameterType.CATEGORICAL:
        return p.categorical_values[int(rng.integers(len(p.categorical_values)))]
    if p.grid:
        v = p.grid[int(rng.integers(len(p.grid)))]
        return int(v) if p.type is ParameterType.INT else float(v)
    assert p.bounds is not None
    lo, hi = p.bounds.min, p.bounds.max
    if p.type is ParameterType.INT:
        if p.is_log:
            # uniform in log space over the cells [k - 1/2, k + 1/2] of each integer
            u = rng.uniform(math.log(lo - 0.5 if lo > 0.5 else lo), math.log(hi + 0.5))
            return int(min(max(round(math.exp(u)), lo), hi))
        return int(rng.integers(int(lo), int(hi) + 1))
    if p.is_log:
        return float(min(max(math.exp(rng.uniform(math.log(lo), math.log(hi))), lo), hi))
    return float(rng.uniform(lo, hi))


def draw_unconstrained(
    exp: Experiment, rng: np.random.Generator, skip: set[str] | None = None
) -> Assignments:
    """Conditionals and every active parameter not in ``skip``, drawn uniformly."""
    assignments = draw_conditionals(exp, rng)
    for p in active_parameters(exp, assignments):
        if skip is None or p.name not in skip:
            assignments[p.name] = draw_value(p, rng)
    return assignments
