"""Retries and request ids, against a real gRPC server in the test process that
fails scripted attempts and records every request and its metadata."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from optserve_client import ApiError, Connection, RetryPolicy
from optserve_client._proto.optserve.v1 import (
    experiment_pb2,
    observation_pb2,
    project_pb2,
    run_pb2,
    service_pb2,
    service_pb2_grpc,
    suggestion_pb2,
)
from optserve_client.ai import ExperimentContext, RunContext
from optserve_client.objects import Experiment, Suggestion

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

# Waits for the client to give up on the attempt (its deadline passes).
HANG = "hang"

_SUGGESTION = suggestion_pb2.Suggestion(
    id="11",
    experiment_id="7",
    state=suggestion_pb2.SUGGESTION_STATE_OPEN,
    lease_seconds=30,
)
_OBSERVATION = observation_pb2.Observation(id="21", experiment_id="7", suggestion_id="11")
_EXPERIMENT = experiment_pb2.Experiment(id="7", name="fake")
_PROJECT = project_pb2.Project(id="p")
_RUN = run_pb2.TrainingRun(id="31", project="p")

RESPONSES: dict[str, Callable[[], Any]] = {
    "CreateExperiment": lambda: service_pb2.CreateExperimentResponse(experiment=_EXPERIMENT),
    "GetExperiment": lambda: service_pb2.GetExperimentResponse(experiment=_EXPERIMENT),
    "UpdateExperiment": lambda: service_pb2.UpdateExperimentResponse(experiment=_EXPERIMENT),
    "DeleteExperiment": service_pb2.DeleteExperimentResponse,
    "CreateSuggestions": lambda: service_pb2.CreateSuggestionsResponse(suggestions=[_SUGGESTION]),
    "GetSuggestion": lambda: service_pb2.GetSuggestionResponse(suggestion=_SUGGESTION),
    "DeleteSuggestion": service_pb2.DeleteSuggestionResponse,
    "RenewSuggestionLease": lambda: service_pb2.RenewSuggestionLeaseResponse(
        suggestion=_SUGGESTION
    ),
    "CreateObservation": lambda: service_pb2.CreateObservationResponse(observation=_OBSERVATION),
    "UpdateObservation": lambda: service_pb2.UpdateObservationResponse(observation=_OBSERVATION),
    "DeleteObservation": service_pb2.DeleteObservationResponse,
    "BatchCreateObservations": service_pb2.BatchCreateObservationsResponse,
    "UpdateSuggestion": lambda: service_pb2.UpdateSuggestionResponse(suggestion=_SUGGESTION),
    "CreateQueuedSuggestion": service_pb2.CreateQueuedSuggestionResponse,
    "DeleteQueuedSuggestion": service_pb2.DeleteQueuedSuggestionResponse,
    "CreateProject": lambda: service_pb2.CreateProjectResponse(project=_PROJECT),
    "UpdateProject": lambda: service_pb2.UpdateProjectResponse(project=_PROJECT),
    "CreateTrainingRun": lambda: service_pb2.CreateTrainingRunResponse(training_run=_RUN),
    "UpdateTrainingRun": lambda: service_pb2.UpdateTrainingRunResponse(training_run=_RUN),
    "DeleteTrainingRun": service_pb2.DeleteTrainingRunResponse,
    "CreateCheckpoint": service_pb2.CreateCheckpointResponse,
}


@dataclass
class Seen:
    method: str
    request: Any
    metadata: dict[str, str]


class Scripted(service_pb2_grpc.OptimizationServiceServicer):
    """Answers every call of RESPONSES; the next scripted outcomes (a status
    code or HANG) replace the answer, one per attempt, in order."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.seen: list[Seen] = []
        self.script: list[grpc.StatusCode | str] = []

    def reset(self, *script: grpc.StatusCode | str) -> None:
        with self._lock:
            self.seen.clear()
            self.script[:] = script

    def calls(self, method: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.method == method]

    def wait_for(self, method: str, count: int, timeout: float = 30) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.calls(method)) >= count, timeout):
                raise AssertionError(f"{method} was called fewer than {count} times")

    def _answer(self, method: str, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.seen.append(Seen(method, request, dict(context.invocation_metadata())))
            outcome = self.script.pop(0) if self.script else None
            self._lock.notify_all()
        if outcome == HANG:
            done = threading.Event()
            context.add_callback(done.set)
            done.wait(30)
        elif isinstance(outcome, grpc.StatusCode):
            context.abort(outcome, f"scripted {outcome.name}")
        return RESPONSES[method]()


def _bind(method: str) -> Callable[..., Any]:
    def handler(self: Scripted, request: Any, context: grpc.ServicerContext) -> Any:
        return self._answer(method, request, context)

    return handler


for _method in RESPONSES:
    setattr(Scripted, _method, _bind(_method))


@pytest.fixture(scope="module")
def scripted_server() -> Iterator[tuple[str, Scripted]]:
    service = Scripted()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    service_pb2_grpc.add_OptimizationServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", service
    server.stop(None).wait()


FAST = RetryPolicy(max_attempts=5, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
def fake(scripted_server: tuple[str, Scripted]) -> Iterator[tuple[Connection, Scripted]]:
    target, service = scripted_server
    service.reset()
    with Connection(target, token="t0k", timeout=10, retry=FAST) as conn:
        yield conn, service


# One call of each write, by its RPC.
WRITES: dict[str, Callable[[Connection], Any]] = {
    "CreateExperiment": lambda c: c.create_experiment(name="x"),
    "UpdateExperiment": lambda c: c.update_experiment("7", name="y"),
    "DeleteExperiment": lambda c: c.delete_experiment("7"),
    "CreateSuggestions": lambda c: c.create_suggestion("7"),
    "DeleteSuggestion": lambda c: c.delete_suggestion("7", "11"),
    "CreateObservation": lambda c: c.create_observation("7", suggestion="11", values={"m": 1}),
    "UpdateObservation": lambda c: c.update_observation("7", "21", failed=True),
    "DeleteObservation": lambda c: c.delete_observation("7", "21"),
    "BatchCreateObservations": lambda c: c.create_observations(
        "7", [dict(suggestion="11", values={"m": 1})]
    ),
    "RenewSuggestionLease": lambda c: c.renew_lease("7", "11", lease_seconds=60),
    "UpdateSuggestion": lambda c: c.update_suggestion("7", "11", metadata={"a": 1}),
    "CreateQueuedSuggestion": lambda c: c.create_queued_suggestion("7", {"x": 0.5}),
    "DeleteQueuedSuggestion": lambda c: c.delete_queued_suggestion("7", "41"),
    "CreateProject": lambda c: c.create_project("p"),
    "UpdateProject": lambda c: c.update_project("p", name="P"),
    "CreateTrainingRun": lambda c: c.create_training_run(project="p"),
    "UpdateTrainingRun": lambda c: c.update_training_run("31", merge=True, values={"m": 1}),
    "DeleteTrainingRun": lambda c: c.delete_training_run("31"),
    "CreateCheckpoint": lambda c: c.create_checkpoint("31", {"m": 1.0}),
}


@pytest.mark.parametrize("method", sorted(WRITES))
def test_a_write_keeps_its_request_id_across_retries(fake, method: str) -> None:
    conn, service = fake
    service.reset(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE)
    WRITES[method](conn)
    attempts = service.calls(method)
    assert len(attempts) == 3
    ids = {a.request.request_id for a in attempts}
    assert len(ids) == 1 and UUID4.fullmatch(ids.pop())
    # Every attempt sends the same request, token included.
    assert len({a.request.SerializeToString(deterministic=True) for a in attempts}) == 1
    assert all(a.metadata["authorization"] == "Bearer t0k" for a in attempts)

    WRITES[method](conn)
    again = service.calls(method)[3:]
    assert len(again) == 1
    assert again[0].request.request_id not in {a.request.request_id for a in attempts}


def test_every_write_rpc_has_a_request_id_and_is_covered() -> None:
    # A new write in the API without a case above fails here.
    methods = service_pb2.DESCRIPTOR.services_by_name["OptimizationService"].methods
    with_ids = {m.name for m in methods if "request_id" in m.input_type.fields_by_name}
    assert with_ids == set(WRITES)


def test_every_write_rpc_is_covered() -> None:
    # Every RPC but the reads is a write, and every write takes a request id.
    methods = service_pb2.DESCRIPTOR.services_by_name["OptimizationService"].methods
    reads = {m.name for m in methods if m.name.startswith(("Get", "List"))}
    assert {m.name for m in methods} - reads == set(WRITES)


def test_reads_are_retried(fake) -> None:
    conn, service = fake
    service.reset(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert conn.get_experiment("7").name == "fake"
    assert len(service.calls("GetExperiment")) == 3


def test_renewal_is_retried(fake) -> None:
    conn, service = fake
    service.reset(grpc.StatusCode.UNAVAILABLE)
    renewed = conn.renew_lease("7", "11", lease_seconds=60)
    assert renewed.lease_seconds == 30
    attempts = service.calls("RenewSuggestionLease")
    assert len(attempts) == 2
    assert all(a.request.lease_seconds == 60 and a.request.id == "11" for a in attempts)


def test_an_attempt_past_its_deadline_is_retried_with_the_same_id(scripted_server) -> None:
    target, service = scripted_server
    service.reset(HANG)
    with Connection(target, timeout=0.5, retry=FAST) as conn:
        conn.create_suggestion("7")
    attempts = service.calls("CreateSuggestions")
    assert len(attempts) == 2
    assert attempts[0].request.request_id == attempts[1].request.request_id != ""


def test_retries_stop_after_max_attempts(scripted_server) -> None:
    target, service = scripted_server
    service.reset(*[grpc.StatusCode.UNAVAILABLE] * 10)
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.01)
    with Connection(target, retry=policy) as conn, pytest.raises(ApiError) as info:
        conn.create_observation("7", suggestion="11", values={"m": 1})
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    assert info.value.attempts == 3 and "after 3 attempts" in str(info.value)
    assert len(service.calls("CreateObservation")) == 3


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.CANCELLED,
    ],
)
def test_other_codes_are_not_retried(fake, code: grpc.StatusCode) -> None:
    conn, service = fake
    service.reset(code)
    with pytest.raises(ApiError) as info:
        conn.create_suggestion("7")
    assert info.value.code is code and info.value.attempts == 1
    assert len(service.calls("CreateSuggestions")) == 1
    service.reset(code)
    with pytest.raises(ApiError):
        conn.get_experiment("7")
    assert len(service.calls("GetExperiment")) == 1


