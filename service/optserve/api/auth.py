"""Optional bearer-token check: with a token configured, every call must carry it."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import grpc

# Health checks and reflection stay open so that probes and tools work without the token.
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class TokenInterceptor(grpc.ServerInterceptor):
    """Rejects calls whose ``authorization`` metadata is not ``Bearer <token>``."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

        def deny(request: Any, context: grpc.ServicerContext) -> None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if handler_call_details.method.startswith(OPEN_SERVICES):
            return continuation(handler_call_details)
        sent = dict(handler_call_details.invocation_metadata).get("authorization", "")
        if hmac.compare_digest(str(sent).encode(), self._expected):
            return continuation(handler_call_details)
        return self._deny
