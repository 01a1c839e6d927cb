"""Several replicas of the server on one PostgreSQL: the database is the only shared state.

Three ``optserve serve`` processes share one database. 32 client threads spread over them
suggest and observe on shared experiments; one replica is killed with SIGKILL while it
holds an experiment's lock and clients fail over to the others through the Python
client's round-robin targets; the same seed and history give the same suggestions on
every replica (random, grid and model-based) and on a replica started later.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import grpc
import psycopg
import pytest

from optserve.v1 import observation_pb2
from optserve.v1 import service_pb2 as pb
from optserve_client import Connection, RetryPolicy

from ..conftest import RunningServer, new_postgres_database, start_server
from ..service_tests.helpers import categorical, create, double, integer, observe, plain, suggest

pytestmark = pytest.mark.timeout(300)

REPLICAS = 3
CLIENTS = 32
CYCLES = 25
# Outlasts the loss of a replica; each attempt keeps its own deadline.
POLICY = RetryPolicy(max_attempts=50, initial_backoff=0.05, max_backoff=0.5, deadline=120)


def _start(url: str, count: int = REPLICAS) -> list[RunningServer]:
    sep = "&" if "?" in url else "?"
    return [start_server(f"{url}{sep}application_name=replica-{k}") for k in range(count)]


def _stop(replicas: list[RunningServer]) -> None:
    for r in replicas:
        if r.process.poll() is None:
            assert r.stop() == 0


@pytest.fixture(scope="module")
def database(postgres) -> str:
    return new_postgres_database(postgres)


@pytest.fixture(scope="module")
def replicas(database) -> Iterator[list[RunningServer]]:
    running = _start(database)
    yield running
    _stop(running)


def _grid_spec(size: int) -> dict:
    return dict(
        type="EXPERIMENT_TYPE_GRID",
        parameters=[
            double("a", grid=[k / size for k in range(size)]),
            double("b", grid=[k / size for k in range(size)]),
            integer("n", 1, 4),
        ],
    )


RANDOM_SPEC = dict(
    type="EXPERIMENT_TYPE_RANDOM",
    parameters=[double("a"), double("b")],
    linearConstraints=[
        {
            "type": "LINEAR_CONSTRAINT_TYPE_LESS_THAN",
            "threshold": 1.0,
            "terms": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}],
        }
    ],
    parallelBandwidth=CLIENTS,
)


def _all_observations(stub, experiment_id: str) -> list[observation_pb2.Observation]:
    found, token = [], ""
    while True:
        reply = stub.ListObservations(
            pb.ListObservationsRequest(experiment_id=experiment_id, page_size=500, page_token=token)
        )
        found += list(reply.observations)
        token = reply.next_page_token
        if not token:
            return found


def _all_suggestions(stub, experiment_id: str, state: int = 0) -> list:
    found, token = [], ""
    while True:
        reply = stub.ListSuggestions(
            pb.ListSuggestionsRequest(
                experiment_id=experiment_id, state=state, page_size=500, page_token=token
            )
        )
        found += list(reply.suggestions)
        token = reply.next_page_token
        if not token:
            return found


def _point(s) -> tuple:
    return tuple(sorted(plain(s.assignments).items()))


def test_32_clients_on_3_replicas_lose_nothing_and_serve_nothing_twice(replicas):
    stub = replicas[0].stub()
    experiments = [create(stub, **RANDOM_SPEC).id, create(stub, **_grid_spec(20)).id]
    served: dict[str, list] = {e: [] for e in experiments}
    acknowledged: dict[str, list[str]] = {e: [] for e in experiments}
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(n: int) -> None:
        # its own channel to one replica, as a worker process behind a balancer would have
        own = replicas[n % REPLICAS].stub()
        exp = experiments[n % 2]
        start.wait()
        try:
            for k in range(CYCLES):
                (s,) = suggest(own, exp)
                a = plain(s.assignments)
                assert a["a"] + a["b"] <= 1.0 or exp == experiments[1]
                obs = observe(
                    own, exp, suggestionId=s.id, values=[{"name": "value", "value": n * 100 + k}]
                )
                with lock:
                    served[exp].append(s)
                    acknowledged[exp].append(obs.id)
        except BaseException as error:
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    for exp in experiments:
        made = served[exp]
        assert len(made) == CLIENTS // 2 * CYCLES
        assert len({s.id for s in made}) == len(made)  # no suggestion served twice
        for replica in replicas:  # every replica reads the same state
            own = replica.stub()
            stored = _all_observations(own, exp)
            assert Counter(o.id for o in stored) == Counter(acknowledged[exp])
            assert {o.suggestion_id for o in stored} == {s.id for s in made}
            progress = own.GetExperiment(pb.GetExperimentRequest(id=exp)).experiment.progress
            assert progress.observation_count == len(made)
            assert progress.open_suggestion_count == 0
        assert not _all_suggestions(stub, exp, state=1)  # none left open
    # Grid points open on one replica were pending on the others: no point twice.
    grid = served[experiments[1]]
    assert len({_point(s) for s in grid}) == len(grid)


def test_suggestions_open_on_other_replicas_are_pending(replicas):
    """A grid of 8 points: 3 open on replica 0, 3 on replica 1; replica 2 gets the two
    points left and then none; every replica counts 8 open suggestions."""
    stubs = [r.stub() for r in replicas]
    exp = create(stubs[0], type="EXPERIMENT_TYPE_GRID", parameters=[integer("n", 1, 8)]).id
    taken = suggest(stubs[0], exp, 3) + suggest(stubs[1], exp, 3)
    last = suggest(stubs[2], exp, 2)
    assert sorted(_point(s) for s in taken + last) == [(("n", n),) for n in range(1, 9)]
    with pytest.raises(grpc.RpcError) as info:
        suggest(stubs[2], exp)
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    for own in stubs:
        progress = own.GetExperiment(pb.GetExperimentRequest(id=exp)).experiment.progress
        assert progress.open_suggestion_count == 8
        assert {s.id for s in _all_suggestions(own, exp, state=1)} == {s.id for s in taken + last}
    observe(stubs[1], exp, suggestionId=taken[0].id, values=[{"name": "value", "value": 1}])
    for own in stubs:
        progress = own.GetExperiment(pb.GetExperimentRequest(id=exp)).experiment.progress
        assert (progress.open_suggestion_count, progress.observation_count) == (7, 1)


@pytest.mark.parametrize(
    ("spec", "steps", "count"),
    [
        (dict(type="EXPERIMENT_TYPE_RANDOM", parameters=[double("x"), integer("i")]), 4, 2),
        (_grid_spec(6), 4, 2),
        # 6 points of initial design, then 6 from the GP fit
        (
            dict(
                type="EXPERIMENT_TYPE_OFFLINE",
                parameters=[double("x"), double("y"), categorical("c", ["a", "b", "c"])],
            ),
            12,
            1,
        ),
    ],
    ids=["random", "grid", "offline"],
)
def test_the_same_seed_and_history_give_the_same_suggestions_on_any_replica(
    replicas, database, spec, steps, count
):
    """One experiment driven through replica 0 only, its twin (same seed) through
    replicas 1 and 2 in turn, then, from half-way, through a replica started then
    (a restart): step by step, the same suggestions."""
    stubs = [r.stub() for r in replicas]
    alone = create(stubs[0], seed="12345", **spec).id
    spread = create(stubs[1], seed="12345", **spec).id
    fresh: RunningServer | None = None
    try:
        for step in range(steps):
            if step == steps // 2:
                fresh = start_server(database)
                stubs[1] = fresh.stub()
            a = suggest(stubs[0], alone, count)
            b = suggest(stubs[1 + step % 2], spread, count)
            assert [_point(s) for s in a] == [_point(s) for s in b], step
            for x, y in zip(a, b, strict=True):
                point = plain(x.assignments)
                value = (point.get("x", 0.5) - 0.3) ** 2 - point.get("y", 0)
                for exp, s in ((alone, x), (spread, y)):
                    values = [{"name": "value", "value": value}]
                    observe(stubs[0], exp, suggestionId=s.id, values=values)
    finally:
        if fresh is not None:
            assert fresh.stop() == 0


# ------------------------------------------------------------------ a replica killed


def _advisory_locks(conn: psycopg.Connection, application: str | None = None) -> int:
    sql = "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
    sql += " WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()"
    args: tuple = ()
    if application is not None:
        sql, args = sql + " AND a.application_name = %s", (application,)
    row = conn.execute(sql, args).fetchone()
    return int(row[0]) if row else 0


def _sessions(conn: psycopg.Connection, application: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = %s AND datname = current_database()",
        (application,),
    ).fetchone()
    return int(row[0]) if row else 0


def test_a_replica_killed_mid_load_loses_nothing_and_leaves_nothing_locked(postgres):
    url = new_postgres_database(postgres)
    replicas = _start(url)
    watch = psycopg.connect(url, autocommit=True)
    try:
        targets = ",".join(r.target for r in replicas)
        setup = Connection(targets, retry=POLICY)
        experiments = [
            setup.create_experiment(
                name="shared random",
                type="random",
                parameters=[dict(name="a", type="double", bounds=dict(min=0, max=1))],
                metrics=[dict(name="value")],
            ).id,
            setup.create_experiment(
                name="shared grid",
                type="grid",
                parameters=[
                    dict(name="a", type="double", grid=[k / 40 for k in range(40)]),
                    dict(name="n", type="int", bounds=dict(min=1, max=20)),
                ],
                metrics=[dict(name="value")],
            ).id,
        ]
        served: dict[str, list] = {e: [] for e in experiments}
        acknowledged: dict[str, list[str]] = {e: [] for e in experiments}
        errors: list[BaseException] = []
        lock = threading.Lock()
        done = itertools.count(1)
        third = threading.Event()

        def client(n: int) -> None:
            exp = experiments[n % 2]
            try:
                with Connection(targets, retry=POLICY, timeout=20) as conn:
                    for k in range(CYCLES):
                        s = conn.create_suggestion(exp)
                        obs = conn.create_observation(exp, suggestion=s, values={"value": k})
                        with lock:
                            served[exp].append(s)
                            acknowledged[exp].append(obs.id)
                        if next(done) == CLIENTS * CYCLES // 3:
                            third.set()
            except BaseException as error:
                with lock:
                    errors.append(error)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        # Kill replica 2 at a moment when it holds an experiment's lock, a third of the way in.
        assert third.wait(120)
        victim = replicas[2]
        caught = False
        for _ in range(5000):
            if _advisory_locks(watch, "replica-2"):
                victim.process.send_signal(signal.SIGKILL)
                caught = True
                break
        if not caught:
            victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(30)
        if victim.process.stdout is not None:
            victim.process.stdout.close()
        for t in threads:
            t.join()
        assert caught, "replica 2 was never seen holding an experiment lock"
        assert not errors, errors[:3]
        assert [r.process.poll() for r in replicas] == [None, None, -signal.SIGKILL]

        stub = replicas[0].stub()
        for exp in experiments:
            made = served[exp]
            assert len(made) == CLIENTS // 2 * CYCLES
            assert len({s.id for s in made}) == len(made)
            stored = _all_observations(stub, exp)
            # each acknowledged observation once, and nothing else (no orphan suggestion)
            assert Counter(o.id for o in stored) == Counter(acknowledged[exp])
            assert {s.id for s in _all_suggestions(stub, exp)} == {s.id for s in made}
            progress = stub.GetExperiment(pb.GetExperimentRequest(id=exp)).experiment.progress
            assert (progress.observation_count, progress.open_suggestion_count) == (len(made), 0)
        grid = served[experiments[1]]
        assert len({tuple(sorted(s.assignments.items())) for s in grid}) == len(grid)

        # The killed replica's sessions, and the lock it held, are gone ...
        for _ in range(200):
            if _sessions(watch, "replica-2") == 0:
                break
            time.sleep(0.05)
        assert _sessions(watch, "replica-2") == 0
        assert _advisory_locks(watch) == 0
        # ... and every experiment still takes suggestions, on both survivors.
        for replica in replicas[:2]:
            for exp in experiments:
                assert len(suggest(replica.stub(), exp)) == 1
        setup.close()
    finally:
        watch.close()
        _stop([r for r in replicas if r.process.poll() is None])


# ------------------------------------------------------------------ round robin

_PROBE = """
import os, sys
from optserve_client import Connection
ports = {int(p) for p in sys.argv[2].split(",")}
with Connection(sys.argv[1]) as conn:
    for _ in range(30):
        conn.get_experiment(sys.argv[3])
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        link = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else ""
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    connected = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            f = line.split()
            port = int(f[2].rpartition(":")[2], 16)
            if f[3] == "01" and f[9] in inodes and port in ports:
                connected.add(port)
    print(",".join(str(p) for p in sorted(connected)))
"""


def test_the_python_client_spreads_calls_over_every_target(replicas):
    """A client given the three replicas keeps a connection to each (round robin); the
    default policy, pick_first, would use one."""
    exp = create(replicas[0].stub()).id
    ports = [r.target.rpartition(":")[2] for r in replicas]
    targets = ",".join(r.target for r in replicas)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, targets, ",".join(ports), exp],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ",".join(sorted(ports, key=int))
