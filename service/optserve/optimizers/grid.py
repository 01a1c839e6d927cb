"""Grid search: the cartesian product of every parameter's grid, each point once."""

from __future__ import annotations

import itertools

from ..domain.errors import FailedPrecondition
from ..domain.model import Assignments, ExperimentType
from ..domain.validation import grid_values
from .base import Optimizer, SuggestRequest, register


def _key(assignments: Assignments, names: list[str]) -> tuple:
    return tuple(assignments.get(n) for n in names)


def suggest(request: SuggestRequest) -> list[Assignments]:
    exp = request.experiment
    names = [p.name for p in exp.parameters]
    taken = {_key(o.assignments, names) for o in request.observations}
    taken |= {_key(s.assignments, names) for s in request.pending}
    out: list[Assignments] = []
    for combo in itertools.product(*(grid_values(p) for p in exp.parameters)):
        if combo in taken:
            continue
        out.append(dict(zip(names, combo, strict=True)))
        if len(out) == request.count:
            return out
    raise FailedPrecondition(
        f"the grid has {len(out)} unvisited point(s) left, fewer than the {request.count} asked"
    )


# Grid values are the parameters' own: nothing to make exact.
register(ExperimentType.GRID, Optimizer(suggest, exact=False))
