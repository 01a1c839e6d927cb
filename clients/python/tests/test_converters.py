"""Converters: SigOpt dicts <-> optserve.v1 messages, without a server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from optserve_client import converters as conv
from optserve_client._proto.optserve.v1 import experiment_pb2 as exp_pb
from optserve_client._proto.optserve.v1 import suggestion_pb2 as sug_pb
from optserve_client.objects import Assignments, Experiment

CONSTRAINED = dict(
    name="Single metric optimization with linear constraints",
    type="offline",
    project="sigopt-examples",
    parameters=[
        dict(name="alpha", type="double", bounds=dict(min=0.0, max=1.0)),
        dict(name="beta", type="double", bounds=dict(min=0.0, max=1.0)),
        dict(name="gamma", type="int", bounds=dict(min=0, max=10)),
        dict(name="theta", type="int", bounds=dict(min=0, max=10)),
    ],
    metrics=[dict(name="metric_value", objective="maximize")],
    budget=80,
    parallel_bandwidth=1,
    linear_constraints=[
        dict(
            type="less_than",
            threshold=1,
            terms=[dict(name="alpha", weight=1), dict(name="beta", weight=1)],
        ),
        dict(
            type="greater_than",
            threshold=0,
            terms=[dict(name="gamma", weight=3), dict(name="theta", weight=-5)],
        ),
    ],
)


def test_constrained_experiment_to_proto() -> None:
    msg = conv.experiment_to_proto(CONSTRAINED)
    assert msg.type == exp_pb.EXPERIMENT_TYPE_OFFLINE
    assert msg.observation_budget == 80
    assert msg.parameters[2].type == exp_pb.PARAMETER_TYPE_INT
    assert (msg.parameters[0].bounds.min, msg.parameters[0].bounds.max) == (0.0, 1.0)
    assert msg.linear_constraints[0].type == exp_pb.LINEAR_CONSTRAINT_TYPE_LESS_THAN
    assert msg.linear_constraints[1].type == exp_pb.LINEAR_CONSTRAINT_TYPE_GREATER_THAN
    assert [(t.name, t.weight) for t in msg.linear_constraints[1].terms] == [
        ("gamma", 3.0),
        ("theta", -5.0),
    ]
    assert msg.metrics[0].objective == exp_pb.METRIC_OBJECTIVE_MAXIMIZE
    assert not msg.metrics[0].HasField("threshold")
    assert not msg.HasField("metadata")


def test_experiment_round_trip_through_objects() -> None:
    spec = dict(
        CONSTRAINED,
        id="e1",
        metadata={"owner": "me", "tags": ["a", "b"], "n": 2},
        seed=7,
        num_solutions=1,
        metrics=[
            dict(name="m", objective="minimize", strategy="optimize"),
            dict(name="c", objective="minimize", strategy="constraint", threshold=0.5),
            dict(name="s", objective="maximize", strategy="store"),
        ],
    )
    msg = conv.experiment_to_proto(spec)
    obj = conv.experiment_from_proto(msg)
    assert isinstance(obj, Experiment)
    assert obj.budget == obj.observation_budget == 80
    assert obj.parameters[2].bounds.min == 0 and isinstance(obj.parameters[2].bounds.max, int)
    assert isinstance(obj.parameters[0].bounds.max, float)
    assert obj.metrics[1].threshold == 0.5 and obj.metrics[1].strategy == "constraint"
    assert obj.metrics[2].objective == "maximize"
    assert obj.metadata == {"owner": "me", "tags": ["a", "b"], "n": 2.0}
    assert obj.seed == 7
    # objects -> proto -> objects is the identity, and so is proto -> objects -> proto
    assert conv.experiment_from_proto(conv.experiment_to_proto(obj)) == obj
    # a message as the server returns it (explicit state, progress) survives both ways
    msg.state = exp_pb.EXPERIMENT_STATE_ACTIVE
    msg.progress.observation_count = 3
    msg.progress.best_observation.id = "o1"
    msg.create_time.seconds = 1_700_000_000
    assert conv.experiment_to_proto(conv.experiment_from_proto(msg)) == msg


def test_conditional_parameters() -> None:
    msg = conv.experiment_to_proto(
        dict(
            name="cnn",
            conditionals=[dict(name="num_conv_layers", values=["1", "2", "3"])],
            parameters=[
                dict(
                    name="l2",
                    conditions=dict(num_conv_layers=["2", "3"]),
                    type="int",
                    bounds=dict(min=100, max=300),
                ),
                dict(
                    name="l3",
                    conditions=dict(num_conv_layers="3"),
                    type="int",
                    bounds=dict(min=3, max=5),
                ),
                dict(name="batch", conditions=dict(), type="int", bounds=dict(min=10, max=100)),
            ],
            metrics=[dict(name="Accuracy", objective="maximize")],
            observation_budget=200,
        )
    )
    assert list(msg.conditionals[0].values) == ["1", "2", "3"]
    assert list(msg.parameters[0].conditions["num_conv_layers"].values) == ["2", "3"]
    assert list(msg.parameters[1].conditions["num_conv_layers"].values) == ["3"]
    assert len(msg.parameters[2].conditions) == 0
    obj = conv.experiment_from_proto(msg)
    assert obj.parameters[1].conditions == {"num_conv_layers": ["3"]}
    assert obj.conditionals[0].values == ["1", "2", "3"]


def test_categorical_grid_and_log() -> None:
    p = conv.parameter_to_proto(
        dict(name="act", type="categorical", categorical_values=["relu", dict(name="tanh")])
    )
    assert list(p.categorical_values) == ["relu", "tanh"]
    assert not p.HasField("bounds")
    q = conv.parameter_to_proto(
        dict(name="lr", type="double", bounds=dict(min=1e-5, max=1), transformation="log")
    )
    assert q.transformation == exp_pb.TRANSFORMATION_LOG
    assert conv.parameter_from_proto(q).transformation == "log"
    g = conv.parameter_from_proto(conv.parameter_to_proto(dict(name="n", type="int", grid=[1, 2])))
    assert g.grid == [1, 2] and all(isinstance(v, int) for v in g.grid) and g.bounds is None
    t = conv.experiment_to_proto(dict(name="g", type="grid", parameters=[]))
    assert t.type == exp_pb.EXPERIMENT_TYPE_GRID
    assert conv.experiment_to_proto(dict(name="r", type="random")).type == 2


def test_typos_fail_before_any_call() -> None:
    with pytest.raises(ValueError, match=r"experiment\.parameters\[0\]\.type"):
        conv.experiment_to_proto(dict(name="x", parameters=[dict(name="a", type="float")]))
    with pytest.raises(ValueError, match=r"unknown field.*bound"):
        conv.experiment_to_proto(
            dict(name="x", parameters=[dict(name="a", type="double", bound={})])
        )
    with pytest.raises(ValueError, match="budget and observation_budget"):
        conv.experiment_to_proto(dict(name="x", budget=1, observation_budget=2))
    with pytest.raises(ValueError, match="objective"):
        conv.metric_to_proto(dict(name="m", objective="max"))


def test_assignment_values_follow_python_types() -> None:
    msgs = conv.assignments_to_proto({"i": 3, "f": 3.0, "s": "3"})
    assert msgs["i"].WhichOneof("kind") == "int_value" and msgs["i"].int_value == 3
    assert msgs["f"].WhichOneof("kind") == "double_value"
    assert msgs["s"].WhichOneof("kind") == "string_value"
    with pytest.raises(TypeError):
        conv.assignment_value_to_proto(True)
    with pytest.raises(TypeError):
        conv.assignment_value_to_proto([1])
    back = conv.assignments_from_proto(msgs)
    assert back == {"i": 3, "f": 3.0, "s": "3"}
    assert type(back["i"]) is int and type(back["f"]) is float
    assert conv.assignment_value_from_proto(sug_pb.AssignmentValue()) is None


def test_suggestion_and_observation_round_trip() -> None:
    when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    s = conv.suggestion_from_proto(
        conv.suggestion_to_proto(
            dict(
                id="s1",
                experiment_id="e1",
                assignments={"x": 0.5, "n": 2, "c": "a"},
                state="open",
                metadata={"k": "v"},
                create_time=when,
            )
        )
    )
    assert s.assignments.x == 0.5 and s.assignments["n"] == 2 and s.state == "open"
    assert s.create_time == when and s.metadata == {"k": "v"}
    assert conv.suggestion_from_proto(conv.suggestion_to_proto(s)) == s

    o = conv.observation_to_proto(
        dict(suggestion=s, values=[dict(name="m", value=1.5, value_stddev=0.1)])
    )
    assert o.suggestion_id == "s1" and o.values[0].value_stddev == pytest.approx(0.1)
    back = conv.observation_from_proto(o)
    assert back.value == 1.5 and back.metric("m") == 1.5 and back.metric("x") is None
    assert conv.observation_from_proto(conv.observation_to_proto(back)) == back
    assert conv.metric_values_to_proto({"a": 1, "b": 2.5})[1].value == 2.5


def test_assignments_attribute_access() -> None:
    a = Assignments(x=1, name="y")
    assert a.x == 1 and a["name"] == "y"
    with pytest.raises(AttributeError, match="layer_3"):
        _ = a.layer_3
    with pytest.raises(KeyError):
        _ = a["layer_3"]
    assert "x" in dir(a)
