"""Read latency against history size (a benchmark, not a test).

Starts a server on a temporary SQLite file, fills one experiment with 100
observations and another with 10,000 (explicit assignments, CreateObservation),
then times GetExperiment, ListExperiments (progress and best observation
included) and GetBestAssignments on each, interleaved, from one client.
Reports medians and the 10,000 / 100 ratio: the reads use progress and the
incumbent kept with every write, so the ratio should stay near 1.

    .venv/bin/python bench/reads.py [--large 10000] [--repeats 200]
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
from google.protobuf import json_format

from optserve.v1 import experiment_pb2, observation_pb2, service_pb2_grpc
from optserve.v1 import service_pb2 as pb


def _create(stub, name: str) -> experiment_pb2.Experiment:
    spec = json_format.ParseDict(
        {
            "name": name,
            "project": name,
            "parameters": [
                {"name": f"x{i}", "type": "PARAMETER_TYPE_DOUBLE", "bounds": {"min": 0, "max": 1}}
                for i in range(5)
            ],
            "metrics": [{"name": "value"}],
        },
        experiment_pb2.Experiment(),
    )
    return stub.CreateExperiment(pb.CreateExperimentRequest(experiment=spec)).experiment


def _fill(stub, exp_id: str, count: int, seed: int) -> None:
    rng = random.Random(seed)

    def one(_: int) -> None:
        x = [rng.random() for _ in range(5)]
        stub.CreateObservation(
            pb.CreateObservationRequest(
                experiment_id=exp_id,
                observation=observation_pb2.Observation(
                    assignments={f"x{i}": {"double_value": v} for i, v in enumerate(x)},
                    values=[
                        observation_pb2.MetricValue(
                            name="value", value=-sum((v - 0.3) ** 2 for v in x)
                        )
                    ],
                ),
            )
        )

    with futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def _time(call) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "optserve",
                "serve",
                "--port",
                "0",
                "--db",
                str(Path(tmp) / "reads.db"),
                "--log-level",
                "WARNING",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            match = re.search(r"listening on (\S+)", server.stdout.readline())
            if not match:
                sys.exit("the server did not start")
            stub = service_pb2_grpc.OptimizationServiceStub(grpc.insecure_channel(match.group(1)))
            sizes = {"small": args.small, "large": args.large}
            exps = {k: _create(stub, k) for k in sizes}
            t0 = time.perf_counter()
            for k, n in sizes.items():
                _fill(stub, exps[k].id, n, seed=n)
            print(
                f"filled {args.small} + {args.large} observations in"
                f" {time.perf_counter() - t0:.0f} s; {args.repeats} calls each, medians"
            )
            calls = {
                "GetExperiment": lambda e: stub.GetExperiment(pb.GetExperimentRequest(id=e.id)),
                "ListExperiments": lambda e: stub.ListExperiments(
                    pb.ListExperimentsRequest(project=e.project)
                ),
                "GetBestAssignments": lambda e: stub.GetBestAssignments(
                    pb.GetBestAssignmentsRequest(experiment_id=e.id)
                ),
            }
            for name, call in calls.items():
                times: dict[str, list[float]] = {k: [] for k in sizes}
                for _ in range(args.repeats):  # interleaved: noise hits both alike
                    for k, e in exps.items():
                        times[k].append(_time(lambda call=call, e=e: call(e)))
                small, large = (1000 * float(np.median(times[k])) for k in sizes)
                print(
                    f"{name:20s} n={args.small}: {small:6.2f} ms   n={args.large}:"
                    f" {large:6.2f} ms   ratio {large / small:5.2f}"
                )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
