"""The compiled maximizer of log EI (``optserve._sampler.maximize_log_ei``).

The whole maximizer — feasible candidates, scoring, local search, gradient
polish under the linear constraints, final feasibility — runs in Rust without
the GIL, with the same stages and counts as the NumPy maximizer
(``maximizer.py``), which stays the reference and the path for everything
this one does not cover: acquisitions other than log EI alone (plus the
local penalty of the points in flight), conditional experiments, and linear
constraints on log-scale or grid parameters.
"""

from __future__ import annotations

import weakref

import numpy as np
from numpy.typing import NDArray

from .. import _sampler
from ..domain.model import Assignments, Experiment, ParameterType
from ..sampling import EmptyPolytopeError
from .feasible import FeasibleSpace

# Threads scoring candidates (0: one per core, at most 4). A suggestion worker
# sets its share of the cores, so that workers busy at once do not oversubscribe them.
_threads = 0


def set_threads(threads: int) -> None:
    """Sets the threads one maximization may use (0: one per core, at most 4)."""
    global _threads
    if threads < 0:
        raise ValueError("threads must be >= 0")
    _threads = threads


# A space the compiled maximizer does not cover maps to None.
_SPACES: weakref.WeakKeyDictionary[FeasibleSpace, _sampler.SearchSpace | None] = (
    weakref.WeakKeyDictionary()
)


def applies(exp: Experiment) -> bool:
    """Whether the compiled maximizer covers the experiment's search space."""
    if exp.conditionals:
        return False
    constrained = {t.name for lc in exp.linear_constraints for t in lc.terms}
    return not any(p.is_log or p.grid for p in exp.parameters if p.name in constrained)


def search_space(space: FeasibleSpace) -> _sampler.SearchSpace | None:
    """The compiled search space of ``space`` (built once), or None where the
    compiled maximizer does not apply."""
    if space in _SPACES:
        return _SPACES[space]
    compiled = _build(space) if applies(space.experiment) else None
    _SPACES[space] = compiled
    return compiled


def _build(space: FeasibleSpace) -> _sampler.SearchSpace | None:
    enc = space.encoder
    exp = space.experiment
    columns: list[tuple[float, float, float, float, bool, bool, list[float]] | None] = [
        None
    ] * enc.dim
    groups = []
    for p in exp.parameters:
        s = enc.slices[p.name]
        if p.type is ParameterType.CATEGORICAL:
            groups.append((s.start, s.stop - s.start))
            continue
        lo_t, hi_t = enc._ranges[p.name]
        if p.type is ParameterType.DOUBLE and not p.grid and hi_t > lo_t:
            continue  # continuous
        lo, hi = (p.bounds.min, p.bounds.max) if p.bounds is not None else (-np.inf, np.inf)
        columns[s.start] = (
            lo_t,
            hi_t,
            lo,
            hi,
            p.is_log,
            p.type is ParameterType.INT,
            [float(g) for g in p.grid],
        )
    kwargs: dict[str, object] = {}
    try:
        if space.doubles is not None:
            kwargs.update(
                double_cols=[enc.slices[n].start for n in space.double_names],
                double_a=np.ascontiguousarray(space.doubles.a),
                double_b=np.ascontiguousarray(space.doubles.b),
                double_x0=np.ascontiguousarray(space.doubles.chebyshev_center()[0]),
            )
        if space.ints is not None:
            kwargs.update(
                int_cols=[enc.slices[n].start for n in space.int_names],
                int_a=np.ascontiguousarray(space.ints.a),
                int_b=np.ascontiguousarray(space.ints.b),
                int_lo=np.ascontiguousarray(space.ints.lo),
                int_hi=np.ascontiguousarray(space.ints.hi),
                int_z0=np.ascontiguousarray(space.ints.start_point()),
            )
        return _sampler.SearchSpace(columns, groups, **kwargs)  # type: ignore[arg-type]
    except (EmptyPolytopeError, ValueError):
        # a flat or awkward polytope: the NumPy maximizer handles it
        return None


def maximize_log_ei(
    space: FeasibleSpace,
    scorer: _sampler.GpScorer,
    incumbent: float | NDArray[np.float64],
    best_rows: NDArray[np.float64],
    rng: np.random.Generator,
    penalty: _sampler.LocalPenalty | None = None,
) -> tuple[Assignments, NDArray[np.float64], float] | None:
    """The best feasible point of log EI over ``incumbent`` (observed points
    excluded), plus ``penalty`` (the points in flight) where given, from the
    uniform draws of ``space`` and perturbations of ``best_rows``. A scorer
    with several posterior means (``Fantasies``) takes one incumbent per mean
    and averages EI over them.

    Returns:
        (the point, its encoded row, its value), or None where the compiled
        maximizer does not apply or finds nothing (the caller then uses the
        NumPy maximizer).
    """
    compiled = search_space(space)
    if compiled is None:
        return None
    seed = int(rng.integers(2**63))
    found = _sampler.maximize_log_ei(
        scorer,
        incumbent,
        compiled,
        np.ascontiguousarray(best_rows, dtype=np.float64).reshape(-1, compiled.dim),
        seed=seed,
        penalty=penalty,
        threads=_threads,
    )
    if found is None:
        return None
    row, value, _ = found
    (point,) = space.encoder.decode(row[None, :])
    # checked again in the parameters' own units, as the NumPy maximizer's pick does
    if not space.is_feasible(point):
        return None
    return point, row, value
