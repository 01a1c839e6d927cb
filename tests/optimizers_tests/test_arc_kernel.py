"""The arc kernel's input map of conditional numeric parameters (``gp/inputs.py``)
and its use wherever the optimizer meets the GP."""

from __future__ import annotations

import numpy as np
import pytest

from optserve.domain.model import (
    Bounds,
    Conditional,
    Experiment,
    Metric,
    Objective,
    Parameter,
    ParameterType,
)
from optserve.optimizers import acquisition as acq
from optserve.optimizers import maximizer, models
from optserve.optimizers.feasible import feasible_space
from optserve.optimizers.gp import (
    GaussianProcess,
    Hyperparameters,
    inputs,
    log_expected_improvement,
)
from optserve.optimizers.gp.fantasy import Fantasies
from optserve.optimizers.gp.gradient import log_ei_and_grad
from optserve.optimizers.gp.model import _Evidence, covariance
from optserve.optimizers.gp.scoring import AcquisitionScorer


def _layers(conditionals: bool = True) -> Experiment:
    """lr global; units_i and dropout_i active for i <= depth."""
    allowed = {1: ["1", "2", "3"], 2: ["2", "3"], 3: ["3"]}
    params = [Parameter("lr", ParameterType.DOUBLE, Bounds(-5.0, -1.0))]
    for i in (1, 2, 3):
        conditions = {"depth": allowed[i]} if conditionals else {}
        params.append(
            Parameter(f"units_{i}", ParameterType.INT, Bounds(8, 256), conditions=conditions)
        )
        params.append(
            Parameter(f"drop_{i}", ParameterType.DOUBLE, Bounds(0.0, 0.5), conditions=conditions)
        )
    return Experiment(
        id="arc",
        name="arc",
        parameters=params,
        conditionals=[Conditional("depth", ["1", "2", "3"])] if conditionals else [],
        metrics=[Metric("loss", Objective.MINIMIZE)],
        observation_budget=50,
        seed=3,
    )


EXP = _layers()
SPACE = feasible_space(EXP)
ENC = SPACE.encoder
ARC = models.input_map(EXP)


def _loss(rows: np.ndarray) -> np.ndarray:
    return -((rows[:, :7] - 0.3) ** 2).sum(axis=1) + rows[:, ENC.slices["depth"].start + 2]


