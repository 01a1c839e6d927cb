"""/v1/clients/{client_id}/projects and what lives in a project."""

from __future__ import annotations

import json
from typing import Any

from .. import convert as cv
from ..app import Ctx, Handler
from . import experiments, runs
from .common import bad, check_client, page, whole


def create(ctx: Ctx) -> dict[str, Any]:
    check_client(ctx)
    return cv.project_json(ctx.app.create_project(cv.project_from_json(ctx.body), ctx.call))


def list_projects(ctx: Ctx) -> dict[str, Any]:
    check_client(ctx)
    return whole([cv.project_json(p) for p in ctx.app.list_projects(ctx.call)])


def get(ctx: Ctx) -> dict[str, Any]:
    check_client(ctx)
    return cv.project_json(ctx.app.get_project(ctx.path["project_id"], ctx.call))


def update(ctx: Ctx) -> dict[str, Any]:
    check_client(ctx)
    r = cv.Reader()
    r.keys(ctx.body, {"name", "metadata", "id", "client"}, "")
    name = r.string(ctx.body.get("name"), "name")
    metadata = r.metadata(ctx.body["metadata"], "metadata") if "metadata" in ctx.body else None
    r.done()
    project_id = ctx.path["project_id"]
    if ctx.body.get("id") not in (None, project_id):
        raise bad("id", "a project's id cannot change")
    return cv.project_json(ctx.app.update_project(project_id, name, metadata, ctx.call))


def create_aiexperiment(ctx: Ctx) -> dict[str, Any]:
    check_client(ctx)
    return experiments.create(ctx, runs_only=True, project=ctx.path["project_id"])


def list_aiexperiments(ctx: Ctx) -> dict[str, Any]:
    check_client(ctx)
    project = ctx.path["project_id"]
    ctx.app.get_project(project, ctx.call)
    return experiments.list_experiments(ctx, project, runs_only=True)


def list_project_experiments(ctx: Ctx) -> dict[str, Any]:
    check_client(ctx)
    project = ctx.path["project_id"]
    ctx.app.get_project(project, ctx.call)
    return experiments.list_experiments(ctx, project)


def create_run(ctx: Ctx) -> dict[str, Any]:
    check_client(ctx)
    return runs.create_in(ctx, ctx.path["project_id"], None, ctx.body)


def create_runs(ctx: Ctx) -> dict[str, Any]:
    check_client(ctx)
    r = cv.Reader()
    r.keys(ctx.body, {"runs"}, "")
    items = r.array(ctx.body.get("runs"), "runs")
    r.done()
    if not 1 <= len(items) <= runs.MAX_RUNS_PER_BATCH:
        raise bad("runs", f"between 1 and {runs.MAX_RUNS_PER_BATCH} runs")
    made = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad(f"runs[{i}]", "must be an object")
    for item in items:
        made.append(runs.create_in(ctx, ctx.path["project_id"], None, item))
    return whole(made)


def _filters(ctx: Ctx) -> tuple[str | None, bool | None]:
    """The experiment and deleted filters of SigOpt's ``filters=[{field, operator, value}]``."""
    experiment, deleted = None, False
    raw = ctx.args.get("filters")
    if not raw:
        return experiment, deleted
    try:
        filters = json.loads(raw)
    except ValueError:
        raise bad("filters", "must be a JSON array") from None
    if not isinstance(filters, list):
        raise bad("filters", "must be a JSON array")
    for i, f in enumerate(filters):
        if not isinstance(f, dict) or f.get("operator") != "==":
            raise bad(f"filters[{i}]", 'supported: {"field", "operator": "==", "value"}')
        if f.get("field") == "experiment":
            experiment = str(f.get("value"))
        elif f.get("field") == "deleted":
            deleted = bool(f.get("value"))
        else:
            raise bad(f"filters[{i}].field", "supported fields: experiment, deleted")
    return experiment, deleted


def list_runs(ctx: Ctx) -> dict[str, Any]:
    check_client(ctx)
    project = ctx.path["project_id"]
    experiment, deleted = _filters(ctx)
    ctx.app.get_project(project, ctx.call)
    return page(
        ctx,
        lambda size, token: ctx.app.list_training_runs(
            project, experiment, size, token, deleted, ctx.call
        ),
        cv.run_json,
    )


BASE = "/v1/clients/{client_id}/projects"
ROUTES: list[tuple[str, dict[str, Handler]]] = [
    (BASE, {"POST": create, "GET": list_projects}),
    (f"{BASE}/{{project_id}}", {"GET": get, "PUT": update}),
    (
        f"{BASE}/{{project_id}}/aiexperiments",
        {"POST": create_aiexperiment, "GET": list_aiexperiments},
    ),
    (f"{BASE}/{{project_id}}/experiments", {"GET": list_project_experiments}),
    (f"{BASE}/{{project_id}}/training_runs", {"POST": create_run, "GET": list_runs}),
    (f"{BASE}/{{project_id}}/training_runs/batch", {"POST": create_runs}),
]
