"""/v1/aiexperiments/{id}/training_runs, /v1/training_runs/{id} and checkpoints."""

from __future__ import annotations

from typing import Any

from ....domain.runs import RunPatch
from .. import convert as cv
from ..app import Ctx, Handler
from . import experiments
from .common import page, whole

MAX_RUNS_PER_BATCH = 10_000
CREATE_KEYS = cv.RUN_KEYS


def create_in(
    ctx: Ctx, project: str | None, experiment_id: str | None, body: dict[str, Any]
) -> dict[str, Any]:
    """A run from a create body: name and metadata, then any other run fields as a PUT."""
    r = cv.Reader()
    r.keys(body, CREATE_KEYS, "")
    name = r.string(body.get("name"), "name") or ""
    metadata = r.metadata(body.get("metadata"), "metadata")
    r.done()
    rest = {k: v for k, v in body.items() if k not in ("name", "metadata")}
    patch = cv.run_patch_from_json(rest) if rest else None
    run = ctx.app.create_training_run(project, experiment_id, name, metadata, ctx.call)
    if patch is not None:
        run = ctx.app.update_training_run(run.id, patch, merge=True, call=ctx.call)
    return cv.run_json(run)


def create_on_experiment(ctx: Ctx) -> dict[str, Any]:
    experiments.ai_experiment(ctx)
    return create_in(ctx, None, ctx.path["experiment_id"], ctx.body)


def list_on_experiment(ctx: Ctx) -> dict[str, Any]:
    experiment_id = ctx.path["experiment_id"]
    return page(
        ctx,
        lambda size, token: ctx.app.list_training_runs(
            None, experiment_id, size, token, False, ctx.call
        ),
        cv.run_json,
    )


def best(ctx: Ctx) -> dict[str, Any]:
    found = ctx.app.best_training_runs(ctx.path["experiment_id"], ctx.call)
    return whole([cv.run_json(run) for run in found])


def get(ctx: Ctx) -> dict[str, Any]:
    return cv.run_json(ctx.app.get_training_run(ctx.path["run_id"], ctx.call))


def update(ctx: Ctx) -> dict[str, Any]:
    patch = cv.run_patch_from_json(ctx.body)
    merge = ctx.method == "MERGE"
    return cv.run_json(ctx.app.update_training_run(ctx.path["run_id"], patch, merge, ctx.call))


def delete(ctx: Ctx) -> None:
    ctx.app.update_training_run(ctx.path["run_id"], RunPatch(deleted=True), True, ctx.call)


def create_checkpoint(ctx: Ctx) -> dict[str, Any]:
    r = cv.Reader()
    r.keys(ctx.body, {"values", "metadata"}, "")
    values = cv.run_values_from_json(r, ctx.body.get("values"), "values")
    metadata = r.metadata(ctx.body.get("metadata"), "metadata")
    r.done()
    run_id = ctx.path["run_id"]
    return cv.checkpoint_json(run_id, ctx.app.create_checkpoint(run_id, values, metadata, ctx.call))


def list_checkpoints(ctx: Ctx) -> dict[str, Any]:
    run = ctx.app.get_training_run(ctx.path["run_id"], ctx.call)
    return whole([cv.checkpoint_json(run.id, c) for c in reversed(run.checkpoints)])


ROUTES: list[tuple[str, dict[str, Handler]]] = [
    (
        "/v1/aiexperiments/{experiment_id}/training_runs",
        {"POST": create_on_experiment, "GET": list_on_experiment},
    ),
    ("/v1/aiexperiments/{experiment_id}/best_training_runs", {"GET": best}),
    ("/v1/experiments/{experiment_id}/best_training_runs", {"GET": best}),
    ("/v1/training_runs/{run_id}", {"GET": get, "PUT": update, "MERGE": update, "DELETE": delete}),
    (
        "/v1/training_runs/{run_id}/checkpoints",
        {"POST": create_checkpoint, "GET": list_checkpoints},
    ),
]