def test_the_overall_deadline_bounds_attempts_and_pauses(scripted_server) -> None:
    target, service = scripted_server
    service.reset(*[HANG] * 5)
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.01, deadline=0.5)
    # The attempt's 30 s deadline is cut to the call's 0.5 s: nothing is left to retry with.
    with Connection(target, timeout=30, retry=policy) as conn, pytest.raises(ApiError) as info:
        conn.create_suggestion("7")
    assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED and info.value.attempts == 1
    assert len(service.calls("CreateSuggestions")) == 1


def test_a_pause_past_the_overall_deadline_is_not_taken(scripted_server) -> None:
    target, service = scripted_server
    service.reset(*[grpc.StatusCode.UNAVAILABLE] * 5)
    # Pauses are drawn from [0, 100] s; the seeded first draw is past the 5 s deadline.
    policy = RetryPolicy(max_attempts=5, initial_backoff=100, max_backoff=100, deadline=5)
    assert policy.backoff(0, random.Random(1)) > 5
    with Connection(target, retry=policy) as conn, pytest.raises(ApiError) as info:
        conn._rng = random.Random(1)
        conn.get_experiment("7")
    assert info.value.code is grpc.StatusCode.UNAVAILABLE and info.value.attempts == 1


def test_backoff_is_full_jitter_under_a_doubling_cap() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.initial_backoff, policy.max_backoff) == (5, 0.1, 5.0)
    assert policy.retryable_codes == {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
    assert [policy.backoff_cap(n) for n in range(8)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    )
    assert policy.backoff_cap(10_000) == 5.0
    rng = random.Random(0)
    draws = [policy.backoff(3, rng) for _ in range(200)]
    assert all(0 <= d <= 0.8 for d in draws)
    assert min(draws) < 0.1 and max(draws) > 0.7  # spread over the whole range
    assert RetryPolicy.never().max_attempts == 1
    for bad in (
        dict(max_attempts=0),
        dict(initial_backoff=2, max_backoff=1),
        dict(multiplier=0.5),
        dict(deadline=0),
    ):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)


