"""Uniform draws over an experiment's feasible set, through the compiled sampler.

Linear constraints never mix doubles and ints, so the constrained doubles form
one polytope and the constrained ints the integer points of another; the
remaining parameters (and conditionals) are drawn independently.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from numpy.typing import NDArray

from ..domain import geometry
from ..domain.encoding import Encoder, VectorSpace
from ..domain.model import Assignments, Experiment, ParameterType
from ..sampling import IntegerPolytope, Polytope


class FeasibleSpace:
    """The feasible set of one experiment, with its polytopes prepared once."""

    def __init__(self, exp: Experiment) -> None:
        self.experiment = exp
        # parameters drawn by the polytope samplers rather than one by one
        self.constrained = {t.name for lc in exp.linear_constraints for t in lc.terms}
        names, a, b, lo, hi = geometry.constraint_system(exp, ParameterType.DOUBLE)
        self.double_names = names
        # The doubles are sampled in the unit cube, u = (x - lo) / (hi - lo), with unit
        # rows: parameters and weights of any scale then make a well-conditioned system.
        self._double_lo, self._double_width = lo, hi - lo
        self.doubles = (
            Polytope(*geometry.unit_system(a, b, lo, hi), np.zeros(len(lo)), np.ones(len(lo)))
            if names
            else None
        )
        names, a, b, lo, hi = geometry.constraint_system(exp, ParameterType.INT)
        self.int_names = names
        self.ints = IntegerPolytope(a, b, lo, hi) if names else None
        self.encoder = Encoder(exp)
        self.vectors = VectorSpace(self.encoder)
        self._params = {p.name: p for p in exp.parameters}
        # constraints as rows over parameter values: A v <= b (scaled, where their
        # terms are tiny, to the magnitude the feasibility rule can tell apart)
        self._lhs = []
        for lc in exp.linear_constraints:
            weights, rhs = lc.as_less_equal()
            names = list(weights)
            bounds = [self._params[n].bounds for n in names]
            scaled, rhs = geometry.in_reach(
                np.array([weights[n] for n in names]),
                rhs,
                np.array([bd.min if bd else 0.0 for bd in bounds]),
                np.array([bd.max if bd else 0.0 for bd in bounds]),
            )
            self._lhs.append((dict(zip(names, scaled.tolist(), strict=True)), rhs))
        # Int constraints whose weights or threshold are not integers: an int point
        # on their boundary can exceed it in a client's floating-point sum
        # (0.1 + 0.2 > 0.3), which the rule's tolerance lets through; such points
        # are refused (doubles are moved inward instead: ``exact``).
        self._inexact_ints = [
            lc
            for lc in exp.linear_constraints
            if lc.terms[0].name in self.int_names
            and not all(
                float(v).is_integer() for v in [lc.threshold, *(t.weight for t in lc.terms)]
            )
        ]

    def draw_rows(self, n: int, rng: np.random.Generator) -> NDArray[np.float64]:
        """``n`` uniform feasible draws, encoded: shape (n, D)."""
        enc = self.encoder
        exp = self.experiment
        rows = rng.random((n, enc.dim))
        for p in exp.parameters:
            s = enc.slices[p.name]
            if p.name in self.constrained or p.type is ParameterType.CATEGORICAL:
                continue
            if p.grid:
                grid = np.array(p.grid, dtype=np.float64)
                rows[:, s.start] = self.vectors.encode_values(
                    p, grid[rng.integers(len(grid), size=n)]
                )
            elif p.type is ParameterType.INT and not p.is_log:
                assert p.bounds is not None
                ints = rng.integers(int(p.bounds.min), int(p.bounds.max) + 1, size=n)
                rows[:, s.start] = self.vectors.encode_values(p, ints.astype(np.float64))
        if self.doubles is not None:
            us = self.doubles.sample(n, seed=int(rng.integers(2**63)), n_chains=max(1, min(n, 4)))
            self._write_doubles(rows, us)
        if self.ints is not None:
            zs = self._int_draws(n, rng)
            for j, name in enumerate(self.int_names):
                rows[:, enc.slices[name].start] = self.vectors.encode_values(
                    self._params[name], zs[:, j].astype(np.float64)
                )
        return self.vectors.canonical(rows)

    def _int_draws(self, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
        """``n`` uniform draws of the constrained ints, those a client's sum refuses
        drawn again (a few rounds; a set with no such point keeps what it has)."""
        assert self.ints is not None
        zs = self.ints.sample(n, seed=int(rng.integers(2**63)), n_chains=max(1, min(n, 4)))
        for _ in range(_INT_REDRAWS if self._inexact_ints else 0):
            bad = ~self._ints_exact(zs)
            if not bad.any():
                break
            more = self.ints.sample(int(bad.sum()), seed=int(rng.integers(2**63)), n_chains=1)
            zs[bad] = more
        return zs

    def _ints_exact(self, zs: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether each row of constrained int values meets every inexact int
        constraint in a client's floating-point sums (``holds_exactly``)."""
        column = {name: j for j, name in enumerate(self.int_names)}
        return np.array(
            [
                geometry.holds_exactly(
                    self._inexact_ints, {name: int(z[j]) for name, j in column.items()}
                )
                for z in zs
            ],
            dtype=bool,
        )

    def encoded_double_constraints(
        self, cols: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The double constraints as ``a @ u <= b`` over the encoded columns ``cols``.

        Only constraints whose parameters all lie in ``cols`` are returned; the
        others do not move when only ``cols`` change.
        """
        enc = self.encoder
        position = {int(c): j for j, c in enumerate(cols)}
        rows, rhs = [], []
        for weights, bound in self._lhs:
            names = list(weights)
            if not all(enc.slices[n].start in position for n in names):
                continue
            row = np.zeros(len(cols))
            shift = bound
            for name in names:
                p = self._params[name]
                assert p.bounds is not None
                span = p.bounds.max - p.bounds.min
                row[position[enc.slices[name].start]] = weights[name] * span
                shift -= weights[name] * p.bounds.min
            rows.append(row)
            rhs.append(shift)
        return np.array(rows).reshape(len(rows), len(cols)), np.array(rhs)

    def feasible_mask(self, rows: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Rows (canonical) whose values satisfy every linear constraint (the
        inexact int ones in a client's sums too)."""
        ok = np.ones(len(rows), dtype=bool)
        for weights, rhs in self._lhs:
            terms = np.stack(
                [w * self.vectors.values(rows, self._params[name]) for name, w in weights.items()]
            )
            ok &= geometry.within(terms.sum(axis=0) - rhs, np.abs(terms).max(axis=0))
        if self._inexact_ints and ok.any():
            zs = np.column_stack(
                [self.vectors.values(rows[ok], self._params[n]) for n in self.int_names]
            ).astype(np.int64)
            ok[ok] = self._ints_exact(zs)
        return ok

    def draw(self, n: int, rng: np.random.Generator) -> list[Assignments]:
        """``n`` independent uniform draws of complete, feasible assignments."""
        return self.encoder.decode(self.draw_rows(n, rng))

    def exact(self, points: list[Assignments]) -> list[Assignments]:
        """Points whose double constraints hold in plain floating-point arithmetic.

        A point sampled on a boundary may exceed it by an ulp once summed the way
        a client sums it (``alpha + beta = 1.0000000000000013``); such a point is
        moved towards the polytope's Chebyshev centre, just far enough.
        """
        if self.doubles is None:
            return points
        rows = [
            lc for lc in self.experiment.linear_constraints if lc.terms[0].name in self.double_names
        ]
        centre_u, _ = self.doubles.chebyshev_center()
        centre = self._double_values(centre_u[None, :])[0]
        out = []
        for point in points:
            x = np.array([float(point[n]) for n in self.double_names])
            shrink = 1e-15
            while not geometry.holds_exactly(rows, point) and shrink < 1e-3:
                shrink *= 4
                moved = centre + (1.0 - shrink) * (x - centre)
                point = {**point, **dict(zip(self.double_names, map(float, moved), strict=True))}
            out.append(point)
        return out

    def centred(
        self, middle: NDArray[np.float64], draw: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """``middle`` (encoded) made canonical, where a linear constraint breaks
        with its constrained ints as in ``draw`` (a feasible row) and, where one
        still breaks, its constrained doubles at the Chebyshev centre of their
        polytope. Constraints never mix doubles and ints: each kind's
        constraints hold or break by that kind's values alone."""
        enc = self.encoder
        rows = self.vectors.canonical(middle[None, :])
        if self.feasible_mask(rows)[0]:
            return rows[0]
        for name in self.int_names:
            rows[0, enc.slices[name]] = draw[enc.slices[name]]
        if self.doubles is not None and not self.feasible_mask(rows)[0]:
            centre_u, _ = self.doubles.chebyshev_center()
            self._write_doubles(rows, centre_u[None, :])
            rows = self.vectors.canonical(rows)
        return rows[0]

    def _write_doubles(self, rows: NDArray[np.float64], us: NDArray[np.float64]) -> None:
        """Writes unit-cube rows of the constrained doubles into encoded ``rows``."""
        xs = self._double_values(us)
        for j, name in enumerate(self.double_names):
            rows[:, self.encoder.slices[name].start] = self.vectors.encode_values(
                self._params[name], xs[:, j]
            )

    def _double_values(self, us: NDArray[np.float64]) -> NDArray[np.float64]:
        """Unit-cube rows of the constrained doubles as their values, within bounds."""
        lo, width = self._double_lo, self._double_width
        return np.clip(lo + us * width, lo, lo + width)

    def is_feasible(self, assignments: Assignments) -> bool:
        """Whether every linear constraint holds (bounds and types are the encoder's
        job), the inexact int ones in a client's sums too."""
        return all(
            geometry.holds(lc, assignments) for lc in self.experiment.linear_constraints
        ) and geometry.holds_exactly(self._inexact_ints, assignments)


# rounds of redrawing the int draws a client's sums refuse
_INT_REDRAWS = 20

_CACHE: OrderedDict[tuple[str, int, str], FeasibleSpace] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 256

# space_key's answers by the identity of the lists that define a space and of their
# items, which an entry holds (so no id is reused while it lives). The storage's
# definition cache hands out shallow copies sharing these objects; an update replaces
# the lists (the search space is immutable through the API) and nothing changes a
# parameter, conditional or constraint in place. So the same objects mean the same
# space, and the repr (a third of a random draw's cost) is made once per definition.
_KEYS: OrderedDict[tuple[int, ...], tuple[tuple[object, ...], tuple[str, int, str]]] = OrderedDict()


def _identity(exp: Experiment) -> tuple[object, ...]:
    lists = (exp.parameters, exp.conditionals, exp.linear_constraints)
    return (*lists, *lists[0], *lists[1], *lists[2])


def space_key(exp: Experiment) -> tuple[str, int, str]:
    """Identifies a search space: ids alone may repeat across stores (and tests)."""
    objects = _identity(exp)
    sizes = (len(exp.parameters), len(exp.conditionals))
    ids = (hash(exp.id), exp.seed, *sizes, *map(id, objects))
    with _CACHE_LOCK:
        known = _KEYS.get(ids)
        if (
            known is not None
            and known[1][:2] == (exp.id, exp.seed)
            and all(a is b for a, b in zip(known[0], objects, strict=True))
        ):
            _KEYS.move_to_end(ids)
            return known[1]
    key = (exp.id, exp.seed, repr((exp.parameters, exp.conditionals, exp.linear_constraints)))
    with _CACHE_LOCK:
        _KEYS[ids] = (objects, key)
        while len(_KEYS) > _CACHE_SIZE:
            _KEYS.popitem(last=False)
    return key


def feasible_space(exp: Experiment) -> FeasibleSpace:
    """The prepared feasible set; the search space is immutable, so it is cached."""
    key = space_key(exp)
    with _CACHE_LOCK:
        space = _CACHE.get(key)
        if space is not None:
            _CACHE.move_to_end(key)
            return space
    space = FeasibleSpace(exp)
    with _CACHE_LOCK:
        _CACHE[key] = space
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return space
