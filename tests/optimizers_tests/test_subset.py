"""The training subset of the GP above its exact size."""

from __future__ import annotations

import numpy as np

from optserve.optimizers.gp import subset


def _data(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, dim))
    y = -np.sum((x - 0.3) ** 2, axis=1)
    return x, y


def test_small_histories_are_kept_whole():
    x, y = _data(30, 3)
    np.testing.assert_array_equal(subset.select(x, y, np.ones(30, bool), 30), np.arange(30))
    np.testing.assert_array_equal(subset.select(x, y, np.ones(30, bool), 50), np.arange(30))


def test_the_subset_has_the_size_asked_distinct_sorted_rows():
    x, y = _data(1000, 4)
    rows = subset.select(x, y, np.ones(1000, bool), 200)
    assert len(rows) == 200 and len(np.unique(rows)) == 200
    assert np.all(np.diff(rows) > 0)


def test_the_local_part_is_the_best_rows_nearest_neighbours():
    x, y = _data(2000, 3)
    good = np.ones(2000, bool)
    rows = subset.select(x, y, good, 100, local_fraction=0.5)
    best = int(np.argmax(y))
    assert best in rows
    # the 10 nearest neighbours of the best row are all in
    nearest = np.argsort(np.sum((x - x[best]) ** 2, axis=1))[:10]
    assert set(nearest) <= set(rows)


def test_only_good_rows_anchor_the_local_part():
    x, y = _data(500, 2)
    good = np.ones(500, bool)
    good[np.argsort(-y)[:20]] = False  # the 20 best violate a constraint metric
    rows = subset.select(x, y, good, 60, local_fraction=1.0)
    anchor = np.flatnonzero(good)[np.argmax(y[good])]
    assert anchor in rows
    # every chosen row is near one of the four best good rows
    anchors = np.flatnonzero(good)[np.argsort(-y[good])[:4]]
    d = np.sqrt(((x[rows][:, None, :] - x[anchors][None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    assert d.max() < 0.25


def test_the_spread_part_covers_far_regions():
    rng = np.random.default_rng(1)
    # most observations crowd the optimum; a few were spent far away
    near = 0.3 + 0.02 * rng.standard_normal((900, 2))
    far = np.array([[0.95, 0.95], [0.05, 0.9], [0.9, 0.05]])
    x = np.vstack([near, far])
    y = -np.sum((x - 0.3) ** 2, axis=1)
    rows = subset.select(x, y, np.ones(len(x), bool), 50)
    assert {900, 901, 902} <= set(rows)


def test_length_scales_set_the_unit_of_distance():
    x, y = _data(3000, 2, seed=2)
    good = np.ones(3000, bool)
    # a long length scale in x1: neighbourhoods stretch along it
    rows = subset.select(x, y, good, 60, np.array([0.05, 10.0]), local_fraction=1.0)
    spread = x[rows].std(axis=0)
    assert spread[1] > 3 * spread[0]


def test_the_selection_is_deterministic():
    x, y = _data(800, 5, seed=4)
    good = np.random.default_rng(5).random(800) < 0.7
    first = subset.select(x, y, good, 150, np.linspace(0.2, 2.0, 5))
    again = subset.select(x.copy(), y.copy(), good.copy(), 150, np.linspace(0.2, 2.0, 5))
    np.testing.assert_array_equal(first, again)
