"""Throughput of the service under concurrent clients, on SQLite and on PostgreSQL with
several replicas (a benchmark, not a test), and the targets of issue 10 as ratios.

For each configuration (SQLite with one server; PostgreSQL with each replica count of
``--replicas``) it starts the servers on a fresh database, then asyncio clients
(grpc.aio, one channel each, spreading calls round-robin over the replicas as the
Python client does) run these phases of T seconds each:

- ECHO: grpc.health.v1.Health/Check on the same server: the ceiling. It is the trivial
  unary method of the real server: same process, thread pool, options, interceptors
  (metrics, request id, auth's pass-through) and request decoding as every optserve
  call, with no storage and no application behind it;
- READ: GetExperiment (a read, no optimizer);
- WRITE: CreateObservation with explicit assignments (each durable before its reply);
- RANDOM, GRID, OFFLINE: CreateSuggestions + CreateObservation loops, every client on
  its own experiment (OFFLINE: model-based);
- SHARED: twice the clients on one shared RANDOM experiment with a linear constraint;
- P50: RANDOM loops from one client (the latency of a suggestion on an idle server);
- OFF1, OFF8: OFFLINE loops on 1 and on 8 experiments at once; each experiment starts
  with 10 observations and is replaced by a fresh one after 20 loops, so that both
  phases fit models of the same sizes.

It reports operations per second, median / p99 latency of each call, and the CPU time
per operation spent by the replicas, by PostgreSQL (when it runs on this machine) and
by the client process: the costs from which throughput on more cores can be projected.
Then the targets of issue 10 against their baselines, and a table timing single
storage calls in one thread (no gRPC) on both backends.

    .venv/bin/python bench/throughput.py [--db private|postgresql://...] \\
        [--replicas 1 2 4] [--clients 16] [--seconds 10] [--phases ECHO READ ...]

``--db private`` starts a PostgreSQL cluster of this machine's Debian packages on a
temporary directory (durable: fsync on, as in production); a URL uses that database
(``optserve migrate`` is run on it). Without ``--db`` only SQLite is measured.
``--server-arg`` passes an option to every ``optserve serve`` (repeat it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from optserve.v1 import experiment_pb2, observation_pb2, service_pb2_grpc
from optserve.v1 import service_pb2 as pb
from optserve_client._targets import ROUND_ROBIN, channel_target

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def _experiment(kind: str, constrained: bool = False) -> experiment_pb2.Experiment:
    """5 doubles in [0, 1]; GRID: 5 doubles of 10 grid values each (100,000 points)."""
    grid = [i / 9 for i in range(10)]
    spec: dict = {
        "name": f"throughput-{kind}",
        "type": f"EXPERIMENT_TYPE_{kind}",
        "parameters": [
            {
                "name": f"x{i}",
                "type": "PARAMETER_TYPE_DOUBLE",
                "bounds": {"min": 0, "max": 1},
            }
            | ({"grid": grid} if kind == "GRID" else {})
            for i in range(5)
        ],
        "metrics": [{"name": "value"}],
    }
    if constrained:
        spec["linearConstraints"] = [
            {
                "type": "LINEAR_CONSTRAINT_TYPE_LESS_THAN",
                "threshold": 1.5,
                "terms": [{"name": "x0", "weight": 1}, {"name": "x1", "weight": 1}],
            }
        ]
    return json_format.ParseDict(spec, experiment_pb2.Experiment())


# ------------------------------------------------------------------ processes


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and of its reaped children), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / TICK


def _parents() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            children.setdefault(int(stat[1]), []).append(int(entry))
    return children


def _children(pid: int) -> list[int]:
    return _parents().get(pid, [])


def _descendants(pid: int) -> list[int]:
    children = _parents()
    found, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and of every live descendant (a server's suggestion
    workers are children of its forkserver)."""
    children = _parents()
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += _cpu_seconds(p)
        todo += children.get(p, [])
    return total


@dataclass
class Cpu:
    """CPU seconds used so far by the replicas, PostgreSQL and this process."""

    replicas: float
    postgres: float | None
    client: float
    # the replicas' own processes, without their suggestion workers
    own: float = 0.0


def _cpu(replicas: list[subprocess.Popen], postmaster: int | None) -> Cpu:
    pg = None
    if postmaster is not None:
        pg = _cpu_seconds(postmaster) + sum(_cpu_seconds(p) for p in _children(postmaster))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return Cpu(
        sum(_tree_cpu_seconds(r.pid) for r in replicas),
        pg,
        usage.ru_utime + usage.ru_stime,
        sum(_cpu_seconds(r.pid) for r in replicas),
    )


