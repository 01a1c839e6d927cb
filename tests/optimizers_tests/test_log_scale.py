"""The log scale of positive parameters, chosen by the models' posterior density."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optserve.domain.model import (
    Bounds,
    ConstraintTerm,
    ConstraintType,
    Experiment,
    LinearConstraint,
    Metric,
    MetricValue,
    Objective,
    Observation,
    Parameter,
    ParameterType,
    Prior,
    PriorType,
    Transformation,
)
from optserve.optimizers import SuggestRequest, hyperfit, log_scale, models, suggest
from optserve.optimizers.feasible import feasible_space
from optserve.optimizers.gp import GaussianProcess
from optserve.optimizers.gp.model import log_posterior_and_grad
from optserve.optimizers.training import History


def _experiment(exp_id: str, metrics: list[Metric] | None = None, **extra) -> Experiment:
    return Experiment(
        id=exp_id,
        name="log-scale",
        parameters=[
            Parameter("width", ParameterType.INT, Bounds(8, 256)),
            Parameter("x", ParameterType.DOUBLE, Bounds(0, 1)),
        ],
        metrics=metrics or [Metric("loss", objective=Objective.MINIMIZE)],
        seed=5,
        observation_budget=40,
        **extra,
    )


def _request(exp: Experiment, fn, n: int) -> SuggestRequest:
    rng = np.random.default_rng(1)
    points = feasible_space(exp).draw(n, rng)
    observations = [
        Observation(str(i), exp.id, None, a, [MetricValue("loss", fn(a))])
        for i, a in enumerate(points)
    ]
    return SuggestRequest(exp, observations, [], 1, n)


def _models(request: SuggestRequest) -> models.Models:
    exp = request.experiment
    return models.Models(History(exp, request.observations, feasible_space(exp).encoder))


def _preferred(request: SuggestRequest) -> SuggestRequest:
    return log_scale.preferred(request, _models(request))


def _multiplicative(a) -> float:  # best width 32, in octaves
    return ((math.log2(a["width"]) - 5.0) / 2.0) ** 2 + 4.0 * (a["x"] - 0.3) ** 2


def _additive(a) -> float:  # best width 200, in plain units
    return ((a["width"] - 200.0) / 60.0) ** 2 + 4.0 * (a["x"] - 0.3) ** 2


def test_candidates_are_the_free_positive_numeric_parameters():
    exp = Experiment(
        id="candidates",
        name="log-scale",
        parameters=[
            Parameter("width", ParameterType.INT, Bounds(8, 256)),
            Parameter("rate", ParameterType.DOUBLE, Bounds(1e-5, 1.0)),
            Parameter("zero", ParameterType.DOUBLE, Bounds(0, 1)),
            Parameter(
                "logged", ParameterType.DOUBLE, Bounds(1, 10), transformation=Transformation.LOG
            ),
            Parameter("grid", ParameterType.DOUBLE, grid=[1.0, 2.0, 4.0]),
            Parameter(
                "prior", ParameterType.DOUBLE, Bounds(1, 9), prior=Prior(PriorType.NORMAL, 5, 1)
            ),
            Parameter("tied", ParameterType.DOUBLE, Bounds(1, 9)),
            Parameter("kind", ParameterType.CATEGORICAL, categorical_values=["a", "b"]),
        ],
        metrics=[Metric("loss")],
        linear_constraints=[
            LinearConstraint(ConstraintType.LESS_THAN, 8.0, [ConstraintTerm("tied", 1.0)])
        ],
    )
    assert log_scale.candidates(exp) == ["width", "rate"]
    scaled = log_scale.log_scaled(exp)
    assert scaled is not None and scaled is log_scale.log_scaled(exp)
    assert [p.name for p in scaled.parameters if p.is_log] == ["width", "rate", "logged"]
    assert [p.name for p in exp.parameters if p.is_log] == ["logged"]  # the declared one untouched
    assert log_scale.log_scaled(_experiment("two", [Metric("a"), Metric("b")])) is None


def test_the_density_is_the_fits_objective():
    rng = np.random.default_rng(2)
    x, y = rng.random((15, 3)), rng.standard_normal(15)
    gp = GaussianProcess().fit(x, y)
    ys = (y - y.mean()) / y.std()
    expected, _ = log_posterior_and_grad(gp.hyperparameters.to_log_params(), x, ys)
    assert gp.log_posterior_density() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("fn", "chosen"), [(_multiplicative, True), (_additive, False)], ids=["octaves", "units"]
)
def test_the_data_choose_the_encoding(fn, chosen):
    exp = _experiment(f"choose-{fn.__name__}")
    request = _request(exp, fn, 24)
    hyperfit.clear_cache()
    preferred = _preferred(request)
    assert (preferred.experiment is not exp) is chosen
    # a function of the history: again, and in a fresh process (no cached fits)
    assert _preferred(request).experiment is preferred.experiment
    hyperfit.clear_cache()
    assert _preferred(request).experiment is preferred.experiment


def test_a_suggestion_on_the_chosen_log_scale_is_a_valid_point_and_reproducible():
    exp = _experiment("suggest-log")
    request = _request(exp, _multiplicative, 24)
    assert _preferred(request).experiment is not exp
    (a,) = suggest(request)
    assert isinstance(a["width"], int) and 8 <= a["width"] <= 256 and 0 <= a["x"] <= 1
    hyperfit.clear_cache()
    assert suggest(_request(exp, _multiplicative, 24)) == [a]


def test_the_log_encoding_needs_strong_evidence(monkeypatch):
    exp = _experiment("margin")
    request = _request(exp, _multiplicative, 24)
    margin = log_scale.margin(request)
    assert margin is not None and margin > math.log(log_scale.BAYES_FACTOR)  # strong
    monkeypatch.setattr(log_scale, "_LOG_FACTOR", margin + 1e-9)
    hyperfit.clear_cache()  # the remembered choice too
    assert _preferred(request).experiment is exp


def test_beyond_32_observations_the_choice_is_made_at_the_doubling():
    exp = _experiment("doubling")
    request = _request(exp, _multiplicative, 40)
    assert _models(request).choice_node() == 32
    # the margin at 40 observations is the one at the first 32
    first = SuggestRequest(exp, request.observations[:32], [], 1, 32)
    assert log_scale.margin(request) == log_scale.margin(first)
