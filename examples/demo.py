"""End-to-end demo: start optserve on a temporary SQLite file, optimize the
SigOpt documents' constrained example through the generated gRPC stubs, print
progress and the best assignments, stop the server.

Run with `make demo` (or `.venv/bin/python examples/demo.py --budget 40`); with
`--target HOST:PORT` it optimizes on a server already running instead.
"""

from __future__ import annotations

import argparse
import math
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
from google.protobuf import json_format

from optserve.v1 import experiment_pb2, observation_pb2, service_pb2_grpc
from optserve.v1 import service_pb2 as pb

EXPERIMENT = {
    "name": "Single metric optimization with linear constraints",
    "project": "sigopt-examples",
    "type": "EXPERIMENT_TYPE_OFFLINE",
    "parameters": [
        {"name": "alpha", "type": "PARAMETER_TYPE_DOUBLE", "bounds": {"min": 0, "max": 1}},
        {"name": "beta", "type": "PARAMETER_TYPE_DOUBLE", "bounds": {"min": 0, "max": 1}},
        {"name": "gamma", "type": "PARAMETER_TYPE_INT", "bounds": {"min": 0, "max": 10}},
        {"name": "theta", "type": "PARAMETER_TYPE_INT", "bounds": {"min": 0, "max": 10}},
    ],
    "metrics": [{"name": "metric_value", "objective": "METRIC_OBJECTIVE_MAXIMIZE"}],
    "linearConstraints": [
        {  # alpha + beta <= 1
            "type": "LINEAR_CONSTRAINT_TYPE_LESS_THAN",
            "threshold": 1,
            "terms": [{"name": "alpha", "weight": 1}, {"name": "beta", "weight": 1}],
        },
        {  # 3 gamma - 5 theta >= 0
            "type": "LINEAR_CONSTRAINT_TYPE_GREATER_THAN",
            "threshold": 0,
            "terms": [{"name": "gamma", "weight": 3}, {"name": "theta", "weight": -5}],
        },
    ],
    "parallelBandwidth": 1,
}


def evaluate(a: dict) -> float:
    """A made-up metric whose best point lies on the alpha + beta = 1 edge."""
    x, y, g, t = a["alpha"], a["beta"], a["gamma"], a["theta"]
    return (
        math.sin(3 * x)
        + math.cos(2 * y) * y
        + 0.3 * x * y
        - 0.05 * (g - 7) ** 2
        - 0.04 * (t - 4) ** 2
    )


def plain(assignments) -> dict:
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in assignments.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument(
        "--target",
        help="optimize on this running server (HOST:PORT) instead of starting one; with"
        " `optserve serve --http-port 8080` its dashboard at http://localhost:8080/ follows"
        " the experiment live",
    )
    args = parser.parse_args()
    if args.target:
        run(
            service_pb2_grpc.OptimizationServiceStub(grpc.insecure_channel(args.target)),
            args.budget,
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.db"
        server = subprocess.Popen(
            [sys.executable, "-m", "optserve", "serve", "--port", "0", "--db", str(db)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            match = re.search(r"listening on (\S+)", server.stdout.readline())
            if not match:
                sys.exit("the server did not start")
            print(f"server on {match.group(1)}, database {db}")
            run(
                service_pb2_grpc.OptimizationServiceStub(grpc.insecure_channel(match.group(1))),
                args.budget,
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            print(f"server stopped (exit code {server.returncode})")


def run(stub: service_pb2_grpc.OptimizationServiceStub, budget: int) -> None:
    spec = json_format.ParseDict(
        {**EXPERIMENT, "observationBudget": budget}, experiment_pb2.Experiment()
    )
    experiment = stub.CreateExperiment(pb.CreateExperimentRequest(experiment=spec)).experiment
    print(f"created experiment {experiment.id}: {experiment.name}")
    while experiment.progress.observation_count < experiment.observation_budget:
        (suggestion,) = stub.CreateSuggestions(
            pb.CreateSuggestionsRequest(experiment_id=experiment.id)
        ).suggestions
        assignments = plain(suggestion.assignments)
        value = evaluate(assignments)
        observation = observation_pb2.Observation(
            suggestion_id=suggestion.id,
            values=[observation_pb2.MetricValue(name="metric_value", value=value)],
        )
        stub.CreateObservation(
            pb.CreateObservationRequest(experiment_id=experiment.id, observation=observation)
        )
        experiment = stub.GetExperiment(pb.GetExperimentRequest(id=experiment.id)).experiment
        best = experiment.progress.best_observation.values[0].value
        shown = ", ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sorted(assignments.items())
        )
        print(
            f"[{experiment.progress.observation_count:3d}/{budget}] {shown}"
            f"  -> {value:+.4f}  (best {best:+.4f})"
        )
    best = stub.GetBestAssignments(
        pb.GetBestAssignmentsRequest(experiment_id=experiment.id)
    ).observations[0]
    print(
        "best assignments:",
        plain(best.assignments),
        "metric_value =",
        round(best.values[0].value, 4),
    )


if __name__ == "__main__":
    main()
