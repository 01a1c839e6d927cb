"""The geometry of linear constraints: one tolerance, one feasibility rule, one
Chebyshev-centre LP, and validation, sampling and the optimizers agreeing on them."""

from __future__ import annotations

import numpy as np
import pytest

from optserve.domain import geometry
from optserve.domain.errors import InvalidArgument
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
from optserve.domain.validation import validate_assignments
from optserve.optimizers.feasible import FeasibleSpace
from optserve.sampling import Polytope

TOL = geometry.TOLERANCE


def _lc(kind: ConstraintType, threshold: float, **weights: float) -> LinearConstraint:
    return LinearConstraint(kind, threshold, [ConstraintTerm(n, w) for n, w in weights.items()])


def test_the_rule_is_relative_to_the_largest_term_and_at_least_absolute():
    assert geometry.within(TOL, 0.5) and not geometry.within(2 * TOL, 0.5)
    assert geometry.within(0.9e-3, 1e6) and not geometry.within(1.1e-3, 1e6)
    np.testing.assert_array_equal(
        geometry.within(np.array([-1.0, 0.0, 2 * TOL]), np.array([1.0, 1.0, 1.0])),
        [True, True, False],
    )


def test_one_constraint_holds_up_to_the_tolerance_in_either_direction():
    below = _lc(ConstraintType.LESS_THAN, 0.3, x=1.0, y=1.0)
    above = _lc(ConstraintType.GREATER_THAN, 0.3, x=1.0, y=1.0)
    assert geometry.holds(below, {"x": 0.1, "y": 0.2})  # 0.30000000000000004
    assert geometry.holds(above, {"x": 0.1, "y": 0.2})
    assert not geometry.holds(below, {"x": 0.1, "y": 0.2 + 1e-6})
    assert not geometry.holds(above, {"x": 0.1, "y": 0.2 - 1e-6})
    # large terms round at their own scale
    big = _lc(ConstraintType.LESS_THAN, 2e6, x=1.0, y=1.0)
    assert geometry.holds(big, {"x": 1e6, "y": 1e6 + 1e-4})
    assert not geometry.holds(big, {"x": 1e6, "y": 1e6 + 1e-2})


def test_exactly_is_the_clients_plain_sum_with_no_tolerance():
    below = _lc(ConstraintType.LESS_THAN, 0.3, x=1.0, y=1.0)
    point = {"x": 0.1, "y": 0.2}
    assert geometry.holds(below, point) and not geometry.holds_exactly([below], point)
    assert geometry.holds_exactly([below], {"x": 0.1, "y": 0.19999999999999998})


def test_the_system_check_is_the_one_constraint_check_on_every_row():
    rng = np.random.default_rng(0)
    constraints = [
        _lc(ConstraintType.LESS_THAN, 1.0, x=1.0, y=1.0),
        _lc(ConstraintType.GREATER_THAN, -3.0, x=2.0, y=-50.0),
    ]
    a = np.array([[1.0, 1.0], [-2.0, 50.0]])
    b = np.array([1.0, 3.0])
    x = rng.random((400, 2))
    # half the points exactly on the first boundary, nudged by a few tolerances
    x[:200, 1] = 1.0 - x[:200, 0] + rng.choice([-3, -1, 0, 1, 3], size=200) * TOL / 2
    mask = geometry.rows_hold(a, b, x)
    scalar = [all(geometry.holds(lc, {"x": p[0], "y": p[1]}) for lc in constraints) for p in x]
    np.testing.assert_array_equal(mask, scalar)
    assert 0 < mask.sum() < len(x)


