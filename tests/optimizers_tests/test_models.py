"""Stage 2 of a Bayesian suggestion: the models, and the chain of fits they come from."""

from __future__ import annotations

import numpy as np
import pytest

from optserve.domain.model import (
    Bounds,
    Experiment,
    Metric,
    MetricValue,
    Objective,
    Observation,
    Parameter,
    ParameterType,
    Strategy,
)
from optserve.optimizers import hyperfit, models, multiobjective
from optserve.optimizers.feasible import feasible_space
from optserve.optimizers.gp import GaussianProcess
from optserve.optimizers.training import History


def _experiment(exp_id: str, metrics: list[Metric] | None = None) -> Experiment:
    return Experiment(
        id=exp_id,
        name="models",
        parameters=[Parameter(f"x{i}", ParameterType.DOUBLE, Bounds(0, 1)) for i in range(3)],
        metrics=metrics or [Metric("v")],
        seed=4,
    )


def _history(exp: Experiment, n: int, failed_first: int = 0) -> History:
    rng = np.random.default_rng(9)
    points = feasible_space(exp).draw(n, rng)
    observations = []
    for i, a in enumerate(points):
        failed = i < failed_first
        values = [
            MetricValue(m.name, float(np.sin(5 * a["x0"]) + a["x1"] + (j * a["x2"])))
            for j, m in enumerate(exp.metrics)
        ]
        observations.append(Observation(str(i), exp.id, None, a, [] if failed else values, failed))
    return History(exp, observations, feasible_space(exp).encoder)


def test_the_first_modelled_prefix_counts_successes_only():
    exp = _experiment("first")  # 3 parameters: a design of 5
    assert models.first_modelled(_history(exp, 4)) is None
    assert models.first_modelled(_history(exp, 20)) == 5
    assert models.first_modelled(_history(exp, 20, failed_first=3)) == 8


def test_between_checkpoints_the_exact_model_conditions_on_the_last_checkpoints_fit(
    monkeypatch,
):
    exp = _experiment("exact-between")
    history = _history(exp, 100)
    grid = hyperfit.checkpoints(100)
    size = next(n for n in range(70, 100) if n not in grid)
    prefix = history.prefix(size)
    hyperfit.clear_cache()
    call = models.Models(prefix)
    checkpoint = call.checkpoint()
    assert checkpoint == max(c for c in grid if c <= size) < size
    hyper = call.chain.hyperparameters(checkpoint)  # the chain's fits, cached
    fitted = []
    original = GaussianProcess.fit

    def fit(self, x, *args, **kwargs):
        fitted.append(len(x))
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(GaussianProcess, "fit", fit)
    data = prefix.training(np.random.default_rng(0))
    gp = call.exact(data, np.random.default_rng(1))
    # no fit of its own: the checkpoint's hyperparameters, every row conditioned on
    assert fitted == []
    np.testing.assert_array_equal(gp.hyperparameters.to_log_params(), hyper.to_log_params())
    np.testing.assert_array_equal(gp.x_train, data.x)
    assert len(gp.x_train) == size


def test_at_a_checkpoint_the_exact_model_is_the_chains_fit():
    exp = _experiment("exact")
    history = _history(exp, 40)
    hyperfit.clear_cache()
    call = models.Models(history)
    data = history.training(np.random.default_rng(0))
    gp = call.exact(data, np.random.default_rng(1))
    assert gp is call.chain.fitted[40]
    np.testing.assert_array_equal(gp.x_train, data.x)
    # a second call, served from the cache, conditions on the same hyperparameters
    again = models.Models(history).exact(data, np.random.default_rng(2))
    assert again is not gp
    np.testing.assert_array_equal(
        again.hyperparameters.to_log_params(), gp.hyperparameters.to_log_params()
    )
    np.testing.assert_allclose(again.alpha, gp.alpha)