def test_a_chosen_request_id_is_sent_and_checked(fake) -> None:
    conn, service = fake
    service.reset(grpc.StatusCode.UNAVAILABLE)
    conn.create_observation("7", suggestion="11", failed=True, request_id="worker-3:run.17")
    assert [a.request.request_id for a in service.calls("CreateObservation")] == [
        "worker-3:run.17"
    ] * 2
    for bad in ("", "x" * 65, "white space", "slash/no"):
        with pytest.raises(ValueError, match="request_id"):
            conn.create_observation("7", suggestion="11", failed=True, request_id=bad)
    assert len(service.calls("CreateObservation")) == 2


def test_ending_a_run_again_after_a_failure_reuses_its_request_id(scripted_server) -> None:
    target, service = scripted_server
    service.reset(*[grpc.StatusCode.UNAVAILABLE] * 2)
    policy = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01)
    with Connection(target, retry=policy) as conn:
        experiment = ExperimentContext(Experiment(id="7"), conn)
        run = RunContext(experiment, Suggestion(id="11", experiment_id="7"), heartbeat=False)
        run.log_metric("m", 1.0)
        with pytest.raises(ApiError):
            run.end()
        assert not run.ended
        assert run.end().id == "21"
    ids = [a.request.request_id for a in service.calls("CreateObservation")]
    assert len(ids) == 3 and len(set(ids)) == 1


