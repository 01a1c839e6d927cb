"""Prometheus metrics and structured logs.

* ``CallInterceptor`` (a gRPC server interceptor) counts and times every call by
  service, method and status code, times successful CreateSuggestions calls by
  experiment type, and gives each call a request id (the client's
  ``x-request-id`` metadata when it sends a usable one) that log records made
  during the call carry and that the reply's initial metadata returns.
* ``instrument_storage`` wraps a ``Storage`` so that every operation is timed and
  stored observations are counted; it also lets a scrape count open suggestions.
* ``HttpMetricsMiddleware`` does the same for an ASGI app (by route and status).
* ``/metrics`` is served by ``start_metrics_server`` (prometheus_client's own
  HTTP server) or by any ASGI server mounting ``metrics_asgi_app()``.
* ``use_json_logs`` turns the root logger's output into one JSON object per line.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, cast

import grpc
import prometheus_client
from google.protobuf import descriptor_pool
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .domain.errors import OptserveError
from .domain.limits import MAX_PAGE_SIZE
from .storage import Storage
from .storage.errors import unavailable

log = logging.getLogger(__name__)
access_log = logging.getLogger("optserve.access")

REGISTRY = prometheus_client.REGISTRY
# No `*_created` series next to each counter and histogram: they double what is
# scraped and say nothing useful about a long-running server.
prometheus_client.disable_created_metrics()

# Calls range from a cached read (well under 1 ms) to a batch of 100 suggestions (tens of s).
CALL_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
STORAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
UNKNOWN = "unknown"

RPC_LABELS = ("service", "method", "code")
REQUESTS = prometheus_client.Counter(
    "optserve_grpc_requests",
    "gRPC calls handled, by service, method and status code",
    RPC_LABELS,
    registry=REGISTRY,
)
REQUEST_SECONDS = prometheus_client.Histogram(
    "optserve_grpc_request_duration_seconds",
    "Time from the start of a gRPC call's handler to its end, by service, method and status code",
    RPC_LABELS,
    buckets=CALL_BUCKETS,
    registry=REGISTRY,
)
IN_FLIGHT = prometheus_client.Gauge(
    "optserve_grpc_requests_in_flight",
    "gRPC calls being handled now",
    registry=REGISTRY,
)
SUGGESTION_SECONDS = prometheus_client.Histogram(
    "optserve_suggestion_duration_seconds",
    "Duration of successful CreateSuggestions calls, by experiment type",
    ("experiment_type",),
    buckets=CALL_BUCKETS,
    registry=REGISTRY,
)
SUGGESTIONS_CREATED = prometheus_client.Counter(
    "optserve_suggestions_created",
    "Suggestions returned by successful CreateSuggestions calls, by experiment type",
    ("experiment_type",),
    registry=REGISTRY,
)
OBSERVATIONS_WRITTEN = prometheus_client.Counter(
    "optserve_observations_written",
    "Observations stored by CreateObservation and BatchCreateObservations (a retry answered"
    " from its request id is not stored again)",
    registry=REGISTRY,
)
STORAGE_SECONDS = prometheus_client.Histogram(
    "optserve_storage_operation_duration_seconds",
    "Duration of storage operations, by operation (a method of the Storage interface)",
    ("operation",),
    buckets=STORAGE_BUCKETS,
    registry=REGISTRY,
)
STORAGE_ERRORS = prometheus_client.Counter(
    "optserve_storage_operation_errors",
    "Storage operations that raised, by operation and exception type (NotFound is an answer"
    " too, not a fault)",
    ("operation", "error"),
    registry=REGISTRY,
)


HTTP_LABELS = ("method", "route", "status")
HTTP_REQUESTS = prometheus_client.Counter(
    "optserve_http_requests",
    "HTTP requests answered, by method, route template and status code",
    HTTP_LABELS,
    registry=REGISTRY,
)
HTTP_SECONDS = prometheus_client.Histogram(
    "optserve_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status code",
    HTTP_LABELS,
    buckets=CALL_BUCKETS,
    registry=REGISTRY,
)


# ---------------------------------------------------------------- request ids

# The call being served: its request id and RPC ("Service/Method"); empty outside calls.
REQUEST_ID: ContextVar[str] = ContextVar("optserve_request_id", default="")
RPC: ContextVar[str] = ContextVar("optserve_rpc", default="")
REQUEST_ID_HEADER = "x-request-id"
# What a client may choose: short, printable, safe in logs and label-free.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


# Generated ids: a random prefix per process and a counter, 32 hex digits like a
# UUID's. Unique without a system call per call (uuid4's os.urandom let go of the
# GIL and queued for it again on every call under load).
_generated_prefix = secrets.token_hex(8)
_generated_count = itertools.count()


def _new_prefix() -> None:
    global _generated_prefix
    _generated_prefix = secrets.token_hex(8)


os.register_at_fork(after_in_child=_new_prefix)


def request_id_of(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """The client's ``x-request-id`` when it is usable, else a new unique one."""
    for key, value in metadata or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str):
            if _CLIENT_REQUEST_ID.fullmatch(value):
                return value
            break
    return f"{_generated_prefix}{next(_generated_count) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


