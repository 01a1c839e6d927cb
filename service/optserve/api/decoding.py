"""Requests are decoded in the handler, never by grpcio's ``request_deserializer``.

When a ``request_deserializer`` raises, grpcio 1.85 (``grpc/_server.py``) fails the call with
INTERNAL and a logged traceback, then ``_unary_request`` (or the end of a response stream)
sends a second status on the same call; that batch fails with
GRPC_CALL_ERROR_TOO_MANY_OPERATIONS and its tag, which ``Call._start_batch`` has
Py_INCREF'd and which holds the server call, is never released: about 16-20 KB per request,
for good (scripts/grpcio_deserializer_leak.py reproduces it). Here every method is registered
with the identity deserializer, so grpcio hands over the raw bytes, and the handler parses
them: undecodable bytes become INVALID_ARGUMENT with a rate-limited log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import grpc

from ..domain.errors import InvalidArgument
from .errors import RateLimitedLog, to_status

log = logging.getLogger(__name__)
_undecodable_log = RateLimitedLog(log)

# What a generated ``add_<Service>Servicer_to_server(servicer, server)`` looks like.
Register = Callable[[Any, Any], None]
# Wraps each call (for example to count the calls in flight); gets the call's context.
CallScope = Callable[[grpc.ServicerContext], AbstractContextManager[Any]]


def no_scope(context: grpc.ServicerContext) -> AbstractContextManager[Any]:
    return nullcontext()


class _Collector:
    """Stands in for a ``grpc.Server`` to collect what a generated function registers."""

    def __init__(self) -> None:
        self.services: dict[str, dict[str, grpc.RpcMethodHandler]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass  # the same handlers also come through add_registered_method_handlers

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        self.services[service] = handlers


def add_servicer(
    register: Register, servicer: Any, server: grpc.Server, scope: CallScope = no_scope
) -> None:
    """Registers ``servicer`` as ``register`` would, but with requests decoded in the handler."""
    collector = _Collector()
    register(servicer, collector)
    if not collector.services:
        raise TypeError(f"{register.__name__} registered no service")
    for service, handlers in collector.services.items():
        raw = {
            name: _decoding(f"/{service}/{name}", handler, scope)
            for name, handler in handlers.items()
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, raw),))
        server.add_registered_method_handlers(service, raw)


def _decode(
    method: str, parse: Callable[[bytes], Any], data: bytes, context: grpc.ServicerContext
) -> Any:
    try:
        return parse(data)
    except Exception as error:  # protobuf raises DecodeError; anything else means the same
        _undecodable_log.log(
            logging.WARNING,
            "undecodable request to %s from %s: %s (%d bytes)",
            method,
            context.peer(),
            error,
            len(data),
        )
        context.abort_with_status(
            to_status(
                InvalidArgument.single(
                    "request", f"the request bytes are not a valid message for {method}"
                )
            )
        )
        raise  # not reached: abort raises


def _decoding(
    method: str, handler: grpc.RpcMethodHandler, scope: CallScope
) -> grpc.RpcMethodHandler:
    parse = handler.request_deserializer
    serialize = handler.response_serializer
    if parse is None:  # already raw bytes
        return handler

    if handler.unary_unary is not None:
        unary_unary = handler.unary_unary

        def call_unary_unary(data: bytes, context: grpc.ServicerContext) -> Any:
            with scope(context):
                return unary_unary(_decode(method, parse, data, context), context)

        return grpc.unary_unary_rpc_method_handler(call_unary_unary, response_serializer=serialize)
    if handler.unary_stream is not None:
        unary_stream = handler.unary_stream
        if getattr(unary_stream, "experimental_non_blocking", False):
            # Health's Watch answers through a callback instead of holding a worker thread.
            def call_non_blocking(
                data: bytes, context: grpc.ServicerContext, send: Callable[[Any], None]
            ) -> None:
                unary_stream(_decode(method, parse, data, context), context, send)

            call_non_blocking.experimental_non_blocking = True  # type: ignore[attr-defined]
            call_non_blocking.experimental_thread_pool = getattr(  # type: ignore[attr-defined]
                unary_stream, "experimental_thread_pool", None
            )
            return grpc.unary_stream_rpc_method_handler(
                call_non_blocking, response_serializer=serialize
            )

        def call_unary_stream(data: bytes, context: grpc.ServicerContext) -> Iterator[Any]:
            with scope(context):
                yield from unary_stream(_decode(method, parse, data, context), context)

        return grpc.unary_stream_rpc_method_handler(
            call_unary_stream, response_serializer=serialize
        )

    def requests(stream: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[Any]:
        for data in stream:
            yield _decode(method, parse, data, context)

    if handler.stream_unary is not None:
        stream_unary = handler.stream_unary

        def call_stream_unary(stream: Iterator[bytes], context: grpc.ServicerContext) -> Any:
            with scope(context):
                return stream_unary(requests(stream, context), context)

        return grpc.stream_unary_rpc_method_handler(
            call_stream_unary, response_serializer=serialize
        )
    stream_stream = handler.stream_stream

    def call_stream_stream(stream: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[Any]:
        with scope(context):
            yield from stream_stream(requests(stream, context), context)

    return grpc.stream_stream_rpc_method_handler(call_stream_stream, response_serializer=serialize)
