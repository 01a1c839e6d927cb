"""A read-only web dashboard: the experiments of a server, and for each its best-so-far
curve, observations, parallel coordinates, parameter importance, Pareto front,
constraint-metric feasibility and open suggestions, refreshed while it runs.

``routes(app, authenticator)`` are Starlette routes for the HTTP server: ``/`` (the
page), ``/dashboard/static/...`` (its script, style and the vendored ECharts, served
from this package: nothing is fetched from elsewhere) and ``/dashboard/api/...``
(JSON read through the same Application as gRPC, with the caller's token).
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..api.auth import Authenticator
from ..application import Application
from .api import DashboardApi

STATIC = Path(__file__).parent / "static"


def routes(app: Application, authenticator: Authenticator) -> list[BaseRoute]:
    api = DashboardApi(app, authenticator)
    return [
        Route("/", api.index, methods=["GET"]),
        Route("/dashboard/api/experiments", api.experiments, methods=["GET"]),
        Route("/dashboard/api/experiments/{experiment_id}", api.experiment, methods=["GET"]),
        Route(
            "/dashboard/api/experiments/{experiment_id}/importance",
            api.importance,
            methods=["GET"],
        ),
        Mount("/dashboard/static", app=StaticFiles(directory=STATIC), name="dashboard-static"),
    ]
