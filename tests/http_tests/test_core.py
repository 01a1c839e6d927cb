"""The core module over HTTP: experiments, suggestions, queued suggestions,
observations, best assignments; wire conventions (object, string ids, paginations,
query arguments, X-Response-Content: skip, fields)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sigopt import Connection
from sigopt.exception import ApiException

from .conftest import Api, HttpServer, double, simple_experiment


def _objects(doc: Any) -> list[dict[str, Any]]:
    """Every JSON object inside ``doc``."""
    if isinstance(doc, dict):
        return [doc, *(o for v in doc.values() for o in _objects(v))]
    if isinstance(doc, list):
        return [o for v in doc for o in _objects(v)]
    return []


# Maps of user keys: their values need no "object".
USER_MAPS = {"assignments", "metadata", "conditions", "bounds_", "values_map"}


def _all_typed(doc: Any) -> bool:
    def walk(d: Any, key: str = "") -> bool:
        if isinstance(d, dict):
            if key not in USER_MAPS and "object" not in d:
                return False
            return all(walk(v, k) for k, v in d.items() if key not in USER_MAPS)
        if isinstance(d, list):
            return all(walk(v, key) for v in d)
        return True

    return walk(doc)


@pytest.fixture
def conn(http_server: HttpServer) -> Connection:
    return Connection(client_token="any", api_url=http_server.url)


def test_experiment_shape(api: Api) -> None:
    exp = api.ok(
        "POST",
        "experiments",
        {
            "name": "shape",
            "parameters": [
                {"name": "z", "type": "int", "bounds": {"min": 1, "max": 9}},
                {"name": "c", "type": "categorical", "categorical_values": ["a", {"name": "b"}]},
                {
                    "name": "lr",
                    "type": "double",
                    "bounds": {"min": 0.001, "max": 1},
                    "transformation": "log",
                    "default_value": 0.01,
                },
                {
                    "name": "m",
                    "type": "double",
                    "bounds": {"min": 0, "max": 1},
                    "prior": {"name": "normal", "mean": 0.5, "scale": 0.1},
                },
            ],
            "metrics": [{"name": "g", "strategy": "store"}, "f"],  # listed by name
            "metadata": {"team": "x"},
        },
    )
    assert _all_typed(exp)
    assert exp["object"] == "experiment" and isinstance(exp["id"], str)
    assert exp["state"] == "active" and exp["type"] == "offline" and exp["client"] == "1"
    assert isinstance(exp["created"], int) and exp["observation_budget"] is None
    names = [p["name"] for p in exp["parameters"]]
    assert names == sorted(names)
    by_name = {p["name"]: p for p in exp["parameters"]}
    assert by_name["z"]["bounds"] == {"object": "bounds", "min": 1, "max": 9}
    assert [(v["name"], v["enum_index"]) for v in by_name["c"]["categorical_values"]] == [
        ("a", 1),
        ("b", 2),
    ]
    assert by_name["lr"]["transformation"] == "log" and by_name["lr"]["default_value"] == 0.01
    assert by_name["z"]["transformation"] is None
    assert by_name["m"]["prior"] == {
        "object": "normal_prior",
        "name": "normal",
        "mean": 0.5,
        "scale": 0.1,
    }
    # keys SigOpt's server leaves out: grid without a grid, tasks without tasks, and
    # the client-side precision and tunable
    assert not {"grid", "precision", "tunable"} & set(by_name["z"]) and "tasks" not in exp
    assert [(m["name"], m["objective"], m["strategy"]) for m in exp["metrics"]] == [
        ("f", "maximize", "optimize"),
        ("g", "maximize", "store"),
    ]
    assert exp["progress"] == {
        "object": "progress",
        "observation_count": 0,
        "observation_budget_consumed": 0,
        "first_observation": None,
        "last_observation": None,
        "best_observation": None,
    }
    assert api.ok("GET", f"experiments/{exp['id']}") == exp


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"unknown": 1}, "unknown"),
        ({"parameters": []}, "parameters"),
        ({"metrics": []}, "metrics"),
        ({"budget": 5}, "budget"),
        ({"tasks": [{"name": "a", "cost": 1}]}, "tasks"),
        ({"type": "bandit"}, "type"),
        ({"parameters": [{"name": "x", "type": "double"}]}, "bounds"),
        (
            {"parameters": [{"name": "x", "type": "int", "bounds": {"min": 0, "max": 1.5}}]},
            "bounds",
        ),
        (
            {
                "parameters": [
                    {
                        "name": "x",
                        "type": "double",
                        "bounds": {"min": 0, "max": 1},
                        "prior": {"name": "normal", "mean": 5, "scale": 1},
                    }
                ]
            },
            "prior.mean",
        ),
        (
            {
                "parameters": [
                    {
                        "name": "x",
                        "type": "int",
                        "bounds": {"min": 0, "max": 9},
                        "prior": {"name": "beta", "shape_a": 1, "shape_b": 1},
                    }
                ]
            },
            "prior",
        ),
        (
            {
                "parameters": [
                    {
                        "name": "x",
                        "type": "double",
                        "bounds": {"min": 0, "max": 1},
                        "default_value": 2,
                    }
                ]
            },
            "default_value",
        ),
        ({"observation_budget": "ten"}, "observation_budget"),
        ({"metadata": {"k": {"nested": 1}}}, "metadata"),
        ({"name": "x" * 101}, "name"),
        (
            {
                "linear_constraints": [
                    {
                        "type": "less_than",
                        "threshold": -5,
                        "terms": [{"name": "x", "weight": 1}, {"name": "y", "weight": 1}],
                    }
                ]
            },
            "linear_constraints",
        ),
    ],
)
def test_experiment_create_refusals_are_400(api: Api, body: dict[str, Any], field: str) -> None:
    message = api.error(400, "POST", "experiments", {**simple_experiment(), **body})
    assert field in message


def test_official_client_validation_error(conn: Connection) -> None:
    with pytest.raises(ApiException) as caught:
        conn.experiments().create(**simple_experiment(metrics=[]))
    assert caught.value.status_code == 400 and "metrics" in str(caught.value)


def test_experiments_list_walks_every_page(api: Api, conn: Connection) -> None:
    project = f"walk-{uuid.uuid4().hex[:8]}"
    made = {
        api.ok("POST", "experiments", simple_experiment(project=project))["id"] for _ in range(5)
    }
    first = api.ok("GET", "experiments", project=project, limit=2)
    assert first["object"] == "pagination" and len(first["data"]) == 2
    assert first["paging"]["before"] is not None and first["paging"]["after"] is None
    walked = [e.id for e in conn.experiments().fetch(project=project, limit=2).iterate_pages()]
    assert sorted(walked) == sorted(made) and len(walked) == 5
    after = api.ok("GET", "experiments", project=project, limit=3, after=first["paging"]["before"])
    assert after["paging"]["before"] is None and len(after["data"]) == 3
    assert {e["id"] for e in after["data"]}.isdisjoint(e["id"] for e in first["data"])


@pytest.mark.parametrize("limit", ["-1", "1001", "many"])
def test_bad_limits_are_400(api: Api, limit: str) -> None:
    assert "limit" in api.error(400, "GET", "experiments", limit=limit)


def test_update_and_soft_delete(api: Api) -> None:
    exp = api.ok("POST", "experiments", simple_experiment())
    path = f"experiments/{exp['id']}"
    changed = api.ok(
        "PUT", path, {"name": "renamed", "parallel_bandwidth": 3, "metadata": {"a": 1}}
    )
    assert (changed["name"], changed["parallel_bandwidth"], changed["metadata"]) == (
        "renamed",
        3,
        {"a": 1},
    )
    assert "parameters" in api.error(400, "PUT", path, {"parameters": [double("q")]})
    assert "linear_constraints" in api.error(400, "PUT", path, {"linear_constraints": []})
    assert api.request("DELETE", path).json() == {}
    gone = api.ok("GET", path)
    assert gone["state"] == "deleted" and gone["name"] == "renamed"
    api.error(400, "POST", f"{path}/suggestions")
    listed = api.ok("GET", "experiments", limit=1000)
    assert exp["id"] not in {e["id"] for e in listed["data"]}
    deleted = api.ok("GET", "experiments", state="deleted", limit=1000)
    assert exp["id"] in {e["id"] for e in deleted["data"]}
    assert api.ok("PUT", path, {"state": "active"})["state"] == "active"
    assert api.ok("POST", f"{path}/suggestions")["object"] == "suggestion"


def test_suggestions(api: Api, conn: Connection) -> None:
    exp = conn.experiments().create(**simple_experiment())
    s1 = conn.experiments(exp.id).suggestions().create()
    s2 = conn.experiments(exp.id).suggestions().create(metadata={"worker": "w1"})
    manual = conn.experiments(exp.id).suggestions().create(assignments={"x": 0.25, "y": 0.5})
    assert dict(manual.assignments) == {"x": 0.25, "y": 0.5} and manual.state == "open"
    assert isinstance(s1.id, str) and s2.metadata["worker"] == "w1"
    opened = [
        s.id for s in conn.experiments(exp.id).suggestions().fetch(state="open").iterate_pages()
    ]
    assert sorted(opened) == sorted([s1.id, s2.id, manual.id])
    base = f"experiments/{exp.id}/suggestions"
    assert "state" in api.error(400, "GET", base, state="closed")
    assert "assignments" in api.error(400, "POST", base, {"assignments": {"x": 3.0, "y": 0.5}})
    assert "unknown" in api.error(400, "POST", base, {"unknown": 1})
    updated = conn.experiments(exp.id).suggestions(s1.id).update(metadata={"k": "v"})
    assert updated.metadata["k"] == "v"
    assert "metadata" in api.error(400, "PUT", f"{base}/{s1.id}", {"assignments": {"x": 1}})
    conn.experiments(exp.id).suggestions(s1.id).delete()
    api.error(404, "GET", f"{base}/{s1.id}")
    conn.experiments(exp.id).observations().create(
        suggestion=s2.id, values=[{"name": "f", "value": 1}]
    )
    assert conn.experiments(exp.id).suggestions(s2.id).fetch().state == "closed"
    conn.experiments(exp.id).suggestions().delete(state="open")
    left = api.ok("GET", base)
    assert [s["id"] for s in left["data"]] == [s2.id]
    api.error(404, "GET", f"{base}/99999999")


def test_queued_suggestions_come_first(api: Api, conn: Connection) -> None:
    exp = conn.experiments().create(**simple_experiment())
    queue = conn.experiments(exp.id).queued_suggestions()
    q1 = queue.create(assignments={"x": 0.1, "y": 0.2})
    q2 = queue.create(assignments={"x": 0.3, "y": 0.4})
    assert q1.to_json()["object"] == "queued_suggestion" and q1.experiment == exp.id
    assert [q.id for q in queue.fetch().iterate_pages()] == [q1.id, q2.id]
    fetched = conn.experiments(exp.id).queued_suggestions(q2.id).fetch()
    assert dict(fetched.assignments) == {"x": 0.3, "y": 0.4}
    first = conn.experiments(exp.id).suggestions().create()
    assert dict(first.assignments) == {"x": 0.1, "y": 0.2}
    conn.experiments(exp.id).queued_suggestions(q2.id).delete()
    assert list(queue.fetch().iterate_pages()) == []
    second = conn.experiments(exp.id).suggestions().create()
    assert dict(second.assignments) != {"x": 0.3, "y": 0.4}
    base = f"experiments/{exp.id}/queued_suggestions"
    assert "assignments" in api.error(400, "POST", base, {})
    assert "y" in api.error(400, "POST", base, {"assignments": {"x": 0.5}})
    api.error(404, "GET", f"{base}/{q2.id}")


def test_observations(api: Api, conn: Connection) -> None:
    exp = conn.experiments().create(**simple_experiment(metrics=["f"]))
    s = conn.experiments(exp.id).suggestions().create()
    o1 = (
        conn.experiments(exp.id).observations().create(suggestion=s.id, value=2.0, value_stddev=0.1)
    )
    assert (o1.suggestion, o1.values[0].name, o1.values[0].value, o1.values[0].value_stddev) == (
        s.id,
        "f",
        2.0,
        0.1,
    )
    o2 = (
        conn.experiments(exp.id)
        .observations()
        .create(assignments={"x": 0.5, "y": 0.5}, failed=True)
    )
    assert o2.failed and o2.suggestion is None and o2.values == []
    base = f"experiments/{exp.id}/observations"
    for body, field in [
        (
            {
                "assignments": {"x": 0.5, "y": 0.5},
                "failed": True,
                "values": [{"name": "f", "value": 1}],
            },
            "values",
        ),
        ({"assignments": {"x": 0.5, "y": 0.5}}, "values"),
        ({"suggestion": s.id, "assignments": {"x": 0.5, "y": 0.5}, "value": 1}, "assignments"),
        (
            {
                "assignments": {"x": 0.5, "y": 0.5},
                "value": 1,
                "values": [{"name": "f", "value": 1}],
            },
            "value",
        ),
        ({"assignments": {"x": 0.5}, "value": 1}, "y"),
        ({"assignments": {"x": 0.5, "y": 0.5}, "values": [{"name": "nope", "value": 1}]}, "nope"),
        ({"assignments": {"x": 0.5, "y": 0.5}, "value": 1, "color": "red"}, "color"),
        ({"suggestion": "99999999", "value": 1}, "99999999"),  # unknown: 400 too, as SigOpt's
    ]:
        assert field in api.error(400, "POST", base, body)
    assert "closed" in api.error(400, "POST", base, {"suggestion": s.id, "value": 3})
    exp_now = conn.experiments(exp.id).fetch()
    assert exp_now.progress.observation_count == 2
    assert exp_now.progress.first_observation.id == o1.id
    assert exp_now.progress.last_observation.id == o2.id
    updated = (
        conn.experiments(exp.id)
        .observations(o2.id)
        .update(failed=False, values=[{"name": "f", "value": 5}])
    )
    assert not updated.failed and updated.values[0].value == 5
    assert conn.experiments(exp.id).observations(o2.id).fetch().values[0].value == 5
    conn.experiments(exp.id).observations(o1.id).delete()
    api.error(404, "GET", f"{base}/{o1.id}")
    conn.experiments(exp.id).observations().delete()
    assert api.ok("GET", base)["data"] == []


@pytest.mark.filterwarnings("ignore:The .data field only contains")
def test_observation_pages_and_batch(api: Api, conn: Connection) -> None:
    exp = conn.experiments().create(**simple_experiment(metrics=["f"]))
    batch = [
        {"assignments": {"x": i / 10, "y": 0.5}, "values": [{"name": "f", "value": i}]}
        for i in range(7)
    ]
    made = conn.experiments(exp.id).observations().create_batch(observations=batch)
    assert made.count == 7 and [o.values[0].value for o in made.data] == list(range(7))
    page = api.ok("GET", f"experiments/{exp.id}/observations", limit=3)
    assert page["count"] == 7 and len(page["data"]) == 3 and page["paging"]["before"]
    walked = list(conn.experiments(exp.id).observations().fetch(limit=3).iterate_pages())
    assert sorted(o.id for o in walked) == sorted(o.id for o in made.data)
    bad = [*batch[:3], {"assignments": {"x": 2.0, "y": 0.5}, "values": [{"name": "f", "value": 1}]}]
    message = api.error(
        400, "POST", f"experiments/{exp.id}/observations/batch", {"observations": bad}
    )
    assert "observations[3]" in message
    unknown = [*batch[:2], {"suggestion": "99999999", "values": [{"name": "f", "value": 1}]}]
    message = api.error(
        400, "POST", f"experiments/{exp.id}/observations/batch", {"observations": unknown}
    )
    assert "99999999" in message
    assert conn.experiments(exp.id).fetch().progress.observation_count == 7  # none of them stored
    too_many = {"observations": [batch[0]] * 2501}
    assert "2500" in api.error(400, "POST", f"experiments/{exp.id}/observations/batch", too_many)


@pytest.mark.filterwarnings("ignore:The .data field only contains")
def test_best_assignments_single_and_pareto(api: Api, conn: Connection) -> None:
    exp = conn.experiments().create(**simple_experiment(metrics=["f"]))
    assert conn.experiments(exp.id).best_assignments().fetch().count == 0
    for v in (1.0, 3.0, 2.0):
        conn.experiments(exp.id).observations().create(assignments={"x": v / 10, "y": 0}, value=v)
    best = conn.experiments(exp.id).best_assignments().fetch()
    assert best.to_json()["object"] == "pagination"
    assert [b.values[0].value for b in best.data] == [3.0]
    assert best.data[0].to_json()["object"] == "best_assignments"
    assert best.data[0].assignments["x"] == 0.3

    two = conn.experiments().create(
        **simple_experiment(metrics=[{"name": "a"}, {"name": "b", "objective": "minimize"}])
    )
    points = [(1, 1), (2, 2), (3, 1), (0, 0), (3, 3), (2, 0.5)]  # (a maximized, b minimized)
    for i, (a, b) in enumerate(points):
        conn.experiments(two.id).observations().create(
            assignments={"x": i / 10, "y": 0},
            values=[{"name": "a", "value": a}, {"name": "b", "value": b}],
        )
    front = conn.experiments(two.id).best_assignments().fetch()
    pairs = sorted((v[0].value, v[1].value) for v in (b.values for b in front.data))
    assert pairs == [(0, 0), (2, 0.5), (3, 1)]


@pytest.mark.filterwarnings("ignore:The .data field only contains")
def test_num_solutions(conn: Connection) -> None:
    exp = conn.experiments().create(**simple_experiment(num_solutions=3, observation_budget=30))
    assert exp.num_solutions == 3
    for i in range(12):
        conn.experiments(exp.id).observations().create(
            assignments={"x": (i % 4) / 4, "y": (i // 4) / 3}, value=float(i)
        )
    best = conn.experiments(exp.id).best_assignments().fetch()
    assert 1 <= best.count <= 3


def test_skip_header_fields_and_query_args(api: Api) -> None:
    response = api.request(
        "POST", "experiments", simple_experiment(), {"X-Response-Content": "skip"}
    )
    assert response.status_code == 204 and response.content == b""
    exp = api.ok("POST", "experiments", simple_experiment())
    assert api.ok("GET", f"experiments/{exp['id']}", fields="id,name") == {
        "object": "experiment",
        "id": exp["id"],
        "name": "simple",
    }
    page = api.ok("GET", "experiments", limit=1, fields="id")
    assert set(page["data"][0]) == {"object", "id"}


def test_tokens_self_and_clients(api: Api, conn: Connection) -> None:
    token = conn.tokens("self").fetch()
    assert token.client == "1" and token.token == "any"
    assert api.ok("GET", "clients/1")["object"] == "client"
    api.error(404, "GET", "clients/2")
    api.error(404, "GET", "clients/2/experiments")
    exp = conn.clients("1").experiments().create(**simple_experiment())
    listed = [e.id for e in conn.clients("1").experiments().fetch().iterate_pages()]
    assert exp.id in listed


def test_wire_errors(api: Api, http_server: HttpServer) -> None:
    api.error(404, "GET", "nothing/here")
    api.error(404, "GET", "experiments/12x")
    assert "MERGE" in api.error(405, "MERGE", "experiments")
    api.error(405, "PATCH", "experiments")
    response = api.session.post(
        f"{http_server.url}/v1/experiments", data=b"{not json", headers=api.headers, timeout=30
    )
    assert response.status_code == 400 and response.json()["status"] == 400
    for raw in (b"[1, 2]", b'{"name": NaN}'):
        response = api.session.post(
            f"{http_server.url}/v1/experiments", data=raw, headers=api.headers, timeout=30
        )
        assert response.status_code == 400, raw


def test_every_response_carries_the_security_headers(api: Api, http_server: HttpServer) -> None:
    for path, status in (("/v1/experiments", 200), ("/v1/nothing", 404), ("/", 200)):
        response = api.session.get(f"{http_server.url}{path}", headers=api.headers, timeout=30)
        assert response.status_code == status, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["referrer-policy"] == "no-referrer", path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path


def test_objects_have_the_keys_of_sigopts_server(api: Api) -> None:
    """Each object has the keys SigOpt's server gives it, no more (no legacy value or
    task without tasks), no fewer."""
    exp = api.ok("POST", "experiments", simple_experiment(metrics=["f"]))
    base = f"experiments/{exp['id']}"
    suggestion = api.ok("POST", f"{base}/suggestions")
    assert set(suggestion) == {
        "object", "id", "experiment", "assignments", "state", "created", "deleted", "metadata",
    }  # fmt: skip
    observation = api.ok(
        "POST", f"{base}/observations", {"suggestion": suggestion["id"], "value": 1}
    )
    assert set(observation) == {
        "object", "id", "experiment", "suggestion", "assignments", "values", "failed",
        "metadata", "created",
    }  # fmt: skip
    (best,) = api.ok("GET", f"{base}/best_assignments")["data"]
    assert set(best) == {"object", "id", "assignments", "values", "metadata"}
    assert set(observation["values"][0]) == {"object", "name", "value", "value_stddev"}
    queued = api.ok("POST", f"{base}/queued_suggestions", {"assignments": {"x": 0.5, "y": 0.5}})
    assert set(queued) == {"object", "id", "experiment", "assignments", "created"}


def test_stopping_criteria(api: Api, conn: Connection) -> None:
    exp = conn.experiments().create(
        **simple_experiment(parameters=[double("x")], metrics=["f"], observation_budget=12)
    )
    criteria = conn.experiments(exp.id).stopping_criteria().fetch()
    assert (criteria.should_stop, criteria.reasons) == (False, [])

    def observe(*values: float) -> None:
        batch = [{"assignments": {"x": 0.5}, "values": [{"name": "f", "value": v}]} for v in values]
        conn.experiments(exp.id).observations().create_batch(observations=batch)

    # five good values, then five (5 × one parameter) that beat none of them
    observe(10, 9, 8, 7, 6, 1, 2, 3, 4, 5)
    criteria = conn.experiments(exp.id).stopping_criteria().fetch()
    assert (criteria.should_stop, criteria.reasons) == (True, ["possible_stagnation"])
    observe(11, 0)  # a new best, and the budget used up
    doc = api.ok("GET", f"experiments/{exp.id}/stopping_criteria")
    assert doc == {
        "object": "stopping_criteria",
        "should_stop": True,
        "reasons": ["observation_budget_reached"],
    }


def test_metric_importances(api: Api, conn: Connection) -> None:
    exp = conn.experiments().create(**simple_experiment(metrics=["f", "g"]))
    path = f"experiments/{exp.id}/metric_importances"
    assert "Not enough observations" in api.error(422, "GET", path)
    batch = [
        {
            "assignments": {"x": x, "y": y},
            "values": [{"name": "f", "value": 5 * x}, {"name": "g", "value": y}],
        }
        for x, y in [(0.1, 0.9), (0.3, 0.2), (0.5, 0.6), (0.7, 0.1), (0.9, 0.4), (0.2, 0.5)]
    ]
    conn.experiments(exp.id).observations().create_batch(observations=batch)
    listed = list(conn.experiments(exp.id).metric_importances().fetch().iterate_pages())
    assert [m.metric for m in listed] == ["f", "g"]
    f, g = (dict(m.importances) for m in listed)
    assert set(f) == set(g) == {"x", "y"}
    assert sum(f.values()) == pytest.approx(1) and f["x"] > f["y"] and g["y"] > g["x"]
    doc = api.ok("GET", path)
    assert doc["object"] == "pagination" and doc["data"][0]["object"] == "metric_importances"
    one = conn.experiments().create(**simple_experiment(parameters=[double("x")], metrics=["f"]))
    assert api.ok("GET", f"experiments/{one.id}/metric_importances")["data"][0]["importances"] == {
        "x": 1
    }
    # a stored metric reported too rarely yet has none; the optimized one keeps its own
    stored = conn.experiments().create(
        **simple_experiment(metrics=[{"name": "f"}, {"name": "s", "strategy": "store"}])
    )
    conn.experiments(stored.id).observations().create_batch(
        observations=[
            {"assignments": {"x": x, "y": y}, "values": [{"name": "f", "value": 5 * x}]}
            for x, y in [(0.1, 0.9), (0.3, 0.2), (0.5, 0.6), (0.7, 0.1), (0.9, 0.4), (0.2, 0.5)]
        ]
    )
    data = api.ok("GET", f"experiments/{stored.id}/metric_importances")["data"]
    assert [(m["metric"], set(m["importances"])) for m in data] == [("f", {"x", "y"}), ("s", set())]


def test_importances_follow_updated_values(api: Api, conn: Connection) -> None:
    """The importance caches are keyed by the data: an update changes the answer."""
    exp = conn.experiments().create(**simple_experiment(metrics=["f"]))
    rows = [(0.1, 0.9), (0.3, 0.2), (0.5, 0.6), (0.7, 0.1), (0.9, 0.4), (0.2, 0.5)]
    made = [
        api.ok(
            "POST",
            f"experiments/{exp.id}/observations",
            {"assignments": {"x": x, "y": y}, "value": 5 * x},
        )
        for x, y in rows
    ]
    path = f"experiments/{exp.id}/metric_importances"
    before = api.ok("GET", path)["data"][0]["importances"]
    dashboard = f"{api.url}/dashboard/api/experiments/{exp.id}/importance"
    page_before = api.session.get(dashboard, headers=api.headers, timeout=60).json()
    view = f"{api.url}/dashboard/api/experiments/{exp.id}"
    version = api.session.get(view, headers=api.headers, timeout=60).json()["version"]
    assert before["x"] > before["y"]
    for (_, y), o in zip(rows, made, strict=True):  # now y decides
        api.ok("PUT", f"experiments/{exp.id}/observations/{o['id']}", {"value": 5 * y})
    after = api.ok("GET", path)["data"][0]["importances"]
    assert after["y"] > after["x"]
    page_after = api.session.get(dashboard, headers=api.headers, timeout=60).json()
    assert page_after != page_before
    # the experiment page's version changes too, so an open page redraws
    assert api.session.get(view, headers=api.headers, timeout=60).json()["version"] != version


def test_a_lone_surrogate_is_refused_and_nothing_is_written(
    api: Api, http_server: HttpServer
) -> None:
    """JSON's "\\ud800" escape decodes to a string no encoder takes: once a 500 after
    validation, now a 400 at decoding, in values, keys and nested documents alike."""
    before = api.ok("GET", "experiments")["count"]
    for raw in (
        b'{"name": "a \\ud800", "parameters": []}',
        b'{"name": "e", "metadata": {"\\udfff": 1}}',
        b'{"name": "e", "metadata": {"k": ["x", {"y": "\\udc00z"}]}}',
    ):
        response = api.session.post(
            f"{http_server.url}/v1/experiments", data=raw, headers=api.headers, timeout=30
        )
        assert response.status_code == 400, raw
        assert "surrogate" in response.json()["message"]
    assert api.ok("GET", "experiments")["count"] == before
    # a surrogate pair is one character, and welcome
    made = api.ok(
        "POST",
        "experiments",
        {
            "name": "smile \U0001f600",
            "parameters": [{"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}}],
        },
    )
    assert made["name"] == "smile \U0001f600"