def test_two_metrics_fit_per_suggestion_from_the_chains_parent(monkeypatch):
    exp = _experiment("two", [Metric("f"), Metric("g", Objective.MINIMIZE)])
    history = _history(exp, 40)
    starts = []
    original = GaussianProcess.fit

    def fit(self, x, y, known_noise=None, warm_start=None, **kwargs):
        starts.append(warm_start)
        return original(self, x, y, known_noise, warm_start, **kwargs)

    monkeypatch.setattr(GaussianProcess, "fit", fit)
    call = models.Models(history)
    data = history.training(np.random.default_rng(0))
    gp = call.exact(data, np.random.default_rng(1))
    np.testing.assert_array_equal(gp.x_train, data.x)
    # the chain's fits, then the suggestion's own, warm-started from the parent's
    parent = call.chain.parent(40)
    assert parent is not None and starts[-1] is not None
    np.testing.assert_array_equal(
        starts[-1].to_log_params(), call.chain.hyperparameters(parent).to_log_params()
    )


def test_the_subset_model_is_bounded_and_shared_by_equal_outputs(monkeypatch):
    monkeypatch.setattr(models, "EXACT_MAX_POINTS", 50)
    monkeypatch.setattr(models, "SUBSET_SIZE", 30)
    exp = _experiment("subset")
    history = _history(exp, 120)
    call = models.Models(history)
    assert call.at_scale
    data = history.training(np.random.default_rng(0))
    model = models.SubsetModel(exp, call.subset_hyperparameters(), data)
    key, gp = model.gp(data)
    assert len(gp.x_train) == 30 and len(model.rows) == 30
    np.testing.assert_array_equal(gp.x_train, data.x[model.rows])
    assert model.gp(data)[1] is gp
    shifted = type(data)(data.x, data.y + 1.0, data.noise, data.n_done, data.feasible)
    assert model.gp(shifted)[0] != key
    assert not models.Models(history.prefix(50)).at_scale


@pytest.mark.parametrize(
    ("objective", "threshold"), [(Objective.MAXIMIZE, 0.5), (Objective.MINIMIZE, 0.5)]
)
def test_constraint_models_are_signed_so_that_larger_is_better(objective, threshold):
    exp = _experiment(
        "constraint", [Metric("v"), Metric("c", objective, Strategy.CONSTRAINT, threshold)]
    )
    history = _history(exp, 30)
    done = history.done
    ((gp, bound),) = models.constraint_models(
        exp, done, feasible_space(exp).encoder, np.random.default_rng(0)
    )
    sign = 1.0 if objective is Objective.MAXIMIZE else -1.0
    values = np.array([sign * o.value_of("c") for o in done])
    assert bound == pytest.approx(sign * threshold + models.CONSTRAINT_MARGIN * values.std())
    mean = gp.predict(history.x[history.usable])[0]
    assert np.corrcoef(mean, values)[0, 1] > 0.99


def test_an_optimized_metrics_model_has_the_worst_value_as_its_mean():
    """The optimized metric's GP expects the worst value seen far from the data;
    a constraint metric's keeps the average."""
    exp = _experiment(
        "means", [Metric("v"), Metric("c", strategy=Strategy.CONSTRAINT, threshold=1.0)]
    )
    history = _history(exp, 30)
    call_models = models.Models(history)
    data = history.training(np.random.default_rng(0))
    gp = call_models.exact(data, np.random.default_rng(1))
    assert gp.worst_mean and gp.y_mean == pytest.approx(np.min(data.y))
    ((constraint, _),) = models.constraint_models(
        exp, history.done, feasible_space(exp).encoder, np.random.default_rng(0)
    )
    values = [o.value_of("c") for o in history.done]
    assert not constraint.worst_mean and constraint.y_mean == pytest.approx(np.mean(values))


