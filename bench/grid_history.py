"""Cost of one GRID suggestion against the experiment's history (a benchmark, not a test).

One thread calls ``Application`` on a temporary SQLite file: for each history size
it creates a GRID experiment (5 parameters of 10 grid values: 100,000 points), stores
that many observations with explicit assignments at the grid's first points, then
times CreateSuggestions of one point, deleting each suggestion untimed so that the
history stays the same. Reports the median and the ratio of each size to the
smallest.

A suggestion reads the grid indices stored with the observations, not their
assignments: one aggregate over an index, whose list of indices is built and parsed
only when they are not the product's first points. ``--holes`` leaves every 100th
point unobserved, which takes that path.

    .venv/bin/python bench/grid_history.py [--sizes 100 5000] [-n 200] [--holes]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from optserve.application import Application
from optserve.domain.model import (
    Experiment,
    ExperimentType,
    Metric,
    MetricValue,
    Observation,
    Parameter,
    ParameterType,
)
from optserve.storage import SqliteStorage

GRID = [round(0.1 * k, 1) for k in range(10)]


def _experiment() -> Experiment:
    return Experiment(
        id="",
        name="grid",
        type=ExperimentType.GRID,
        parameters=[Parameter(f"x{i}", ParameterType.DOUBLE, grid=GRID) for i in range(5)],
        metrics=[Metric("value")],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 5000])
    parser.add_argument("-n", type=int, default=200, help="timed suggestions per size")
    parser.add_argument(
        "--holes", action="store_true", help="leave every 100th point unobserved (from the 51st)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = Application(SqliteStorage(Path(tmp) / "grid.db"))
        medians = {}
        for size in args.sizes:
            exp = app.create_experiment(_experiment(), seed=1)
            product = itertools.product(GRID, repeat=5)
            if args.holes:
                product = (p for k, p in enumerate(product) if k % 100 != 50)
            points = itertools.islice(product, size)
            batch = [
                Observation(
                    "",
                    exp.id,
                    None,
                    {f"x{i}": v for i, v in enumerate(p)},
                    [MetricValue("value", 1.0)],
                )
                for p in points
            ]
            for k in range(0, len(batch), 100):
                app.create_observations(exp.id, batch[k : k + 100])
            times = []
            for _ in range(args.n):
                start = time.perf_counter()
                (made,) = app.create_suggestions(exp.id, 1, {})
                times.append(time.perf_counter() - start)
                app.delete_suggestion(exp.id, made.id)
            medians[size] = statistics.median(times)
        base = medians[args.sizes[0]]
        print("observations  GRID suggestion p50 ms  ratio")
        for size, m in medians.items():
            print(f"{size:>12}  {1000 * m:>22.2f}  {m / base:5.2f}")


if __name__ == "__main__":
    main()
