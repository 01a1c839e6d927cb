"""/v1/experiments/{id}/observations (and /batch)."""

from __future__ import annotations

from typing import Any

from ....domain.errors import InvalidArgument, NotFound
from ....domain.limits import MAX_OBSERVATIONS_PER_BATCH
from .. import convert as cv
from ..app import Ctx, Handler
from .common import bad, page, whole


def create(ctx: Ctx) -> dict[str, Any]:
    experiment_id = ctx.path["experiment_id"]
    exp = ctx.app.get_experiment(experiment_id, ctx.call)
    obs = cv.observation_from_json(exp, ctx.body)
    try:
        made = ctx.app.create_observation(experiment_id, obs, ctx.call)
    except NotFound as error:
        raise _no_suggestion(error, "suggestion") from None
    return cv.observation_json(made)


def _no_suggestion(error: NotFound, field: str) -> InvalidArgument:
    # The experiment was found above: SigOpt answers an unknown suggestion with 400.
    return bad(field, f"No suggestion: {error}")


def create_batch(ctx: Ctx) -> dict[str, Any]:
    experiment_id = ctx.path["experiment_id"]
    r = cv.Reader()
    r.keys(ctx.body, {"observations", "no_optimize"}, "")
    given = ctx.body.get("observations")
    if given is None:
        r.add("observations", "required: an array")
    items = r.array(given, "observations")
    r.done()
    if not 1 <= len(items) <= MAX_OBSERVATIONS_PER_BATCH:
        raise bad("observations", f"between 1 and {MAX_OBSERVATIONS_PER_BATCH} observations")
    exp = ctx.app.get_experiment(experiment_id, ctx.call)
    observations = [
        cv.observation_from_json(exp, o, f"observations[{i}]", r) for i, o in enumerate(items)
    ]
    r.done()
    try:
        made = ctx.app.create_observations(experiment_id, observations, ctx.call)
    except NotFound as error:
        raise _no_suggestion(error, "observations") from None
    return whole([cv.observation_json(o) for o in made])


def list_observations(ctx: Ctx) -> dict[str, Any]:
    experiment_id = ctx.path["experiment_id"]
    total = ctx.app.get_experiment(experiment_id, ctx.call).progress.observation_count
    return page(
        ctx,
        lambda size, token: ctx.app.list_observations(experiment_id, size, token, ctx.call),
        cv.observation_json,
        count=total,
    )


def delete_all(ctx: Ctx) -> None:
    ctx.app.delete_observations(ctx.path["experiment_id"], ctx.call)


def get(ctx: Ctx) -> dict[str, Any]:
    return cv.observation_json(
        ctx.app.get_observation(ctx.path["experiment_id"], ctx.path["observation_id"], ctx.call)
    )


def update(ctx: Ctx) -> dict[str, Any]:
    experiment_id, observation_id = ctx.path["experiment_id"], ctx.path["observation_id"]
    exp = ctx.app.get_experiment(experiment_id, ctx.call)
    current = ctx.app.get_observation(experiment_id, observation_id, ctx.call)
    patch, paths = cv.observation_update_from_json(exp, current, ctx.body)
    return cv.observation_json(ctx.app.update_observation(experiment_id, patch, paths, ctx.call))


def delete(ctx: Ctx) -> None:
    ctx.app.delete_observation(ctx.path["experiment_id"], ctx.path["observation_id"], ctx.call)


BASE = "/v1/experiments/{experiment_id}/observations"
ROUTES: list[tuple[str, dict[str, Handler]]] = [
    (BASE, {"POST": create, "GET": list_observations, "DELETE": delete_all}),
    (f"{BASE}/batch", {"POST": create_batch}),
    (f"{BASE}/{{observation_id}}", {"GET": get, "PUT": update, "DELETE": delete}),
]