def test_the_chebyshev_centre_of_a_box_a_triangle_and_empty_unbounded_sets():
    g, h = geometry.system_rows(np.zeros((0, 2)), np.zeros(0), np.zeros(2), np.full(2, 2.0))
    centre, radius = geometry.chebyshev_centre(g, h)
    np.testing.assert_allclose(centre, [1.0, 1.0], atol=1e-9)
    assert radius == pytest.approx(1.0)
    g, h = geometry.system_rows(np.array([[1.0, 1.0]]), np.array([1.0]), np.zeros(2), np.ones(2))
    centre, radius = geometry.chebyshev_centre(g, h)
    assert radius == pytest.approx(1.0 / (2.0 + np.sqrt(2.0)))
    assert geometry.has_interior(centre, radius)
    # x + y <= -1 over the unit square: empty
    g, h = geometry.system_rows(np.array([[1.0, 1.0]]), np.array([-1.0]), np.zeros(2), np.ones(2))
    assert geometry.chebyshev_centre(g, h) is None
    # x + y <= 1 and x + y >= 1: a segment, no interior
    g, h = geometry.system_rows(
        np.array([[1.0, 1.0], [-1.0, -1.0]]), np.array([1.0, -1.0]), np.zeros(2), np.ones(2)
    )
    found = geometry.chebyshev_centre(g, h)
    assert found is not None and not geometry.has_interior(*found)
    with pytest.raises(ValueError):
        geometry.chebyshev_centre(np.array([[1.0, 0.0]]), np.array([1.0]))


def test_the_inscribed_radius_is_measured_with_parameters_scaled_to_the_unit_interval():
    # x in [0, 1000], y in [0, 1], x / 1000 + y <= 1: the unit triangle once scaled
    radius = geometry.inscribed_radius(
        np.array([[1e-3, 1.0]]), np.array([1.0]), np.zeros(2), np.array([1000.0, 1.0])
    )
    assert radius == pytest.approx(1.0 / (2.0 + np.sqrt(2.0)))
    empty = geometry.inscribed_radius(
        np.array([[1.0, 1.0]]), np.array([-1.0]), np.zeros(2), np.ones(2)
    )
    assert empty is None


def _experiment() -> Experiment:
    return Experiment(
        id="geometry",
        name="geometry",
        parameters=[
            Parameter("x", ParameterType.DOUBLE, Bounds(0, 10)),
            Parameter("y", ParameterType.DOUBLE, Bounds(-5, 5)),
        ],
        linear_constraints=[
            _lc(ConstraintType.LESS_THAN, 7.0, x=1.0, y=1.0),
            _lc(ConstraintType.GREATER_THAN, -1.0, x=0.5, y=-1.0),
        ],
        metrics=[Metric("v")],
        seed=3,
    )


def test_validation_sampling_and_the_optimizers_agree_on_every_point():
    exp = _experiment()
    space = FeasibleSpace(exp)
    rng = np.random.default_rng(5)
    points = []
    for x in rng.uniform(0, 10, size=60):
        for offset in (-4 * TOL, -TOL / 2, 0.0, TOL / 2, 4 * TOL, 1e-3):
            points.append({"x": float(x), "y": float(7.0 - x + offset * 7.0)})
    points += [
        {"x": float(v[0]), "y": float(v[1])} for v in rng.uniform([0, -5], [10, 5], (200, 2))
    ]
    points = [p for p in points if -5 <= p["y"] <= 5]
    names, a, b, _, _ = geometry.constraint_system(exp, ParameterType.DOUBLE)
    verdicts = []
    for p in points:
        try:
            validate_assignments(exp, p, "assignments")
            valid = True
        except InvalidArgument:
            valid = False
        rows = space.encoder.encode([p])
        verdicts.append(valid)
        assert space.is_feasible(p) == valid
        assert space.feasible_mask(rows)[0] == valid
        values = np.array([p[n] for n in names])
        assert geometry.rows_hold(a, b, values[None, :])[0] == valid
    assert any(verdicts) and not all(verdicts)
    # the sampler's points (in its unit system) and the optimizer's draws all hold
    assert space.doubles is not None
    us = space.doubles.sample(300, seed=1)
    assert space.doubles.is_feasible(us).all()
    assert all(space.is_feasible(p) for p in space.draw(300, rng))


def test_the_sampler_refuses_a_region_thinner_than_the_tolerance():
    a = np.array([[1.0, 1.0], [-1.0, -1.0]])
    with pytest.raises(ValueError, match="no interior"):
        Polytope(a, np.array([1.0, -1.0 + TOL / 10]), np.zeros(2), np.ones(2)).chebyshev_center()
    Polytope(a, np.array([1.0, -1.0 + 1e-3]), np.zeros(2), np.ones(2)).chebyshev_center()