# Only methods the protobuf pool knows are remembered: the paths clients send are not.
_methods: dict[str, tuple[str, str]] = {}


def _known_method(path: str) -> tuple[str, str] | None:
    """(service, method) of a method path the protobuf pool knows; None otherwise, so that
    arbitrary paths sent by clients do not become label values."""
    found = _methods.get(path)
    if found is not None:
        return found
    parts = path.split("/")
    if len(parts) != 3 or parts[0]:
        return None
    try:
        service = descriptor_pool.Default().FindServiceByName(parts[1])
    except KeyError:
        return None
    if parts[2] not in service.methods_by_name:
        return None
    _methods[path] = (parts[1], parts[2])
    return _methods[path]


def _code_name(context: grpc.ServicerContext, raised: bool) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    # grpcio answers UNKNOWN for an exception it was not told the status of
    return "UNKNOWN" if raised else "OK"


class CallInterceptor(grpc.ServerInterceptor):
    """Counts, times and labels every call (see the module docstring).

    ``experiment_type`` maps an experiment id to its type's name; types never
    change, so answers are cached.
    """

    MAX_CACHED_TYPES = 10_000

    def __init__(self, experiment_type: Callable[[str], str]) -> None:
        self._experiment_type = experiment_type
        self._types: dict[str, str] = {}
        self._lock = threading.Lock()

    def type_of(self, experiment_id: str) -> str:
        with self._lock:
            found = self._types.get(experiment_id)
        if found is not None:
            return found
        try:
            found = self._experiment_type(experiment_id)
        except OptserveError:  # deleted meanwhile, or not visible: still count the call
            return UNKNOWN
        except Exception as error:
            # a label must not fail the call it counts, but a bug must not go unseen
            if unavailable(error) is None:
                log.warning("cannot read the type of experiment %s", experiment_id, exc_info=True)
            return UNKNOWN
        with self._lock:
            if len(self._types) >= self.MAX_CACHED_TYPES:
                self._types.clear()
            self._types[experiment_id] = found
        return found

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        names = _known_method(handler_call_details.method)
        if handler is None or names is None:
            REQUESTS.labels(UNKNOWN, UNKNOWN, "UNIMPLEMENTED").inc()
            return handler
        metadata = handler_call_details.invocation_metadata
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, names, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, names, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        stream = handler.unary_stream or handler.stream_stream
        if getattr(stream, "experimental_non_blocking", False):
            return handler  # health's Watch: answers through callbacks, held open for long
        wrapped = self._stream(stream, names, metadata)
        make = (
            grpc.unary_stream_rpc_method_handler
            if handler.unary_stream is not None
            else grpc.stream_stream_rpc_method_handler
        )
        return make(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _unary(
        self, behavior: Callable[..., Any], names: tuple[str, str], metadata: Any
    ) -> Callable[..., Any]:
        service, method = names

        def run(request: Any, context: grpc.ServicerContext) -> Any:
            with _Measured(service, method, metadata, context) as measured:
                response = behavior(request, context)
                if method == "CreateSuggestions" and response.suggestions:
                    kind = self.type_of(response.suggestions[0].experiment_id)
                    SUGGESTIONS_CREATED.labels(kind).inc(len(response.suggestions))
                    measured.after = lambda seconds: SUGGESTION_SECONDS.labels(kind).observe(
                        seconds
                    )
                return response

        return run

    def _stream(
        self, behavior: Callable[..., Any], names: tuple[str, str], metadata: Any
    ) -> Callable[..., Any]:
        service, method = names

        def run(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with _Measured(service, method, metadata, context):
                yield from behavior(request, context)

        return run


class _Measured:
    """One call: request id and RPC set for its logs, counted and timed on exit."""

    def __init__(
        self, service: str, method: str, metadata: Any, context: grpc.ServicerContext
    ) -> None:
        self.service, self.method, self.context = service, method, context
        self.request_id = request_id_of(metadata)
        self.after: Callable[[float], None] | None = None

    def __enter__(self) -> _Measured:
        self._tokens = (
            REQUEST_ID.set(self.request_id),
            RPC.set(f"{self.service}/{self.method}"),
        )
        IN_FLIGHT.inc()
        self._start = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: Any, tb: Any) -> None:
        seconds = time.perf_counter() - self._start
        # The request id goes back with the status, after any trailing metadata the
        # call set (an error's details): sent ahead as initial metadata, it cost
        # every call one more operation of the transport.
        with contextlib.suppress(Exception):  # the client is gone; nothing to send
            sent = self.context.trailing_metadata() or ()
            self.context.set_trailing_metadata((*sent, (REQUEST_ID_HEADER, self.request_id)))
        IN_FLIGHT.dec()
        code = _code_name(self.context, kind is not None)
        REQUESTS.labels(self.service, self.method, code).inc()
        REQUEST_SECONDS.labels(self.service, self.method, code).observe(seconds)
        if self.after is not None and code == "OK":
            self.after(seconds)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "%s %s %.1f ms request %s",
                self.method,
                code,
                seconds * 1000,
                self.request_id,
                extra={"code": code, "duration_ms": round(seconds * 1000, 3)},
            )
        REQUEST_ID.reset(self._tokens[0])
        RPC.reset(self._tokens[1])


