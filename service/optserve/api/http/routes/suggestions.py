"""/v1/experiments/{id}/suggestions and queued_suggestions."""

from __future__ import annotations

from typing import Any

from ....domain.model import SuggestionState
from .. import convert as cv
from ..app import Ctx, Handler
from .common import bad, page, whole


def _open_state(ctx: Ctx) -> SuggestionState | None:
    state = ctx.args.get("state")
    if state is None:
        return None
    if state != "open":
        raise bad("state", "only open")
    return SuggestionState.OPEN


def create(ctx: Ctx) -> dict[str, Any]:
    r = cv.Reader()
    r.keys(ctx.body, {"assignments", "metadata", "task"}, "")
    if ctx.body.get("task") is not None:
        r.add("task", "multitask experiments are not supported")
    metadata = r.metadata(ctx.body.get("metadata"), "metadata")
    given = ctx.body.get("assignments")
    assignments = r.assignments(given, "assignments")
    r.done()
    experiment_id = ctx.path["experiment_id"]
    if given is not None:
        made = ctx.app.create_manual_suggestion(
            experiment_id, assignments, metadata, None, ctx.call
        )
    else:
        (made,) = ctx.app.create_suggestions(experiment_id, 1, metadata, None, ctx.call)
    return cv.suggestion_json(made)


def list_suggestions(ctx: Ctx) -> dict[str, Any]:
    experiment_id = ctx.path["experiment_id"]
    state = _open_state(ctx)
    if ctx.args.get("deleted", "false").lower() == "true":
        # deleted suggestions are gone: nothing to list
        return whole([])
    ids = {i for i in ctx.args.get("id", "").split(",") if i}
    return page(
        ctx,
        lambda size, token: ctx.app.list_suggestions(experiment_id, state, size, token, ctx.call),
        cv.suggestion_json,
        keep=lambda s: not ids or s.id in ids,
    )


def delete_all(ctx: Ctx) -> None:
    _open_state(ctx)
    ctx.app.delete_open_suggestions(ctx.path["experiment_id"], ctx.call)


def get(ctx: Ctx) -> dict[str, Any]:
    return cv.suggestion_json(
        ctx.app.get_suggestion(ctx.path["experiment_id"], ctx.path["suggestion_id"], ctx.call)
    )


def update(ctx: Ctx) -> dict[str, Any]:
    r = cv.Reader()
    for key in ctx.body:
        if key != "metadata":
            r.add(key, "only metadata can change")
    metadata = r.metadata(ctx.body.get("metadata"), "metadata")
    r.done()
    return cv.suggestion_json(
        ctx.app.update_suggestion_metadata(
            ctx.path["experiment_id"], ctx.path["suggestion_id"], metadata, ctx.call
        )
    )


def delete(ctx: Ctx) -> None:
    ctx.app.delete_suggestion(ctx.path["experiment_id"], ctx.path["suggestion_id"], ctx.call)


def create_queued(ctx: Ctx) -> dict[str, Any]:
    r = cv.Reader()
    r.keys(ctx.body, {"assignments", "task"}, "")
    if ctx.body.get("task") is not None:
        r.add("task", "multitask experiments are not supported")
    if ctx.body.get("assignments") is None:
        r.add("assignments", "required: an object")
    assignments = r.assignments(ctx.body.get("assignments"), "assignments")
    r.done()
    return cv.queued_suggestion_json(
        ctx.app.create_queued_suggestion(ctx.path["experiment_id"], assignments, ctx.call)
    )


def list_queued(ctx: Ctx) -> dict[str, Any]:
    queued = ctx.app.list_queued_suggestions(ctx.path["experiment_id"], ctx.call)
    return whole([cv.queued_suggestion_json(q) for q in queued])


def get_queued(ctx: Ctx) -> dict[str, Any]:
    return cv.queued_suggestion_json(
        ctx.app.get_queued_suggestion(ctx.path["experiment_id"], ctx.path["queued_id"], ctx.call)
    )


def delete_queued(ctx: Ctx) -> None:
    ctx.app.delete_queued_suggestion(ctx.path["experiment_id"], ctx.path["queued_id"], ctx.call)


BASE = "/v1/experiments/{experiment_id}"
ROUTES: list[tuple[str, dict[str, Handler]]] = [
    (f"{BASE}/suggestions", {"POST": create, "GET": list_suggestions, "DELETE": delete_all}),
    (f"{BASE}/suggestions/{{suggestion_id}}", {"GET": get, "PUT": update, "DELETE": delete}),
    (f"{BASE}/queued_suggestions", {"POST": create_queued, "GET": list_queued}),
    (
        f"{BASE}/queued_suggestions/{{queued_id}}",
        {"GET": get_queued, "DELETE": delete_queued},
    ),
]
