"""The AI module over HTTP: projects, aiexperiments, training runs (PUT and MERGE),
checkpoints, best runs, archive and unarchive."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sigopt import Connection

from .conftest import Api, HttpServer, double

SKIP = {"X-Response-Content": "skip"}


def _project(api: Api) -> str:
    pid = f"p-{uuid.uuid4().hex[:10]}"
    made = api.ok("POST", "clients/1/projects", {"id": pid, "name": "A project"})
    assert made == {
        "object": "project",
        "id": pid,
        "name": "A project",
        "client": "1",
        "user": None,
        "created": made["created"],
        "updated": made["updated"],
        "metadata": None,
        "deleted": False,
    }
    return pid


def _aiexperiment(api: Api, pid: str, **extra: Any) -> dict[str, Any]:
    return api.ok(
        "POST",
        f"clients/1/projects/{pid}/aiexperiments",
        {
            "name": "ai",
            "parameters": [
                double("x"),
                {"name": "k", "type": "int", "bounds": {"min": 1, "max": 5}},
            ],
            "metrics": [{"name": "acc"}, {"name": "loss", "strategy": "store"}],
            "budget": 4,
            **extra,
        },
    )


def test_projects(api: Api) -> None:
    pid = _project(api)
    assert "already exists" in api.error(
        409, "POST", "clients/1/projects", {"id": pid, "name": "x"}
    )
    assert api.ok("GET", f"clients/1/projects/{pid}")["name"] == "A project"
    changed = api.ok("PUT", f"clients/1/projects/{pid}", {"name": "Renamed", "metadata": {"k": 1}})
    assert (changed["name"], changed["metadata"]) == ("Renamed", {"k": 1})
    assert pid in {p["id"] for p in api.ok("GET", "clients/1/projects")["data"]}
    api.error(404, "GET", "clients/1/projects/no-such-project")
    assert "id" in api.error(400, "POST", "clients/1/projects", {"id": "Bad Id!", "name": "x"})
    api.error(404, "POST", "clients/9/projects", {"id": "elsewhere", "name": "x"})
    # an experiment naming a new project brings it into existence (as over gRPC)
    named = f"q-{uuid.uuid4().hex[:8]}"
    api.ok("POST", "experiments", {"name": "e", "project": named, "parameters": [double("x")]})
    assert api.ok("GET", f"clients/1/projects/{named}")["id"] == named


def test_aiexperiment_create_fetch_list(api: Api) -> None:
    pid = _project(api)
    exp = _aiexperiment(api, pid)
    assert exp["object"] == "aiexperiment" and exp["project"] == pid and exp["budget"] == 4
    # SigOpt's aiexperiment has neither of these keys
    assert "observation_budget" not in exp and "development" not in exp
    assert exp["progress"] == {
        "object": "progress",
        "active_run_count": 0,
        "finished_run_count": 0,
        "total_run_count": 0,
        "remaining_budget": 4,
    }
    assert api.ok("GET", f"aiexperiments/{exp['id']}") == exp
    listed = api.ok("GET", f"clients/1/projects/{pid}/aiexperiments")
    assert [e["id"] for e in listed["data"]] == [exp["id"]]
    base = f"clients/1/projects/{pid}/aiexperiments"
    assert "observation_budget" in api.error(
        400, "POST", base, {"name": "a", "parameters": [double("x")], "observation_budget": 3}
    )
    assert "project" in api.error(
        400, "POST", base, {"name": "a", "parameters": [double("x")], "project": pid}
    )
    api.error(404, "POST", "clients/1/projects/not-there/aiexperiments", {"name": "a"})
    core = api.ok("POST", "experiments", {"name": "core", "parameters": [double("x")]})
    api.error(404, "GET", f"aiexperiments/{core['id']}")
    # a runs-only experiment takes runs, not suggestions or observations
    assert "runs" in api.error(403, "POST", f"experiments/{exp['id']}/suggestions")
    api.error(
        403,
        "POST",
        f"experiments/{exp['id']}/observations",
        {"assignments": {"x": 0.5, "k": 1}, "values": [{"name": "acc", "value": 1}]},
    )


def test_run_of_an_aiexperiment_merge_and_put(api: Api) -> None:
    pid = _project(api)
    exp = _aiexperiment(api, pid)
    run = api.ok(
        "POST", f"aiexperiments/{exp['id']}/training_runs", {"name": "r1", "metadata": {"seed": 1}}
    )
    assert run["object"] == "training_run" and run["state"] == "active"
    assert (
        set(run["assignments"]) == {"x", "k"}
        and run["suggestion"]
        and run["experiment"] == exp["id"]
    )
    assert run["project"] == pid and run["metadata"] == {"seed": 1}
    # empty documents are shown as SigOpt's server shows them
    assert (run["logs"], run["tags"], run["datasets"], run["files"]) == ({}, [], [], [])
    assert run["model"] == {"object": "model", "type": None}
    assert run["source_code"] == {"object": "source_code", "content": None, "hash": None}
    path = f"training_runs/{run['id']}"
    merge = lambda body: api.request("MERGE", path, body, SKIP)  # noqa: E731
    assert merge({"values": {"acc": {"value": 0.5}}}).status_code == 204
    assert merge({"values": {"loss": {"value": 1.5, "value_stddev": 0.2}}}).content == b""
    merge({"metadata": {"note": "a"}})
    merge({"logs": {"stdout": {"content": "hello"}}})
    merge({"logs": {"stderr": {"content": "oops"}}})
    merge({"assignments": {"batch_size": 32}})
    merge({"datasets": {"mnist": {}}})
    merge({"model": {"type": "cnn"}})
    now = api.ok("GET", path)
    assert {n: (v["value"], v["value_stddev"]) for n, v in now["values"].items()} == {
        "acc": (0.5, None),
        "loss": (1.5, 0.2),
    }
    assert now["metadata"] == {"seed": 1, "note": "a"}
    assert now["logs"] == {
        "stdout": {"object": "log", "content": "hello"},
        "stderr": {"object": "log", "content": "oops"},
    }
    assert (
        now["assignments"]["batch_size"] == 32
        and now["assignments"]["x"] == run["assignments"]["x"]
    )
    assert now["datasets"] == ["mnist"] and now["model"] == {"object": "model", "type": "cnn"}
    assert "set by the run's suggestion" in api.error(
        400, "MERGE", path, {"assignments": {"x": 0.123456}}
    )
    # PUT replaces what it names
    put = api.ok("PUT", path, {"metadata": {"only": "this"}, "logs": {"stdout": {"content": "x"}}})
    assert put["metadata"] == {"only": "this"}
    assert put["logs"] == {"stdout": {"object": "log", "content": "x"}}
    assert put["values"]["acc"]["value"] == 0.5
    assert "1124" in api.error(400, "MERGE", path, {"logs": {"stdout": {"content": "y" * 1125}}})
    assert "number" in api.error(400, "MERGE", path, {"values": {"acc": {"value": "high"}}})
    api.error(400, "MERGE", path, {"state": "running"})
    # completing reports the observation to the experiment
    merge({"state": "completed"})
    done = api.ok("GET", path)
    assert done["state"] == "completed" and done["finished"] and done["observation"]
    assert isinstance(done["completed"], int)
    obs = api.ok("GET", f"experiments/{exp['id']}/observations/{done['observation']}")
    assert obs["suggestion"] == run["suggestion"] and not obs["failed"]
    assert {v["name"]: v["value"] for v in obs["values"]} == {"acc": 0.5, "loss": 1.5}
    assert "active" in api.error(400, "MERGE", path, {"state": "active"})
    progress = api.ok("GET", f"aiexperiments/{exp['id']}")["progress"]
    assert (
        progress["finished_run_count"],
        progress["total_run_count"],
        progress["remaining_budget"],
    ) == (1, 1, 3)


@pytest.mark.parametrize(
    ("body", "failed"),
    [({"state": "failed"}, True), ({"state": "completed"}, True)],
)
def test_runs_that_report_failures(api: Api, body: dict[str, Any], failed: bool) -> None:
    """A failed run, and a completed one that logged no value of the optimized metric."""
    pid = _project(api)
    exp = _aiexperiment(api, pid)
    run = api.ok("POST", f"aiexperiments/{exp['id']}/training_runs", {})
    api.request("MERGE", f"training_runs/{run['id']}", {"values": {"loss": {"value": 1}}}, SKIP)
    done = api.ok("MERGE", f"training_runs/{run['id']}", body)
    obs = api.ok("GET", f"experiments/{exp['id']}/observations/{done['observation']}")
    assert obs["failed"] is failed and obs["values"] == []


def test_archive_unarchive_best_runs_and_checkpoints(api: Api, http_server: HttpServer) -> None:
    pid = _project(api)
    exp = _aiexperiment(api, pid)
    runs = []
    for value in (0.2, 0.9, 0.4):
        run = api.ok("POST", f"aiexperiments/{exp['id']}/training_runs", {"name": f"v{value}"})
        api.ok(
            "MERGE",
            f"training_runs/{run['id']}",
            {"values": {"acc": {"value": value}}, "state": "completed"},
        )
        runs.append(run["id"])
    best = api.ok("GET", f"aiexperiments/{exp['id']}/best_training_runs")
    assert best["object"] == "pagination" and [r["id"] for r in best["data"]] == [runs[1]]
    filters = json.dumps([{"field": "experiment", "operator": "==", "value": exp["id"]}])
    listed = api.ok("GET", f"clients/1/projects/{pid}/training_runs", filters=filters, limit=2)
    assert len(listed["data"]) == 2 and listed["paging"]["before"]
    conn = Connection(client_token="t", api_url=http_server.url)
    walked = conn.clients("1").projects(pid).training_runs().fetch(filters=filters, limit=2)
    assert [r.id for r in walked.iterate_pages()] == runs
    api.error(
        400,
        "GET",
        f"clients/1/projects/{pid}/training_runs",
        filters='[{"field":"name","operator":"~","value":1}]',
    )

    cp = api.ok(
        "POST", f"training_runs/{runs[0]}/checkpoints", {"values": [{"name": "acc", "value": 0.1}]}
    )
    assert cp["object"] == "checkpoint" and cp["training_run"] == runs[0] and cp["id"] == "1"
    api.request(
        "POST",
        f"training_runs/{runs[0]}/checkpoints",
        {"values": [{"name": "acc", "value": 0.3}]},
        SKIP,
    )
    fetched = api.ok("GET", f"training_runs/{runs[0]}")
    assert (fetched["checkpoint_count"], fetched["best_checkpoint"]) == (2, "2")
    listed_cps = api.ok("GET", f"training_runs/{runs[0]}/checkpoints")
    assert [c["id"] for c in listed_cps["data"]] == ["2", "1"]

    api.request("DELETE", f"aiexperiments/{exp['id']}", include_runs="true")
    archived = api.ok("GET", f"aiexperiments/{exp['id']}")
    assert archived["state"] == "deleted"
    assert all(api.ok("GET", f"training_runs/{r}")["deleted"] for r in runs)
    api.error(400, "POST", f"aiexperiments/{exp['id']}/training_runs", {})
    assert api.ok("PUT", f"aiexperiments/{exp['id']}", {"state": "active"})["state"] == "active"
    assert api.ok("PUT", f"training_runs/{runs[0]}", {"deleted": False})["deleted"] is False
    api.request("DELETE", f"training_runs/{runs[1]}")
    assert api.ok("GET", f"training_runs/{runs[1]}")["deleted"] is True


def test_checkpoint_limit(api: Api) -> None:
    pid = _project(api)
    run = api.ok("POST", f"clients/1/projects/{pid}/training_runs", {"name": "cp"})
    for i in range(200):
        response = api.request(
            "POST",
            f"training_runs/{run['id']}/checkpoints",
            {"values": [{"name": "m", "value": i}]},
            SKIP,
        )
        assert response.status_code == 204
    assert "200" in api.error(
        400,
        "POST",
        f"training_runs/{run['id']}/checkpoints",
        {"values": [{"name": "m", "value": 1}]},
    )


def test_project_runs_without_experiment_and_batch(api: Api) -> None:
    pid = _project(api)
    run = api.ok(
        "POST", f"clients/1/projects/{pid}/training_runs", {"name": "free", "metadata": {"a": 1}}
    )
    assert run["experiment"] is None and run["assignments"] == {} and run["project"] == pid
    done = api.ok(
        "MERGE",
        f"training_runs/{run['id']}",
        {"assignments": {"lr": 0.1}, "values": {"m": {"value": 2}}, "state": "completed"},
    )
    assert done["observation"] is None and done["assignments"] == {"lr": 0.1}
    batch = api.ok(
        "POST",
        f"clients/1/projects/{pid}/training_runs/batch",
        {"runs": [{"name": "b1", "values": {"m": {"value": 1}}}, {"name": "b2"}], "fields": "id"},
    )
    assert [set(r) for r in batch["data"]] == [{"object", "id"}, {"object", "id"}]
    api.error(404, "POST", "clients/1/projects/nope-nope/training_runs", {"name": "x"})
    api.error(404, "GET", "training_runs/99999999")


def test_run_field_limits(api: Api) -> None:
    pid = _project(api)
    run = api.ok("POST", f"clients/1/projects/{pid}/training_runs", {"name": "limits"})
    path = f"training_runs/{run['id']}"
    assert "assignments" in api.error(400, "MERGE", path, {"assignments": {"k" * 101: 1}})
    assert "assignments" in api.error(400, "MERGE", path, {"assignments": {"k": "v" * 51}})
    assert "values" in api.error(400, "MERGE", path, {"values": {"m" * 101: {"value": 1}}})
    assert "metadata" in api.error(400, "MERGE", path, {"metadata": {"k": "v" * 501}})
    big = {"sys_metadata": {"blob": "x" * (256 * 1024)}}
    assert "262144 bytes" in api.error(400, "MERGE", path, big)
    assert "name" in api.error(400, "PUT", path, {"name": "n" * 101})
    assert api.ok("GET", path)["assignments"] == {}


def test_runs_report_their_assignments_and_a_grid_visits_each_point(api: Api) -> None:
    pid = _project(api)
    exp = api.ok(
        "POST",
        f"clients/1/projects/{pid}/aiexperiments",
        {
            "name": "grid",
            "type": "grid",
            "parameters": [
                {"name": "x", "type": "double", "grid": [0.1, 0.5]},
                {"name": "k", "type": "categorical", "categorical_values": ["a", "b"]},
            ],
            "metrics": [{"name": "acc"}],
        },
    )
    assert exp["budget"] == 4
    runs = []
    for _ in range(4):
        run = api.ok("POST", f"aiexperiments/{exp['id']}/training_runs", {})
        done = {"values": {"acc": {"value": run["assignments"]["x"]}}, "state": "completed"}
        api.request("MERGE", f"training_runs/{run['id']}", done, SKIP)
        runs.append(run["assignments"])
    assert sorted((a["x"], a["k"]) for a in runs) == [
        (0.1, "a"),
        (0.1, "b"),
        (0.5, "a"),
        (0.5, "b"),
    ]
    # each run's observation carries the run's assignments, which the optimizer learns from
    observations = api.ok("GET", f"experiments/{exp['id']}/observations")["data"]
    assert [o["assignments"] for o in observations] == runs


def test_project_and_run_names_hold_no_control_characters(api: Api) -> None:
    """Refused by name, as experiment names are (PostgreSQL text cannot hold NUL)."""
    pid = f"p-{uuid.uuid4().hex[:10]}"
    message = api.error(400, "POST", "clients/1/projects", {"id": pid, "name": "a\x00b"})
    assert "name" in message and "control characters" in message
    api.error(404, "GET", f"clients/1/projects/{pid}")
    exp = _aiexperiment(api, _project(api))
    message = api.error(
        400, "POST", f"aiexperiments/{exp['id']}/training_runs", {"name": "r\x1b[2J"}
    )
    assert "name" in message and "control characters" in message