# ---------------------------------------------------------------- HTTP

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "MERGE"})


class HttpMetricsMiddleware:
    """ASGI middleware doing for HTTP what ``CallInterceptor`` does for gRPC: counts and
    times each request by method, route template (Starlette's ``scope["route"]``, so that
    ids in paths do not become label values; ``unmatched`` when no route took it) and
    status; gives it a request id (the client's ``x-request-id`` when usable) that its
    log lines carry and its response returns."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        request_id = request_id_of(headers)
        method = scope["method"] if scope["method"] in HTTP_METHODS else "other"
        status = 500  # what the server answers when the app fails before responding

        async def send_with_id(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        tokens = REQUEST_ID.set(request_id), RPC.set(f"{method} {scope['path']}")
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None)
            label = f"{scope.get('root_path', '')}{template}" if template else "unmatched"
            HTTP_REQUESTS.labels(method, label, str(status)).inc()
            HTTP_SECONDS.labels(method, label, str(status)).observe(seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d %.1f ms request %s",
                    method,
                    label,
                    status,
                    seconds * 1000,
                    request_id,
                    extra={"code": status, "duration_ms": round(seconds * 1000, 3)},
                )
            REQUEST_ID.reset(tokens[0])
            RPC.reset(tokens[1])


# ---------------------------------------------------------------- storage


# Not timed: returns a context manager (its wait is the caller's), or ends the store.
_UNTIMED = frozenset({"experiment_lock", "close"})


class _TimedStorage:
    """Forwards every attribute to a storage; its methods are timed (STORAGE_SECONDS)."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._storage, name)
        if name.startswith("_") or name in _UNTIMED or not callable(target):
            return target
        histogram = STORAGE_SECONDS.labels(name)
        # how many observations a call stored, from what it returns
        stored: Callable[[Any], int] | None = {
            "create_observation": lambda _: 1,
            "create_observations": len,
        }.get(name)

        @functools.wraps(target)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = target(*args, **kwargs)
            except Exception as error:
                STORAGE_ERRORS.labels(name, type(error).__name__).inc()
                raise
            finally:
                histogram.observe(time.perf_counter() - start)
            if stored is not None:
                OBSERVATIONS_WRITTEN.inc(stored(result))
            return result

        # later lookups find the wrapper on the instance, skipping __getattr__
        setattr(self, name, timed)
        return timed


