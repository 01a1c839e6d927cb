"""Stage 1 of a Bayesian suggestion: the training data."""

from __future__ import annotations

import numpy as np
from scipy import stats

from optserve.domain.encoding import Encoder
from optserve.domain.model import (
    Bounds,
    Conditional,
    Experiment,
    Metric,
    MetricValue,
    Objective,
    Observation,
    Parameter,
    ParameterType,
    Strategy,
)
from optserve.optimizers import training


def _experiment(metrics: list[Metric]) -> Experiment:
    return Experiment(
        id="training",
        name="training",
        parameters=[Parameter("x", ParameterType.DOUBLE, Bounds(0, 10))],
        metrics=metrics,
        seed=1,
    )


def _obs(i: int, x: float, values: dict[str, float], failed: bool = False, stddev=None):
    return Observation(
        str(i),
        "training",
        None,
        {"x": x},
        [MetricValue(k, v, stddev) for k, v in values.items()],
        failed=failed,
    )


def _history(exp: Experiment, observations: list[Observation]) -> training.History:
    return training.History(exp, observations, Encoder(exp))


def test_successful_rows_first_failures_at_the_worst_value_minimized_negated():
    exp = _experiment([Metric("v", Objective.MINIMIZE)])
    observations = [
        _obs(0, 1.0, {"v": 3.0}),
        _obs(1, 2.0, {}, failed=True),
        _obs(2, 3.0, {"v": 1.0}),
        _obs(3, 4.0, {}),  # neither successful nor failed: left out
        _obs(4, 5.0, {"v": 2.0}),
    ]
    data = _history(exp, observations).training(np.random.default_rng(0))
    np.testing.assert_allclose(data.x[:, 0], [0.1, 0.3, 0.5, 0.2])
    np.testing.assert_allclose(data.y, [-3.0, -1.0, -2.0, -3.0])
    assert data.n_done == 3 and data.noise is None


def test_known_noise_comes_from_the_stddev_and_turns_warping_off():
    exp = _experiment([Metric("v")])
    # a long bad tail, which would otherwise be warped
    values = [1.0] * 9 + [-100.0]
    observations = [
        _obs(i, i, {"v": v}, stddev=0.5 if i % 2 else None) for i, v in enumerate(values)
    ]
    data = _history(exp, observations).training(np.random.default_rng(0))
    np.testing.assert_allclose(data.noise, [0.0, 0.25] * 5)
    np.testing.assert_allclose(data.y, values)


def test_a_long_bad_tail_is_warped_a_long_good_tail_is_not():
    bad = np.array([1.0, 0.9, 1.1, 1.0, 0.95, 1.05, -50.0, -300.0])
    warped = training.warp(bad)
    assert not np.allclose(warped, bad)
    assert np.all(np.diff(warped[np.argsort(bad)]) >= 0)  # order kept
    good = -bad
    np.testing.assert_array_equal(training.warp(good), good)
    # huge values: the skewness is measured without overflow, so the decisions stand
    assert not np.allclose(training.warp(bad * 1e150), bad * 1e150)
    np.testing.assert_array_equal(training.warp(good * 1e150), good * 1e150)


def test_the_warp_exponent_is_scipys_maximum_likelihood_estimate():
    rng = np.random.default_rng(3)
    samples = [
        -np.exp(rng.normal(0.0, 1.5, 65)),  # a long bad tail, as the warp sees
        -rng.pareto(1.5, 200),
        rng.normal(size=12),
        rng.exponential(size=7),
    ]
    for y in samples:
        z = (y - np.median(y)) / np.std(y)
        expected = stats.yeojohnson_normmax(z)
        assert abs(training.yeo_johnson_lambda(z) - expected) <= 1e-6 * max(1.0, abs(expected))


def test_a_warp_without_a_finite_spread_leaves_the_values_alone():
    # the standard deviation overflows: scaled, every value would read 0
    y = np.array([-1e300, 0.0, 1.0, 2.0, 3.0, 2.5])
    np.testing.assert_array_equal(training.warp(y), y)


def test_two_metrics_are_scalarized_by_the_generator_with_thresholds():
    exp = _experiment([Metric("f"), Metric("g", Objective.MINIMIZE, threshold=2.0)])
    observations = [_obs(i, i, {"f": float(i), "g": float(5 - i)}) for i in range(6)]
    history = _history(exp, observations)
    first = history.training(np.random.default_rng(1)).y
    again = history.training(np.random.default_rng(1)).y
    other = history.training(np.random.default_rng(2)).y
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    # short of g's threshold (g = 5 > 2), the first observation scores below zero
    assert first[0] < 0 and first[-1] > 0