@contextlib.contextmanager
def _servers(db: str, count: int, extra: list[str]) -> Iterator[tuple[list[subprocess.Popen], str]]:
    """``count`` replicas of ``optserve serve`` on ``db``; yields them and the target list."""
    started: list[subprocess.Popen] = []
    targets = []
    try:
        for _ in range(count):
            server = subprocess.Popen(
                [
                    *(sys.executable, "-m", "optserve", "serve", "--port", "0"),
                    *("--db", db, "--log-level", "WARNING"),
                    *extra,
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            started.append(server)
            assert server.stdout is not None
            match = re.search(r"listening on (\S+)", server.stdout.readline())
            if not match:
                sys.exit("a server did not start")
            targets.append(match.group(1))
        for server, target in zip(started, targets, strict=True):
            _warm_up(target, server.pid)
        yield started, ",".join(targets)
    finally:
        for server in started:
            server.send_signal(signal.SIGTERM)
        for server in started:
            server.wait(timeout=60)
            if server.stdout is not None:
                server.stdout.close()


def _warm_up(target: str, server: int) -> None:
    """A suggestion of each kind, so that no phase pays a server's first-call costs
    (imports, the Rust module, the first feasible-space preparation); then, once the
    suggestion workers the first OFFLINE call starts are up, one OFFLINE suggestion
    per worker: until they are, OFFLINE suggestions are computed in the server's
    process, and OFF1 would measure that instead of a worker."""
    with grpc.insecure_channel(target) as channel:
        stub = service_pb2_grpc.OptimizationServiceStub(channel)
        for kind in ("RANDOM", "OFFLINE"):
            request = pb.CreateExperimentRequest(experiment=_experiment(kind))
            exp = stub.CreateExperiment(request).experiment
            stub.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id=exp.id))
        workers = os.cpu_count() or 1
        # the forkserver and its workers are the server's only descendants
        for _ in range(600):
            if len(_descendants(server)) >= 1 + workers:
                break
            time.sleep(0.1)
        time.sleep(0.5)  # the pool marks itself ready once every worker has started
        # at once on their own experiments, so that every worker gets one
        spec = pb.CreateExperimentRequest(experiment=_experiment("OFFLINE"))
        ids = [stub.CreateExperiment(spec).experiment.id for _ in range(2 * workers)]
        calls = [
            stub.CreateSuggestions.future(pb.CreateSuggestionsRequest(experiment_id=i)) for i in ids
        ]
        for call in calls:
            call.result()


# ------------------------------------------------------------------ load

# phase -> (experiment type, clients (None: --clients), the loop run by each client)
PHASES = (
    "ECHO",
    "READ",
    "WRITE",
    "RANDOM",
    "GRID",
    "SHARED",
    "P50",
    "OFFLINE",
    "OFF1",
    "OFF8",
)
LOOP_PHASES = {"RANDOM", "GRID", "SHARED", "P50", "OFFLINE", "OFF1", "OFF8"}
# OFF1 / OFF8: observations an experiment starts with, loops before a fresh one
SEEDED, LOOPS_PER_EXPERIMENT = 10, 20


def _clients(phase: str, clients: int) -> int:
    return {"SHARED": 2 * clients, "P50": 1, "OFF1": 1, "OFF8": 8}.get(phase, clients)


def _kind(phase: str) -> str:
    if phase in ("OFFLINE", "OFF1", "OFF8"):
        return "OFFLINE"
    return "GRID" if phase == "GRID" else "RANDOM"


def _observation(point: np.ndarray) -> observation_pb2.Observation:
    obs = observation_pb2.Observation(
        values=[observation_pb2.MetricValue(name="value", value=-float(point.sum()))]
    )
    for i, v in enumerate(point):
        obs.assignments[f"x{i}"].double_value = float(v)
    return obs


async def _new_experiment(stub, phase: str, rng: np.random.Generator) -> str:
    spec = _experiment(_kind(phase), constrained=phase == "SHARED")
    exp = (await stub.CreateExperiment(pb.CreateExperimentRequest(experiment=spec))).experiment
    if phase in ("OFF1", "OFF8"):
        await stub.BatchCreateObservations(
            pb.BatchCreateObservationsRequest(
                experiment_id=exp.id,
                observations=[_observation(rng.random(5)) for _ in range(SEEDED)],
            )
        )
    return exp.id


