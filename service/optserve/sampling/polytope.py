"""Polytopes, their integer points, and space-filling designs inside them.

A :class:`Polytope` is ``{x : lo <= x <= hi, a @ x <= b}`` over doubles; an
:class:`IntegerPolytope` is the set of integer points of such a set. Both
sample uniformly through the Rust hit-and-run in :mod:`optserve._sampler`.
Nothing here knows about gRPC, protos or storage.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.optimize
from numpy.typing import ArrayLike, NDArray

from optserve import _sampler
from optserve.domain import geometry

__all__ = ["EmptyPolytopeError", "IntegerPolytope", "Polytope", "maximin_design"]

Method = Literal["coordinate", "random"]
Rounding = Literal["auto", "always", "never"]

# Coordinate hit-and-run on the d-simplex (axis-scaled condition number d + 1)
# mixes well at thin = d; round only shapes much worse than that.
_ROUNDING_FACTOR = 10.0


class EmptyPolytopeError(ValueError):
    """The constraint system has no (interior) point, or is unbounded."""


def _as_matrix(a: ArrayLike, d: int | None = None) -> NDArray[np.float64]:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 0 and d is not None:
        arr = arr.reshape(0, d)
    if arr.ndim != 2:
        raise ValueError(f"a: expected a 2-D array (m, d), got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _vector(x: ArrayLike, n: int, name: str, dtype: type = np.float64) -> NDArray:
    arr: NDArray = np.ascontiguousarray(np.asarray(x, dtype=dtype))
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), got {arr.shape}")
    return arr


def _is_bounded(g: NDArray[np.float64]) -> bool:
    """Whether ``{x : g @ x <= h}`` is bounded (for any h making it non-empty).

    It is iff the only ``r`` with ``g @ r <= 0`` is 0, iff ``g`` has rank d and
    some ``y > 0`` has ``g.T @ y = 0`` (Stiemke); one LP finds such a ``y``.
    """
    m, d = g.shape
    if m == 0 or np.linalg.matrix_rank(g) < d:
        return False
    res = scipy.optimize.linprog(
        np.zeros(m), A_eq=g.T, b_eq=np.zeros(d), bounds=[(1.0, None)] * m, method="highs"
    )
    return bool(res.status == 0)


def _chebyshev(g: NDArray[np.float64], h: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
    """Centre and radius of the largest ball in ``{x : g @ x <= h}`` (``geometry``)."""
    try:
        found = geometry.chebyshev_centre(g, h)
    except ValueError as e:
        raise EmptyPolytopeError(str(e)) from None
    if found is None:
        raise EmptyPolytopeError("the constraints have no feasible point")
    return found


def _analytic_center(
    g: NDArray[np.float64], h: NDArray[np.float64], x0: NDArray[np.float64], iters: int = 50
) -> NDArray[np.float64]:
    """Minimiser of ``-sum(log(h - g @ x))`` by damped Newton from interior ``x0``."""
    x = x0.copy()
    for _ in range(iters):
        s = h - g @ x
        gs = g / s[:, None]
        grad = gs.sum(axis=0)
        hess = gs.T @ gs
        try:
            step = -np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        dec = float(-grad @ step)
        if dec < 1e-12:
            break
        # Largest step keeping every slack positive, then backtrack.
        gd = g @ step
        pos = gd > 0
        t = min(1.0, 0.99 * float(np.min(s[pos] / gd[pos]))) if pos.any() else 1.0
        f0 = -np.log(s).sum()
        while t > 1e-12:
            s_new = h - g @ (x + t * step)
            if np.all(s_new > 0) and -np.log(s_new).sum() <= f0 - 0.25 * t * dec:
                break
            t *= 0.5
        x = x + t * step
    return x


class Polytope:
    """The polytope ``{x : lo <= x <= hi, a @ x <= b}`` over doubles.

    Args:
        a: Constraint matrix, shape ``(m, d)`` (``m`` may be 0).
        b: Right-hand sides, shape ``(m,)``.
        lo: Lower bounds, shape ``(d,)``; ``-inf`` allowed.
        hi: Upper bounds, shape ``(d,)``; ``+inf`` allowed.

    Raises:
        ValueError: Bad shapes or NaN.
    """

    def __init__(self, a: ArrayLike, b: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> None:
        lo_arr = np.asarray(lo, dtype=np.float64)
        if lo_arr.ndim != 1 or lo_arr.size == 0:
            raise ValueError(f"lo: expected a non-empty 1-D array, got shape {lo_arr.shape}")
        d = lo_arr.size
        self.a = _as_matrix(a, d)
        if self.a.shape[1] != d:
            raise ValueError(f"a: has {self.a.shape[1]} columns, expected len(lo) = {d}")
        m = self.a.shape[0]
        self.b = _vector(b, m, "b")
        self.lo = _vector(lo_arr, d, "lo")
        self.hi = _vector(hi, d, "hi")
        for name, arr in (("a", self.a), ("b", self.b)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name}: must be finite")
        if np.isnan(self.lo).any() or np.isnan(self.hi).any():
            raise ValueError("lo/hi: must not be NaN")
        if np.any(self.lo > self.hi):
            raise ValueError("lo: exceeds hi")
        self._center: tuple[NDArray[np.float64], float] | None = None
        # rows and roundings depend on the polytope alone: computed once per method
        self._rows: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
        self._roundings: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]] | None] = {}

    @property
    def d(self) -> int:
        """Dimension."""
        return int(self.a.shape[1])

    @property
    def m(self) -> int:
        """Number of constraint rows (bounds not counted)."""
        return int(self.a.shape[0])

    def rows(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """All constraints as ``g @ x <= h``: the rows of ``a`` and the finite bounds.

        Returns:
            ``g`` of shape ``(m + k, d)`` and ``h`` of shape ``(m + k,)``.
        """
        if self._rows is None:
            g, h = geometry.system_rows(self.a, self.b, self.lo, self.hi)
            g.setflags(write=False)
            h.setflags(write=False)
            self._rows = (g, h)
        return self._rows

    def chebyshev_center(self) -> tuple[NDArray[np.float64], float]:
        """Centre and radius of the largest ball inside the polytope (HiGHS LP).

        Returns:
            The centre, shape ``(d,)``, and the radius (same units as ``x``).

        Raises:
            EmptyPolytopeError: The polytope is empty, has no interior, or is
                unbounded.
        """
        if self._center is None:
            g, h = self.rows()
            if not _is_bounded(g):
                raise EmptyPolytopeError(
                    "the feasible set is unbounded: every direction needs a bound or a constraint"
                )
            x, r = _chebyshev(g, h)
            if not geometry.has_interior(x, r):
                raise EmptyPolytopeError("the feasible set has no interior (it is flat or a point)")
            self._center = (x, r)
        return self._center

    def is_feasible(self, x: ArrayLike) -> NDArray[np.bool_]:
        """Whether points satisfy the bounds exactly and every row (``geometry.rows_hold``).

        Args:
            x: One point, shape ``(d,)``, or several, shape ``(n, d)``.

        Returns:
            Boolean, shape ``()`` or ``(n,)``.
        """
        pts = np.asarray(x, dtype=np.float64)
        two = np.atleast_2d(pts)
        ok = np.all((two >= self.lo) & (two <= self.hi), axis=1)
        if self.m:
            ok &= geometry.rows_hold(self.a, self.b, two)
        return ok if pts.ndim == 2 else ok[0]

    def _rounding(self, method: Method) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
        """Affine map ``x = c + t @ y`` making the polytope well conditioned, or None.

        ``c`` is the analytic centre and ``t t^T`` the inverse Hessian of the
        log barrier there (the Dikin ellipsoid, inside the polytope, which it
        contains after scaling by the number of rows).
        """
        if method not in self._roundings:
            self._roundings[method] = self._compute_rounding(method)
        return self._roundings[method]

    def _compute_rounding(
        self, method: Method
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
        g, h = self.rows()
        x0, _ = self.chebyshev_center()
        c = _analytic_center(g, h, x0)
        s = h - g @ c
        if np.any(s <= 0):
            c, s = x0, h - g @ x0
        gs = g / s[:, None]
        cov = np.linalg.pinv(gs.T @ gs)
        cov = 0.5 * (cov + cov.T)
        if method == "coordinate":
            # Coordinate moves do not care about axis scales: use the correlation.
            sd = np.sqrt(np.diag(cov))
            shape = cov / np.outer(sd, sd)
        else:
            shape = cov
        eig = np.linalg.eigvalsh(shape)
        cond = float(eig[-1] / max(eig[0], 1e-300))
        if cond <= _ROUNDING_FACTOR * (self.d + 1):
            return None
        try:
            t = np.linalg.cholesky(cov).astype(np.float64)
        except np.linalg.LinAlgError:
            return None
        return c, t

    def _pull_inside(
        self, x: NDArray[np.float64], center: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Clips to the bounds and pulls rows violated by round-off towards ``center``."""
        x = np.clip(x, self.lo, self.hi)
        if self.m == 0:
            return x
        s = self.b - x @ self.a.T
        bad = ~geometry.rows_hold(self.a, self.b, x)
        if bad.any():
            s0 = self.b - self.a @ center
            sb = s[bad]
            ratio = np.where(sb < 0, s0 / (s0 - sb), 1.0)
            lam = 0.999 * ratio.min(axis=1, keepdims=True)
            x[bad] = np.clip(center + lam * (x[bad] - center), self.lo, self.hi)
        return x

    def sample(
        self,
        n: int,
        seed: int = 0,
        *,
        method: Method = "coordinate",
        burn_in: int | None = None,
        thin: int | None = None,
        n_chains: int = 1,
        rounding: Rounding = "auto",
        start: ArrayLike | None = None,
    ) -> NDArray[np.float64]:
        """Uniform samples by hit-and-run.

        Args:
            n: Number of points.
            seed: Seed in ``[0, 2**64)``; the same seed gives the same points.
            method: ``"coordinate"`` (fast steps) or ``"random"`` directions.
            burn_in: Steps discarded per chain; default ``200 * d``.
            thin: Steps between recorded points; default ``d``.
            n_chains: Independent chains the points are split across.
            rounding: ``"auto"`` rounds badly conditioned polytopes (thin
                slabs, skewed simplices) by an affine map before sampling;
                ``"always"`` or ``"never"`` force the choice.
            start: Strictly interior start point, shape ``(d,)``; default the
                Chebyshev centre.

        Returns:
            Points, shape ``(n, d)``, each within the bounds exactly and
            meeting ``a @ x <= b`` (``geometry.rows_hold``).

        Raises:
            EmptyPolytopeError: No interior or unbounded.
            ValueError: Bad arguments.
        """
        if rounding not in ("auto", "always", "never"):
            raise ValueError(f"rounding: unknown value {rounding!r}")
        d = self.d
        burn = 200 * d if burn_in is None else burn_in
        th = d if thin is None else thin
        center, _ = self.chebyshev_center()
        x0 = center if start is None else _vector(start, d, "start")
        transform = None
        # no points: nothing to round for
        if rounding == "always" or (rounding == "auto" and n > 0):
            transform = self._rounding(method)
            if transform is None and rounding == "always":
                c = _analytic_center(*self.rows(), center)
                transform = (c, np.eye(d))
        if transform is None:
            x = _sampler.hit_and_run(
                self.a, self.b, self.lo, self.hi, x0, n,
                burn_in=burn, thin=th, n_chains=n_chains, method=method, seed=seed,
            )  # fmt: skip
            return self._pull_inside(x, center)
        c, t = transform
        g, h = self.rows()
        ay = np.ascontiguousarray(g @ t)
        by = h - g @ c
        y0 = np.linalg.solve(t, x0 - c).astype(np.float64)
        inf = np.full(d, np.inf)
        y = _sampler.hit_and_run(
            ay, by, -inf, inf, y0, n,
            burn_in=burn, thin=th, n_chains=n_chains, method=method, seed=seed,
        )  # fmt: skip
        return self._pull_inside(c + y @ t.T, c)


