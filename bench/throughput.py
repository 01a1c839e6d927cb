"""Throughput of the service under concurrent clients (a benchmark, not a test).

Starts a server on a temporary SQLite file, then C asyncio clients (grpc.aio,
one channel each) loop create-suggestion + create-observation on their own
RANDOM experiment for T seconds; a second phase does the same on OFFLINE
experiments (model-based suggestions). Reports completed loops per second and
median / p99 latency of each call. Baseline in the same run: GetExperiment
calls (a read that touches SQLite but no optimizer).

    .venv/bin/python bench/throughput.py [--clients 8] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
from google.protobuf import json_format

from optserve.v1 import experiment_pb2, observation_pb2, service_pb2_grpc
from optserve.v1 import service_pb2 as pb


def _experiment(kind: str) -> experiment_pb2.Experiment:
    return json_format.ParseDict(
        {
            "name": f"throughput-{kind}",
            "type": f"EXPERIMENT_TYPE_{kind}",
            "parameters": [
                {"name": f"x{i}", "type": "PARAMETER_TYPE_DOUBLE", "bounds": {"min": 0, "max": 1}}
                for i in range(5)
            ],
            "metrics": [{"name": "value"}],
        },
        experiment_pb2.Experiment(),
    )


async def _client(target: str, kind: str, deadline: float, timings: dict[str, list[float]]) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = service_pb2_grpc.OptimizationServiceStub(channel)
        spec = _experiment("RANDOM" if kind == "READ" else kind)
        exp = (await stub.CreateExperiment(pb.CreateExperimentRequest(experiment=spec))).experiment
        loops = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            if kind == "READ":
                await stub.GetExperiment(pb.GetExperimentRequest(id=exp.id))
                timings["get"].append(time.perf_counter() - t0)
            else:
                reply = await stub.CreateSuggestions(
                    pb.CreateSuggestionsRequest(experiment_id=exp.id)
                )
                t1 = time.perf_counter()
                s = reply.suggestions[0]
                value = -sum((v.double_value - 0.3) ** 2 for v in s.assignments.values())
                obs = observation_pb2.Observation(
                    suggestion_id=s.id,
                    values=[observation_pb2.MetricValue(name="value", value=value)],
                )
                await stub.CreateObservation(
                    pb.CreateObservationRequest(experiment_id=exp.id, observation=obs)
                )
                timings["suggest"].append(t1 - t0)
                timings["observe"].append(time.perf_counter() - t1)
            loops += 1
        return loops


async def _phase(target: str, kind: str, clients: int, seconds: float) -> None:
    timings: dict[str, list[float]] = {"get": [], "suggest": [], "observe": []}
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    loops = await asyncio.gather(
        *(_client(target, kind, deadline, timings) for _ in range(clients))
    )
    elapsed = time.perf_counter() - start
    parts = [f"{kind:8s} {sum(loops) / elapsed:8.1f} loops/s"]
    for name, values in timings.items():
        if values:
            ms = 1000 * np.array(values)
            parts.append(f"{name} p50 {np.median(ms):6.1f} ms p99 {np.percentile(ms, 99):6.1f} ms")
    print("  ".join(parts), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
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
                str(Path(tmp) / "t.db"),
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
            print(
                f"{args.clients} clients, {args.seconds:.0f} s per phase, server {match.group(1)}"
            )
            for kind in ("READ", "RANDOM", "OFFLINE"):
                asyncio.run(_phase(match.group(1), kind, args.clients, args.seconds))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
