"""The HTTP/JSON API in SigOpt's dialect, on the same Application as gRPC.

``build_app`` returns an ASGI app (Starlette); ``HttpServer`` runs it with
uvicorn in a background thread of the server process. Handlers are plain
functions ``handler(ctx) -> JSON | None`` run in a worker thread: they convert
JSON to domain objects, call one Application method and convert the result
back; every rule lives in the Application and the domain.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...application import Application, Call
from ...domain.limits import MAX_HTTP_BODY_BYTES, MAX_JSON_DEPTH
from ...domain.tenancy import ANONYMOUS, Principal
from ..auth import BEARER, Authenticator
from . import errors

log = logging.getLogger(__name__)

METHODS = ["GET", "POST", "PUT", "DELETE", "MERGE"]


@dataclass
class Ctx:
    """One request as handlers see it."""

    app: Application
    call: Call
    path: dict[str, str]
    args: dict[str, str]
    body: dict[str, Any]
    secret: str | None = None
    method: str = "GET"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def principal(self) -> Principal:
        return self.call.principal


Handler = Callable[[Ctx], Any]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_int(text: str) -> int:
    """A JSON integer, refused beyond the largest double (every number is one
    downstream, and float() of a larger int raises)."""
    value = int(text)
    if abs(value) > sys.float_info.max:
        raise ValueError(f"the number {text[:24]}... exceeds the largest double")
    return value


def _depth(doc: Any) -> int:
    """How deep arrays and objects nest in ``doc`` (iteratively: no recursion limit).

    Raises:
        UnicodeEncodeError: a string or key holds a lone surrogate (JSON's ``\\ud800``
            escapes decode to one, and no later encoder accepts it).
    """
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, str):
            node.encode()
        elif isinstance(node, dict | list):
            deepest = max(deepest, level)
            if isinstance(node, dict):
                stack.extend((key, level) for key in node)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return deepest


def _json_response(status: int, content: Any) -> Response:
    text = json.dumps(content, separators=(",", ":"), allow_nan=False)
    return Response(text, status_code=status, media_type="application/json")


def _project(result: Any, fields: str) -> Any:
    """SigOpt's ``fields=a,b``: only those fields of the object (of each item of a page)."""
    names = {f.strip() for f in fields.split(",") if f.strip()} | {"object"}

    def keep(obj: Any) -> Any:
        return {k: v for k, v in obj.items() if k in names} if isinstance(obj, dict) else obj

    if isinstance(result, dict) and result.get("object") == "pagination":
        return {**result, "data": [keep(x) for x in result["data"]]}
    return keep(result)


