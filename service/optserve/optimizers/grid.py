"""Grid search: the cartesian product of every parameter's grid, each point once."""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..domain.errors import FailedPrecondition
from ..domain.model import Assignments, Experiment, ExperimentType
from ..domain.validation import grid_values
from .base import Optimizer, SuggestRequest, register


def suggest(request: SuggestRequest) -> list[Assignments]:
    taken = [o.assignments for o in request.observations]
    taken += [s.assignments for s in request.pending]
    return next_points(request.experiment, taken, request.count)


def next_points(exp: Experiment, taken: Iterable[Assignments], count: int) -> list[Assignments]:
    """The first ``count`` points of the product (in ``itertools.product`` order) that
    no assignments of ``taken`` (observations and open suggestions) match.

    Points are handled as their index in the product (the last parameter varies
    fastest), so neither the product nor the taken points are walked as tuples: the
    cost is a dictionary look-up per taken value and a sort of the taken indices.
    """
    names = [p.name for p in exp.parameters]
    grids = [grid_values(p) for p in exp.parameters]
    # a value matches a grid value as tuple membership did: by hash and ==
    positions = [{v: i for i, v in reversed(list(enumerate(g)))} for g in grids]
    strides = [math.prod(len(g) for g in grids[k + 1 :]) for k in range(len(grids))]
    indices = set()
    for assignments in taken:
        index = 0
        for name, where, stride in zip(names, positions, strides, strict=True):
            value = assignments.get(name)
            i = where.get(value, -1) if isinstance(value, (str, int, float)) else -1
            if i < 0:
                break
            index += i * stride
        else:
            indices.add(index)
    free: list[int] = []
    candidate = 0
    size = math.prod(len(g) for g in grids)
    for index in sorted(indices):
        while candidate < index and len(free) < count:
            free.append(candidate)
            candidate += 1
        if len(free) == count:
            break
        candidate = index + 1
    while len(free) < count and candidate < size:
        free.append(candidate)
        candidate += 1
    if len(free) < count:
        raise FailedPrecondition(
            f"the grid has {len(free)} unvisited point(s) left, fewer than the {count} asked"
        )
    return [
        {
            name: grid[index // stride % len(grid)]
            for name, grid, stride in zip(names, grids, strides, strict=True)
        }
        for index in free
    ]


# Grid values are the parameters' own: nothing to make exact.
register(ExperimentType.GRID, Optimizer(suggest, exact=False))
