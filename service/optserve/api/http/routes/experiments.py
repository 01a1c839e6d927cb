"""/v1/experiments, /v1/clients/{client_id}/experiments, best assignments, stopping criteria
and metric importances."""

from __future__ import annotations

from typing import Any

from ....domain.errors import NotFound
from ....domain.model import Experiment, ExperimentState
from ... import converters as grpc_conv
from .. import convert as cv
from ..app import Ctx, Handler
from ..errors import HttpError
from .common import bad, check_client, flag, page, whole


def create(ctx: Ctx, runs_only: bool = False, project: str | None = None) -> dict[str, Any]:
    exp = cv.experiment_from_json(ctx.body, runs_only)
    if project is not None:
        if "project" in ctx.body:
            raise bad("project", "given by the path")
        ctx.app.get_project(project, ctx.call)
        exp.project = project
    # measured as over gRPC: one limit for both transports
    grpc_conv.check_search_space(exp)
    return cv.experiment_json(ctx.app.create_experiment(exp, None, ctx.call))


def _state_filter(ctx: Ctx) -> tuple[ExperimentState | None, bool]:
    """(state to list, whether to drop deleted ones); SigOpt lists active ones by default."""
    state = ctx.args.get("state", "active")
    if state == "all":
        return None, False
    try:
        return ExperimentState(state), False
    except ValueError:
        raise bad("state", "one of active, deleted, archived, all") from None


def list_experiments(ctx: Ctx, project: str = "", runs_only: bool | None = None) -> dict[str, Any]:
    state, _ = _state_filter(ctx)
    project = project or ctx.args.get("project", "")
    return page(
        ctx,
        lambda size, token: ctx.app.list_experiments(project, state, size, token, ctx.call),
        cv.experiment_json,
        keep=lambda e: runs_only is None or e.runs_only == runs_only,
    )


def get(ctx: Ctx) -> dict[str, Any]:
    return cv.experiment_json(ctx.app.get_experiment(ctx.path["experiment_id"], ctx.call))


def get_ai(ctx: Ctx) -> dict[str, Any]:
    return cv.experiment_json(ai_experiment(ctx))


def ai_experiment(ctx: Ctx) -> Experiment:
    experiment_id = ctx.path["experiment_id"]
    exp = ctx.app.get_experiment(experiment_id, ctx.call)
    if not exp.runs_only:
        raise NotFound(f"aiexperiment {experiment_id!r} not found")
    return exp


def update(ctx: Ctx) -> dict[str, Any]:
    experiment_id = ctx.path["experiment_id"]
    current = ctx.app.get_experiment(experiment_id, ctx.call)
    if ctx.path.get("ai") and not current.runs_only:
        raise NotFound(f"aiexperiment {experiment_id!r} not found")
    patch, paths = cv.experiment_update_from_json(current, ctx.body)
    if not paths:
        return cv.experiment_json(current)
    return cv.experiment_json(ctx.app.update_experiment(experiment_id, patch, paths, ctx.call))


def delete(ctx: Ctx) -> None:
    experiment_id = ctx.path["experiment_id"]
    if ctx.path.get("ai"):
        ai_experiment(ctx)
    ctx.app.soft_delete_experiment(experiment_id, flag(ctx, "include_runs"), ctx.call)


def best_assignments(ctx: Ctx) -> dict[str, Any]:
    observations, _ = ctx.app.best_assignments(ctx.path["experiment_id"], ctx.call)
    return whole([cv.best_assignments_json(o) for o in observations])


def stopping_criteria(ctx: Ctx) -> dict[str, Any]:
    reasons = ctx.app.stopping_reasons(ctx.path["experiment_id"], ctx.call)
    return {"object": "stopping_criteria", "should_stop": bool(reasons), "reasons": reasons}


def metric_importances(ctx: Ctx) -> dict[str, Any]:
    by_metric = ctx.app.parameter_importances(ctx.path["experiment_id"], ctx.call)
    if all(scores is None for scores in by_metric.values()):
        raise HttpError(422, "Not enough observations to calculate parameter importances.")
    # a metric with too few values yet (a stored metric reported now and then) has
    # none, as over gRPC, rather than withholding the others'
    return whole(
        [
            {"object": "metric_importances", "metric": name, "importances": by_metric[name] or {}}
            for name in sorted(by_metric)
        ]
    )


def _client(handler: Any) -> Any:
    def run(ctx: Ctx) -> Any:
        check_client(ctx)
        return handler(ctx)

    return run


def _ai(handler: Any) -> Any:
    def run(ctx: Ctx) -> Any:
        ctx.path["ai"] = "1"
        return handler(ctx)

    return run


ROUTES: list[tuple[str, dict[str, Handler]]] = [
    ("/v1/experiments", {"POST": create, "GET": list_experiments}),
    ("/v1/experiments/{experiment_id}", {"GET": get, "PUT": update, "DELETE": delete}),
    ("/v1/experiments/{experiment_id}/best_assignments", {"GET": best_assignments}),
    ("/v1/experiments/{experiment_id}/stopping_criteria", {"GET": stopping_criteria}),
    ("/v1/experiments/{experiment_id}/metric_importances", {"GET": metric_importances}),
    (
        "/v1/clients/{client_id}/experiments",
        {"POST": _client(create), "GET": _client(list_experiments)},
    ),
    (
        "/v1/aiexperiments/{experiment_id}",
        {"GET": get_ai, "PUT": _ai(update), "DELETE": _ai(delete)},
    ),
]
