"""The geometry of linear constraints, shared by validation, sampling and the optimizers.

One tolerance, one feasibility rule, one Chebyshev-centre LP:

- ``TOLERANCE``: a constraint ``sum(w_i x_i) <= b`` holds when its excess
  ``sum(w_i x_i) - b`` is at most ``TOLERANCE * max(1, max_i |w_i x_i|)``:
  relative to the size of its terms, since summing them rounds at that scale;
- ``holds`` (one constraint, one point) and ``rows_hold`` (a system
  ``a x <= b``, many points) apply that rule; ``holds_exactly`` is the strict
  check of a client's plain floating-point sum, with no tolerance;
- ``chebyshev_centre``: the centre and radius of the largest ball inside
  ``{x : g x <= h}``, one LP; a ball no wider than the tolerance is no interior.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linprog

from .model import ParameterType

if TYPE_CHECKING:
    from .model import Assignments, Experiment, LinearConstraint

_INT = ParameterType.INT

__all__ = [
    "TOLERANCE",
    "chebyshev_centre",
    "constraint_system",
    "holds",
    "holds_exactly",
    "in_reach",
    "inscribed_radius",
    "rows_hold",
    "system_rows",
    "unit_system",
    "within",
]

TOLERANCE = 1e-9

Vector = NDArray[np.float64]


def within(excess: Vector | float, scale: Vector | float) -> NDArray[np.bool_]:
    """The rule: an excess over a bound is allowed up to ``TOLERANCE * max(1, scale)``,
    ``scale`` being the largest absolute term of the sum."""
    return np.asarray(excess) <= TOLERANCE * np.maximum(1.0, scale)


def holds(lc: LinearConstraint, assignments: Assignments) -> bool:
    """Whether one constraint holds at ``assignments`` (the sum taken exactly)."""
    weights, bound = lc.as_less_equal()
    terms = [w * float(assignments[name]) for name, w in weights.items()]
    scale = max((abs(t) for t in terms), default=0.0)
    return bool(within(math.fsum(terms) - bound, scale))


def rows_hold(a: NDArray[np.float64], b: Vector, x: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Whether each point of ``x`` (n, d) meets every row of ``a x <= b``."""
    x = np.atleast_2d(x)
    if a.shape[0] == 0:
        return np.ones(len(x), dtype=bool)
    terms = x[:, None, :] * a[None, :, :]  # (n, m, d)
    excess = terms.sum(axis=2) - b
    return np.all(within(excess, np.abs(terms).max(axis=2)), axis=1)


def holds_exactly(constraints: list[LinearConstraint], assignments: Assignments) -> bool:
    """Each constraint as a client checks it: a plain sum (and the exact one)
    compared with no tolerance."""
    for lc in constraints:
        weights, bound = lc.as_less_equal()
        terms = [w * float(assignments[name]) for name, w in weights.items()]
        if sum(terms) > bound or math.fsum(terms) > bound:
            return False
    return True


def constraint_system(
    exp: Experiment, kind: ParameterType
) -> tuple[list[str], NDArray[np.float64], Vector, Vector, Vector]:
    """The polytope ``{x : lo <= x <= hi, A x <= b}`` of one numeric block.

    Returns:
        (names (d,), A (m, d), b (m,), lo (d,), hi (d,)) over the parameters of
        type ``kind`` that appear in some constraint.
    """
    rows = [lc for lc in exp.linear_constraints if _kind(exp, lc) is kind]
    names = sorted({t.name for lc in rows for t in lc.terms})
    index = {n: i for i, n in enumerate(names)}
    a = np.zeros((len(rows), len(names)))
    b = np.zeros(len(rows))
    for r, lc in enumerate(rows):
        weights, rhs = lc.as_less_equal()
        for name, w in weights.items():
            a[r, index[name]] = w
        b[r] = rhs
    bounds = [exp.parameter(n).bounds for n in names]  # type: ignore[union-attr]
    lo = np.array([bd.min for bd in bounds])  # type: ignore[union-attr]
    hi = np.array([bd.max for bd in bounds])  # type: ignore[union-attr]
    if names and kind is _INT:
        a, b = _int_rows_in_reach(a, b, lo, hi)
    return names, a, b, lo, hi


def _int_rows_in_reach(
    a: NDArray[np.float64], b: Vector, lo: Vector, hi: Vector
) -> tuple[NDArray[np.float64], Vector]:
    """The int rows, each as ``in_reach`` scales it (double rows become unit rows
    in ``unit_system`` wherever they are used)."""
    for r in range(a.shape[0]):
        a[r], b[r] = in_reach(a[r], float(b[r]), lo, hi)
    return a, b


