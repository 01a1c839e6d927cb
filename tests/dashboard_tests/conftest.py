"""A real server serving the dashboard (`optserve serve --http-port`), real experiments in
it, and a real headless Chromium (Debian's package, driven by Playwright) that records
console errors."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from optserve.v1 import service_pb2_grpc

from ..http_tests.conftest import HttpServer, start
from ..service_tests.helpers import categorical, create, double, integer, observe, suggest

CHROMIUM = os.environ.get("OPTSERVE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Dashboard:
    server: HttpServer
    url: str  # the dashboard: the HTTP server's root
    target: str  # gRPC

    def stub(self) -> service_pb2_grpc.OptimizationServiceStub:
        return self.server.stub()

    def stop(self) -> int:
        return self.server.stop()


def start_dashboard(directory: Path, env: dict[str, str] | None = None) -> Dashboard:
    """``optserve serve --http-port 0``: the dashboard is at the HTTP server's ``/``."""
    server = start(directory / "optserve.db", env=env)
    return Dashboard(server, server.url + "/", server.target)


@dataclass
class Experiments:
    single: object  # 10 observations (one failed), 2 open suggestions
    pareto: object  # two minimized metrics and a constraint metric, 12 observations
    losses: list[float | None] = field(default_factory=list)


def _loss(a: dict) -> float:
    return (a["x"] - 0.3) ** 2 + 0.01 * a["n"] + {"a": 0.0, "b": 0.2, "c": 0.5}[a["kind"]]


def values_of(s) -> dict:
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in s.assignments.items()}


def _fill(stub) -> Experiments:
    single = create(
        stub,
        name="dashboard single",
        type="EXPERIMENT_TYPE_RANDOM",
        parameters=[double("x"), integer("n", 1, 5), categorical("kind", ["a", "b", "c"])],
        metrics=[{"name": "loss", "objective": "METRIC_OBJECTIVE_MINIMIZE"}],
        observationBudget=30,
    )
    losses: list[float | None] = []
    for i, s in enumerate(suggest(stub, single.id, count=10)):
        if i == 3:
            observe(stub, single.id, suggestionId=s.id, failed=True)
            losses.append(None)
            continue
        loss = _loss(values_of(s))
        observe(stub, single.id, suggestionId=s.id, values=[{"name": "loss", "value": loss}])
        losses.append(loss)
    suggest(stub, single.id, count=2)
    pareto = create(
        stub,
        name="dashboard pareto",
        type="EXPERIMENT_TYPE_RANDOM",
        parameters=[double("x"), double("y")],
        metrics=[
            {"name": "f1", "objective": "METRIC_OBJECTIVE_MINIMIZE"},
            {"name": "f2", "objective": "METRIC_OBJECTIVE_MINIMIZE"},
            {
                "name": "cost",
                "objective": "METRIC_OBJECTIVE_MINIMIZE",
                "strategy": "METRIC_STRATEGY_CONSTRAINT",
                "threshold": 0.8,
            },
        ],
        observationBudget=40,
    )
    for s in suggest(stub, pareto.id, count=12):
        a = values_of(s)
        values = [
            {"name": "f1", "value": a["x"]},
            {"name": "f2", "value": (1 - a["x"]) ** 2 + a["y"]},
            {"name": "cost", "value": a["x"] + 0.5 * a["y"]},
        ]
        observe(stub, pareto.id, suggestionId=s.id, values=values)
    return Experiments(single, pareto, losses)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    running = start_dashboard(tmp_path_factory.mktemp("dashboard"))
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="module")
def experiments(dashboard: Dashboard) -> Experiments:
    return _fill(dashboard.stub())


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS
        )
        yield launched
        launched.close()


class Page:
    """A browser page that keeps every console error and uncaught exception."""

    def __init__(self, browser) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def series(self, chart: str) -> dict[str, int]:
        """Data points per series of the chart in element ``chart``."""
        return self.page.evaluate(
            """id => Object.fromEntries(echarts.getInstanceByDom(document.getElementById(id))
                 .getOption().series.map((s, i) => [s.name || String(i), s.data.length]))""",
            chart,
        )

    def rows(self, table: str) -> int:
        return self.page.locator(f"#{table} tbody tr").count()

    def wait_rows(self, table: str, count: int) -> None:
        self.page.wait_for_function(
            "([t, n]) => document.querySelectorAll(`#${t} tbody tr`).length === n",
            arg=[table, count],
            timeout=30_000,
        )


@pytest.fixture
def page(browser) -> Iterator[Page]:
    opened = Page(browser)
    yield opened
    opened.page.close()
