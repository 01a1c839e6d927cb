"""The grid's first definition, kept as the reference its faster forms are checked against."""

from __future__ import annotations

import itertools

from optserve.domain.errors import FailedPrecondition
from optserve.domain.model import Experiment
from optserve.domain.validation import grid_values


def rescan(exp: Experiment, taken: list[dict], count: int) -> list[dict]:
    """The first ``count`` points of the product not among the visited tuples."""
    names = [p.name for p in exp.parameters]
    seen = {tuple(t.get(n) for n in names) for t in taken}
    out = []
    for combo in itertools.product(*(grid_values(p) for p in exp.parameters)):
        if combo not in seen:
            out.append(dict(zip(names, combo, strict=True)))
            if len(out) == count:
                return out
    raise FailedPrecondition("exhausted")