def _heartbeat_threads(run: RunContext) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"optserve-heartbeat-{run.id}"]


def test_the_heartbeat_renews_while_the_run_is_open_and_stops_with_it(fake) -> None:
    conn, service = fake
    experiment = ExperimentContext(Experiment(id="7"), conn)
    run = experiment.create_run(lease_seconds=90, heartbeat=0.05)
    assert run.suggestion.lease_seconds == 30
    with run:
        service.wait_for("RenewSuggestionLease", 3)
        assert _heartbeat_threads(run)
        run.log_metric("m", 1.0)
    assert run.ended and not _heartbeat_threads(run)
    renewals = service.calls("RenewSuggestionLease")
    assert all(r.request.id == "11" and r.request.lease_seconds == 90 for r in renewals)
    assert all(r.metadata["authorization"] == "Bearer t0k" for r in renewals)


def test_the_heartbeat_interval_is_a_third_of_the_lease(fake) -> None:
    conn, _ = fake
    experiment = ExperimentContext(Experiment(id="7"), conn)
    suggestion = Suggestion(id="11", experiment_id="7", lease_seconds=30)
    assert RunContext(experiment, suggestion).heartbeat_interval == pytest.approx(10)
    assert RunContext(experiment, suggestion, lease_seconds=9).heartbeat_interval == 3
    assert RunContext(experiment, suggestion, heartbeat=False).heartbeat_interval is None
    assert RunContext(experiment, suggestion, heartbeat=2.5).heartbeat_interval == 2.5
    # A server without leases (no lease_seconds on suggestions): no heartbeat.
    assert RunContext(experiment, Suggestion(id="12")).heartbeat_interval is None


def test_a_final_renewal_failure_stops_the_heartbeat(fake) -> None:
    conn, service = fake
    experiment = ExperimentContext(Experiment(id="7"), conn)
    run = experiment.create_run(heartbeat=0.05)
    service.reset(grpc.StatusCode.FAILED_PRECONDITION)
    with run:
        service.wait_for("RenewSuggestionLease", 1)
        for thread in _heartbeat_threads(run):
            thread.join(timeout=30)
        assert not _heartbeat_threads(run)
        run.log_metric("m", 2.0)
    assert run.ended and len(service.calls("RenewSuggestionLease")) == 1


def test_loop_runs_a_heartbeat_for_each_run(fake) -> None:
    conn, service = fake
    experiment = ExperimentContext(Experiment(id="7", observation_budget=2), conn)
    # The fake's experiment never progresses: stop after two runs.
    runs = []
    for run in experiment.loop(heartbeat=0.05):
        runs.append(run)
        service.wait_for("RenewSuggestionLease", 2 * len(runs))
        run.log_metric("m", 1.0)
        if len(runs) == 2:
            break
    assert runs[0].ended and not _heartbeat_threads(runs[0])
    assert not runs[1].ended and not _heartbeat_threads(runs[1])
