"""Grid search: the cartesian product of every parameter's grid, each point once."""

from __future__ import annotations

import bisect

from ..domain.errors import FailedPrecondition
from ..domain.grid import Grid, TakenPoints, union
from ..domain.model import Assignments, Experiment, ExperimentType
from .base import Optimizer, SuggestRequest, register


def suggest(request: SuggestRequest) -> list[Assignments]:
    taken = [o.assignments for o in request.observations]
    taken += [s.assignments for s in request.pending]
    return next_points(request.experiment, TakenPoints(unindexed=taken), request.count)


def next_points(exp: Experiment, taken: TakenPoints, count: int) -> list[Assignments]:
    """The first ``count`` points of the product (in ``itertools.product`` order, see
    ``domain.grid``) whose index is not taken.

    The taken indices are sorted and distinct, so ``taken[i] - i`` (how many free
    indices lie below ``taken[i]``) never decreases: the k-th free index is found by
    bisection, without walking the taken indices one by one.
    """
    grid = Grid(exp)
    indices = taken.indices
    if taken.unindexed:
        indices = union(indices, (grid.index(a) for a in taken.unindexed))
    free: list[int] = []
    for k in range(count):
        # the first i whose taken index has more than k free indices below it
        i = bisect.bisect_right(range(len(indices)), k, key=lambda j: indices[j] - j)
        index = k + i
        if index >= grid.size:
            raise FailedPrecondition(
                f"the grid has {len(free)} unvisited point(s) left, fewer than the {count} asked"
            )
        free.append(index)
    return [grid.point(index) for index in free]


# Grid values are the parameters' own: nothing to make exact.
register(ExperimentType.GRID, Optimizer(suggest, exact=False))
