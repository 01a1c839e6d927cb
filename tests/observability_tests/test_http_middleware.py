"""HttpMetricsMiddleware: HTTP requests counted by method, route template and status, with
a request id per request (in process: an ASGI app is called as a server would)."""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace

import pytest

from optserve import observability
from optserve.observability import REGISTRY, HttpMetricsMiddleware

ROUTE = "/v1/experiments/{experiment_id}"


async def tiny_router(scope, receive, send) -> None:
    """Routes as Starlette does: the matched route goes into scope["route"]."""
    parts = scope["path"].strip("/").split("/")
    if len(parts) == 3 and parts[:2] == ["v1", "experiments"]:
        scope["route"] = SimpleNamespace(path=ROUTE)
        if parts[2] == "boom":
            raise RuntimeError("a bug")
        logging.getLogger("optserve.test").warning("serving %s", parts[2])
        status, body = 200, {"id": parts[2]}
    else:
        status, body = 404, {"message": "not found"}
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def request(app, method: str, path: str, headers=()) -> tuple[int, dict[str, str]]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in headers],
    }
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


def count(method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("optserve_http_requests_total", labels) or 0.0


def histogram_count(method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    value = REGISTRY.get_sample_value("optserve_http_request_duration_seconds_count", labels)
    return value or 0.0


def test_requests_are_counted_by_route_template_and_status(caplog):
    app = HttpMetricsMiddleware(tiny_router)
    keys = [
        ("GET", ROUTE, 200),
        ("GET", "unmatched", 404),
        ("other", "unmatched", 404),
        ("POST", ROUTE, 500),
    ]
    before = {k: (count(*k), histogram_count(*k)) for k in keys}
    caplog.set_level(logging.INFO)
    status, headers = request(app, "GET", "/v1/experiments/1")
    assert status == 200
    generated = headers["x-request-id"]
    assert len(generated) == 32
    status, headers = request(app, "GET", "/v1/experiments/2", [("x-request-id", "http-trace-2")])
    assert (status, headers["x-request-id"]) == (200, "http-trace-2")
    assert request(app, "GET", "/v1/nothing/here/at/all")[0] == 404
    assert request(app, "BREW", "/coffee")[0] == 404  # unknown methods share one label
    with pytest.raises(RuntimeError):
        request(app, "POST", "/v1/experiments/boom")
    after = {k: (count(*k), histogram_count(*k)) for k in keys}
    added = {k: (after[k][0] - before[k][0], after[k][1] - before[k][1]) for k in keys}
    assert added == {
        ("GET", ROUTE, 200): (2, 2),
        ("GET", "unmatched", 404): (1, 1),
        ("other", "unmatched", 404): (1, 1),
        ("POST", ROUTE, 500): (1, 1),
    }
    # the id of each request is on the lines logged while it ran, and on its access line
    formatter = observability.JsonFormatter()
    served = [json.loads(formatter.format(r)) for r in caplog.records if r.name == "optserve.test"]
    assert [(e["message"], e["request_id"], e["rpc"]) for e in served] == [
        ("serving 1", generated, "GET /v1/experiments/1"),
        ("serving 2", "http-trace-2", "GET /v1/experiments/2"),
    ]
    access = [r for r in caplog.records if r.name == "optserve.access"]
    assert [r.getMessage().split(" ")[:3] for r in access] == [
        ["GET", ROUTE, "200"],
        ["GET", ROUTE, "200"],
        ["GET", "unmatched", "404"],
        ["other", "unmatched", "404"],
        ["POST", ROUTE, "500"],
    ]
    assert access[1].getMessage().endswith("request http-trace-2")


def test_with_starlette():
    starlette = pytest.importorskip("starlette.applications")
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def show(req):
        return JSONResponse({"id": req.path_params["experiment_id"]})

    app = HttpMetricsMiddleware(starlette.Starlette(routes=[Route(ROUTE, show)]))
    before = count("GET", ROUTE, 200), count("GET", "unmatched", 404)
    assert request(app, "GET", "/v1/experiments/7")[0] == 200
    assert request(app, "GET", "/v1/experiments/8")[0] == 200
    assert request(app, "GET", "/elsewhere")[0] == 404
    assert count("GET", ROUTE, 200) - before[0] == 2
    assert count("GET", "unmatched", 404) - before[1] == 1
