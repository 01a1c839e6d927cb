"""Numbers in validation messages: short where that is the number, exact where not."""

from __future__ import annotations

import pytest

from optserve.domain.errors import InvalidArgument
from optserve.domain.model import Bounds, Experiment, Metric, Parameter, ParameterType
from optserve.domain.validation import validate_assignments


def _experiment(low: float, high: float) -> Experiment:
    return Experiment(
        id="e",
        name="e",
        parameters=[Parameter("a", ParameterType.DOUBLE, Bounds(low, high))],
        metrics=[Metric("v")],
    )


@pytest.mark.parametrize(
    ("low", "high", "said"),
    [
        (0.0001, 0.1, "[0.0001, 0.1]"),
        (1.0, 1.0 + 1e-7, "[1, 1.0000001]"),
        (-3.0, 1e15, "[-3, 1e+15]"),
    ],
)
def test_a_value_out_of_bounds_names_the_bounds_as_they_are(
    low: float, high: float, said: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validate_assignments(_experiment(low, high), {"a": 2e15}, "observation.assignments")
    assert str(raised.value) == f'observation.assignments["a"]: must lie within {said}'
