"""Search spaces shared by the optimizer tests."""

from __future__ import annotations

from optserve.domain.model import (
    Bounds,
    ConstraintTerm,
    ConstraintType,
    Experiment,
    LinearConstraint,
    Metric,
    Parameter,
    ParameterType,
)


def unit_square(name: str) -> Experiment:
    """Two doubles ``a`` and ``b`` in [0, 1], one metric ``v``, seed 1."""
    return Experiment(
        id=name,
        name=name,
        parameters=[Parameter(n, ParameterType.DOUBLE, Bounds(0, 1)) for n in ("a", "b")],
        metrics=[Metric("v")],
        seed=1,
    )


def seed4(name: str, seed: int = 2) -> Experiment:
    """The seeds' constrained 4-D space: doubles ``alpha``, ``beta`` in [0, 1] with
    ``alpha + beta <= 1``, ints ``gamma``, ``theta`` in [0, 10] with
    ``3 gamma - 5 theta >= 0``; one metric ``v``."""
    return Experiment(
        id=name,
        name=name,
        parameters=[
            Parameter("alpha", ParameterType.DOUBLE, Bounds(0, 1)),
            Parameter("beta", ParameterType.DOUBLE, Bounds(0, 1)),
            Parameter("gamma", ParameterType.INT, Bounds(0, 10)),
            Parameter("theta", ParameterType.INT, Bounds(0, 10)),
        ],
        linear_constraints=[
            LinearConstraint(
                ConstraintType.LESS_THAN,
                1.0,
                [ConstraintTerm("alpha", 1), ConstraintTerm("beta", 1)],
            ),
            LinearConstraint(
                ConstraintType.GREATER_THAN,
                0.0,
                [ConstraintTerm("gamma", 3), ConstraintTerm("theta", -5)],
            ),
        ],
        metrics=[Metric("v")],
        seed=seed,
    )
