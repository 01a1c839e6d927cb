"""Extra problems for the shared quality harness (../shared/bench/quality/ from the
repository root):
two-objective BraninCurrin, BraninCurrin under a linear constraint, and Branin
under a constraint metric.

Same format as the shared ``problems.py``: a SigOpt experiment-create dict, a
noise-free function, the optimum (for two objectives: the hypervolume of the true
Pareto front w.r.t. ``ref_point``, both objectives minimized).

``python mo_problems.py --verify`` recomputes every stored constant (dense grids,
then SLSQP polishing; about 6 minutes) and checks it.

* ``branincurrin``: BoTorch's ``BraninCurrin`` (Belakaria et al. 2019), both
  objectives minimized on [0, 1]^2: f1 = Branin(15 x1 - 5, 15 x2),
  f2 = Currin(x1, x2).  Reference point (18, 6) as in BoTorch.
* ``branincurrin_lc``: the same with the linear constraint x1 + x2 <= 1 (half the
  square), given as a SigOpt linear constraint.  It removes part of the
  unconstrained front: the feasible front's hypervolume is 56.63 instead of 59.40.
* ``branin_cm``: Branin on [-5, 10] x [0, 15], minimized, with a second metric
  ``g`` of strategy ``constraint`` (objective minimize, threshold 0):
  g(x) = (x1 - 2.5)^2 + (x2 - 9)^2 - 36, i.e. feasible inside a disk of radius 6
  (50.3 % of the box).  All three global minima of Branin are outside the disk,
  so the constrained optimum is on its boundary.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[4] / "shared" / "bench" / "quality"
if str(SHARED) not in sys.path:
    sys.path.insert(0, str(SHARED))
import problems as shared  # noqa: E402  (the shared suite's module, for Problem and helpers)

Problem = shared.Problem
hypervolume_2d = shared.hypervolume_2d

# ---------------------------------------------------------------- functions (vectorized)


def branin_v(x1, x2):
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * np.cos(x1) + 10


def currin_v(x1, x2):
    x1 = np.asarray(x1, dtype=float)
    x2 = np.asarray(x2, dtype=float)
    with np.errstate(divide="ignore"):
        factor = 1 - np.exp(-1 / (2 * x2))  # x2 = 0: exp(-inf) = 0, factor 1 (as BoTorch)
    num = 2300 * x1**3 + 1900 * x1**2 + 2092 * x1 + 60
    den = 100 * x1**3 + 500 * x1**2 + 4 * x1 + 20
    return factor * num / den


def branincurrin_v(u, v):
    """u, v in [0, 1]: (Branin(15u - 5, 15v), Currin(u, v))."""
    return branin_v(15 * np.asarray(u) - 5, 15 * np.asarray(v)), currin_v(u, v)


def branincurrin_fn(a):
    f1, f2 = branincurrin_v(float(a["x1"]), float(a["x2"]))
    return (float(f1), float(f2))


def disk_g_v(x1, x2):
    return (x1 - 2.5) ** 2 + (x2 - 9.0) ** 2 - 36.0


def branin_cm_fn(a):
    x1, x2 = float(a["x1"]), float(a["x2"])
    return (float(branin_v(x1, x2)), float(disk_g_v(x1, x2)))


# ---------------------------------------------------------------- stored constants

BC_REF = (18.0, 6.0)
# Hypervolumes recomputed by --verify (epsilon-constraint sweep, see verify_hv): the
# true value lies in [59.402996, 59.405472]; stored: the midpoint.  BoTorch's
# BraninCurrin states max_hv = 59.36011874867746, which is 0.044 below the lower
# bound here (a dense grid's Pareto staircase gives 59.365 at 6001 x 6001 points
# and still grows with the resolution, so that value is likely a grid estimate).
BC_HV = 59.404234
# Same, restricted to x1 + x2 <= 1: in [56.628695, 56.631171].
BC_LC_HV = 56.629933
# Branin on the disk (x1-2.5)^2 + (x2-9)^2 <= 36: 1501^2 grid + multistart SLSQP,
# on the disk's boundary.
BRANIN_CM_OPT = 0.6603280641960438
BRANIN_CM_ARGOPT = (-2.93097, 11.55041)
BRANIN_CM_FEASIBLE_FRACTION = math.pi * 36 / 225  # the disk lies inside the box


# ---------------------------------------------------------------- suite


def _doubles(names, lo, hi):
    return [{"name": n, "type": "double", "bounds": {"min": lo, "max": hi}} for n in names]


def build_suite() -> dict[str, Problem]:
    P = {}
    bc = {
        "name": "branincurrin",
        "parameters": _doubles(["x1", "x2"], 0.0, 1.0),
        "metrics": [
            {"name": "branin", "objective": "minimize"},
            {"name": "currin", "objective": "minimize"},
        ],
        "observation_budget": 80,
    }
    P["branincurrin"] = Problem(
        "branincurrin",
        bc,
        branincurrin_fn,
        BC_HV,
        ref_point=BC_REF,
        tags=("multiobjective",),
        notes="BoTorch BraninCurrin, both minimized, ref (18, 6); regret = HV gap",
    )
    bc_lc = dict(
        bc,
        name="branincurrin-linear-constraint",
        linear_constraints=[
            {
                "type": "less_than",
                "threshold": 1.0,
                "terms": [{"name": "x1", "weight": 1.0}, {"name": "x2", "weight": 1.0}],
            },
        ],
    )
    P["branincurrin_lc"] = Problem(
        "branincurrin_lc",
        bc_lc,
        branincurrin_fn,
        BC_LC_HV,
        ref_point=BC_REF,
        tags=("multiobjective", "constrained"),
        notes="BraninCurrin restricted to x1 + x2 <= 1; regret = gap to the feasible front's HV",
    )
    cm = {
        "name": "branin-constraint-metric",
        "parameters": [
            {"name": "x1", "type": "double", "bounds": {"min": -5.0, "max": 10.0}},
            {"name": "x2", "type": "double", "bounds": {"min": 0.0, "max": 15.0}},
        ],
        "metrics": [
            {"name": "value", "objective": "minimize"},
            {"name": "g", "objective": "minimize", "strategy": "constraint", "threshold": 0.0},
        ],
        "observation_budget": 80,
    }
    P["branin_cm"] = Problem(
        "branin_cm",
        cm,
        branin_cm_fn,
        BRANIN_CM_OPT,
        tags=("constraint_metric",),
        notes="Branin minimized s.t. metric g <= 0 (a disk, 50.3% of the box); "
        "regret over observations with g <= 0 only",
    )
    return P


SUITE = build_suite()


def constraint_metrics(exp: dict) -> list[dict]:
    return [m for m in exp["metrics"] if m.get("strategy") == "constraint"]


def optimized_metrics(exp: dict) -> list[dict]:
    return [m for m in exp["metrics"] if m.get("strategy", "optimize") == "optimize"]


def metric_ok(m: dict, value: float) -> bool:
    """Whether ``value`` meets the threshold of metric ``m`` (SigOpt: minimize means <=)."""
    if m.get("threshold") is None:
        return True
    return value <= m["threshold"] if m["objective"] == "minimize" else value >= m["threshold"]


# ---------------------------------------------------------------- verification


def _grid_front(n: int, feasible=None, chunk: int = 500):
    """Pareto staircase (both minimized) of BraninCurrin on an n x n grid of [0,1]^2."""
    g = np.linspace(0.0, 1.0, n)
    cands = []
    for s in range(0, n, chunk):
        U, V = np.meshgrid(g[s : s + chunk], g, indexing="ij")
        U, V = U.ravel(), V.ravel()
        if feasible is not None:
            m = feasible(U, V)
            U, V = U[m], V[m]
        f1, f2 = branincurrin_v(U, V)
        order = np.lexsort((f2, f1))
        f1, f2, U, V = f1[order], f2[order], U[order], V[order]
        keep = f2 < np.minimum.accumulate(np.r_[np.inf, f2[:-1]])
        cands.append(np.c_[f1[keep], f2[keep], U[keep], V[keep]])
    c = np.concatenate(cands)
    c = c[np.lexsort((c[:, 1], c[:, 0]))]
    keep = c[:, 1] < np.minimum.accumulate(np.r_[np.inf, c[:-1, 1]])
    return c[keep]


def verify_hv(linear: bool, n_grid: int = 2001, n_levels: int = 32000):
    """Hypervolume of the true front by the epsilon-constraint method.

    f2*(e) = min f2 subject to f1 <= e (and x1 + x2 <= 1 if ``linear``) on
    ``n_levels`` equally spaced levels e in [min f1, ref1]: the best point of an
    ``n_grid`` x ``n_grid`` grid front, improved by SLSQP started from it.  As
    f2* is non-increasing, the left and right Riemann sums of
    integral (ref2 - f2*(e)) de bracket the hypervolume (up to SLSQP missing a
    better local optimum).  Returns (lower, upper, midpoint).
    """
    from scipy.optimize import minimize

    fr = _grid_front(n_grid, (lambda U, V: U + V <= 1 + 1e-12) if linear else None)
    ref1, ref2 = BC_REF
    e = np.linspace(fr[0, 0], ref1, n_levels)
    f2s = np.empty(n_levels)
    for i, ei in enumerate(e):
        j = np.searchsorted(fr[:, 0], ei, side="right") - 1
        best = fr[j, 1]
        cons = [{"type": "ineq", "fun": lambda z, e=ei: e - branincurrin_v(z[0], z[1])[0]}]
        if linear:
            cons.append({"type": "ineq", "fun": lambda z: 1.0 - z[0] - z[1]})
        r = minimize(
            lambda z: float(branincurrin_v(z[0], z[1])[1]),
            fr[j, 2:],
            method="SLSQP",
            bounds=[(0, 1), (0, 1)],
            constraints=cons,
            options={"ftol": 1e-13, "maxiter": 200},
        )
        a, b = branincurrin_v(r.x[0], r.x[1])
        if a <= ei + 1e-10 and (not linear or r.x.sum() <= 1 + 1e-10) and b < best:
            best = float(b)
        f2s[i] = min(best, ref2)
    f2s = np.minimum.accumulate(f2s)
    de = np.diff(e)
    lo = float(np.sum(de * (ref2 - f2s[:-1])))
    hi = float(np.sum(de * (ref2 - f2s[1:])))
    return lo, hi, 0.5 * (lo + hi)


def verify_branin_cm(n: int = 1501, n_starts: int = 200, seed: int = 0):
    from scipy.optimize import minimize

    g1 = np.linspace(-5, 10, n)
    g2 = np.linspace(0, 15, n)
    A, B = np.meshgrid(g1, g2, indexing="ij")
    F = np.where(disk_g_v(A, B) <= 0, branin_v(A, B), np.inf)
    frac = float(np.mean(np.isfinite(F)))
    idx = np.argsort(F.ravel())[:20]
    starts = [(A.ravel()[i], B.ravel()[i]) for i in idx]
    rng = np.random.default_rng(seed)
    while len(starts) < 20 + n_starts:
        z = rng.uniform([-5, 0], [10, 15])
        if disk_g_v(*z) <= 0:
            starts.append(tuple(z))
    best = (np.inf, None)
    cons = [{"type": "ineq", "fun": lambda z: -disk_g_v(z[0], z[1])}]
    for z0 in starts:
        r = minimize(
            lambda z: float(branin_v(z[0], z[1])),
            z0,
            method="SLSQP",
            bounds=[(-5, 10), (0, 15)],
            constraints=cons,
            options={"ftol": 1e-14, "maxiter": 500},
        )
        if r.success and disk_g_v(*r.x) <= 1e-9 and r.fun < best[0]:
            best = (float(r.fun), r.x.copy())
    return best, float(F.min()), frac


if __name__ == "__main__":
    if "--verify" in sys.argv:
        bad = []
        for linear, stored in ((False, BC_HV), (True, BC_LC_HV)):
            lo, hi, mid = verify_hv(linear)
            print(
                f"branincurrin{'_lc' if linear else ''}: HV in [{lo:.6f}, {hi:.6f}], "
                f"midpoint {mid:.6f}; stored {stored:.6f}"
            )
            if abs(mid - stored) > 1e-5:
                bad.append("BC_LC_HV" if linear else "BC_HV")
        (v, x), grid_min, frac = verify_branin_cm()
        print(
            f"branin_cm: optimum {v:.12f} at {np.round(x, 4)} (grid {grid_min:.6f}), "
            f"feasible fraction {frac:.4f}; stored {BRANIN_CM_OPT:.12f}"
        )
        if abs(v - BRANIN_CM_OPT) > 1e-8:
            bad.append("BRANIN_CM_OPT")
        assert not bad, f"out of date: {bad}"
        print("ok")
    else:
        for p in SUITE.values():
            print(f"{p.name:18s} opt={p.optimum:.6f} metrics={[m['name'] for m in p.metrics]}")
