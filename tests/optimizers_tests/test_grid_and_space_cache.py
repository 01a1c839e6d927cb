"""Grid order and visited points; the feasible-space cache's key."""

from __future__ import annotations

import dataclasses
import itertools
import random

import numpy as np
import pytest

from optserve.domain.errors import FailedPrecondition
from optserve.domain.grid import OFF_GRID, Grid, TakenPoints, union
from optserve.domain.model import (
    Bounds,
    ConstraintTerm,
    ConstraintType,
    Experiment,
    ExperimentType,
    LinearConstraint,
    Metric,
    Parameter,
    ParameterType,
)
from optserve.domain.validation import grid_values
from optserve.optimizers.feasible import feasible_space, space_key
from optserve.optimizers.grid import next_points

from ..grid_reference import rescan


def _grid_experiment() -> Experiment:
    return Experiment(
        id="1",
        name="grid",
        type=ExperimentType.GRID,
        metrics=[Metric(name="value")],
        parameters=[
            Parameter("x", ParameterType.DOUBLE, grid=[0.1, 0.2, 0.3]),
            Parameter("n", ParameterType.INT, bounds=Bounds(1, 4)),
            Parameter("c", ParameterType.CATEGORICAL, categorical_values=["a", "b"]),
        ],
    )


def test_grid_points_follow_the_product_order_around_visited_points():
    exp = _grid_experiment()
    product = [
        dict(zip(["x", "n", "c"], combo, strict=True))
        for combo in itertools.product(*(grid_values(p) for p in exp.parameters))
    ]
    assert next_points(exp, TakenPoints(), 24) == product
    grid = Grid(exp)
    rng = random.Random(3)
    for _ in range(200):
        taken = rng.sample(product, rng.randrange(len(product)))
        free = len(product) - len(taken)
        # explicit assignments as clients send them: ints as floats, foreign values
        taken = [{**t, "n": float(t["n"])} if rng.random() < 0.3 else t for t in taken] + [
            {"x": 0.15, "n": 1, "c": "a"},
            {"x": 0.1, "c": "a"},
        ]
        rng.shuffle(taken)
        count = rng.randrange(1, 6)
        # as read back: some rows indexed when stored, the others (older) as assignments
        cut = rng.randrange(len(taken) + 1)
        stored = {grid.index(t) for t in taken[:cut]} - {OFF_GRID}
        mixed = TakenPoints(sorted(stored), taken[cut:])
        for given in (TakenPoints(unindexed=taken), mixed):
            if count > free:
                with pytest.raises(FailedPrecondition, match=f"has {free} unvisited"):
                    next_points(exp, given, count)
            else:
                assert next_points(exp, given, count) == rescan(exp, taken, count)


def test_a_point_has_its_index_in_the_product_order():
    exp = _grid_experiment()
    grid = Grid(exp)
    combos = list(itertools.product(*(grid_values(p) for p in exp.parameters)))
    assert grid.size == len(combos) == 24
    for k, combo in enumerate(combos):
        point = dict(zip(["x", "n", "c"], combo, strict=True))
        assert grid.index(point) == k and grid.point(k) == point
    # matched by hash and ==, as tuple membership did; extra names ignored
    assert grid.index({"x": 0.3, "n": 4.0, "c": "b", "other": 1}) == 23
    assert grid.index({"x": 0.3, "n": True, "c": "a"}) == grid.index({"x": 0.3, "n": 1, "c": "a"})
    for off in ({"x": 0.25, "n": 1, "c": "a"}, {"x": 0.1, "n": 1}, {"x": [0.1], "n": 1, "c": "a"}):
        assert grid.index(off) == OFF_GRID


def test_taken_indices_are_merged_sorted_and_distinct():
    rng = random.Random(5)
    for _ in range(300):
        first = rng.sample(range(30), rng.randrange(30))
        more = [rng.randrange(-1, 35) for _ in range(rng.randrange(6))]
        expected = sorted({*first, *more} - {OFF_GRID})
        assert list(union(sorted(first), more)) == expected
        prefix = range(rng.randrange(20))
        merged = union(prefix, more)
        assert list(merged) == sorted({*prefix, *more} - {OFF_GRID})
        # still a range while the extra indices extend the prefix without a hole
        contiguous = list(merged) == list(range(len(merged)))
        assert isinstance(merged, range) == contiguous


def test_a_point_visited_no_more_is_offered_again():
    exp = _grid_experiment()
    first = next_points(exp, TakenPoints(), 3)
    later = next_points(exp, TakenPoints(unindexed=first), 2)
    assert later[0] not in first
    # the second point's suggestion deleted or expired: it comes back first
    assert next_points(exp, TakenPoints([0, 2, 3, 4]), 1) == [first[1]]


def _space(low: float = 0.0) -> Experiment:
    return Experiment(
        id="7",
        name="space",
        type=ExperimentType.RANDOM,
        metrics=[Metric(name="value")],
        parameters=[
            Parameter("a", ParameterType.DOUBLE, bounds=Bounds(low, 1)),
            Parameter("b", ParameterType.DOUBLE, bounds=Bounds(0, 1)),
        ],
        linear_constraints=[
            LinearConstraint(
                ConstraintType.LESS_THAN,
                1.0,
                [ConstraintTerm("a", 1.0), ConstraintTerm("b", 1.0)],
            )
        ],
    )


def test_a_copy_sharing_the_definition_reuses_its_space():
    exp = _space()
    assert feasible_space(dataclasses.replace(exp)) is feasible_space(exp)
    # the key itself is remembered, not made again from the definition
    assert space_key(dataclasses.replace(exp)) is space_key(exp)


def test_a_changed_search_space_under_the_same_id_gets_its_own_space():
    exp = _space()
    old = feasible_space(exp)
    # an update replaces the lists; another store reuses the id with another space
    updated = dataclasses.replace(exp, parameters=_space(low=0.5).parameters)
    elsewhere = _space(low=0.5)
    rng = np.random.default_rng(0)
    for other in (updated, elsewhere):
        assert space_key(other) != space_key(exp)
        space = feasible_space(other)
        assert space is not old
        assert all(p["a"] >= 0.5 for p in space.draw(50, rng))
    # a parameter replaced inside the same list
    replaced = _space()
    feasible_space(replaced)
    replaced.parameters[0] = _space(low=0.5).parameters[0]
    assert all(p["a"] >= 0.5 for p in feasible_space(replaced).draw(50, rng))
    # the same definition under another seed is another key
    assert space_key(dataclasses.replace(exp, seed=1)) != space_key(exp)
