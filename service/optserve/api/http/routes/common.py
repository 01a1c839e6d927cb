"""Helpers shared by the routes: query arguments, pages bounded in bytes, clients."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ....domain.errors import FieldViolation, InvalidArgument, NotFound
from ....domain.limits import MAX_PAGE_SIZE, MAX_RESPONSE_BYTES
from ....storage import Page
from .. import convert as cv
from ..app import Ctx

# Items read from storage at a time while filling a page.
CHUNK = 100


def bad(field: str, description: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation(field, description)])


def check_client(ctx: Ctx) -> None:
    if ctx.path.get("client_id", cv.CLIENT_ID) != cv.CLIENT_ID:
        raise NotFound(f"client {ctx.path['client_id'][:40]!r} not found")


def flag(ctx: Ctx, name: str, default: bool = False) -> bool:
    value = ctx.args.get(name)
    if value is None:
        value = ctx.body.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise bad(name, "must be true or false")


def limit(ctx: Ctx) -> int:
    raw = ctx.args.get("limit")
    if raw is None:
        return MAX_PAGE_SIZE
    try:
        value = int(raw)
    except ValueError:
        raise bad("limit", "must be an integer") from None
    if not 0 <= value <= MAX_PAGE_SIZE:
        raise bad("limit", f"must be between 0 and {MAX_PAGE_SIZE}")
    return value


def _size(doc: Any) -> int:
    return len(json.dumps(doc, separators=(",", ":")).encode()) + 1


def page(
    ctx: Ctx,
    fetch: Callable[[int, str], Page[Any]],
    to_json: Callable[[Any], dict[str, Any]],
    keep: Callable[[Any], bool] = lambda _: True,
    count: int | None = None,
) -> dict[str, Any]:
    """A SigOpt pagination of up to ``limit`` items from ``fetch(size, token)``.

    ``before`` and ``after`` are opaque markers that continue a walk (the one
    sent is the one returned). The page ends early before it passes
    ``MAX_RESPONSE_BYTES``; its marker then points right after its last item.
    ``keep`` drops items (the page may then hold fewer).
    """
    before, after = ctx.args.get("before"), ctx.args.get("after")
    if before and after:
        raise bad("before", "give before or after, not both")
    wanted = limit(ctx)
    token = before or after or ""
    out: list[dict[str, Any]] = []
    used = 0
    while len(out) < wanted:
        size = min(CHUNK, wanted - len(out))
        full = False
        while True:
            chunk = fetch(size, token)
            docs = [to_json(x) for x in chunk.items]
            fit, fit_bytes = 0, 0
            for d in docs:
                s = _size(d)
                # the first item of a response always goes, whatever its size
                if used + fit_bytes + s > MAX_RESPONSE_BYTES and (out or fit):
                    break
                fit, fit_bytes = fit + 1, fit_bytes + s
            if fit == len(docs):
                break
            if fit == 0:
                return _paged(out, token, after, count)
            # read exactly the items that fit again, for the marker right after them
            size, full = fit, True
        out += [d for d, x in zip(docs, chunk.items, strict=True) if keep(x)]
        used += fit_bytes
        token = chunk.next_token
        if full or not token:
            break
    return _paged(out, token, after, count)


def _paged(
    data: list[dict[str, Any]], token: str, after: str | None, count: int | None
) -> dict[str, Any]:
    if after:
        return cv.pagination(data, None, token or None, count)
    return cv.pagination(data, token or None, None, count)


def whole(items: list[dict[str, Any]]) -> dict[str, Any]:
    return cv.pagination(items, None)
