"""/v1/tokens/self and /v1/clients/{client_id}."""

from __future__ import annotations

from typing import Any

from .. import convert as cv
from ..app import Ctx, Handler
from .common import check_client


def token_self(ctx: Ctx) -> dict[str, Any]:
    return cv.token_json(ctx.app.caller_token(ctx.call), ctx.secret)


def client(ctx: Ctx) -> dict[str, Any]:
    check_client(ctx)
    return cv.client_json()


ROUTES: list[tuple[str, dict[str, Handler]]] = [
    ("/v1/tokens/self", {"GET": token_self}),
    ("/v1/clients/{client_id}", {"GET": client}),
]
