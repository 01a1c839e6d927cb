"""The Bayesian optimizer on awkward histories: it always answers with valid points."""

from __future__ import annotations

import numpy as np
import pytest

from optserve.domain.model import (
    Bounds,
    ConstraintTerm,
    ConstraintType,
    Experiment,
    ExperimentType,
    LinearConstraint,
    Metric,
    MetricValue,
    Observation,
    Parameter,
    ParameterType,
)
from optserve.optimizers import SuggestRequest, base, bayesian, suggest


def _experiment(exp_id: str) -> Experiment:
    return Experiment(
        id=exp_id,
        name="awkward",
        parameters=[
            Parameter("x", ParameterType.DOUBLE, Bounds(0, 1)),
            Parameter("y", ParameterType.DOUBLE, Bounds(0, 1)),
            Parameter("n", ParameterType.INT, Bounds(1, 5)),
            Parameter("c", ParameterType.CATEGORICAL, categorical_values=["a", "b", "c"]),
        ],
        linear_constraints=[
            LinearConstraint(
                ConstraintType.LESS_THAN, 1.0, [ConstraintTerm("x", 1), ConstraintTerm("y", 1)]
            )
        ],
        metrics=[Metric("v")],
        seed=3,
    )


def _valid(a: dict) -> bool:
    return (
        0 <= a["x"] <= 1
        and 0 <= a["y"] <= 1
        and a["x"] + a["y"] <= 1 + 1e-9
        and isinstance(a["n"], int)
        and 1 <= a["n"] <= 5
        and a["c"] in ("a", "b", "c")
    )


def _history(kind: str, n: int, rng: np.random.Generator) -> list[Observation]:
    out = []
    for i in range(n):
        x = float(rng.random()) * 0.5
        a = {"x": x, "y": 0.5 - x / 2, "n": int(rng.integers(1, 6)), "c": "abc"[i % 3]}
        if kind == "duplicates":
            a = {"x": 0.25, "y": 0.25, "n": 2, "c": "a"}
        value = {
            "constant": 1.0,
            "duplicates": float(rng.normal()),
            "huge": float(rng.normal()) * 1e150,
            "tiny": float(rng.normal()) * 1e-150,
            "spiky": 1e6 if i == 3 else float(rng.normal()),
        }.get(kind, float(rng.normal()))
        failed = kind == "mostly-failed" and i % 5 != 0
        values = [] if failed else [MetricValue("v", value)]
        out.append(Observation(str(i), "e", None, a, values, failed=failed))
    return out


@pytest.mark.parametrize(
    "kind", ["constant", "duplicates", "huge", "tiny", "spiky", "mostly-failed"]
)
def test_awkward_histories_give_valid_suggestions(kind, caplog):
    rng = np.random.default_rng(0)
    exp = _experiment(f"awkward-{kind}")
    observations = _history(kind, 40, rng)
    points = suggest(SuggestRequest(exp, observations, [], 3, len(observations)))
    assert len(points) == 3 and all(_valid(p) for p in points)
    # the model itself copes: no fallback to the design
    assert not [r for r in caplog.records if "falling back" in r.getMessage()]


def test_a_failing_model_falls_back_to_the_design(monkeypatch):
    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("simulated")

    monkeypatch.setattr(bayesian, "_suggest_one", broken)
    exp = _experiment("fallback")
    observations = _history("normal", 30, np.random.default_rng(1))
    points = suggest(SuggestRequest(exp, observations, [], 2, 30))
    assert len(points) == 2 and all(_valid(p) for p in points)


def test_a_bug_is_not_hidden_by_the_fallback(monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(bayesian, "_suggest_one", broken)
    exp = _experiment("bug")
    observations = _history("normal", 30, np.random.default_rng(1))
    with pytest.raises(KeyError, match="a bug"):
        suggest(SuggestRequest(exp, observations, [], 1, 30))


def test_each_experiment_type_goes_to_its_registered_optimizer(monkeypatch):
    calls = []

    def propose(request):
        calls.append(request.experiment.type)
        return [{"x": 0.1, "y": 0.2, "n": 1, "c": "a"}] * request.count

    for kind in ExperimentType:
        monkeypatch.setitem(base._REGISTRY, kind, base.Optimizer(propose))
        exp = _experiment(f"registry-{kind.value}")
        exp.type = kind
        assert (
            suggest(SuggestRequest(exp, [], [], 2, 0))
            == [{"x": 0.1, "y": 0.2, "n": 1, "c": "a"}] * 2
        )
    assert calls == list(ExperimentType)


def test_same_history_same_suggestions():
    observations = _history("normal", 25, np.random.default_rng(2))
    first = suggest(SuggestRequest(_experiment("repro-a"), observations, [], 2, 25))
    second = suggest(SuggestRequest(_experiment("repro-b"), observations, [], 2, 25))
    assert first == second
