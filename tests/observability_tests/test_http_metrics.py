"""`optserve serve --http-port`: /metrics on the HTTP server, HTTP requests counted by
route template and status, gRPC and HTTP in the same registry."""

from __future__ import annotations

import json

import requests

from optserve.v1 import service_pb2 as pb

from ..http_tests.conftest import Api, simple_experiment, start
from .conftest import samples


def http_counts(scraped: dict) -> dict[tuple[str, str, str], float]:
    return {
        (dict(labels)["method"], dict(labels)["route"], dict(labels)["status"]): value
        for (name, labels), value in scraped.items()
        if name == "optserve_http_requests_total"
    }


def test_http_requests_and_metrics_on_the_http_port(tmp_path):
    server = start(tmp_path / "optserve.db", "--log-format", "json", "--access-log")
    try:
        api = Api(server.url)
        created = api.ok("POST", "experiments", simple_experiment())
        for _ in range(3):
            api.ok("GET", f"experiments/{created['id']}")
        api.error(404, "GET", "experiments/987654")
        assert requests.get(f"{server.url}/nowhere", timeout=30).status_code == 404
        page = requests.get(f"{server.url}/", timeout=30)
        assert page.status_code == 200 and "<title>optserve</title>" in page.text
        page_id = page.headers["x-request-id"]
        assert len(page_id) == 32
        server.stub().GetExperiment(pb.GetExperimentRequest(id=created["id"]))
        reply = requests.get(f"{server.url}/metrics", timeout=30)
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain")
        scraped = samples(reply.text)
    finally:
        assert server.stop() == 0
    logged = [json.loads(line) for line in server.tail if line.startswith("{")]
    access = [e for e in logged if e["logger"] == "optserve.access"]
    page_lines = [e for e in access if e["request_id"] == page_id]
    assert len(page_lines) == 1
    assert page_lines[0]["message"].startswith("GET / 200 ")
    assert page_lines[0]["code"] == 200
    item = "/v1/experiments/{experiment_id}"
    counts = http_counts(scraped)
    assert counts == {
        ("POST", "/v1/experiments", "200"): 1,
        ("GET", item, "200"): 3,
        ("GET", item, "404"): 1,
        ("GET", "unmatched", "404"): 1,
        ("GET", "/", "200"): 1,
        # the scrape itself is counted once it has answered
    }
    grpc_get = (
        "optserve_grpc_requests_total",
        (
            ("code", "OK"),
            ("method", "GetExperiment"),
            ("service", "optserve.v1.OptimizationService"),
        ),
    )
    assert scraped[grpc_get] == 1
    # an experiment created over HTTP counts its suggestions' experiment type like gRPC's
    assert ("optserve_open_suggestions", (("experiment_type", "offline"),)) in scraped
