"""Leases, heartbeats and request ids against the real server (see conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import pytest

import optserve_client as sigopt
from optserve_client import ApiError, Connection

X = [dict(name="x", type="double", bounds=dict(min=0, max=1))]


def _eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Waits until ``check()`` holds; fails after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError("condition never held")
        time.sleep(0.1)


def _experiment(conn: Connection, **fields) -> str:
    spec = dict(name="leases", type="random", parameters=X, metrics=[dict(name="m")])
    return conn.create_experiment({**spec, **fields}).id


def test_leases_are_read_and_renewed(conn: Connection) -> None:
    eid = _experiment(conn, suggestion_lease_seconds=600)
    assert conn.get_experiment(eid).suggestion_lease_seconds == 600
    s = conn.create_suggestion(eid)
    assert s.state == "open" and s.lease_seconds == 600
    assert s.expire_time is not None and s.create_time is not None
    assert abs((s.expire_time - s.create_time) - timedelta(seconds=600)) <= timedelta(seconds=1)

    short = conn.create_suggestion(eid, lease_seconds=30)
    assert short.lease_seconds == 30
    renewed = conn.renew_lease(eid, short.id, lease_seconds=3600)
    assert renewed.lease_seconds == 3600 and renewed.expire_time is not None
    assert short.expire_time is not None and renewed.expire_time > short.expire_time
    again = conn.experiments(eid).suggestions(short.id).renew_lease()
    assert again.lease_seconds == 3600 and again.expire_time >= renewed.expire_time
    assert conn.get_suggestion(eid, short.id).expire_time == again.expire_time


def test_an_expired_suggestion_still_takes_its_observation(conn: Connection) -> None:
    eid = _experiment(conn)
    s = conn.create_suggestion(eid, lease_seconds=1)
    _eventually(lambda: conn.get_suggestion(eid, s.id).state == "expired")
    assert [e.id for e in conn.iter_suggestions(eid, state="expired")] == [s.id]
    assert conn.get_experiment(eid).progress.open_suggestion_count == 0
    with pytest.raises(ApiError) as info:
        conn.renew_lease(eid, s.id)
    assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION
    conn.create_observation(eid, suggestion=s.id, values={"m": 0.5})
    assert conn.get_suggestion(eid, s.id).state == "closed"


def test_the_heartbeat_keeps_a_long_run_open(conn: Connection) -> None:
    experiment = sigopt.create_experiment(
        name="long runs", type="random", parameters=X, metrics=[dict(name="m")], budget=1
    )
    for run in experiment.loop(lease_seconds=2):
        with run:
            first_expiry = run.suggestion.expire_time
            assert first_expiry is not None
            # Wait past the first expiry; only the heartbeat keeps it open.
            past = first_expiry + timedelta(seconds=1)
            _eventually(lambda past=past: datetime.now(UTC) > past)
            now = conn.get_suggestion(experiment.id, run.id)
            assert now.state == "open"
            assert now.expire_time is not None and now.expire_time > first_expiry
            run.log_metric("m", 1.0)
    assert run.observation is not None and not run.observation.failed
    assert conn.get_suggestion(experiment.id, run.id).state == "closed"


def test_without_a_heartbeat_a_long_run_expires_and_is_still_recorded(conn: Connection) -> None:
    experiment = sigopt.create_experiment(
        name="long runs", type="random", parameters=X, metrics=[dict(name="m")], budget=1
    )
    for run in experiment.loop(lease_seconds=1, heartbeat=False):
        with run:
            sid = run.id
            _eventually(lambda sid=sid: conn.get_suggestion(experiment.id, sid).state == "expired")
            run.log_metric("m", 1.0)
    assert run.observation is not None and not run.observation.failed
    assert experiment.refresh().progress.observation_count == 1


def test_a_request_id_replays_and_refuses_other_requests(conn: Connection) -> None:
    eid = _experiment(conn)
    first = conn.create_suggestions(eid, 2, request_id="batch-1")
    again = conn.create_suggestions(eid, 2, request_id="batch-1")
    assert [s.id for s in again] == [s.id for s in first]
    assert len(list(conn.iter_suggestions(eid))) == 2
    with pytest.raises(ApiError) as info:
        conn.create_suggestions(eid, 3, request_id="batch-1")
    assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION and info.value.attempts == 1

    observed = conn.create_observation(
        eid, suggestion=first[0].id, values={"m": 1.0}, request_id="obs-1"
    )
    replay = conn.create_observation(
        eid, suggestion=first[0].id, values={"m": 1.0}, request_id="obs-1"
    )
    assert replay.id == observed.id
    assert conn.get_experiment(eid).progress.observation_count == 1


def test_the_heartbeat_keeps_a_training_run_open(conn: Connection) -> None:
    experiment = sigopt.create_experiment(
        name="long training runs",
        type="random",
        parameters=X,
        metrics=[dict(name="m")],
        budget=1,
        runs_only=True,
    )
    for run in experiment.loop(lease_seconds=2):
        with run:
            assert run.suggestion is not None and run.suggestion.lease_seconds == 2
            first_expiry = run.suggestion.expire_time
            assert first_expiry is not None
            past = first_expiry + timedelta(seconds=1)
            _eventually(lambda past=past: datetime.now(UTC) > past)
            sid = run.data.suggestion_id
            assert sid is not None
            now = conn.get_suggestion(experiment.id, sid)
            assert now.state == "open"
            assert now.expire_time is not None and now.expire_time > first_expiry
            run.log_metric("m", 1.0)
    assert run.observation is not None and not run.observation.failed
    assert conn.get_suggestion(experiment.id, sid).state == "closed"
