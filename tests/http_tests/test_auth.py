"""Tokens over HTTP: Basic auth with the token as user name, the bootstrap token and
stored ones, roles and project scopes as over gRPC (401, 403, 404)."""

from __future__ import annotations

import uuid

import pytest
from sigopt import Connection
from sigopt.exception import ApiException

from optserve.v1 import token_pb2

from .conftest import BOOTSTRAP, Api, HttpServer, create_token, simple_experiment


def test_missing_bad_and_malformed_credentials(auth_server: HttpServer) -> None:
    assert "No API token" in Api(auth_server.url, token=None).error(401, "GET", "experiments")
    assert "token" in Api(auth_server.url, token="wrong").error(401, "GET", "experiments")
    api = Api(auth_server.url, token=None)
    api.headers["Authorization"] = "Basic !!!not-base64"
    api.error(400, "GET", "experiments")
    with pytest.raises(ApiException) as caught:
        Connection(client_token="wrong", api_url=auth_server.url).experiments().fetch()
    assert caught.value.status_code == 401


def test_bootstrap_and_bearer(auth_server: HttpServer) -> None:
    admin = Api(auth_server.url, token=BOOTSTRAP)
    exp = admin.ok("POST", "experiments", simple_experiment())
    assert admin.ok("GET", "tokens/self")["permissions"] == "admin"
    bearer = Api(auth_server.url, token=None)
    bearer.headers["Authorization"] = f"Bearer {BOOTSTRAP}"
    assert bearer.ok("GET", f"experiments/{exp['id']}")["id"] == exp["id"]


def test_roles_and_project_scopes(auth_server: HttpServer) -> None:
    mine, theirs = f"mine-{uuid.uuid4().hex[:6]}", f"theirs-{uuid.uuid4().hex[:6]}"
    admin = Api(auth_server.url, token=BOOTSTRAP)
    other = admin.ok("POST", "experiments", simple_experiment(project=theirs))
    writer = Api(auth_server.url, create_token(auth_server, token_pb2.TOKEN_ROLE_WRITE, mine))
    reader = Api(auth_server.url, create_token(auth_server, token_pb2.TOKEN_ROLE_READ, mine))

    # a token of one project creates there by default, and only there
    exp = writer.ok("POST", "experiments", simple_experiment())
    assert exp["project"] == mine
    writer.error(403, "POST", "experiments", simple_experiment(project=theirs))
    writer.error(404, "GET", f"experiments/{other['id']}")
    writer.error(404, "POST", f"experiments/{other['id']}/suggestions")
    assert [e["id"] for e in writer.ok("GET", "experiments")["data"]] == [exp["id"]]

    assert reader.ok("GET", f"experiments/{exp['id']}")["id"] == exp["id"]
    assert "read-only" in reader.error(403, "POST", f"experiments/{exp['id']}/suggestions")
    reader.error(403, "PUT", f"experiments/{exp['id']}", {"name": "no"})
    reader.error(403, "DELETE", f"experiments/{exp['id']}")

    # projects and runs follow the same scopes
    assert writer.ok("GET", f"clients/1/projects/{mine}")["id"] == mine
    writer.error(404, "GET", f"clients/1/projects/{theirs}")
    writer.error(403, "POST", "clients/1/projects", {"id": theirs + "-x", "name": "x"})
    run = writer.ok("POST", f"clients/1/projects/{mine}/training_runs", {"name": "r"})
    reader.error(403, "MERGE", f"training_runs/{run['id']}", {"state": "completed"})
    foreign = admin.ok("POST", f"clients/1/projects/{theirs}/training_runs", {"name": "f"})
    writer.error(404, "GET", f"training_runs/{foreign['id']}")
    token = writer.ok("GET", "tokens/self")
    assert token["projects"] == [mine] and token["permissions"] == "write"