async def _client(
    target: str,
    phase: str,
    deadline: float,
    timings: dict[str, list[float]],
    shared: str | None,
) -> int:
    options = [("grpc.service_config", ROUND_ROBIN)]
    async with grpc.aio.insecure_channel(channel_target(target), options=options) as channel:
        stub = service_pb2_grpc.OptimizationServiceStub(channel)
        rng = np.random.default_rng()
        if phase == "ECHO":
            health = health_pb2_grpc.HealthStub(channel)
            check = health_pb2.HealthCheckRequest()
        elif shared is not None:
            exp_id = shared
        else:
            exp_id = await _new_experiment(stub, phase, rng)
        ops = loops = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            if phase == "ECHO":
                await health.Check(check)
                timings["check"].append(time.perf_counter() - t0)
            elif phase == "READ":
                await stub.GetExperiment(pb.GetExperimentRequest(id=exp_id))
                timings["get"].append(time.perf_counter() - t0)
            elif phase == "WRITE":
                await stub.CreateObservation(
                    pb.CreateObservationRequest(
                        experiment_id=exp_id, observation=_observation(rng.random(5))
                    )
                )
                timings["observe"].append(time.perf_counter() - t0)
            else:
                if loops == LOOPS_PER_EXPERIMENT and phase in ("OFF1", "OFF8"):
                    exp_id, loops = await _new_experiment(stub, phase, rng), 0
                    t0 = time.perf_counter()
                reply = await stub.CreateSuggestions(
                    pb.CreateSuggestionsRequest(experiment_id=exp_id)
                )
                t1 = time.perf_counter()
                s = reply.suggestions[0]
                value = -sum((v.double_value - 0.3) ** 2 for v in s.assignments.values())
                obs = observation_pb2.Observation(
                    suggestion_id=s.id,
                    values=[observation_pb2.MetricValue(name="value", value=value)],
                )
                await stub.CreateObservation(
                    pb.CreateObservationRequest(experiment_id=exp_id, observation=obs)
                )
                timings["suggest"].append(t1 - t0)
                timings["observe"].append(time.perf_counter() - t1)
                loops += 1
            ops += 1
        return ops


@dataclass
class Result:
    backend: str
    replicas: int
    phase: str
    rate: float
    latencies: dict[str, tuple[float, float]] = field(default_factory=dict)
    cpu_ms: tuple[float, float | None, float] = (0.0, None, 0.0)
    own_ms: float = 0.0  # of cpu_ms[0], in the replicas' own processes


async def _phase(target: str, phase: str, clients: int, seconds: float) -> tuple[int, dict]:
    timings: dict[str, list[float]] = {
        "check": [],
        "get": [],
        "suggest": [],
        "observe": [],
    }
    deadline = time.perf_counter() + seconds
    shared = None
    if phase == "SHARED":
        async with grpc.aio.insecure_channel(channel_target(target)) as channel:
            stub = service_pb2_grpc.OptimizationServiceStub(channel)
            shared = await _new_experiment(stub, phase, np.random.default_rng())
    ops = await asyncio.gather(
        *(_client(target, phase, deadline, timings, shared) for _ in range(clients))
    )
    return sum(ops), timings


def _measure(
    backend: str,
    db: str,
    replicas: int,
    args: argparse.Namespace,
    postmaster: int | None,
) -> list[Result]:
    results = []
    with _servers(db, replicas, args.server_arg) as (processes, target):
        for phase in args.phases:
            # on stderr: lets a profiler attach to the servers for one phase
            pids = " ".join(str(p.pid) for p in processes)
            print(f"phase {phase} starts; servers {pids}", file=sys.stderr, flush=True)
            before = _cpu(processes, postmaster)
            start = time.perf_counter()
            clients = _clients(phase, args.clients)
            ops, timings = asyncio.run(_phase(target, phase, clients, args.seconds))
            elapsed = time.perf_counter() - start
            after = _cpu(processes, postmaster)
            per_op = 1000 / max(ops, 1)
            result = Result(
                backend,
                replicas,
                phase,
                ops / elapsed,
                {
                    name: (
                        float(np.median(v) * 1000),
                        float(np.percentile(v, 99) * 1000),
                    )
                    for name, v in timings.items()
                    if v
                },
                (
                    (after.replicas - before.replicas) * per_op,
                    None
                    if after.postgres is None or before.postgres is None
                    else (after.postgres - before.postgres) * per_op,
                    (after.client - before.client) * per_op,
                ),
                (after.own - before.own) * per_op,
            )
            print(_row(result, clients), flush=True)
            results.append(result)
    return results


