"""Best assignments: the best observation, the Pareto front, or diverse solutions."""

from __future__ import annotations

import numpy as np

from .model import Experiment, Objective, Observation, ParameterType

# Smallest distance between two solutions of a multisolution experiment, per
# sqrt(dimension), with parameters scaled to [0, 1].
MIN_SEPARATION = 0.05


def successful(exp: Experiment, observations: list[Observation]) -> list[Observation]:
    """Observations that did not fail and report every optimized metric."""
    names = [m.name for m in exp.optimized_metrics]
    return [
        o for o in observations if not o.failed and all(o.value_of(n) is not None for n in names)
    ]


def satisfies_constraints(exp: Experiment, obs: Observation) -> bool:
    """Whether an observation meets every constraint metric's threshold."""
    for m in exp.constraint_metrics:
        v = obs.value_of(m.name)
        if v is None or not m.satisfies(v):
            return False
    return True


def _signed(exp: Experiment, obs: Observation) -> np.ndarray:
    """Optimized metric values, negated where minimized, so larger is better."""
    return np.array(
        [
            (1.0 if m.objective is Objective.MAXIMIZE else -1.0) * float(obs.value_of(m.name) or 0)
            for m in exp.optimized_metrics
        ]
    )


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Non-dominated rows of ``points`` (n, k), larger is better; duplicates all kept."""
    n = len(points)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        dominates_i = np.all(points >= points[i], axis=1) & np.any(points > points[i], axis=1)
        mask[i] = not dominates_i.any()
    return mask


def _unit_position(exp: Experiment, obs: Observation) -> np.ndarray:
    """Numeric parameters scaled to [0, 1], for distances between solutions."""
    out = []
    for p in exp.parameters:
        if p.type is ParameterType.CATEGORICAL or p.bounds is None:
            continue
        v = obs.assignments.get(p.name)
        if isinstance(v, int | float):
            out.append((float(v) - p.bounds.min) / (p.bounds.max - p.bounds.min))
    return np.array(out)


def improves(exp: Experiment, incumbent: Observation | None, candidate: Observation) -> bool:
    """Whether ``candidate`` replaces ``incumbent`` as the single best observation of an
    experiment with one optimized metric: the same choice as ``best_observations``
    with one solution (the earliest wins ties), made one observation at a time."""
    if not successful(exp, [candidate]) or not satisfies_constraints(exp, candidate):
        return False
    return incumbent is None or _signed(exp, candidate)[0] > _signed(exp, incumbent)[0]


def best_observations(exp: Experiment, observations: list[Observation]) -> tuple[list, str]:
    """The best successful observations that satisfy every constraint metric.

    Returns:
        (observations, explanation): the explanation says why the list is empty.
    """
    done = successful(exp, observations)
    if not done:
        return [], "no successful observation yet"
    feasible = [o for o in done if satisfies_constraints(exp, o)]
    if not feasible:
        limits = ", ".join(
            f"{m.name} {'>=' if m.objective is Objective.MAXIMIZE else '<='} {m.threshold:g}"
            for m in exp.constraint_metrics
        )
        return [], f"no observation satisfies every constraint metric ({limits})"
    optimized = exp.optimized_metrics
    if len(optimized) == 2:
        in_region = [
            o for o in feasible if all(m.satisfies(o.value_of(m.name) or 0.0) for m in optimized)
        ]
        if not in_region:
            return [], "no observation meets the thresholds of the optimized metrics"
        values = np.array([_signed(exp, o) for o in in_region])
        front = [o for o, keep in zip(in_region, pareto_mask(values), strict=True) if keep]
        return front, ""
    ranked = sorted(feasible, key=lambda o: -_signed(exp, o)[0])
    if exp.num_solutions <= 1:
        return ranked[:1], ""
    solutions = _diverse(exp, ranked, exp.num_solutions)
    if len(solutions) < exp.num_solutions:
        return solutions, (
            f"only {len(solutions)} of {exp.num_solutions} solutions are separated enough so far"
        )
    return solutions, ""


def _diverse(exp: Experiment, ranked: list[Observation], k: int) -> list[Observation]:
    """Greedy: the best, then each next best that is far enough from those chosen.

    The separation radius (parameters scaled to [0, 1]) shrinks from half the
    cube's diagonal until k solutions are found, but never below a floor: two
    points closer than that are one solution, not two.
    """
    positions = [_unit_position(exp, o) for o in ranked]
    dim = max(1, len(positions[0]))
    radius, floor = 0.5 * np.sqrt(dim), MIN_SEPARATION * np.sqrt(dim)
    while True:
        chosen: list[int] = []
        for i in range(len(ranked)):
            if all(np.linalg.norm(positions[i] - positions[j]) >= radius for j in chosen):
                chosen.append(i)
                if len(chosen) == k:
                    return [ranked[i] for i in chosen]
        if radius <= floor:
            return [ranked[i] for i in chosen]
        radius = max(radius / 2, floor)
