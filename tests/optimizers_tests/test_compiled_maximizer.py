"""The compiled maximizer of log EI against the NumPy reference, on the same GPs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optserve import _sampler
from optserve.domain.model import (
    Bounds,
    Conditional,
    ConstraintTerm,
    ConstraintType,
    Experiment,
    LinearConstraint,
    Metric,
    MetricValue,
    Observation,
    Parameter,
    ParameterType,
    Suggestion,
    Transformation,
)
from optserve.optimizers import acquisition as acq
from optserve.optimizers import compiled_maximizer, maximizer, suggest
from optserve.optimizers.base import SuggestRequest
from optserve.optimizers.feasible import FeasibleSpace, feasible_space
from optserve.optimizers.gp import GaussianProcess
from optserve.optimizers.gp.scoring import compiled_scorer

from .spaces import seed4


def _double(name: str, lo: float = 0.0, hi: float = 1.0) -> Parameter:
    return Parameter(name, ParameterType.DOUBLE, Bounds(lo, hi))


D6 = Experiment(
    id="compiled-d6",
    name="d6",
    parameters=[_double(f"x{i}") for i in range(6)],
    metrics=[Metric("v")],
    seed=1,
)
SEED4 = seed4("compiled-seed4")
MIXED = Experiment(
    id="compiled-mixed",
    name="mixed",
    parameters=[
        Parameter("lr", ParameterType.DOUBLE, Bounds(1e-4, 1.0), transformation=Transformation.LOG),
        _double("a", -2.0, 3.0),
        _double("b", 0.0, 10.0),
        Parameter("layers", ParameterType.INT, Bounds(1, 6)),
        Parameter("size", ParameterType.DOUBLE, grid=[8.0, 16.0, 32.0, 64.0]),
        Parameter("kind", ParameterType.CATEGORICAL, categorical_values=["x", "y", "z"]),
    ],
    linear_constraints=[
        LinearConstraint(
            ConstraintType.LESS_THAN, 6.0, [ConstraintTerm("a", 2), ConstraintTerm("b", 1)]
        )
    ],
    metrics=[Metric("v")],
    seed=3,
)


def _objective(rows: np.ndarray) -> np.ndarray:
    """A smooth multimodal function of encoded rows."""
    centre = np.linspace(0.2, 0.8, rows.shape[1])
    return -np.sum((rows - centre) ** 2, axis=1) + 0.3 * np.sum(np.sin(7.0 * rows), axis=1)


def _fitted(space: FeasibleSpace, n: int, seed: int) -> tuple[GaussianProcess, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    x = space.draw_rows(n, rng)
    y = _objective(x) + 0.01 * rng.normal(size=n)
    gp = GaussianProcess().fit(x, y, rng=rng)
    return gp, x, float(np.max(gp.predict(x)[0]))


def _both(
    space: FeasibleSpace, gp: GaussianProcess, x: np.ndarray, incumbent: float, seed: int
) -> tuple[float, float, dict]:
    """The log EI of the NumPy and the compiled maximizers' points, and the compiled point."""
    enc = space.encoder
    best = x[np.argsort(-_objective(x))[: maximizer.INCUMBENTS]]
    score = acq.Acquisition(gp, incumbent, False, enc, None, None, [], acq.key_set(x), None)
    rng = np.random.default_rng(seed)
    rows = maximizer.candidates(space, best, rng)
    reference, _, _ = maximizer.maximize(
        space, score, rows, score(rows), maximizer.REFINE_STARTS, rng, (gp, incumbent)
    )
    found = compiled_maximizer.maximize_log_ei(
        space, compiled_scorer(gp), incumbent, best, np.random.default_rng(seed)
    )
    assert found is not None
    point, row, value = found
    assert value == pytest.approx(float(score(row[None, :])[0]), abs=1e-9)
    return float(score(enc.encode([reference]))[0]), float(score(enc.encode([point]))[0]), point


