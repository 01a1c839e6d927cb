"""Tokens: stored hashed, scoped to projects, read/write/admin, managed over TokenService."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from optserve.v1 import service_pb2 as pb
from optserve.v1 import service_pb2_grpc, token_pb2, token_pb2_grpc

from ..conftest import start_server
from .helpers import experiment

BOOTSTRAP = "bootstrap-secret-for-tests-0123456789"


def _bearer(secret: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {secret}")]


class Client:
    """Both services with one token's credentials on every call."""

    def __init__(self, channel: grpc.Channel, secret: str) -> None:
        self.channel = channel
        self.optimization = service_pb2_grpc.OptimizationServiceStub(channel)
        self.tokens = token_pb2_grpc.TokenServiceStub(channel)
        self.metadata = _bearer(secret)

    def call(self, method: str, request):
        stub = self.tokens if "Token" in method else self.optimization
        return getattr(stub, method)(request, metadata=self.metadata)

    def code(self, method: str, request) -> grpc.StatusCode:
        with pytest.raises(grpc.RpcError) as caught:
            self.call(method, request)
        return caught.value.code()


@pytest.fixture(scope="module")
def tenants(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("OPTSERVE_SERVER_TOKEN", BOOTSTRAP)
    server = start_server(tmp_path_factory.mktemp("tenants") / "tenants.db")
    mp.undo()
    channel = grpc.insecure_channel(server.target)
    yield channel, server
    channel.close()
    assert server.stop() == 0


def _token(admin: Client, role: int, *projects: str) -> tuple[token_pb2.Token, Client]:
    reply = admin.call(
        "CreateToken",
        token_pb2.CreateTokenRequest(
            token=token_pb2.Token(name="t", role=role, projects=list(projects))
        ),
    )
    assert reply.secret.startswith("os_") and len(reply.secret) > 40
    return reply.token, Client(admin.channel, reply.secret)


@pytest.fixture(scope="module")
def admin(tenants) -> Client:
    return Client(tenants[0], BOOTSTRAP)


def _create(client: Client, project: str = "", name: str = "e"):
    req = pb.CreateExperimentRequest(experiment=experiment(name=name, project=project))
    return client.call("CreateExperiment", req).experiment


def test_calls_without_a_valid_token_are_refused_but_health_is_open(tenants, admin):
    channel, _ = tenants
    stub = service_pb2_grpc.OptimizationServiceStub(channel)
    for metadata in (None, _bearer("wrong"), [("authorization", BOOTSTRAP)]):
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListExperiments(pb.ListExperimentsRequest(), metadata=metadata)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    health = health_pb2_grpc.HealthStub(channel)
    assert (
        health.Check(health_pb2.HealthCheckRequest()).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    me = admin.call("GetCallerToken", token_pb2.GetCallerTokenRequest()).token
    assert me.id == "bootstrap" and me.role == token_pb2.TOKEN_ROLE_ADMIN
    # the scheme is case-insensitive, as over HTTP; the secret is not
    for scheme in ("bearer", "BEARER"):
        metadata = [("authorization", f"{scheme} {BOOTSTRAP}")]
        stub.ListExperiments(pb.ListExperimentsRequest(), metadata=metadata)
    for header in (f"Bearer {BOOTSTRAP.upper()}", f"Basic {BOOTSTRAP}", "Bearer", "Bearer "):
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListExperiments(pb.ListExperimentsRequest(), metadata=[("authorization", header)])
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_a_token_never_sees_another_projects_experiments(admin):
    _, alpha = _token(admin, token_pb2.TOKEN_ROLE_WRITE, "alpha")
    _, beta = _token(admin, token_pb2.TOKEN_ROLE_WRITE, "beta")
    mine = _create(alpha)  # one project: created there by default
    assert mine.project == "alpha"
    theirs = _create(beta, "beta")
    listed = alpha.call("ListExperiments", pb.ListExperimentsRequest()).experiments
    assert theirs.id not in {e.id for e in listed} and mine.id in {e.id for e in listed}
    assert (
        alpha.call("ListExperiments", pb.ListExperimentsRequest(project="beta")).experiments == []
    )
    # every id-taking call answers NOT_FOUND, exactly as for an id that does not exist
    calls = [
        ("GetExperiment", pb.GetExperimentRequest(id=theirs.id)),
        ("DeleteExperiment", pb.DeleteExperimentRequest(id=theirs.id)),
        ("CreateSuggestions", pb.CreateSuggestionsRequest(experiment_id=theirs.id)),
        ("ListSuggestions", pb.ListSuggestionsRequest(experiment_id=theirs.id)),
        ("GetSuggestion", pb.GetSuggestionRequest(experiment_id=theirs.id, id="1")),
        ("DeleteSuggestion", pb.DeleteSuggestionRequest(experiment_id=theirs.id, id="1")),
        ("RenewSuggestionLease", pb.RenewSuggestionLeaseRequest(experiment_id=theirs.id, id="1")),
        ("ListObservations", pb.ListObservationsRequest(experiment_id=theirs.id)),
        ("GetObservation", pb.GetObservationRequest(experiment_id=theirs.id, id="1")),
        ("DeleteObservation", pb.DeleteObservationRequest(experiment_id=theirs.id, id="1")),
        ("GetBestAssignments", pb.GetBestAssignmentsRequest(experiment_id=theirs.id)),
        ("CreateObservation", pb.CreateObservationRequest(experiment_id=theirs.id)),
        ("GetStoppingCriteria", pb.GetStoppingCriteriaRequest(experiment_id=theirs.id)),
        ("GetParameterImportances", pb.GetParameterImportancesRequest(experiment_id=theirs.id)),
    ]
    for method, request in calls:
        assert alpha.code(method, request) is grpc.StatusCode.NOT_FOUND, method
    # the experiment is untouched
    assert beta.call("GetExperiment", pb.GetExperimentRequest(id=theirs.id)).experiment.id


def test_scoped_tokens_create_only_in_their_projects(admin):
    _, two = _token(admin, token_pb2.TOKEN_ROLE_WRITE, "p1", "p2")
    assert _create(two, "p2").project == "p2"
    req = pb.CreateExperimentRequest(experiment=experiment(project="elsewhere"))
    assert two.code("CreateExperiment", req) is grpc.StatusCode.PERMISSION_DENIED
    # with two projects there is no default
    req = pb.CreateExperimentRequest(experiment=experiment())
    assert two.code("CreateExperiment", req) is grpc.StatusCode.PERMISSION_DENIED


def test_read_tokens_read_and_cannot_write(admin):
    _, writer = _token(admin, token_pb2.TOKEN_ROLE_WRITE, "ro")
    _, reader = _token(admin, token_pb2.TOKEN_ROLE_READ, "ro")
    exp = _create(writer, "ro")
    assert reader.call("GetExperiment", pb.GetExperimentRequest(id=exp.id)).experiment.id == exp.id
    for method, request in [
        ("CreateSuggestions", pb.CreateSuggestionsRequest(experiment_id=exp.id)),
        ("DeleteExperiment", pb.DeleteExperimentRequest(id=exp.id)),
        ("CreateExperiment", pb.CreateExperimentRequest(experiment=experiment(project="ro"))),
        ("ListTokens", token_pb2.ListTokensRequest()),
    ]:
        assert reader.code(method, request) is grpc.StatusCode.PERMISSION_DENIED, method


def test_only_admins_manage_tokens_and_revocation_is_immediate(admin):
    token, writer = _token(admin, token_pb2.TOKEN_ROLE_WRITE, "*")
    assert writer.code("ListTokens", token_pb2.ListTokensRequest()) is (
        grpc.StatusCode.PERMISSION_DENIED
    )
    create = token_pb2.CreateTokenRequest(token=token_pb2.Token(role=token_pb2.TOKEN_ROLE_ADMIN))
    assert writer.code("CreateToken", create) is grpc.StatusCode.PERMISSION_DENIED
    exp = _create(writer, "anywhere")  # "*" reaches every project
    listed = admin.call("ListTokens", token_pb2.ListTokensRequest()).tokens
    assert token.id in {t.id for t in listed}
    revoked = admin.call("RevokeToken", token_pb2.RevokeTokenRequest(id=token.id)).token
    assert revoked.HasField("revoke_time")
    req = pb.GetExperimentRequest(id=exp.id)
    assert writer.code("GetExperiment", req) is grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("token", "field"),
    [
        (token_pb2.Token(role=token_pb2.TOKEN_ROLE_WRITE), "token.projects"),
        (token_pb2.Token(projects=["a"]), "token.role"),
        (token_pb2.Token(role=token_pb2.TOKEN_ROLE_ADMIN, projects=["a"]), "token.projects"),
        (
            token_pb2.Token(role=token_pb2.TOKEN_ROLE_READ, projects=["a"], name="n" * 101),
            "token.name",
        ),
        (
            token_pb2.Token(role=token_pb2.TOKEN_ROLE_READ, projects=["a"], name="ci\x00bot"),
            "token.name",
        ),
        # projects are named as experiments' are; each once
        (token_pb2.Token(role=token_pb2.TOKEN_ROLE_READ, projects=["a", "A/B"]), "projects[1]"),
        (token_pb2.Token(role=token_pb2.TOKEN_ROLE_READ, projects=[""]), "projects[0]"),
        (token_pb2.Token(role=token_pb2.TOKEN_ROLE_READ, projects=["p" * 101]), "projects[0]"),
        (token_pb2.Token(role=token_pb2.TOKEN_ROLE_WRITE, projects=["a", "a"]), "twice"),
    ],
)
def test_token_requests_are_validated(admin, token, field):
    with pytest.raises(grpc.RpcError) as caught:
        admin.call("CreateToken", token_pb2.CreateTokenRequest(token=token))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details()


def test_secrets_are_stored_only_as_hashes(tenants, admin):
    _, server = tenants
    reply = admin.call(
        "CreateToken",
        token_pb2.CreateTokenRequest(
            token=token_pb2.Token(role=token_pb2.TOKEN_ROLE_READ, projects=["h"])
        ),
    )
    raw = b"".join(p.read_bytes() for p in server.db.parent.iterdir() if p.is_file())
    assert reply.secret.encode() not in raw
    assert BOOTSTRAP.encode() not in raw


def _cli(server, *args: str, token: str = BOOTSTRAP) -> subprocess.CompletedProcess:
    env = dict(os.environ, OPTSERVE_TARGET=server.target, OPTSERVE_TOKEN=token)
    return subprocess.run(
        [sys.executable, "-m", "optserve", "tokens", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_tokens_command_creates_lists_and_revokes(tenants):
    channel, server = tenants
    made = _cli(server, "create", "--role", "write", "--project", "cli", "--name", "from cli")
    assert made.returncode == 0, made.stderr
    token_id = made.stdout.split()[1]
    secret = made.stdout.strip().splitlines()[-1]
    user = Client(channel, secret)
    assert _create(user).project == "cli"
    listed = _cli(server, "list")
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if line.split()[0] == token_id)
    assert "write" in row and "cli" in row and "from cli" in row
    assert all(len(line) <= 80 for line in listed.stdout.splitlines() if "from cli" in line)
    assert _cli(server, "revoke", token_id).returncode == 0
    assert user.code("ListExperiments", pb.ListExperimentsRequest()) is (
        grpc.StatusCode.UNAUTHENTICATED
    )
    # a non-admin token is refused, with the reason on stderr
    refused = _cli(server, "list", token=secret)
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr
