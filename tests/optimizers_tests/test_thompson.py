"""Asynchronous Thompson sampling (Kandasamy et al. 2018) for some of the
suggestions made while others are pending: the posterior draw, the turn
rule, and that a suggestion with nothing pending is untouched."""

from __future__ import annotations

import numpy as np

from optserve.domain.encoding import Encoder
from optserve.domain.model import (
    Bounds,
    Experiment,
    Metric,
    MetricValue,
    Observation,
    Parameter,
    Suggestion,
)
from optserve.domain.model import ParameterType as T
from optserve.optimizers import SuggestRequest, suggest
from optserve.optimizers import acquisition as acq
from optserve.optimizers.gp import GaussianProcess

EXP = Experiment(
    id="thompson",
    name="thompson",
    parameters=[Parameter(n, T.DOUBLE, Bounds(0, 1)) for n in ("a", "b")],
    metrics=[Metric("v")],
    seed=1,
)
ENCODER = Encoder(EXP)


def _gp() -> tuple[GaussianProcess, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.random((25, 2))
    y = np.sin(5 * x[:, 0]) + np.cos(3 * x[:, 1])
    return GaussianProcess(maxiter=30).fit(x, y, rng=rng), x


def test_posterior_draws_have_the_posterior_mean_variance_and_correlation():
    gp, x = _gp()
    far = np.array([[0.97, 0.02], [0.5, 0.5]])
    rows = np.vstack([x[:2], far, far[1:] + 0.01])
    rng = np.random.default_rng(7)
    draws = np.array([acq.posterior_draw(gp, rows, rng) for _ in range(3000)])
    mean, var = gp.predict(rows)
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=4 * np.sqrt(var.max() / 3000))
    np.testing.assert_allclose(draws.var(axis=0), var, rtol=0.15, atol=1e-6)
    # two rows a hundredth apart move together: a joint draw, not independent ones
    assert np.corrcoef(draws[:, 3], draws[:, 4])[0, 1] > 0.9


def test_a_thompson_draw_excludes_taken_rows_and_rows_expected_to_break_a_constraint():
    gp, x = _gp()
    rows = np.random.default_rng(8).random((50, 2))
    incumbent = float(np.max(gp.mean(x)))
    taken = acq.key_set(rows[:5])

    def acquisition(constraints: list[tuple[GaussianProcess, float]]) -> acq.Acquisition:
        return acq.Acquisition(gp, incumbent, False, ENCODER, None, None, constraints, taken, None)

    none = np.empty((0, 2))
    values = acquisition([]).thompson(rows, none, np.random.default_rng(9))
    assert np.all(values[:5] == -np.inf) and np.all(np.isfinite(values[5:]))
    # a constraint metric whose threshold lies far above the model: no row passes
    blocked = acquisition([(gp, float(gp.mean(x).max()) + 100.0)])
    assert np.all(blocked.thompson(rows, none, np.random.default_rng(9)) == -np.inf)
    # rows within THOMPSON_GAP length scales of a pending point are left out
    pending = rows[10:11] + 0.5 * acq.THOMPSON_GAP * gp.lengthscales
    near = acquisition([]).thompson(rows, pending, np.random.default_rng(9))
    assert near[10] == -np.inf and np.isfinite(values[10])
    assert acquisition([]).samplable
    assert not acq.Acquisition(gp, None, False, ENCODER, None, None, [], taken, None).samplable
    assert not acq.Acquisition(gp, incumbent, True, ENCODER, None, None, [], taken, None).samplable


def test_thompson_turns_come_only_with_points_pending():
    assert not any(acq.thompson_turn(0, s) for s in range(20))
    turns = [acq.thompson_turn(7, s) for s in range(20)]
    assert sum(turns) == 20 // acq.THOMPSON_EVERY


def _history(n: int) -> list[Observation]:
    rng = np.random.default_rng(4)
    out = []
    for i in range(n):
        a = {"a": float(rng.random()), "b": float(rng.random())}
        value = float(np.sin(5 * a["a"]) + np.cos(3 * a["b"]))
        out.append(Observation(str(i), EXP.id, None, a, [MetricValue("v", value)]))
    return out


def _pending(count: int) -> list[Suggestion]:
    rng = np.random.default_rng(5)
    return [
        Suggestion(f"p{i}", EXP.id, {"a": float(rng.random()), "b": float(rng.random())})
        for i in range(count)
    ]


def test_nothing_pending_gives_the_same_suggestions_with_or_without_thompson_turns(monkeypatch):
    history = _history(20)
    with_turns = [suggest(SuggestRequest(EXP, history, [], 1, seq)) for seq in (20, 21)]
    monkeypatch.setattr(acq, "THOMPSON_EVERY", 0)
    without = [suggest(SuggestRequest(EXP, history, [], 1, seq)) for seq in (20, 21)]
    assert with_turns == without


def test_with_points_pending_a_thompson_turn_changes_the_suggestion(monkeypatch):
    history, pending = _history(20), _pending(3)
    sequence = next(s for s in range(20, 30) if acq.thompson_turn(len(pending), s))
    other = sequence + 1
    drawn = suggest(SuggestRequest(EXP, history, pending, 1, sequence))
    kept = suggest(SuggestRequest(EXP, history, pending, 1, other))
    # the draw is seeded by the experiment and the sequence: the same call, the same point
    assert suggest(SuggestRequest(EXP, history, pending, 1, sequence)) == drawn
    monkeypatch.setattr(acq, "THOMPSON_EVERY", 0)
    assert suggest(SuggestRequest(EXP, history, pending, 1, sequence)) != drawn
    assert suggest(SuggestRequest(EXP, history, pending, 1, other)) == kept


def test_the_points_of_one_batch_with_nothing_open_are_chosen_by_the_acquisition(monkeypatch):
    history = _history(20)
    batch = suggest(SuggestRequest(EXP, history, [], 4, 20))
    monkeypatch.setattr(acq, "THOMPSON_EVERY", 0)
    assert suggest(SuggestRequest(EXP, history, [], 4, 20)) == batch
