"""A grid experiment's points as their index in the product of the parameters' grids.

The product is walked in ``itertools.product`` order (the last parameter varies
fastest). Storage keeps each row's index (``grid_index``) so that finding the next
points reads integers, not assignments; the grid optimizer maps indices back to
points. Parameters and type never change after an experiment is created, so an index
stored once stays true.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .model import Assignments, Experiment, ExperimentType, Value
from .validation import grid_values

# The index of assignments that are not a point of the grid (an explicit observation
# off the grid, a parameter missing).
OFF_GRID = -1


class Grid:
    """The product of a grid experiment's parameter grids, point <-> index."""

    def __init__(self, exp: Experiment) -> None:
        self.names = [p.name for p in exp.parameters]
        self.values = [grid_values(p) for p in exp.parameters]
        # a value matches a grid value as tuple membership did: by hash and ==
        # (an int assignment 2 is the grid's 2.0; the first equal value wins)
        self._positions = [{v: i for i, v in reversed(list(enumerate(g)))} for g in self.values]
        self._strides = [
            math.prod(len(g) for g in self.values[k + 1 :]) for k in range(len(self.values))
        ]
        self.size = math.prod(len(g) for g in self.values)

    def index(self, assignments: Assignments) -> int:
        """The point's index in the product, OFF_GRID when it is not a point of the grid."""
        index = 0
        for name, where, stride in zip(self.names, self._positions, self._strides, strict=True):
            value = assignments.get(name)
            i = where.get(value, -1) if isinstance(value, (str, int, float)) else -1
            if i < 0:
                return OFF_GRID
            index += i * stride
        return index

    def point(self, index: int) -> Assignments:
        """The assignments of the point at ``index`` (0 <= index < size)."""
        out: dict[str, Value] = {}
        for name, grid, stride in zip(self.names, self.values, self._strides, strict=True):
            out[name] = grid[index // stride % len(grid)]
        return out


def grid_of(exp: Experiment) -> Grid | None:
    """The grid of a GRID experiment, None for experiments of other types."""
    return Grid(exp) if exp.type is ExperimentType.GRID else None


@dataclass
class TakenPoints:
    """What a grid experiment has visited (observations and live suggestions).

    ``indices``: the grid indices of the rows that have one, sorted and distinct
    (OFF_GRID left out); a ``range(n)`` when they are the product's first n points.
    ``unindexed``: the assignments of the rows stored without an index (written
    before indices were kept, or by a server of before during an upgrade), to be
    indexed when read.
    """

    indices: Sequence[int] = field(default_factory=list)
    unindexed: list[Assignments] = field(default_factory=list)


def union(indices: Sequence[int], more: Iterable[int]) -> Sequence[int]:
    """The sorted, distinct union of the sorted, distinct ``indices`` and ``more``
    (OFF_GRID left out); a range from 0 stays one while ``more`` extends it."""
    extra = sorted({i for i in more if i >= 0})
    if not extra:
        return indices
    if isinstance(indices, range) and indices.start == 0 and indices.step == 1:
        stop = indices.stop
        for i in extra:
            if i == stop:
                stop += 1
        if extra[-1] < stop:
            return range(stop)
    return sorted(set(indices).union(extra))