HEADER = (
    f"{'backend':8s} {'repl':>4s} {'phase':7s} {'cl':>3s} {'ops/s':>8s}  "
    f"{'call':8s}{'p50 ms':>7s}{'p99 ms':>8s}  {'cpu ms/op: servers':>18s}{'postgres':>9s}"
    f"{'client':>8s}"
)


def _row(r: Result, clients: int) -> str:
    calls = "  ".join(f"{n:8s}{p50:7.1f}{p99:8.1f}" for n, (p50, p99) in r.latencies.items())
    servers, pg, client = r.cpu_ms
    pg_text = "-" if pg is None else f"{pg:.2f}"
    return (
        f"{r.backend:8s} {r.replicas:4d} {r.phase:7s} {clients:3d} {r.rate:8.1f}  {calls}"
        f"  {servers:18.2f}{pg_text:>9s}{client:8.2f}"
    )


def _targets(results: list[Result], clients: int) -> None:
    """Issue 10's targets 1 and 5, each against its baseline, per configuration."""
    by: dict[tuple[str, int], dict[str, Result]] = {}
    for r in results:
        by.setdefault((r.backend, r.replicas), {})[r.phase] = r
    for (backend, replicas), got in by.items():
        print(f"\ntargets, {backend} x{replicas}:", flush=True)

        def line(what: str, text: str, ok: bool | None) -> None:
            verdict = "" if ok is None else ("met" if ok else "NOT met")
            print(f"  {what:52s} {text:30s} {verdict}", flush=True)

        echo = got.get("ECHO")
        if echo:
            line(
                f"echo ceiling (Health/Check, {clients} clients)",
                f"{echo.rate:.0f}/s",
                None,
            )
        if echo and "READ" in got:
            ratio = got["READ"].rate / echo.rate
            line(
                f"GetExperiment, {clients} clients, vs echo",
                f"{got['READ'].rate:.0f}/s = {ratio:.0%}  (>= 70%)",
                ratio >= 0.7,
            )
        for phase, what in (
            ("RANDOM", f"RANDOM loops/s, {clients} clients, own experiments"),
            ("GRID", f"GRID loops/s, {clients} clients, own experiments"),
        ):
            if phase in got:
                rate = got[phase].rate
                extra = f" = {rate / echo.rate:.0%} of echo" if echo else ""
                line(what, f"{rate:.0f}{extra}  (>= 1000)", rate >= 1000)
        if "SHARED" in got:
            rate = got["SHARED"].rate
            line(
                f"cycles/s, {2 * clients} clients, one constrained RANDOM",
                f"{rate:.0f}  (>= 500)",
                rate >= 500,
            )
        if "WRITE" in got:
            rate = got["WRITE"].rate
            extra = f" = {rate / echo.rate:.0%} of echo" if echo else ""
            line(
                f"observation writes/s, {clients} clients, durable",
                f"{rate:.0f}{extra}  (>= 2000)",
                rate >= 2000,
            )
        if "P50" in got:
            p50 = got["P50"].latencies["suggest"][0]
            line(
                "RANDOM suggestion p50, one client",
                f"{p50:.2f} ms  (<= 2 ms)",
                p50 <= 2,
            )
        if "OFF1" in got and "OFF8" in got:
            ratio = got["OFF8"].rate / got["OFF1"].rate
            line(
                "OFFLINE loops/s, 8 experiments vs 1",
                f"{got['OFF8'].rate:.1f} / {got['OFF1'].rate:.1f} = {ratio:.2f}x  (>= 1.7x)",
                ratio >= 1.7,
            )
            # what the machine gave: a ratio means little when the servers got < 2 cores
            cores = [got[p].rate * got[p].cpu_ms[0] / 1000 for p in ("OFF1", "OFF8")]
            line(
                "  cores used by the server and its workers",
                f"{cores[0]:.2f} with 1, {cores[1]:.2f} with 8",
                None,
            )
            split = [(got[p].own_ms, got[p].cpu_ms[0] - got[p].own_ms) for p in ("OFF1", "OFF8")]
            line(
                "  cpu ms per loop: server process + workers",
                f"{split[0][0]:.1f} + {split[0][1]:.1f} with 1,"
                f" {split[1][0]:.1f} + {split[1][1]:.1f} with 8",
                None,
            )