@pytest.mark.parametrize(("exp", "n"), [(D6, 60), (SEED4, 60), (MIXED, 50)])
def test_the_compiled_maximizer_is_feasible_and_at_least_as_good(exp: Experiment, n: int):
    space = feasible_space(exp)
    assert compiled_maximizer.search_space(space) is not None
    numpy_gaps, rust_gaps = [], []
    for history in range(5):
        gp, x, incumbent = _fitted(space, n, history)
        numpy_values, rust_values = [], []
        for seed in range(3):
            reference, compiled, point = _both(space, gp, x, incumbent, 10 * history + seed)
            assert space.is_feasible(point)
            # a valid assignment: ints, grid values and categories as the encoder decodes them
            assert space.encoder.decode(space.encoder.encode([point]))[0] == point
            numpy_values.append(reference)
            rust_values.append(compiled)
        # gaps to the best log EI either found on this GP
        top = max(numpy_values + rust_values)
        numpy_gaps += [top - v for v in numpy_values]
        rust_gaps += [top - v for v in rust_values]
    # as good on the whole (both find the same maximum most of the time), never far off
    assert np.mean(rust_gaps) <= np.mean(numpy_gaps) + 0.01
    assert np.max(rust_gaps) <= 0.5
    assert np.mean(np.array(rust_gaps) <= 1e-6) >= 0.6


def test_equal_seeds_give_equal_points():
    space = feasible_space(SEED4)
    gp, x, incumbent = _fitted(space, 40, 5)
    scorer = compiled_scorer(gp)
    runs = [
        compiled_maximizer.maximize_log_ei(
            space, scorer, incumbent, x[:4], np.random.default_rng(s)
        )
        for s in (1, 1, 2)
    ]
    assert runs[0] is not None and runs[1] is not None and runs[2] is not None
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][1], runs[2][1])


def test_observed_points_are_not_suggested():
    # three values in all, every one observed: nothing to suggest
    exp = Experiment(
        id="compiled-taken",
        name="taken",
        parameters=[Parameter("k", ParameterType.INT, Bounds(0, 2))],
        metrics=[Metric("v")],
        seed=4,
    )
    space = feasible_space(exp)
    x = space.encoder.encode([{"k": 0}, {"k": 1}, {"k": 2}])
    gp = GaussianProcess().fit(x, np.array([0.0, 1.0, 0.5]), rng=np.random.default_rng(0))
    scorer = compiled_scorer(gp)
    assert (
        compiled_maximizer.maximize_log_ei(space, scorer, 1.0, x[:1], np.random.default_rng(0))
        is None
    )


def test_conditional_experiments_are_left_to_numpy():
    exp = Experiment(
        id="compiled-conditional",
        name="conditional",
        parameters=[
            _double("a"),
            Parameter("b", ParameterType.DOUBLE, Bounds(0, 1), conditions={"c": ["on"]}),
        ],
        conditionals=[Conditional("c", ["on", "off"])],
        metrics=[Metric("v")],
        seed=5,
    )
    assert not compiled_maximizer.applies(exp)
    assert compiled_maximizer.search_space(feasible_space(exp)) is None


def test_search_space_rejects_pieces_that_disagree():
    with pytest.raises(ValueError, match="double_cols"):
        _sampler.SearchSpace([None, None], [], double_cols=[0, 1])
    with pytest.raises(ValueError, match="groups"):
        _sampler.SearchSpace([None, None], [(1, 2)])
    with pytest.raises(ValueError, match="double_x0"):
        _sampler.SearchSpace(
            [None, None],
            [],
            double_cols=[0, 1],
            double_a=np.array([[1.0, 1.0]]) / math.sqrt(2),
            double_b=np.array([0.5]),
            double_x0=np.array([0.9, 0.9]),
        )
    space = compiled_maximizer.search_space(feasible_space(D6))
    assert space is not None and space.dim == 6
    gp, x, incumbent = _fitted(feasible_space(D6), 20, 0)
    with pytest.raises(ValueError, match="best_rows"):
        _sampler.maximize_log_ei(compiled_scorer(gp), incumbent, space, np.zeros((1, 5)), seed=0)
    with pytest.raises(ValueError, match="incumbent"):
        _sampler.maximize_log_ei(compiled_scorer(gp), math.nan, space, x[:2], seed=0)


