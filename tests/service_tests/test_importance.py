"""Parameter importance from the GP's length scales."""

from __future__ import annotations

import numpy as np
import pytest

from optserve.domain.model import Bounds, Experiment, Metric, Parameter, ParameterType
from optserve.importance import importances
from optserve.optimizers.feasible import feasible_space


def test_a_categorical_that_matters_ranks_first_with_one_length_scale():
    exp = Experiment(
        id="importance",
        name="importance",
        parameters=[
            Parameter("x", ParameterType.DOUBLE, Bounds(0, 1)),
            Parameter("kind", ParameterType.CATEGORICAL, categorical_values=["a", "b", "c", "d"]),
            Parameter("y", ParameterType.DOUBLE, Bounds(0, 1)),
        ],
        metrics=[Metric("v")],
    )
    points = feasible_space(exp).draw(40, np.random.default_rng(2))
    shift = {"a": 0.0, "b": 2.0, "c": -1.5, "d": 1.0}
    values = [shift[str(a["kind"])] + 0.5 * float(a["y"]) for a in points]
    scores = dict(importances(exp, points, values))
    assert sum(scores.values()) == pytest.approx(1.0)
    assert scores["kind"] > scores["y"] > scores["x"]
