"""A real server with real experiments for the command-line tests, and a way to run
`optserve` as a user would (a subprocess, talking to the server over gRPC)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from optserve.v1 import experiment_pb2, service_pb2_grpc
from optserve.v1 import service_pb2 as pb

from ..conftest import RunningServer, start_server
from ..service_tests.helpers import categorical, create, double, integer, observe, suggest


def run_cli(
    target: str,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs ``optserve ARGS`` against ``target`` (OPTSERVE_TARGET) without a terminal."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPTSERVE_")}
    environment.update(OPTSERVE_TARGET=target, COLUMNS="80", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "optserve", *args],
        capture_output=True,
        text=True,
        env=environment,
        input=stdin,
        cwd=cwd,
        timeout=300,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


# A search space with each kind of parameter and a stored metric.
MIXED = dict(
    name="mixed space",
    project="cli-tests",
    type="EXPERIMENT_TYPE_RANDOM",
    parameters=[
        double("lr", 1e-4, 1e-1, transformation="TRANSFORMATION_LOG"),
        integer("layers", 1, 8),
        categorical("optimizer", ["adam", "sgd", "rmsprop"]),
    ],
    metrics=[
        {"name": "accuracy", "objective": "METRIC_OBJECTIVE_MAXIMIZE"},
        {"name": "seconds", "strategy": "METRIC_STRATEGY_STORE"},
    ],
    observationBudget=40,
)
TWO_METRICS = dict(
    name="two metrics",
    type="EXPERIMENT_TYPE_RANDOM",
    parameters=[double("x"), double("y")],
    metrics=[
        {"name": "f1", "objective": "METRIC_OBJECTIVE_MINIMIZE"},
        {"name": "f2", "objective": "METRIC_OBJECTIVE_MINIMIZE"},
    ],
    observationBudget=30,
)


def accuracy(a: dict) -> float:
    bonus = {"adam": 0.1, "sgd": 0.0, "rmsprop": 0.05}[a["optimizer"]]
    return 0.5 + bonus - 0.02 * (a["layers"] - 4) ** 2 - 0.1 * (math.log10(a["lr"]) + 2) ** 2


def values_of(suggestion) -> dict:
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in suggestion.assignments.items()}


@dataclass
class Experiments:
    mixed: experiment_pb2.Experiment  # 15 observations (one failed) and 2 open suggestions
    two_metrics: experiment_pb2.Experiment  # 12 observations of two minimized metrics
    mixed_observations: int = 15


def _fill_mixed(stub: service_pb2_grpc.OptimizationServiceStub) -> experiment_pb2.Experiment:
    exp = create(stub, **MIXED)
    for i in range(15):
        s = suggest(stub, exp.id)[0]
        a = values_of(s)
        if i == 4:
            observe(stub, exp.id, suggestionId=s.id, failed=True)
        else:
            values = [
                {"name": "accuracy", "value": accuracy(a)},
                {"name": "seconds", "value": 10.0 + i, "valueStddev": 0.5},
            ]
            observe(stub, exp.id, suggestionId=s.id, values=values, metadata={"run": i})
    suggest(stub, exp.id, count=2)
    return exp


def _fill_two_metrics(stub: service_pb2_grpc.OptimizationServiceStub) -> experiment_pb2.Experiment:
    exp = create(stub, **TWO_METRICS)
    for s in suggest(stub, exp.id, count=12):
        x, y = values_of(s)["x"], values_of(s)["y"]
        values = [{"name": "f1", "value": x}, {"name": "f2", "value": (1 - x) ** 2 + y}]
        observe(stub, exp.id, suggestionId=s.id, values=values)
    return exp


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("cli") / "optserve.db", drain=True)
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="module")
def cli_stub(cli_server: RunningServer) -> service_pb2_grpc.OptimizationServiceStub:
    return cli_server.stub()


@pytest.fixture(scope="module")
def experiments(cli_stub: service_pb2_grpc.OptimizationServiceStub) -> Experiments:
    return Experiments(_fill_mixed(cli_stub), _fill_two_metrics(cli_stub))


def get(stub: service_pb2_grpc.OptimizationServiceStub, experiment_id: str):
    return stub.GetExperiment(pb.GetExperimentRequest(id=experiment_id)).experiment


def list_observations(stub: service_pb2_grpc.OptimizationServiceStub, experiment_id: str):
    reply = stub.ListObservations(
        pb.ListObservationsRequest(experiment_id=experiment_id, page_size=1000)
    )
    return list(reply.observations)
