"""Search spaces shared by the optimizer tests."""

from __future__ import annotations

from optserve.domain.model import Bounds, Experiment, Metric, Parameter, ParameterType


def unit_square(name: str) -> Experiment:
    """Two doubles ``a`` and ``b`` in [0, 1], one metric ``v``, seed 1."""
    return Experiment(
        id=name,
        name=name,
        parameters=[Parameter(n, ParameterType.DOUBLE, Bounds(0, 1)) for n in ("a", "b")],
        metrics=[Metric("v")],
        seed=1,
    )