def _fitted(n: int = 40, seed: int = 0) -> tuple[GaussianProcess, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = SPACE.draw_rows(n, rng)
    y = _loss(x)
    return GaussianProcess(maxiter=20, input_map=ARC).fit(x, y, rng=rng), x, y


def _row(depth: str, **values: float) -> np.ndarray:
    point: dict[str, object] = {"depth": depth, "lr": -3.0}
    for i in range(1, int(depth) + 1):
        point[f"units_{i}"] = 64
        point[f"drop_{i}"] = 0.2
    point.update(values)
    return ENC.encode([point])[0]


def test_only_parameters_inactive_somewhere_are_mapped():
    assert ARC is not None
    mapped = sorted(int(c) for c in ARC.columns)
    want = sorted(ENC.slices[n].start for n in ("units_2", "drop_2", "units_3", "drop_3"))
    assert mapped == want  # units_1 and drop_1 are active in every branch
    assert models.input_map(_layers(conditionals=False)) is None


def test_an_inactive_point_is_equally_correlated_with_every_active_value():
    hyper = Hyperparameters(np.full(ENC.dim, 1.0), outputscale=1.0, noise=1e-6)
    two_layers = _row("2")[None, :]
    gp = GaussianProcess(input_map=ARC).condition(two_layers, np.array([1.0]), hyper)
    units = [8, 40, 132, 200, 256]  # 132 is the inactive placeholder's value (0.5)
    rows = np.array([_row("3", units_3=u) for u in units])
    _, var = gp.predict(rows)
    np.testing.assert_allclose(var, var[0], rtol=1e-12)
    # without the map the placeholder pins units_3 at the middle of its range
    _, plain = GaussianProcess().condition(two_layers, np.array([1.0]), hyper).predict(rows)
    assert plain[2] < plain[0] - 1e-3


def test_active_values_keep_their_order_and_small_steps_their_length():
    rows = np.array([_row("3", drop_3=d) for d in (0.0, 0.1, 0.25, 0.5)])
    z = ARC(rows)
    dist = np.linalg.norm(z - z[0], axis=1)
    assert np.all(np.diff(dist) > 0)
    col = ENC.slices["drop_3"].start
    a, b = _row("3", drop_3=0.2), _row("3", drop_3=0.2001)
    step = np.linalg.norm(ARC(b[None, :]) - ARC(a[None, :]))
    assert step == pytest.approx(abs(b[col] - a[col]), rel=1e-3)


def _lml(k: np.ndarray, y: np.ndarray) -> float:
    chol = np.linalg.cholesky(k)
    alpha = np.linalg.solve(k, y)
    return float(-0.5 * y @ alpha - np.log(np.diag(chol)).sum() - 0.5 * len(y) * np.log(2 * np.pi))


def test_the_fit_maximizes_the_likelihood_of_the_mixture_kernel():
    """The fit's likelihood is that of ``covariance`` (the mixture, a pair's two
    inputs sharing one length scale), and its gradient matches finite differences."""
    _, x, y = _fitted(12)
    theta = np.log(np.concatenate([np.linspace(0.3, 1.2, ENC.dim), [1.3, 1e-2]]))
    ys = (y - y.mean()) / y.std()

    value, grad = _Evidence(ARC(x), ys, np.zeros(len(y)), ARC)(theta)
    ell = ARC.lengthscales(np.exp(theta[:-2]))
    k = covariance(ARC(x), ARC(x), ell, 1.3, ARC) + 1e-2 * np.eye(len(y))
    assert value == pytest.approx(_lml(k, ys), rel=1e-10)
    h = 1e-6
    for d in range(len(theta)):
        e = np.zeros_like(theta)
        e[d] = h
        numeric = (
            _Evidence(ARC(x), ys, np.zeros(len(y)), ARC)(theta + e)[0]
            - _Evidence(ARC(x), ys, np.zeros(len(y)), ARC)(theta - e)[0]
        ) / (2 * h)
        assert grad[d] == pytest.approx(numeric, rel=1e-4, abs=1e-6)


def test_the_mixture_is_a_covariance_with_the_outputscale_on_its_diagonal():
    rows = SPACE.draw_rows(80, np.random.default_rng(3))
    ell = ARC.lengthscales(np.linspace(0.2, 0.9, ENC.dim))
    k = covariance(ARC(rows), ARC(rows), ell, 1.7, ARC)
    np.testing.assert_allclose(np.diag(k), 1.7, rtol=1e-12)
    np.testing.assert_allclose(k, k.T, rtol=1e-12, atol=1e-14)
    assert np.linalg.eigvalsh(k).min() > -1e-10
    # the additive half is spread over the active groups: shallow points too
    scales = ARC.scales(ARC(rows))
    np.testing.assert_allclose((scales**2).sum(axis=1), 1.0, rtol=1e-12)


def test_what_the_branches_share_carries_into_a_deeper_branch(monkeypatch):
    """Many 2-layer points and a few 3-layer ones of a loss whose best units_1
    is the same in both: the mixture's posterior mean in the 3-layer branch has
    its best units_1 near where the 2-layer points put it; under the product
    kernel alone (``PRODUCT_WEIGHT = 1``) it is at the bound, far from the few
    deep points, as on the benchmark's conditional problem."""
    rng = np.random.default_rng(11)
    best_units = 200

    def loss(units_1: float, drop_2: float, units_3: float | None) -> float:
        deeper = 0.0 if units_3 is None else -0.2 + ((units_3 - 40) / 100) ** 2
        return ((units_1 - best_units) / 80) ** 2 + (drop_2 - 0.2) ** 2 + deeper

    points, values = [], []
    for _ in range(30):
        u1, d2 = float(rng.uniform(8, 256)), float(rng.uniform(0, 0.5))
        points.append(_row("2", units_1=round(u1), drop_2=d2))
        values.append(-loss(round(u1), d2, None))
    for u1 in (20, 60, 110):  # three deep points, far from the best units_1
        u3 = float(rng.uniform(8, 256))
        points.append(_row("3", units_1=u1, units_3=round(u3)))
        values.append(-loss(u1, 0.2, round(u3)))
    x, y = np.array(points), np.array(values)
    hyper = GaussianProcess(input_map=ARC).fit(x, y, rng=np.random.default_rng(0)).hyperparameters
    assert hyper is not None
    grid = np.arange(8, 257, 8)
    probe = np.array([_row("3", units_1=int(u), drop_2=0.2, units_3=40) for u in grid])

    def best_units_1() -> float:
        gp = GaussianProcess(input_map=ARC).condition(x, y, hyper)
        return float(grid[int(np.argmax(gp.mean(probe)))])

    mixture = best_units_1()
    monkeypatch.setattr(inputs, "PRODUCT_WEIGHT", 1.0)
    product = best_units_1()
    # the product kernel ends at the bound, away from the deep points it knows;
    # the mixture stays inside, nearer the best the shallow points found
    assert product == grid[-1]
    assert grid[0] < mixture < grid[-1]
    assert abs(mixture - best_units) < abs(product - best_units)


def test_the_fit_keeps_one_length_scale_per_encoded_column():
    gp, x, _ = _fitted()
    assert gp.hyperparameters is not None and gp.hyperparameters.dim == ENC.dim
    assert gp.x_train.shape == (len(x), ENC.dim + 4)
    np.testing.assert_array_equal(gp.feature_lengthscales[ENC.dim :], gp.lengthscales[ARC.columns])


def test_the_scorer_mean_and_believer_agree_with_predict():
    gp, _, y = _fitted()
    rows = SPACE.draw_rows(300, np.random.default_rng(1))
    mean, var = gp.predict(rows)
    np.testing.assert_allclose(gp.mean(rows), mean, rtol=1e-12, atol=1e-12)
    incumbent = float(y.max())
    # the compiled kernel scores the mixture (its scales per point) as NumPy does,
    # and does not hand it to the compiled maximizer, which could not map candidates
    scorer = AcquisitionScorer(gp, incumbent)
    assert scorer.backend == "rust" and scorer.compiled is None
    want = log_expected_improvement(mean, np.sqrt(var), incumbent)
    np.testing.assert_allclose(scorer.log_ei(rows), want, rtol=1e-10, atol=1e-12)
    compiled_mean, compiled_var = scorer.predict(rows)
    np.testing.assert_allclose(compiled_mean, mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(compiled_var, var, rtol=1e-10, atol=1e-14)
    numpy = AcquisitionScorer(gp, incumbent, backend="numpy")
    np.testing.assert_allclose(numpy.log_ei(rows), want, rtol=1e-12)
    # believing a point shrinks the variance there, as if it were observed
    believing = gp.believe(rows[:3])
    assert np.all(believing.predict(rows[:3])[1] < 0.5 * var[:3])


def test_log_ei_gradient_matches_finite_differences_through_the_map():
    gp, _, y = _fitted()
    incumbent = float(y.max())
    rows = [_row("3", units_3=40, drop_3=0.33), _row("2", drop_2=0.1), _row("1")]
    for row in rows:
        value, grad = log_ei_and_grad(gp, row, incumbent)
        assert value == pytest.approx(
            float(AcquisitionScorer(gp, incumbent, backend="numpy").log_ei(row[None, :])[0]),
            rel=1e-9,
        )
        h = 1e-6
        for c in range(7):
            e = np.zeros_like(row)
            e[c] = h
            numeric = (
                log_ei_and_grad(gp, row + e, incumbent)[0]
                - log_ei_and_grad(gp, row - e, incumbent)[0]
            ) / (2 * h)
            assert grad[c] == pytest.approx(numeric, rel=1e-4, abs=1e-6)
    # an inactive coordinate does not move log EI
    assert log_ei_and_grad(gp, rows[2], incumbent)[1][ENC.slices["drop_3"].start] == 0.0


def test_the_pool_is_rescored_as_the_believing_gp_predicts():
    gp, _, _ = _fitted()
    rng = np.random.default_rng(2)
    rows = SPACE.draw_rows(60, rng)
    pool = maximizer.CandidatePool(gp, rows, np.zeros(60), capacity=60)
    believing = gp.believe(SPACE.draw_rows(4, rng))
    mean, var = pool.posterior(gp, believing)
    want_mean, want_var = believing.predict(rows)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(var, want_var, rtol=1e-7, atol=1e-12)


def test_the_mean_gradient_bound_is_the_mixtures_gradient():
    """The Lipschitz estimate of the local penalty is the largest norm, in length
    scales, of the posterior mean's gradient in the kernel's inputs."""
    gp, _, _ = _fitted()
    rows = gp.features(SPACE.draw_rows(20, np.random.default_rng(8)))
    ell, h = gp.feature_lengthscales, 1e-6

    def mean(z: np.ndarray) -> float:
        k = covariance(gp.x_train, z[None, :], ell, gp.outputscale, ARC)[:, 0]
        return gp.y_mean + gp.y_std * float(k @ gp.alpha)

    norms = []
    for z in rows:
        grad = np.array([(mean(z + h * e) - mean(z - h * e)) / (2 * h) for e in np.eye(len(z))])
        norms.append(float(np.linalg.norm(grad * ell)))
    assert acq.mean_gradient_norm(gp, rows) == pytest.approx(max(norms), rel=1e-5)


def test_the_local_penalty_measures_distance_in_the_kernels_inputs():
    gp, _, y = _fitted()
    pending = _row("2")[None, :]
    penalty = acq.local_penalty(pending, gp, float(y.max()))
    assert penalty is not None
    # a pending point without units_3 is as far from every units_3 of the other branch
    rows = np.array([_row("3", units_3=u) for u in (8, 132, 256)])
    values = penalty(rows)
    np.testing.assert_allclose(values, values[0], rtol=1e-12)
    assert penalty(pending)[0] < values[0]


def test_fantasies_of_pending_points_score_and_climb_through_the_map():
    """The fantasy-averaged EI of pending points works in the kernel's inputs: with
    every draw zero it is the believer's EI, and its gradient in the encoded row
    matches finite differences."""
    gp, x, _ = _fitted()
    incumbent = float(np.max(gp.mean(x)))
    pending = SPACE.draw_rows(3, np.random.default_rng(5))
    believing = gp.believe(pending)
    zero = Fantasies(believing, len(x), np.zeros((3, 4)))
    zero.set_incumbents(incumbent, pending)
    believed = max(incumbent, float(np.max(believing.mean(pending))))
    rows = SPACE.draw_rows(30, np.random.default_rng(6))
    mean, var = believing.predict(rows)
    np.testing.assert_allclose(
        zero.log_ei(rows), log_expected_improvement(mean, np.sqrt(var), believed), rtol=1e-9
    )
    draws = np.random.default_rng(7).standard_normal((3, 8))
    drawn = Fantasies(believing, len(x), draws)
    drawn.set_incumbents(incumbent, pending)
    # the compiled mixture kernel scores as NumPy does
    reference = Fantasies(believing, len(x), draws, backend="numpy")
    reference.set_incumbents(incumbent, pending)
    np.testing.assert_allclose(drawn.incumbents, reference.incumbents, rtol=1e-10)
    np.testing.assert_allclose(drawn.log_ei(rows), reference.log_ei(rows), rtol=1e-9, atol=1e-9)
    h = 1e-6
    for row in rows[:4]:
        value, grad = drawn.log_ei_and_grad(row)
        assert value == pytest.approx(drawn.log_ei(row[None, :])[0], rel=1e-9, abs=1e-9)
        for j in range(len(row)):
            e = np.zeros_like(row)
            e[j] = h
            numeric = (
                drawn.log_ei((row + e)[None, :])[0] - drawn.log_ei((row - e)[None, :])[0]
            ) / (2 * h)
            assert grad[j] == pytest.approx(numeric, rel=1e-4, abs=1e-6)


def test_a_branch_without_numeric_parameters_keeps_a_valid_kernel():
    """Every numeric parameter conditional, one branch with none active: there the
    product kernel takes the whole variance; the kernel stays a covariance and
    a GP fits and predicts in every branch."""
    exp = Experiment(
        id="bare",
        name="bare",
        parameters=[
            Parameter("a", ParameterType.DOUBLE, Bounds(0.0, 1.0), conditions={"k": ["x"]}),
            Parameter("b", ParameterType.DOUBLE, Bounds(0.0, 1.0), conditions={"k": ["y"]}),
        ],
        conditionals=[Conditional("k", ["x", "y", "z"])],
        metrics=[Metric("v")],
        seed=1,
    )
    imap = models.input_map(exp)
    assert imap is not None and imap.shared == ()
    space = feasible_space(exp)
    rows = space.draw_rows(60, np.random.default_rng(4))
    inputs_ = imap(rows)
    scales = imap.scales(inputs_)
    bare = rows[:, space.encoder.slices["k"].start + 2] > 0.5
    assert bare.any() and np.all(scales[bare, 0] == 1.0) and np.all(scales[bare, 1:] == 0.0)
    k = covariance(inputs_, inputs_, imap.lengthscales(np.full(space.encoder.dim, 0.4)), 1.0, imap)
    np.testing.assert_allclose(np.diag(k), 1.0, rtol=1e-12)
    assert np.linalg.eigvalsh(k).min() > -1e-10
    y = np.where(bare, 0.5, -((rows[:, 0] - 0.3) ** 2))
    gp = GaussianProcess(input_map=imap).fit(rows, y, rng=np.random.default_rng(0))
    mean, var = gp.predict(rows)
    assert np.all(np.isfinite(mean)) and np.all(var > 0)
