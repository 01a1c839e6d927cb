"""Authentication: every call carries `authorization: Bearer <secret>`, resolved
to a principal (a stored token, or the bootstrap admin token) that the servicers
read from ``CALLER``."""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import grpc

from ..domain import tenancy
from ..domain.tenancy import ANONYMOUS, BOOTSTRAP_ID, Principal, Role
from ..storage import Storage
from ..storage.errors import unavailable

# Health checks stay open so that probes work without a token; reflection does
# only when the server is started with --open-reflection.
HEALTH = "/grpc.health.v1.Health/"
REFLECTION = "/grpc.reflection."
BEARER = "Bearer "
CHECK_SECONDS = 1.0

# The principal of the call being served (set per call by AuthInterceptor).
CALLER: ContextVar[Principal] = ContextVar("optserve_caller", default=ANONYMOUS)


class Authenticator:
    """Resolves bearer secrets. Authentication is on when a bootstrap token is
    configured or the database holds a token; once on, it stays on."""

    def __init__(self, storage: Storage, bootstrap: str | None) -> None:
        self._storage = storage
        self._bootstrap = f"{BEARER}{bootstrap}".encode() if bootstrap else None
        self._lock = threading.Lock()
        self._on = bootstrap is not None
        self._checked = -math.inf

    @property
    def enabled(self) -> bool:
        # Tokens are never deleted (only revoked), so "on" is latched; while off,
        # the database is asked at most every CHECK_SECONDS (a token created
        # through another replica takes effect here within that time).
        if not self._on and time.monotonic() - self._checked > CHECK_SECONDS:
            with self._lock:
                self._on = bool(self._storage.list_tokens())
                self._checked = time.monotonic()
        return self._on

    def token_created(self) -> None:
        self._on = True

    def principal(self, authorization: str) -> Principal | None:
        """The caller for an ``authorization`` header value; None when refused."""
        if not self.enabled:
            return ANONYMOUS
        # the scheme is case-insensitive (RFC 9110), the secret is not
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != BEARER.strip().lower() or not secret:
            return None
        if self._bootstrap is not None and hmac.compare_digest(
            f"{BEARER}{secret}".encode(), self._bootstrap
        ):
            return Principal(BOOTSTRAP_ID, Role.ADMIN)
        token = self._storage.token_by_hash(tenancy.secret_hash(secret))
        return None if token is None else Principal.of(token)


def _with_caller(handler: grpc.RpcMethodHandler, principal: Principal) -> grpc.RpcMethodHandler:
    behavior = handler.unary_unary

    def run(request: Any, context: grpc.ServicerContext) -> Any:
        reset = CALLER.set(principal)
        try:
            return behavior(request, context)
        finally:
            CALLER.reset(reset)

    return grpc.unary_unary_rpc_method_handler(
        run,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _refuse(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    def refuse(request: Any, context: grpc.ServicerContext) -> None:
        context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(refuse)


class AuthInterceptor(grpc.ServerInterceptor):
    """Refuses calls without a valid token (UNAUTHENTICATED) and hands the
    caller's principal to the servicer."""

    def __init__(self, authenticator: Authenticator, open_reflection: bool = False) -> None:
        self._auth = authenticator
        self._open = (HEALTH, REFLECTION) if open_reflection else (HEALTH,)

        def deny(request: Any, context: grpc.ServicerContext) -> None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing, unknown or revoked token")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if handler_call_details.method.startswith(self._open):
            return continuation(handler_call_details)
        sent = dict(handler_call_details.invocation_metadata).get("authorization", "")
        try:
            principal = self._auth.principal(str(sent))
        except Exception as error:
            down = unavailable(error)
            if down is None:
                raise
            return _refuse(grpc.StatusCode.UNAVAILABLE, str(down))
        if principal is None:
            return self._deny
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        return _with_caller(handler, principal)