class Api:
    """Authentication, decoding and error mapping around the handlers."""

    def __init__(
        self, app: Application, authenticator: Authenticator, stopping: threading.Event
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.stopping = stopping

    def principal(self, authorization: str | None) -> tuple[Principal, str | None]:
        """The caller of a request with this Authorization header, and its token.

        SigOpt's clients send HTTP Basic with the token as user name and no
        password; ``Bearer TOKEN`` is accepted too.
        """
        secret = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "basic":
                try:
                    decoded = base64.b64decode(value.strip(), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    raise errors.HttpError(400, "unparsable Authorization header") from None
                secret = decoded.partition(":")[0]
            elif scheme.lower() == "bearer":
                secret = value.strip()
            else:
                raise errors.HttpError(400, "Authorization: use Basic (token as user name)")
        if not self.authenticator.enabled:
            return ANONYMOUS, secret
        if not secret:
            raise errors.HttpError(401, "No API token provided")
        principal = self.authenticator.principal(f"{BEARER}{secret}")
        if principal is None:
            raise errors.HttpError(401, "Invalid API token: missing, unknown or revoked")
        return principal, secret

    def endpoint(self, handlers: dict[str, Handler]) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            method = request.method.upper()
            handler = handlers.get(method)
            if handler is None:
                allowed = ", ".join(sorted(handlers))
                return _json_response(
                    405, errors.body(405, f"method {method} not allowed here (allowed: {allowed})")
                )
            try:
                raw = await _read_body(request)
            except errors.HttpError as error:
                return _json_response(error.status, errors.body(error.status, str(error)))
            return await run_in_threadpool(self._serve, handler, request, method, raw)

        return handle

    def _serve(self, handler: Handler, request: Request, method: str, raw: bytes) -> Response:
        where = f"{method} {request.url.path}"
        try:
            principal, secret = self.principal(request.headers.get("authorization"))
            body = _decode(raw) if method in ("POST", "PUT", "MERGE") else {}
            args = dict(request.query_params)
            fields = args.pop("fields", None) or body.pop("fields", None)
            stopping = self.stopping
            ctx = Ctx(
                app=self.app,
                call=Call(principal=principal, alive=lambda: not stopping.is_set()),
                path=dict(request.path_params),
                args=args,
                body=body,
                secret=secret,
                method=method,
            )
            result = handler(ctx)
        except Exception as error:
            status, content = errors.of(error, where)
            return _json_response(status, content)
        if request.headers.get("x-response-content", "").lower() == "skip":
            return Response(status_code=204)
        if result is None:
            result = {}
        if isinstance(fields, str) and fields:
            result = _project(result, fields)
        return _json_response(200, result)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_HTTP_BODY_BYTES:
        raise errors.HttpError(413, f"a request body has at most {MAX_HTTP_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_HTTP_BODY_BYTES:
            raise errors.HttpError(413, f"a request body has at most {MAX_HTTP_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    too_deep = f"the body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep"
    try:
        doc = json.loads(raw, parse_constant=_reject_constant, parse_int=_finite_int)
    except RecursionError:
        raise errors.HttpError(400, too_deep) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise errors.HttpError(400, f"the body is not JSON: {str(error)[:200]}") from None
    if not isinstance(doc, dict):
        raise errors.HttpError(400, "the body must be a JSON object")
    try:
        depth = _depth(doc)
    except UnicodeEncodeError:
        lone = "the body holds a lone UTF-16 surrogate (\\ud800-\\udfff)"
        raise errors.HttpError(400, lone) from None
    if depth > MAX_JSON_DEPTH:
        raise errors.HttpError(400, too_deep)
    return doc


async def _http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {404: f"no endpoint {request.url.path}", 405: "method not allowed"}.get(
        status, getattr(exc, "detail", "error")
    )
    return _json_response(status, errors.body(status, message))


def build_app(
    app: Application,
    authenticator: Authenticator,
    stopping: threading.Event | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The ASGI app: SigOpt's ``/v1/...`` routes plus ``extra_routes`` (mounted
    first, e.g. ``/metrics`` or a dashboard)."""
    from . import routes

    api = Api(app, authenticator, stopping or threading.Event())
    table = [
        Route(path, api.endpoint(handlers), methods=METHODS) for path, handlers in routes.table()
    ]
    return Starlette(
        routes=[*extra_routes, *table],
        exception_handlers={HTTPException: _http_exception},
        middleware=[Middleware(SecurityHeaders)],
    )


# Every response: nothing may frame it, sniff its type or learn its address (the
# dashboard takes a token in its query string), and a page may load scripts and
# data from this server only. Inline styles stay allowed: the chart library's
# tooltips are markup with style attributes.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
        b"frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI middleware adding ``SECURITY_HEADERS`` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


class HttpServer:
    """uvicorn serving an ASGI app from a background thread; bound at construction."""

    def __init__(
        self,
        asgi: Any,
        host: str,
        port: int,
        grace: float = 10.0,
        tls: tuple[str, str, str | None] | None = None,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port = self._socket.getsockname()[1]
        options: dict[str, Any] = {}
        if tls is not None:
            import ssl

            cert, key, client_ca = tls
            options = {"ssl_certfile": cert, "ssl_keyfile": key}
            if client_ca:
                options |= {"ssl_ca_certs": client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
        config = uvicorn.Config(
            asgi,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=max(1, round(grace)),
            **options,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="optserve-http",
            daemon=True,
        )

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError("the HTTP server did not start")
            time.sleep(0.01)

    def begin_stop(self) -> None:
        """Stops accepting; requests in flight get the grace period."""
        self._server.should_exit = True

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
