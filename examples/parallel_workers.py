"""N worker processes sharing one optserve experiment.

The parent creates an experiment with ``parallel_bandwidth=N``; each worker
process opens its own connection, fetches the experiment and loops over runs
(each run is its own suggestion) until the budget is used. At the end the
parent prints the best assignments.

Usage::

    optserve serve --port 50051 --db optserve.db &
    python examples/parallel_workers.py --target localhost:50051 --workers 4
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import optserve_client as sigopt


def branin(x: float, y: float) -> float:
    """The Branin function on [-5, 10] x [0, 15]; minimum 0.397887."""
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (y - b * x**2 + c * x - r) ** 2 + s * (1 - t) * math.cos(x) + s


def worker(target: str | None, experiment_id: str, index: int) -> int:
    """Evaluates runs of the experiment until its budget is used; returns how many."""
    sigopt.set_connection(sigopt.Connection(target))
    experiment = sigopt.get_experiment(experiment_id)
    done = 0
    for run in experiment.loop():
        with run:
            run.log_metadata("worker", index)
            run.log_metric("branin", branin(run.params.x, run.params.y))
        done += 1
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", help="host:port (default: $OPTSERVE_TARGET or localhost:50051)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--type", default="offline", choices=["offline", "random"])
    args = parser.parse_args()

    sigopt.set_connection(sigopt.Connection(args.target))
    experiment = sigopt.create_experiment(
        name=f"Branin with {args.workers} parallel workers",
        type=args.type,
        project="optserve-examples",
        parameters=[
            dict(name="x", type="double", bounds=dict(min=-5, max=10)),
            dict(name="y", type="double", bounds=dict(min=0, max=15)),
        ],
        metrics=[dict(name="branin", objective="minimize")],
        budget=args.budget,
        parallel_bandwidth=args.workers,
    )
    print(f"experiment {experiment.id}: {args.workers} workers, budget {args.budget}")

    # spawn, not fork: a gRPC channel must not cross a fork.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        jobs = [pool.submit(worker, args.target, experiment.id, i) for i in range(args.workers)]
        counts = [job.result() for job in jobs]
    for i, count in enumerate(counts):
        print(f"worker {i}: {count} runs")

    experiment.refresh()
    progress = experiment.progress
    print(f"observations: {progress.observation_count}", end=", ")
    print(f"failed: {progress.failed_observation_count}")
    for best in experiment.get_best_runs():
        print(f"best branin {best.value:.6f} at {dict(best.assignments)}")


if __name__ == "__main__":
    main()