def _medians(results: list[Result]) -> list[Result]:
    groups: dict[tuple[str, int, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.backend, r.replicas, r.phase), []).append(r)
    out = []
    for (backend, replicas, phase), rs in groups.items():
        names = rs[0].latencies.keys()
        pg = [r.cpu_ms[1] for r in rs if r.cpu_ms[1] is not None]
        out.append(
            Result(
                backend,
                replicas,
                phase,
                float(np.median([r.rate for r in rs])),
                {
                    n: (
                        float(np.median([r.latencies[n][0] for r in rs])),
                        float(np.median([r.latencies[n][1] for r in rs])),
                    )
                    for n in names
                },
                (
                    float(np.median([r.cpu_ms[0] for r in rs])),
                    float(np.median(pg)) if pg else None,
                    float(np.median([r.cpu_ms[2] for r in rs])),
                ),
                float(np.median([r.own_ms for r in rs])),
            )
        )
    return out


# ------------------------------------------------------------------ storage calls alone


def _storage_costs(label: str, storage, count: int = 1000) -> None:
    from optserve.domain.model import (
        Bounds,
        Experiment,
        Metric,
        MetricValue,
        Observation,
        Parameter,
        ParameterType,
    )

    exp = storage.create_experiment(
        Experiment(
            id="",
            name="costs",
            parameters=[Parameter(f"x{i}", ParameterType.DOUBLE, Bounds(0, 1)) for i in range(5)],
            metrics=[Metric("value")],
            seed=1,
        )
    )
    point = {f"x{i}": 0.5 for i in range(5)}

    def timed(name: str, call, n: int = count) -> None:
        start = time.perf_counter()
        for k in range(n):
            call(k)
        print(f"  {label:9s} {name:34s} {(time.perf_counter() - start) / n * 1e6:8.0f} us")

    timed("get_experiment", lambda k: storage.get_experiment(exp.id))
    timed(
        "create_observation (assignments)",
        lambda k: storage.create_observation(
            Observation("", exp.id, None, point, [MetricValue("value", float(k), None)])
        ),
    )

    def suggest_and_observe(k: int) -> None:
        with storage.experiment_lock(exp.id):
            storage.get_experiment(exp.id)
            storage.count_suggestions(exp.id)
            (s,) = storage.create_suggestions(exp.id, [point], {}, 3600)
        storage.create_observation(
            Observation("", exp.id, s.id, point, [MetricValue("value", float(k), None)])
        )

    timed("lock+reads+suggestion+observation", suggest_and_observe)
    timed("load_history (2000 observations)", lambda k: storage.load_history(exp.id), 50)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", help="'private' or a postgresql:// URL; none: SQLite only")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=PHASES,
        default=list(PHASES),
        help="phases to run",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="an option passed to every server, e.g. --server-arg=--max-workers=32",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every configuration this many times, in turn; a table of medians follows",
    )
    parser.add_argument(
        "--no-storage-costs", action="store_true", help="skip the single storage calls"
    )
    args = parser.parse_args()
    print(
        f"{args.clients} clients, {args.seconds:.0f} s per phase, {os.cpu_count()} cores",
        flush=True,
    )
    print(HEADER, flush=True)
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        cluster = None
        postmaster = None
        if args.db == "private":
            sys.path.insert(0, str(ROOT))
            from tests.pg import PostgresCluster, find_bin_dir

            bin_dir = find_bin_dir()
            if bin_dir is None:
                sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
            cluster = stack.enter_context(PostgresCluster(bin_dir, durable=True))
            postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        databases = iter(range(1, 1000))
        for _ in range(args.repeat):
            # configurations in turn, so that a busy moment of a shared machine is spread
            results += _measure("sqlite", str(tmp / f"t{next(databases)}.db"), 1, args, None)
            for count in args.replicas if args.db else []:
                url = cluster.create_database(f"bench_{next(databases)}") if cluster else args.db
                subprocess.run(
                    [sys.executable, "-m", "optserve", "migrate", "--db", url],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                results += _measure("postgres", url, count, args, postmaster)
        if args.repeat > 1:
            print(f"\nmedians of {args.repeat} runs:", flush=True)
            print(HEADER, flush=True)
            for row in _medians(results):
                print(_row(row, _clients(row.phase, args.clients)), flush=True)
        _targets(_medians(results), args.clients)
        if args.no_storage_costs:
            return
        print(
            "\nsingle storage calls, one thread, no gRPC (wall time; a write waits for its fsync):",
            flush=True,
        )
        from optserve.storage import SqliteStorage

        sqlite = SqliteStorage(tmp / "costs.db")
        _storage_costs("sqlite", sqlite)
        sqlite.close()
        if args.db:
            from optserve.storage.postgres import PostgresStorage

            url = cluster.create_database("costs") if cluster else args.db
            pg = PostgresStorage(url, migrate=True, pool_size=4)
            _storage_costs("postgres", pg)
            pg.close()


if __name__ == "__main__":
    main()