def _int_feasible(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    z: NDArray[np.int64],
) -> NDArray[np.bool_]:
    two = np.atleast_2d(z)
    ok = np.all((two >= lo) & (two <= hi), axis=1)
    if a.shape[0]:
        ok &= geometry.rows_hold(a, b, two.astype(np.float64))
    return ok


class IntegerPolytope:
    """The integer points ``{z in Z^d : lo <= z <= hi, a @ z <= b}``.

    Args:
        a: Constraint matrix, shape ``(m, d)``.
        b: Right-hand sides, shape ``(m,)``.
        lo: Integer lower bounds, shape ``(d,)``.
        hi: Integer upper bounds, shape ``(d,)``.

    Raises:
        ValueError: Bad shapes, NaN, non-integer bounds.
    """

    def __init__(self, a: ArrayLike, b: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> None:
        lo_f = np.asarray(lo, dtype=np.float64)
        hi_f = np.asarray(hi, dtype=np.float64)
        if lo_f.ndim != 1 or lo_f.size == 0:
            raise ValueError(f"lo: expected a non-empty 1-D array, got shape {lo_f.shape}")
        for name, arr in (("lo", lo_f), ("hi", hi_f)):
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise ValueError(f"{name}: must hold finite integers")
        d = lo_f.size
        self.a = _as_matrix(a, d)
        if self.a.shape[1] != d:
            raise ValueError(f"a: has {self.a.shape[1]} columns, expected len(lo) = {d}")
        self.b = _vector(b, self.a.shape[0], "b")
        if not (np.all(np.isfinite(self.a)) and np.all(np.isfinite(self.b))):
            raise ValueError("a/b: must be finite")
        self.lo = _vector(lo_f, d, "lo", np.int64)
        self.hi = _vector(hi_f, d, "hi", np.int64)
        if np.any(self.lo > self.hi):
            raise ValueError("lo: exceeds hi")
        self._start: NDArray[np.int64] | None = None

    @property
    def d(self) -> int:
        """Dimension."""
        return int(self.a.shape[1])

    def is_feasible(self, z: ArrayLike) -> NDArray[np.bool_]:
        """Whether integer points satisfy the bounds and every row.

        Args:
            z: One point, shape ``(d,)``, or several, shape ``(n, d)``.

        Returns:
            Boolean, shape ``()`` or ``(n,)``.
        """
        arr = np.asarray(z)
        if not np.issubdtype(arr.dtype, np.integer):
            if np.any(arr != np.round(arr)):
                return np.zeros(np.atleast_2d(arr).shape[0], dtype=bool)[
                    (0 if arr.ndim == 1 else slice(None))
                ]
            arr = arr.astype(np.int64)
        ok = _int_feasible(self.a, self.b, self.lo, self.hi, arr)
        return ok if arr.ndim == 2 else ok[0]

    def start_point(self) -> NDArray[np.int64]:
        """A feasible integer point near the centre: the MILP point closest (L1)
        to the Chebyshev centre of the continuous relaxation.

        Returns:
            Shape ``(d,)``, int64.

        Raises:
            EmptyPolytopeError: No integer point is feasible.
        """
        if self._start is not None:
            return self._start
        d, m = self.d, self.a.shape[0]
        lo, hi = self.lo.astype(np.float64), self.hi.astype(np.float64)
        g, h = geometry.system_rows(self.a, self.b, lo, hi)
        try:
            target, _ = _chebyshev(g, h)
        except EmptyPolytopeError:
            target = 0.5 * (lo + hi)
        # Variables [z (int), t (cont)]: min sum t, t >= |z - target|.
        eye = np.eye(d)
        lc = scipy.optimize.LinearConstraint
        cons = [
            lc(np.hstack([eye, -eye]), -np.inf, target),
            lc(np.hstack([-eye, -eye]), -np.inf, -target),
        ]
        if m:
            tol = geometry.TOLERANCE * np.maximum(1.0, np.abs(self.b))
            cons.append(
                scipy.optimize.LinearConstraint(
                    np.hstack([self.a, np.zeros((m, d))]), -np.inf, self.b + 0.1 * tol
                )
            )
        res = scipy.optimize.milp(
            np.concatenate([np.zeros(d), np.ones(d)]),
            constraints=cons,
            integrality=np.concatenate([np.ones(d), np.zeros(d)]),
            bounds=scipy.optimize.Bounds(
                np.concatenate([lo, np.zeros(d)]), np.concatenate([hi, np.full(d, np.inf)])
            ),
        )
        if res.status != 0 or res.x is None:
            # HiGHS occasionally fails on the L1 problem of a tiny system ("Solve
            # error"); any feasible integer point is still a valid start.
            res = scipy.optimize.milp(
                np.zeros(d),
                constraints=[scipy.optimize.LinearConstraint(self.a, -np.inf, self.b)] if m else [],
                integrality=np.ones(d),
                bounds=scipy.optimize.Bounds(lo, hi),
            )
        if res.status != 0 or res.x is None:
            raise EmptyPolytopeError(f"no integer point satisfies the constraints ({res.message})")
        z = np.round(res.x[:d]).astype(np.int64)
        if not _int_feasible(self.a, self.b, self.lo, self.hi, z)[0]:
            raise EmptyPolytopeError("the MILP start point is not feasible after rounding")
        self._start = z
        return z

    def sample(
        self,
        n: int,
        seed: int = 0,
        *,
        burn_in: int | None = None,
        thin: int | None = None,
        n_chains: int = 1,
        start: ArrayLike | None = None,
    ) -> NDArray[np.int64]:
        """Uniform samples of the integer points by coordinate hit-and-run on the lattice.

        Each step moves one coordinate to an integer of its chord chosen
        uniformly. The chain is uniform when coordinate moves connect every
        integer point (true for boxes cut by a few inequalities; not for
        equality-like pairs of rows, which pin coordinates together).

        Args:
            n: Number of points.
            seed: Seed in ``[0, 2**64)``.
            burn_in: Steps discarded per chain; default ``200 * d``.
            thin: Steps between recorded points; default ``d``.
            n_chains: Independent chains.
            start: Feasible integer start, shape ``(d,)``; default :meth:`start_point`.

        Returns:
            Points, shape ``(n, d)``, int64, each feasible.

        Raises:
            EmptyPolytopeError: No integer point is feasible.
            ValueError: Bad arguments.
        """
        d = self.d
        z0 = self.start_point() if start is None else _vector(start, d, "start", np.int64)
        z = _sampler.hit_and_run_int(
            self.a, self.b, self.lo, self.hi, z0, n,
            burn_in=200 * d if burn_in is None else burn_in,
            thin=d if thin is None else thin,
            n_chains=n_chains, seed=seed,
        )  # fmt: skip
        return z


def maximin_design(
    candidates: ArrayLike,
    k: int,
    existing: ArrayLike | None = None,
    rng: np.random.Generator | int | None = None,
    *,
    lo: ArrayLike | None = None,
    hi: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Greedy maximin selection of ``k`` space-filling points from candidates.

    Distances are measured after scaling every coordinate to ``[0, 1]`` (by
    ``lo``/``hi`` if given, else by the range of the candidates and existing
    points). Each pick maximises the distance to the nearest point already
    chosen or existing; the first pick, when there is nothing existing, is
    random.

    Args:
        candidates: Feasible points to choose from, shape ``(n, d)``
            (typically sampler output).
        k: Number of points to choose, ``0 <= k <= n``.
        existing: Points already in the design (observed or pending),
            shape ``(e, d)``.
        rng: Generator or seed for the first pick.
        lo: Lower ends of the scaling, shape ``(d,)``.
        hi: Upper ends of the scaling, shape ``(d,)``.

    Returns:
        The chosen candidates, shape ``(k, d)``, in the order picked.

    Raises:
        ValueError: Bad shapes or ``k`` out of range.
    """
    cand = np.asarray(candidates, dtype=np.float64)
    if cand.ndim != 2:
        raise ValueError(f"candidates: expected shape (n, d), got {cand.shape}")
    n, d = cand.shape
    if not 0 <= k <= n:
        raise ValueError(f"k: must be in [0, {n}], got {k}")
    ex = (
        np.empty((0, d))
        if existing is None
        else np.asarray(existing, dtype=np.float64).reshape(-1, d)
    )
    allpts = np.vstack([cand, ex])
    lo_a = allpts.min(axis=0) if lo is None else _vector(lo, d, "lo")
    hi_a = allpts.max(axis=0) if hi is None else _vector(hi, d, "hi")
    span = np.where(hi_a > lo_a, hi_a - lo_a, 1.0)
    c = (cand - lo_a) / span
    gen = np.random.default_rng(rng)
    chosen: list[int] = []
    if ex.shape[0]:
        e = (ex - lo_a) / span
        dist = np.min(((c[:, None, :] - e[None, :, :]) ** 2).sum(axis=2), axis=1)
    else:
        dist = np.full(n, np.inf)
    for _ in range(k):
        i = int(gen.integers(n)) if not np.isfinite(dist).any() else int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, ((c - c[i]) ** 2).sum(axis=1))
        dist[i] = -1.0
    return cand[chosen]
