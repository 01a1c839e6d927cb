"""The pending-point penalty, computed in blocks, equals its direct definition."""

from __future__ import annotations

import numpy as np
import pytest

from optserve.optimizers import acquisition


class _Lengthscales:
    def __init__(self, values: np.ndarray) -> None:
        self.lengthscales = values


@pytest.mark.parametrize("pending_count", [1, 255, 256, 257, 700])
def test_blocked_penalty_matches_the_direct_formula(pending_count):
    rng = np.random.default_rng(pending_count)
    gp = _Lengthscales(rng.uniform(0.05, 1.0, size=6))
    pending = rng.random((pending_count, 6))
    rows = np.vstack([rng.random((300, 6)), pending[:3]])  # some rows on pending points
    penalty = acquisition.pending_penalty(pending, gp)  # type: ignore[arg-type]
    assert penalty is not None
    radius = acquisition.PENDING_RADIUS * gp.lengthscales
    d2 = (((rows[:, None, :] - pending[None, :, :]) / radius) ** 2).sum(axis=2)
    direct = np.log1p(-np.exp(-0.5 * d2) + 1e-12).sum(axis=1)
    np.testing.assert_allclose(penalty(rows), direct, rtol=1e-8, atol=1e-9)
    on_points = min(3, pending_count)
    assert np.all(penalty(rows)[300 : 300 + on_points] <= np.log(1e-12) + 1e-3)
