"""Stage 3 of a Bayesian suggestion: the acquisition value of candidate rows."""

from __future__ import annotations

import numpy as np
import pytest

from optserve.domain.encoding import Encoder
from optserve.domain.model import (
    Bounds,
    Conditional,
    Experiment,
    Metric,
    Parameter,
    ParameterType,
)
from optserve.optimizers import acquisition as acq
from optserve.optimizers.base import SuggestRequest
from optserve.optimizers.gp import GaussianProcess, log_expected_improvement

EXP = Experiment(
    id="acq",
    name="acq",
    parameters=[
        Parameter("x", ParameterType.DOUBLE, Bounds(0, 1)),
        Parameter("y", ParameterType.DOUBLE, Bounds(0, 1), conditions={"k": ["b"]}),
    ],
    conditionals=[Conditional("k", ["a", "b"])],
    metrics=[Metric("v")],
    seed=1,
)
ENCODER = Encoder(EXP)


def _gp() -> tuple[GaussianProcess, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.random((30, ENCODER.dim))
    gp = GaussianProcess(maxiter=20).fit(x, np.sin(4 * x[:, 0]) + x[:, 1], rng=rng)
    return gp, x


def _acquisition(gp, x, **kwargs) -> acq.Acquisition:
    fields = {
        "model": gp,
        "incumbent": float(np.max(gp.predict(x)[0])),
        "exploit": False,
        "encoder": ENCODER,
        "penalty": None,
        "pending_penalty": None,
        "constraint_models": [],
        "taken": set(),
        "branch": None,
    }
    fields.update(kwargs)
    return acq.Acquisition(**fields)


def test_log_ei_and_its_known_posterior_form_agree():
    gp, x = _gp()
    acquisition = _acquisition(gp, x)
    rows = np.random.default_rng(4).random((40, ENCODER.dim))
    value = acquisition(rows)
    mean, var = gp.predict(rows)
    np.testing.assert_allclose(
        value, log_expected_improvement(mean, np.sqrt(var), acquisition.incumbent), rtol=1e-7
    )
    np.testing.assert_allclose(
        acquisition.of_posterior(rows, mean, var, np.zeros(40)), value, rtol=1e-7
    )
    assert acquisition.plain


def test_exploitation_is_an_upper_confidence_bound_in_standardized_units():
    gp, x = _gp()
    rows = np.random.default_rng(5).random((10, ENCODER.dim))
    mean, var = gp.predict(rows)
    acquisition = _acquisition(gp, x, exploit=True)
    value = acquisition(rows)
    bound = (mean - gp.y_mean + acq.EXPLOIT_KAPPA * np.sqrt(var)) / gp.y_std
    np.testing.assert_allclose(value, bound, rtol=1e-9)
    np.testing.assert_allclose(acquisition.of_posterior(rows, mean, var, np.zeros(10)), value)


def test_without_an_incumbent_only_the_other_terms_count():
    gp, x = _gp()
    rows = np.random.default_rng(6).random((10, ENCODER.dim))
    np.testing.assert_array_equal(_acquisition(gp, x, incumbent=None)(rows), np.zeros(10))


def test_taken_rows_and_other_branches_are_excluded():
    gp, x = _gp()
    rows = ENCODER.encode(
        [{"x": 0.1, "k": "a"}, {"x": 0.2, "y": 0.3, "k": "b"}, {"x": 0.9, "k": "a"}]
    )
    taken = acq.key_set(rows[:1])
    value = _acquisition(gp, x, taken=taken, branch={"k": 0})(rows)
    assert value[0] == -np.inf and value[1] == -np.inf and np.isfinite(value[2])


def test_penalties_push_away_from_pending_points():
    gp, x = _gp()
    pending = ENCODER.encode([{"x": 0.5, "k": "a"}])
    penalty = acq.pending_penalty(pending, gp)
    assert penalty is not None and acq.pending_penalty(pending[:0], gp) is None
    near, far = pending + 0.001 * (ENCODER.encode([{"x": 0.6, "k": "a"}]) - pending), pending.copy()
    far[0, 0] = 0.0
    assert penalty(near)[0] < penalty(far)[0] <= 0.0
    # the polish ascends log EI and keeps a point only where the full value rises
    acquisition = _acquisition(gp, x, pending_penalty=penalty)
    assert acquisition.polishable and not acquisition.plain
    assert not _acquisition(gp, x, penalty=penalty).polishable


def test_constraint_terms_weight_by_the_probability_of_feasibility():
    gp, x = _gp()
    rows = np.random.default_rng(7).random((20, ENCODER.dim))
    mean = gp.predict(rows)[0]
    threshold = float(np.median(mean))
    acquisition = _acquisition(gp, x, constraint_models=[(gp, threshold)])
    terms = acquisition.constraint_terms(rows)
    assert np.all(terms <= 0)
    assert terms[np.argmax(mean)] > terms[np.argmin(mean)]
    plain = _acquisition(gp, x)(rows)
    np.testing.assert_allclose(acquisition(rows), plain + terms, rtol=1e-9)


@pytest.mark.parametrize(
    ("sequence", "expected"), [(0, {"k": 0}), (1, None), (3, {"k": 1}), (6, {"k": 0})]
)
def test_branches_take_turns(sequence, expected):
    assert acq.branch_turn(ENCODER, sequence) == expected


def test_the_final_stretch_of_a_budget():
    exp = Experiment(EXP.id, EXP.name, EXP.parameters, EXP.metrics, observation_budget=20)
    early = SuggestRequest(exp, [None] * 10, [], 1, 10)  # type: ignore[list-item]
    late = SuggestRequest(exp, [None] * 18, [], 1, 18)  # type: ignore[list-item]
    assert not acq.final_stretch(early, 0) and acq.final_stretch(late, 0)
    assert acq.final_stretch(early, 8)
