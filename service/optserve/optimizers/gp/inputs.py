"""The input map of a GP on a conditional search space: the arc kernel.

Swersky et al., "Raiders of the lost architecture: kernels for Bayesian
optimization in conditional parameter spaces" (2014): a numeric parameter
``x`` in ``[0, 1]`` that is active only in some branches becomes two inputs,
``w (cos(pi rho x), sin(pi rho x))`` where it is active and ``(0, 0)`` where
it is not. An inactive point is then equally far (``w``) from every active
value: the shared parameters still carry information between branches, but
the branch without the parameter no longer pins its value (with a constant
placeholder, a point of the other branch acts as an observation at that value).

The paper fits ``rho`` and ``w`` per parameter; here they are fixed.
``w = 1 / (pi rho)`` keeps small differences at their encoded length, so the
length-scale priors mean the same for both kinds of column. ``rho = 1`` lays
the range on a half circle around the inactive point: the ends are antipodal
(a chord of 2/pi = 0.64 against 1, the kernel still orders the range) and an
inactive point is 1/pi = 0.32 from every value, about as far as the constant
placeholder (0.5) was from the values around it (1/4 on average), so the
branches share as much information as before, without the pin. (A smaller
``rho`` puts inactive points farther, 2/pi at ``rho = 1/2``: less sharing,
measured worse on a nested-branch benchmark, as was a placeholder outside
the range.) Both inputs of a pair share one length scale (the kernel stays
isotropic in the pair, which the equal distances need): the hyperparameters
keep one length scale per encoded column.

The arc kernel alone still multiplies: between a point of one branch and a
point of a deeper one, every parameter only the deeper branch has takes a
factor below one, so what the branches share (the best values of their common
parameters) barely carries into a branch that has few points yet. The kernel
on a conditional space is therefore a mixture (the product-and-sum mixture of
CoCaBO, Ru et al. 2020): half of its variance is the product kernel over every
input, half an additive kernel over groups of parameters that are active
together (Add-Tree, Ma & Blaschko 2020): the always-active numeric parameters,
then the conditional ones grouped by their conditions. A group counts only
where it is active, and each point spreads the additive half over its active
groups (so ``k(x, x)`` is the outputscale everywhere and the additive half's
share transfers between branches in proportion to what they have in common).
Every term is a Matérn kernel on its inputs with the same length scales,
scaled per point: a sum of such terms is a valid kernel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["ARC_RADIUS", "ARC_RHO", "PRODUCT_WEIGHT", "ArcColumn", "InputMap"]

FloatArray = NDArray[np.float64]

ARC_RHO = 1.0
ARC_RADIUS = 1.0 / (math.pi * ARC_RHO)
_ANGLE = math.pi * ARC_RHO
# the product kernel's share of the variance where a point has an active group
PRODUCT_WEIGHT = 0.5


@dataclass(frozen=True)
class ArcColumn:
    """An encoded column that is active only where its conditions hold.

    Attributes:
        column: the column of the encoded row.
        conditions: per conditional, the one-hot columns of its allowed values;
            the column is active where each conditional has one of them set.
    """

    column: int
    conditions: tuple[tuple[int, ...], ...]


class InputMap:
    """Encoded rows ``(n, D)`` to the GP's inputs ``(n, D + m)``: the ``m`` arc
    columns hold their cosine in place and their sine at the end.

    Args:
        dim: the encoded dimension ``D``.
        arcs: the conditional numeric columns.
        shared: the always-active numeric columns (the additive kernel's first group).
    """

    def __init__(self, dim: int, arcs: Sequence[ArcColumn], shared: Sequence[int] = ()) -> None:
        self.dim = dim
        self.arcs = tuple(arcs)
        self.shared = tuple(int(c) for c in shared)
        self.columns = np.array([a.column for a in self.arcs], dtype=np.int64)
        # the encoded column each input's length scale comes from
        self.groups = np.concatenate([np.arange(dim), self.columns])
        # Additive groups, each as (its encoded columns: its length scales; its
        # inputs; the arc telling where it is active, -1: always): the shared
        # columns, then the arcs grouped by their conditions.
        by_conditions: dict[tuple[tuple[int, ...], ...], list[int]] = {}
        for j, arc in enumerate(self.arcs):
            by_conditions.setdefault(arc.conditions, []).append(j)
        groups: list[tuple[NDArray[np.int64], NDArray[np.int64], int]] = []
        if self.shared:
            shared_columns = np.array(self.shared, dtype=np.int64)
            groups.append((shared_columns, shared_columns, -1))
        for members in by_conditions.values():
            columns = self.columns[members]
            inputs = np.concatenate([columns, dim + np.array(members, dtype=np.int64)])
            groups.append((columns, inputs, members[0]))
        self.group_columns = tuple(g[0] for g in groups)
        self.group_inputs = tuple(g[1] for g in groups)
        self._probes = tuple(g[2] for g in groups)

    @property
    def features(self) -> int:
        """The GP's input dimension ``D + m``."""
        return self.dim + len(self.arcs)

    def key(self) -> tuple[object, ...]:
        """What the map and the kernel's mixture depend on (for cache keys)."""
        return ("arc", ARC_RHO, self.dim, self.arcs, "mix", PRODUCT_WEIGHT, self.shared)

    def scales(self, inputs: FloatArray) -> FloatArray:
        """(n, 1 + G) per point of the GP's inputs: the scale of the product
        kernel, then of each additive group's kernel. The squares sum to one:
        ``PRODUCT_WEIGHT`` and the rest shared by the active groups, or the
        product alone where no group is active."""
        inputs = np.asarray(inputs, dtype=np.float64).reshape(-1, self.features)
        active = np.ones((len(inputs), len(self._probes)))
        for g, j in enumerate(self._probes):
            if j >= 0:
                radius2 = inputs[:, self.columns[j]] ** 2 + inputs[:, self.dim + j] ** 2
                active[:, g] = radius2 > 0.25 * ARC_RADIUS**2
        count = active.sum(axis=1)
        out = np.empty((len(inputs), 1 + len(self._probes)))
        out[:, 0] = np.where(count > 0, math.sqrt(PRODUCT_WEIGHT), 1.0)
        out[:, 1:] = active * np.sqrt((1.0 - PRODUCT_WEIGHT) / np.maximum(count, 1.0))[:, None]
        return out

    def active(self, rows: FloatArray) -> FloatArray:
        """(n, m) 1.0 where each arc column is active, else 0.0."""
        out = np.ones((len(rows), len(self.arcs)))
        for j, arc in enumerate(self.arcs):
            for allowed in arc.conditions:
                out[:, j] *= np.max(rows[:, list(allowed)], axis=1) > 0.5
        return out

    def __call__(self, rows: FloatArray) -> FloatArray:
        """The GP's inputs of encoded ``rows``."""
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, self.dim)
        active = self.active(rows)
        angle = _ANGLE * rows[:, self.columns]
        out = np.empty((len(rows), self.features))
        out[:, : self.dim] = rows
        out[:, self.columns] = ARC_RADIUS * active * np.cos(angle)
        out[:, self.dim :] = ARC_RADIUS * active * np.sin(angle)
        return out

    def pull_back(self, row: FloatArray, grad: FloatArray) -> FloatArray:
        """The gradient in the encoded row of a function whose gradient in the
        inputs at ``self(row)`` is ``grad`` (the Jacobian is diagonal but for the
        pairs, each a 2 x 1 block)."""
        active = self.active(row[None, :])[0]
        angle = _ANGLE * row[self.columns]
        out = np.array(grad[: self.dim], dtype=np.float64)
        scale = ARC_RADIUS * _ANGLE * active
        out[self.columns] = scale * (
            -np.sin(angle) * grad[self.columns] + np.cos(angle) * grad[self.dim :]
        )
        return out

    def lengthscales(self, lengthscales: FloatArray) -> FloatArray:
        """(D + m,) the inputs' length scales from the (D,) encoded columns' ones."""
        return np.asarray(lengthscales, dtype=np.float64)[self.groups]

    def group_squares(self, squares: FloatArray) -> FloatArray:
        """(P, D) squared differences per encoded column from (P, D + m) per input:
        a pair's two inputs share its length scale, so their squares add."""
        out = squares[:, : self.dim].copy()
        out[:, self.columns] += squares[:, self.dim :]
        return out