def test_the_point_does_not_depend_on_the_threads():
    # 300 points: enough work per scoring pass to split it over threads
    space = feasible_space(SEED4)
    gp, x, incumbent = _fitted(space, 300, 6)
    scorer = compiled_scorer(gp)
    found = []
    try:
        for threads in (1, 2, 3):
            compiled_maximizer.set_threads(threads)
            found.append(
                compiled_maximizer.maximize_log_ei(
                    space, scorer, incumbent, x[:4], np.random.default_rng(7)
                )
            )
    finally:
        compiled_maximizer.set_threads(0)
    assert all(f is not None for f in found)
    for other in found[1:]:
        assert other is not None and found[0] is not None
        np.testing.assert_array_equal(other[1], found[0][1])
        assert other[2] == found[0][2]
    with pytest.raises(ValueError, match="threads"):
        compiled_maximizer.set_threads(-1)


def _in_flight(
    space: FeasibleSpace, n: int, pending: int, seed: int
) -> tuple[acq.Acquisition, np.ndarray, np.ndarray]:
    """An acquisition with ``pending`` points in flight, as a suggestion builds it:
    the believer, EI over the pending outcomes' draws and their local penalty."""
    gp, x, incumbent = _fitted(space, n, seed)
    rng = np.random.default_rng(100 + seed)
    x_pending = space.draw_rows(pending, rng)
    enc = space.encoder
    believing, believed, penalty = acq.with_pending(gp, incumbent, x_pending, enc, None, [])
    fantasies = acq.pending_fantasies(gp, believing, incumbent, x_pending, enc, None, [], rng)
    assert isinstance(penalty, acq.LocalPenalty) and fantasies is not None
    taken = acq.key_set(np.vstack([x, x_pending]))
    acquisition = acq.Acquisition(
        believing, believed, False, enc, None, penalty, [], taken, None, None, fantasies
    )
    return acquisition, x, x_pending


def test_the_compiled_local_penalty_equals_numpys():
    space = feasible_space(D6)
    acquisition, x, x_pending = _in_flight(space, 50, 7, 0)
    penalty = acquisition.pending_penalty
    assert isinstance(penalty, acq.LocalPenalty)
    compiled = penalty.compiled
    assert compiled is not None and compiled.dim == 6
    rows = np.vstack([space.draw_rows(400, np.random.default_rng(1)), x_pending, x[:5]])
    want = penalty(rows)
    assert np.all(want <= 0.0) and want.min() < -1.0  # the term matters somewhere
    got = compiled.values(rows)
    np.testing.assert_allclose(got[:400], want[:400], rtol=1e-9, atol=1e-9)
    # on a pending point NumPy's distance (from the expanded square) is off by ~1e-8
    np.testing.assert_allclose(got[400:], want[400:], rtol=1e-6)


@pytest.mark.parametrize(("exp", "n"), [(D6, 60), (SEED4, 50)])
def test_with_points_in_flight_the_compiled_maximizer_is_at_least_as_good(exp: Experiment, n: int):
    space = feasible_space(exp)
    numpy_gaps, rust_gaps = [], []
    for history in range(4):
        acquisition, x, _ = _in_flight(space, n, 7, history)
        assert acquisition.compiled and not acquisition.plain
        fantasies = acquisition.fantasies
        assert fantasies is not None and acquisition.incumbent is not None
        best = x[np.argsort(-_objective(x))[: maximizer.INCUMBENTS]]
        values = []
        for seed in range(3):
            rng = np.random.default_rng(10 * history + seed)
            rows = maximizer.candidates(space, best, rng)
            reference, _, _ = maximizer.maximize(
                space,
                acquisition,
                rows,
                acquisition(rows),
                maximizer.REFINE_STARTS,
                rng,
                (fantasies, acquisition.incumbent),
            )
            point = maximizer.maximize_log_ei(
                space, acquisition, best, np.random.default_rng(10 * history + seed)
            )
            assert point is not None and space.is_feasible(point)
            values.append(acquisition(space.encoder.encode([reference, point])).tolist())
        top = max(max(v) for v in values)
        numpy_gaps += [top - v[0] for v in values]
        rust_gaps += [top - v[1] for v in values]
    assert np.all(np.isfinite(rust_gaps))
    assert np.mean(rust_gaps) <= np.mean(numpy_gaps) + 0.01
    assert np.max(rust_gaps) <= 0.5