def test_a_prefix_and_the_records_follow_the_history():
    exp = _experiment([Metric("v"), Metric("c", strategy=Strategy.CONSTRAINT, threshold=0.0)])
    observations = [_obs(i, i, {"v": float(i), "c": float(i - 2)}) for i in range(6)]
    history = _history(exp, observations)
    prefix = history.prefix(4)
    assert len(prefix) == 4 and history.prefix(6) is history
    np.testing.assert_array_equal(prefix.feasible, [False, False, True, True])
    np.testing.assert_array_equal(prefix.records(), history.records()[:4])
    edited = list(observations)
    edited[1] = _obs(1, 1, {"v": 7.0, "c": -1.0})
    assert not np.array_equal(_history(exp, edited).records(), history.records())


def test_a_missing_parameter_takes_its_default_value_where_active():
    exp = Experiment(
        id="defaults",
        name="defaults",
        parameters=[
            Parameter("x", ParameterType.DOUBLE, Bounds(0, 10)),
            Parameter("y", ParameterType.DOUBLE, Bounds(0, 4), default_value=3.0),
            Parameter(
                "z",
                ParameterType.DOUBLE,
                Bounds(0, 1),
                default_value=0.25,
                conditions={"k": ["on"]},
            ),
        ],
        conditionals=[Conditional("k", ["off", "on"])],
        metrics=[Metric("v")],
        seed=1,
    )
    observations = [
        Observation("0", exp.id, None, {"x": 1.0, "k": "on"}, [MetricValue("v", 1.0)]),
        Observation("1", exp.id, None, {"x": 2.0, "k": "off"}, [MetricValue("v", 2.0)]),
        Observation("2", exp.id, None, {"x": 3.0, "y": 1.0, "k": "on", "z": 0.5}, []),
    ]
    encoder = Encoder(exp)
    history = _history(exp, observations)
    want = encoder.encode(
        [
            {"x": 1.0, "y": 3.0, "k": "on", "z": 0.25},
            {"x": 2.0, "y": 3.0, "k": "off"},  # z is inactive: no default
            {"x": 3.0, "y": 1.0, "k": "on", "z": 0.5},
        ]
    )
    np.testing.assert_array_equal(history.x, want)


def test_values_near_the_largest_double_are_scaled_exactly_and_in_order():
    y = np.array([1.7e308, -1.7e308, 3.0, -2.5e-300, 1e200, np.nan])
    scale = training.outcome_scale(y)
    assert scale < 1.0 and np.log2(scale) == int(np.log2(scale))  # a power of two
    scaled = y[:5] * scale
    assert np.max(np.abs(scaled)) <= 2.0**training.OUTCOME_EXPONENT
    np.testing.assert_array_equal(np.argsort(scaled[:3]), np.argsort(y[:3]))
    np.testing.assert_array_equal(scaled / scale, np.where(scaled == 0.0, 0.0, y[:5]))
    with np.errstate(over="raise", invalid="raise"):  # the models' arithmetic stays finite
        assert np.isfinite(np.std(scaled)) and np.isfinite(np.sum(scaled**2))
    assert training.outcome_scale(np.array([1e77, -3.0])) == 1.0
    assert training.outcome_scale(np.array([np.nan])) == 1.0


def test_values_near_the_smallest_double_are_scaled_up_exactly_and_in_order():
    y = np.array([1e-300, -3e-301, 2.5e-310, 0.0, np.nan])
    scale = training.outcome_scale(y)
    assert scale > 1.0 and np.log2(scale) == int(np.log2(scale))  # a power of two
    scaled = y[:4] * scale
    top = np.max(np.abs(scaled))
    assert 2.0**-training.OUTCOME_EXPONENT <= top < 2.0 ** (1 - training.OUTCOME_EXPONENT)
    np.testing.assert_array_equal(np.argsort(scaled), np.argsort(y[:4]))
    np.testing.assert_array_equal(scaled / scale, y[:4])  # exact, subnormals too
    assert np.std(scaled) > 0.0  # the spread no longer underflows
    assert training.outcome_scale(np.zeros(3)) == 1.0
    assert training.outcome_scale(np.array([1e-70, 0.0])) == 1.0


def test_remembered_yeo_johnson_exponents_belong_to_their_outputs():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal(30), rng.exponential(size=30)
    first = training.yeo_johnson_lambda(a), training.yeo_johnson_lambda(b)
    assert first == (training._yeo_johnson_lambda(a), training._yeo_johnson_lambda(b))
    assert first[0] != first[1]
    # again, from the cache: the same exponents, each for its own outputs
    assert (training.yeo_johnson_lambda(a.copy()), training.yeo_johnson_lambda(b)) == first