def test_two_optimized_metrics_keep_the_average_as_the_mean():
    """With two optimized metrics the front's extent is sought: each metric's
    GP, and their scalarization's, keeps the average."""
    exp = _experiment("two-means", [Metric("v"), Metric("w")])
    history = _history(exp, 30)
    data = history.training(np.random.default_rng(0))
    gp = models.Models(history).exact(data, np.random.default_rng(1))
    assert not gp.worst_mean and gp.y_mean == pytest.approx(np.mean(data.y))
    metric_gp, metric_data, _ = multiobjective.metric_model(history, 1)
    assert not metric_gp.worst_mean
    assert metric_gp.y_mean == pytest.approx(np.mean(metric_data.y))


def test_above_the_switch_hyperparameters_are_fitted_on_the_subset(monkeypatch):
    monkeypatch.setattr(models, "EXACT_MAX_POINTS", 50)
    monkeypatch.setattr(models, "SUBSET_SIZE", 40)
    monkeypatch.setattr(models, "SUBSET_FIT_POINTS", 30)
    exp = _experiment("subset-fit")
    history = _history(exp, 200)
    fitted = []
    original = GaussianProcess.fit

    def fit(self, x, y, *args, **kwargs):
        fitted.append((len(x), self.max_fit_points))
        return original(self, x, y, *args, **kwargs)

    monkeypatch.setattr(GaussianProcess, "fit", fit)
    models.chain_fit(history, 200, None)
    models.chain_fit(history, 50, None)
    assert fitted == [(40, 30), (50, GaussianProcess().max_fit_points)]


def test_between_checkpoints_the_subset_takes_the_last_checkpoints_hyperparameters():
    exp = _experiment("between")
    history = _history(exp, 160)
    grid = hyperfit.checkpoints(160)
    size = next(n for n in range(140, 160) if n not in grid)
    call = models.Models(history.prefix(size))
    assert call.checkpoint() == max(c for c in grid if c <= size)
    np.testing.assert_array_equal(
        call.subset_hyperparameters().to_log_params(),
        call.chain.hyperparameters(call.checkpoint()).to_log_params(),
    )


def _categorical_experiment(metrics: list[Metric]) -> Experiment:
    return Experiment(
        id="categorical",
        name="models",
        parameters=[
            Parameter("x0", ParameterType.DOUBLE, Bounds(0, 1)),
            Parameter("kind", ParameterType.CATEGORICAL, categorical_values=["a", "b", "c"]),
            Parameter("x1", ParameterType.DOUBLE, Bounds(0, 1)),
            Parameter("flag", ParameterType.CATEGORICAL, categorical_values=["off", "on"]),
        ],
        metrics=metrics,
        seed=4,
    )


def test_a_categorical_parameters_columns_share_one_length_scale_in_every_model():
    assert models.length_scale_groups(_experiment("doubles")) is None
    constraint = Metric("c", strategy=Strategy.CONSTRAINT, threshold=0.0)
    exp = _categorical_experiment([Metric("v"), constraint])
    groups = models.length_scale_groups(exp)
    np.testing.assert_array_equal(groups, [0, 1, 1, 1, 4, 5, 5])
    rng = np.random.default_rng(3)
    observations = []
    for i, a in enumerate(feasible_space(exp).draw(24, rng)):
        value = np.sin(4 * a["x0"]) + (a["kind"] == "b") + 0.3 * (a["flag"] == "on")
        values = [MetricValue("v", float(value)), MetricValue("c", float(a["x1"] - 0.5))]
        observations.append(Observation(str(i), exp.id, None, a, values))
    encoder = feasible_space(exp).encoder
    history = History(exp, observations, encoder)
    hyperfit.clear_cache()
    gp = models.Models(history).exact(history.training(rng), rng)
    ((constraint_gp, _),) = models.constraint_models(exp, observations, encoder, rng)
    for fitted in (gp, constraint_gp):
        ell = fitted.lengthscales
        assert ell[1] == ell[2] == ell[3] and ell[5] == ell[6]
