"""Parameter priors: the initial design draws from them, and the acquisition is
weighted by them less and less as observations accumulate (piBO)."""

from __future__ import annotations

import numpy as np
import pytest

from optserve.domain import geometry
from optserve.domain.encoding import Encoder
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
    Prior,
    PriorType,
)
from optserve.optimizers import SuggestRequest, initial_design, priors, suggest
from optserve.optimizers import acquisition as acq
from optserve.optimizers.gp import GaussianProcess


def _experiment(exp_id: str, prior: Prior | None, **extra) -> Experiment:
    return Experiment(
        id=exp_id,
        name=exp_id,
        parameters=[
            Parameter("x", ParameterType.DOUBLE, Bounds(0, 10), prior=prior),
            Parameter("y", ParameterType.DOUBLE, Bounds(0, 1)),
        ],
        metrics=[Metric("v")],
        seed=5,
        **extra,
    )


NARROW = Prior(PriorType.NORMAL, mean=2.0, scale=0.5)


def _design(exp: Experiment, n: int) -> list[dict]:
    return initial_design.suggest(SuggestRequest(exp, [], [], n, 0))


def test_the_design_concentrates_near_a_narrow_priors_mean():
    with_prior = np.array([p["x"] for p in _design(_experiment("narrow", NARROW), 12)])
    without = np.array([p["x"] for p in _design(_experiment("flat", None), 12)])
    assert np.all((with_prior >= 0) & (with_prior <= 10))
    assert np.median(np.abs(with_prior - 2.0)) < 0.6
    assert np.median(np.abs(without - 2.0)) > 2.0
    # still a design: no two points alike
    assert len(set(with_prior.round(6))) == len(with_prior)


def test_a_prior_on_a_constrained_parameter_keeps_every_point_feasible():
    constraint = LinearConstraint(
        ConstraintType.LESS_THAN, 1.0, [ConstraintTerm("a", 1.0), ConstraintTerm("b", 1.0)]
    )

    def exp(prior: Prior | None) -> Experiment:
        return Experiment(
            id=f"beta-{prior is not None}",
            name="beta",
            parameters=[
                Parameter("a", ParameterType.DOUBLE, Bounds(0, 1), prior=prior),
                Parameter("b", ParameterType.DOUBLE, Bounds(0, 1)),
            ],
            linear_constraints=[constraint],
            metrics=[Metric("v")],
            seed=2,
        )

    points = _design(exp(Prior(PriorType.BETA, shape_a=8.0, shape_b=2.0)), 12)
    assert all(geometry.holds(constraint, p) for p in points)
    flat = _design(exp(None), 12)
    # the uniform triangle has mean a = 1/3; beta(8, 2) pulls the design towards 0.8
    assert np.mean([p["a"] for p in points]) > np.mean([p["a"] for p in flat]) + 0.15


def test_an_inactive_parameter_ignores_its_prior():
    exp = Experiment(
        id="cond-prior",
        name="cond",
        parameters=[
            Parameter(
                "x", ParameterType.DOUBLE, Bounds(0, 10), prior=NARROW, conditions={"k": ["on"]}
            )
        ],
        conditionals=[Conditional("k", ["off", "on"])],
        metrics=[Metric("v")],
        seed=1,
    )
    encoder = Encoder(exp)
    (unit,) = priors.unit_priors(exp, encoder)
    rows = encoder.encode([{"k": "off"}, {"k": "on", "x": 2.0}, {"k": "on", "x": 9.0}])
    density = priors.log_density([unit], rows)
    assert density[0] == 0.0 and density[1] > density[2]


def test_the_prior_exponent_decays_with_the_observations():
    exp = _experiment("decay", NARROW, observation_budget=50)
    assert acq.prior_exponent(exp, 5) == pytest.approx(1.0)
    assert acq.prior_exponent(exp, 50) == pytest.approx(0.1)
    assert acq.prior_exponent(_experiment("no-budget", NARROW), 10) == pytest.approx(1.0)


def test_the_acquisition_adds_the_weighted_log_density():
    exp = _experiment("weighted", NARROW)
    encoder = Encoder(exp)
    rng = np.random.default_rng(0)
    x = rng.random((20, 2))
    gp = GaussianProcess(maxiter=20).fit(x, x[:, 0], rng=rng)
    unit = priors.unit_priors(exp, encoder)
    fields = dict(
        model=gp,
        incumbent=float(np.max(gp.predict(x)[0])),
        exploit=False,
        encoder=encoder,
        penalty=None,
        pending_penalty=None,
        constraint_models=[],
        taken=set(),
        branch=None,
    )
    plain = acq.Acquisition(**fields)
    weighted = acq.Acquisition(**fields, priors=(unit, 0.5))
    rows = rng.random((50, 2))
    np.testing.assert_allclose(
        weighted(rows) - plain(rows), 0.5 * priors.log_density(unit, rows), atol=1e-8
    )
    assert plain.plain and not weighted.plain
    # the final stretch's upper confidence bound takes no prior
    fields["exploit"] = True
    np.testing.assert_array_equal(
        acq.Acquisition(**fields, priors=(unit, 0.5))(rows), acq.Acquisition(**fields)(rows)
    )


def _observe(exp: Experiment, points: list[dict], f) -> list[Observation]:
    return [
        Observation(str(i), exp.id, None, p, [MetricValue("v", float(f(p)))])
        for i, p in enumerate(points)
    ]


def _run(exp: Experiment, f, budget: int) -> list[Observation]:
    observations: list[Observation] = []
    while len(observations) < budget:
        (point,) = suggest(SuggestRequest(exp, observations, [], 1, len(observations)))
        observations += _observe(exp, [point], f)[:1]
        observations[-1].id = str(len(observations))
    return observations


def _rising(p: dict) -> float:
    return p["x"] + p["y"]  # best at x = 10


def test_early_model_suggestions_follow_a_confident_prior():
    with_prior = _run(_experiment("early-prior", NARROW), _rising, 9)
    without = _run(_experiment("early-flat", None), _rising, 9)
    size = initial_design.initial_design_size(_experiment("size", None))
    model_x = [o.assignments["x"] for o in with_prior[size:]]
    flat_x = [o.assignments["x"] for o in without[size:]]
    # EI alone runs to the rising edge; weighted by the prior it stays near x = 2
    assert model_x and max(model_x) < 4.0
    assert min(flat_x) > 5.0


def test_a_prior_far_from_the_optimum_still_lets_the_optimum_be_found():
    def peak(p: dict) -> float:
        return -((p["x"] - 8.0) ** 2) - 4.0 * (p["y"] - 0.3) ** 2

    observations = _run(_experiment("far", NARROW, observation_budget=40), peak, 40)
    best = max(observations, key=lambda o: o.values[0].value)
    assert abs(best.assignments["x"] - 8.0) < 0.2
