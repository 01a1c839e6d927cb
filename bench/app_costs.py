"""CPU per operation of the service's own code and of PostgreSQL, without gRPC and without
concurrency: one thread calls ``Application`` in a loop (a benchmark, not a test).

Under a shared machine's load, throughput moves by tens of percent between runs while
CPU time per operation moves much less: this is the figure to compare two versions by
(run them one after the other), and the per-call cost from which the throughput of more
cores is projected (README, "Running several replicas"). PostgreSQL's CPU includes one
WAL flush per commit (no group commit with one thread).

    .venv/bin/python bench/app_costs.py [--db private|postgresql://...] [-n 300]

- WRITE: CreateObservation with explicit assignments;
- RANDOM: CreateSuggestions + CreateObservation of a random-search experiment.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

from optserve.application import Application
from optserve.domain.model import (
    Bounds,
    Experiment,
    ExperimentType,
    Metric,
    MetricValue,
    Observation,
    Parameter,
    ParameterType,
)
from optserve.storage import SqliteStorage, Storage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from throughput import _children, _cpu_seconds  # noqa: E402


def _experiment() -> Experiment:
    return Experiment(
        id="",
        name="costs",
        type=ExperimentType.RANDOM,
        parameters=[Parameter(f"x{i}", ParameterType.DOUBLE, Bounds(0, 1)) for i in range(5)],
        metrics=[Metric("value")],
    )


def _measure(label: str, storage: Storage, postmaster: int | None, n: int) -> None:
    app = Application(storage)

    def pg_cpu() -> float:
        if postmaster is None:
            return 0.0
        return _cpu_seconds(postmaster) + sum(_cpu_seconds(p) for p in _children(postmaster))

    point = {f"x{i}": 0.5 for i in range(5)}
    for phase in ("WRITE", "RANDOM"):
        exp = app.create_experiment(_experiment(), seed=1)
        for k in range(20):  # warm: prepared statements, caches
            (s,) = app.create_suggestions(exp.id, 1, {})
            values = [MetricValue("value", float(k), None)]
            app.create_observation(exp.id, Observation("", exp.id, s.id, {}, values))
        cpu, wall, pg = time.process_time(), time.perf_counter(), pg_cpu()
        for k in range(n):
            values = [MetricValue("value", float(k), None)]
            if phase == "WRITE":
                app.create_observation(exp.id, Observation("", exp.id, None, point, values))
            else:
                (s,) = app.create_suggestions(exp.id, 1, {})
                app.create_observation(exp.id, Observation("", exp.id, s.id, {}, values))
        cpu, wall, pg = time.process_time() - cpu, time.perf_counter() - wall, pg_cpu() - pg
        pg_text = f"{1000 * pg / n:6.2f}" if postmaster is not None else "     -"
        print(
            f"{label:9s} {phase:7s} cpu ms/op: service {1000 * cpu / n:5.2f}  postgres {pg_text}"
            f"   wall {1000 * wall / n:6.1f} ms",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", help="'private' or a postgresql:// URL; none: SQLite only")
    parser.add_argument("-n", type=int, default=300, help="operations per phase")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sqlite = SqliteStorage(tmp / "costs.db")
        _measure("sqlite", sqlite, None, args.n)
        sqlite.close()
        if not args.db:
            return
        from optserve.storage.postgres import PostgresStorage

        url, postmaster = args.db, None
        if args.db == "private":
            sys.path.insert(0, str(ROOT))
            from tests.pg import PostgresCluster, find_bin_dir

            bin_dir = find_bin_dir()
            if bin_dir is None:
                sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
            cluster = stack.enter_context(PostgresCluster(bin_dir, durable=True))
            postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
            url = cluster.create_database("costs")
        pg = PostgresStorage(url, migrate=True, pool_size=4)
        _measure("postgres", pg, postmaster, args.n)
        pg.close()


if __name__ == "__main__":
    main()