def in_reach(weights: Vector, bound: float, lo: Vector, hi: Vector) -> tuple[Vector, float]:
    """``weights . x <= bound`` divided by the largest magnitude its terms reach
    within the bounds, when that is below 1 (weights like 1e-300): the rule's
    tolerance, ``TOLERANCE * max(1, terms)``, would otherwise exceed every term
    and ignore the constraint. Other constraints are returned as they are.

    A right-hand side that overflows holds everywhere (+inf) or nowhere (-inf)
    and is kept so at a finite value beyond the terms' sum."""
    reach = np.abs(weights) * np.maximum(1.0, np.maximum(np.abs(lo), np.abs(hi)))
    peak = float(reach.max()) if reach.size else 0.0
    if not 0.0 < peak < 1.0:
        return weights, bound
    with np.errstate(over="ignore"):
        scaled, rhs = weights / peak, bound / peak
    if math.isinf(rhs):
        rhs = math.copysign(1.0 + len(weights), rhs)
    return scaled, rhs


def _kind(exp: Experiment, lc: LinearConstraint) -> ParameterType | None:
    for t in lc.terms:
        p = exp.parameter(t.name)
        if p is not None:
            return p.type
    return None


def unit_system(
    a: NDArray[np.float64], b: Vector, lo: Vector, hi: Vector
) -> tuple[NDArray[np.float64], Vector]:
    """``a x <= b`` over ``lo <= x <= hi`` as unit rows over ``u = (x - lo) / (hi - lo)``
    in ``[0, 1]``: weights and parameters of any scale make a well-conditioned system."""
    width = hi - lo
    scaled_a, scaled_b = a * width, b - a @ lo
    norms = np.linalg.norm(scaled_a, axis=1)
    # Weights like 1e-300 underflow (their squares, or their products with the
    # widths) to a zero norm: such rows are divided by their largest weight first.
    small = ~(norms >= 1e-150)
    if small.any():
        peak = np.max(np.abs(a[small]), axis=1)
        rows = a[small] / peak[:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            scaled_a[small] = rows * width
            scaled_b[small] = b[small] / peak - rows @ lo
        norms[small] = np.linalg.norm(scaled_a[small], axis=1)
    unit_a, unit_b = scaled_a / norms[:, None], scaled_b / norms
    # A unit row over [0, 1]^d takes values within +-sqrt(d): a right-hand side
    # that overflowed above holds everywhere (+inf) or nowhere (-inf), and stays
    # so at a finite value beyond that.
    limit = 1.0 + math.sqrt(a.shape[1])
    unit_b[unit_b == np.inf], unit_b[unit_b == -np.inf] = limit, -limit
    return unit_a, unit_b


def system_rows(
    a: NDArray[np.float64], b: Vector, lo: Vector, hi: Vector
) -> tuple[NDArray[np.float64], Vector]:
    """All constraints as rows ``g x <= h``: those of ``a``, then the finite bounds."""
    d = a.shape[1]
    eye = np.eye(d)
    up, down = np.isfinite(hi), np.isfinite(lo)
    return np.vstack([a, eye[up], -eye[down]]), np.concatenate([b, hi[up], -lo[down]])


def chebyshev_centre(g: NDArray[np.float64], h: Vector) -> tuple[Vector, float] | None:
    """Centre and radius of the largest ball in ``{x : g x <= h}`` (HiGHS LP).

    Returns:
        (centre (d,), radius); None when the set is empty. A radius within
        the tolerance of 0 (``has_interior``) means the set has no interior.

    Raises:
        ValueError: the LP fails otherwise (an unbounded set).
    """
    d = g.shape[1]
    norms = np.linalg.norm(g, axis=1)
    c = np.zeros(d + 1)
    c[-1] = -1.0
    res = linprog(
        c,
        A_ub=np.hstack([g, norms[:, None]]),
        b_ub=h,
        bounds=[(None, None)] * d + [(0.0, None)],
        method="highs",
    )
    if res.status == 2:
        return None
    if res.status != 0:
        raise ValueError(f"Chebyshev-centre LP failed: {res.message}")
    return np.asarray(res.x[:d], dtype=np.float64), float(res.x[d])


def has_interior(centre: Vector, radius: float) -> bool:
    """Whether a ball of ``radius`` at ``centre`` is wider than the tolerance."""
    scale = float(np.max(np.abs(centre))) if len(centre) else 0.0
    return bool(radius > TOLERANCE * max(1.0, scale))


def inscribed_radius(a: NDArray[np.float64], b: Vector, lo: Vector, hi: Vector) -> float | None:
    """Radius of the largest ball inside ``{lo <= x <= hi, a x <= b}`` with every
    parameter scaled to [0, 1]; None when the region is empty."""
    d = len(lo)
    found = chebyshev_centre(*system_rows(*unit_system(a, b, lo, hi), np.zeros(d), np.ones(d)))
    return None if found is None else found[1]