class _OpenSuggestions(Collector):
    """``optserve_open_suggestions{experiment_type}``, counted from the storage on scrape."""

    def __init__(self) -> None:
        self.storage: Storage | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return [self._family()]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "optserve_open_suggestions",
            "Open (not observed, not expired) suggestions, by experiment type",
            labels=["experiment_type"],
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        storage = self.storage
        if storage is not None:
            counts: dict[str, int] = {}
            token = ""
            try:
                while True:
                    page = storage.list_experiments("", None, MAX_PAGE_SIZE, token)
                    for exp in page.items:
                        kind = exp.type.value
                        counts[kind] = counts.get(kind, 0) + exp.progress.open_suggestion_count
                    token = page.next_token
                    if not token:
                        break
            except Exception:
                log.warning("cannot count open suggestions for /metrics", exc_info=True)
                return
            for kind, count in sorted(counts.items()):
                family.add_metric([kind], count)
        yield family


_OPEN_SUGGESTIONS = _OpenSuggestions()
REGISTRY.register(_OPEN_SUGGESTIONS)


def instrument_storage(storage: Storage) -> Storage:
    """``storage`` with every operation timed (once, however often it is passed here);
    scrapes count its open suggestions."""
    if isinstance(storage, _TimedStorage):
        return storage
    _OPEN_SUGGESTIONS.storage = storage
    return cast(Storage, _TimedStorage(storage))


def untimed(storage: Storage) -> Storage:
    """The storage ``instrument_storage`` wrapped (``storage`` itself when not wrapped)."""
    return storage._storage if isinstance(storage, _TimedStorage) else storage


# ---------------------------------------------------------------- serving /metrics


def start_metrics_server(port: int, host: str = "127.0.0.1") -> int:
    """Serves ``/metrics`` on ``host:port`` from a daemon thread; returns the bound port."""
    server, _thread = prometheus_client.start_http_server(port, addr=host, registry=REGISTRY)
    return int(server.server_port)


def metrics_asgi_app() -> Any:
    """An ASGI app answering with the metrics in Prometheus's text format (mount at /metrics)."""
    return prometheus_client.make_asgi_app(registry=REGISTRY)


class _Asgi:
    """An ASGI callable that Starlette's Route serves as an app, not as a request handler
    (a plain function would be taken for one)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def metrics_route(path: str = "/metrics") -> Any:
    """A Starlette route serving ``metrics_asgi_app()`` at exactly ``path``."""
    from starlette.routing import Route

    return Route(path, endpoint=_Asgi(metrics_asgi_app()), methods=["GET"])


# ---------------------------------------------------------------- logs


_previous_factory = logging.getLogRecordFactory()


def _record_with_call(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every record remembers the call it was made in (its request id and RPC), whichever
    handler formats it later, in whichever thread."""
    record = _previous_factory(*args, **kwargs)
    record.request_id = REQUEST_ID.get()
    record.rpc = RPC.get()
    return record


logging.setLogRecordFactory(_record_with_call)


# Fields a record may carry through ``extra=`` that the JSON lines keep.
EXTRA_FIELDS = ("code", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and
    request_id and rpc when the record was made during a call."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "")
        if request_id:
            entry["request_id"] = request_id
            entry["rpc"] = getattr(record, "rpc", "")
        for name in EXTRA_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def use_json_logs(logger: logging.Logger | None = None) -> None:
    """Formats every handler of ``logger`` (the root logger by default) as JSON lines."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