def test_the_compiled_value_is_the_penalized_acquisition():
    space = feasible_space(D6)
    acquisition, x, _ = _in_flight(space, 40, 5, 3)
    fantasies = acquisition.fantasies
    assert fantasies is not None
    scorer = fantasies.compiled or compiled_scorer(fantasies.gp).with_means(fantasies.weights)
    found = compiled_maximizer.maximize_log_ei(
        space,
        scorer,
        fantasies.incumbents,
        x[:4],
        np.random.default_rng(0),
        acquisition.compiled_penalty,
    )
    assert found is not None
    _, row, value = found
    assert value == pytest.approx(float(acquisition(row[None, :])[0]), abs=1e-8)


def test_local_penalty_arguments_are_checked():
    ok = {
        "points": np.full((2, 3), 0.5),
        "lengthscales": np.full(3, 0.2),
        "means": np.zeros(2),
        "stds": np.ones(2),
        "lipschitz": 1.0,
        "incumbent": 0.0,
    }
    assert _sampler.LocalPenalty(**ok).dim == 3
    for field, bad in [
        ("points", np.full((2, 4), 0.5)),
        ("points", np.array([[0.5, math.nan, 0.5], [0.5, 0.5, 0.5]])),
        ("lengthscales", np.array([0.2, 0.0, 0.2])),
        ("means", np.zeros(3)),
        ("stds", np.array([1.0, -1.0])),
        ("lipschitz", math.inf),
        ("incumbent", math.nan),
    ]:
        with pytest.raises(ValueError, match=field):
            _sampler.LocalPenalty(**{**ok, field: bad})
    space = compiled_maximizer.search_space(feasible_space(D6))
    assert space is not None
    gp, x, incumbent = _fitted(feasible_space(D6), 20, 0)
    with pytest.raises(ValueError, match="penalty"):
        wrong = _sampler.LocalPenalty(**ok)
        _sampler.maximize_log_ei(
            compiled_scorer(gp), incumbent, space, x[:2], seed=0, penalty=wrong
        )


def test_suggestions_with_points_in_flight_run_compiled(monkeypatch: pytest.MonkeyPatch):
    space = feasible_space(D6)
    rng = np.random.default_rng(0)
    points = space.draw(30, rng)
    values = _objective(space.encoder.encode(points))
    observations = [
        Observation(f"o{i}", D6.id, None, a, [MetricValue("v", float(v))])
        for i, (a, v) in enumerate(zip(points, values, strict=True))
    ]
    pending = [Suggestion(f"s{i}", D6.id, a) for i, a in enumerate(space.draw(4, rng))]

    def numpy_maximizer(*args: object, **kwargs: object) -> None:
        raise AssertionError("the NumPy maximizer ran")

    monkeypatch.setattr(maximizer, "maximize", numpy_maximizer)
    # open suggestions, then a batch whose later points see the earlier ones
    for open_ in (pending, []):
        out = suggest(SuggestRequest(D6, observations, open_, 3, 40))
        assert len(out) == 3 and all(space.is_feasible(p) for p in out)
        rows = space.encoder.encode(out)
        assert len(acq.key_set(rows)) == 3


def test_a_penalty_with_a_non_finite_posterior_is_left_to_numpy():
    space = feasible_space(D6)
    gp, x, incumbent = _fitted(space, 30, 1)
    penalty = acq.LocalPenalty(x[:3], gp, incumbent, 1.0)
    penalty.mean[1] = math.nan
    assert penalty.compiled is None
    acquisition = acq.Acquisition(
        gp, incumbent, False, space.encoder, None, penalty, [], acq.key_set(x), None
    )
    assert acquisition.polishable and not acquisition.compiled
    assert maximizer.maximize_log_ei(space, acquisition, x[:4], np.random.default_rng(0)) is None
