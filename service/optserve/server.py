"""The gRPC server: OptimizationService, health checking and reflection."""

from __future__ import annotations

import logging
import os
import signal
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from . import observability
from .api import decoding
from .api.auth import Authenticator, AuthInterceptor
from .api.servicer import OptimizationServicer
from .api.token_servicer import TokenServicer
from .application import Application
from .storage import SqliteStorage, Storage, is_postgres_url
from .storage.preflight import StorageProbe, preflight
from .storage.sqlite import SchemaTooNew
from .v1 import service_pb2, service_pb2_grpc, token_pb2, token_pb2_grpc

log = logging.getLogger(__name__)
SERVICE_NAME = service_pb2.DESCRIPTOR.services_by_name["OptimizationService"].full_name
TOKEN_SERVICE_NAME = token_pb2.DESCRIPTOR.services_by_name["TokenService"].full_name
# What health reports on: the whole server ("") and each optserve service.
# The overall status ("") last: whoever watches it and sees a change finds the
# services' statuses changed already.
HEALTH_NAMES = (SERVICE_NAME, TOKEN_SERVICE_NAME, "")
# How often the serving main thread wakes to run a signal handler (see serve).
SIGNAL_POLL_SECONDS = 0.2


class StartupError(Exception):
    """A setting the server cannot start with; the message says which and why."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the server's certificate chain and key; a CA to require client certificates."""

    cert: Path
    key: Path
    client_ca: Path | None = None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise StartupError(f"cannot read {what} {path}: {error.strerror}") from None


def tls_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    """Server credentials; the files are checked here, not at the first handshake."""
    cert = _read(tls.cert, "TLS certificate")
    key = _read(tls.key, "TLS key")
    ca = _read(tls.client_ca, "client CA") if tls.client_ca else None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # an encrypted key gets no password: the server cannot prompt for one
        context.load_cert_chain(tls.cert, tls.key, password=lambda: b"")
    except ssl.SSLError as error:
        cause = f" ({error.reason})" if error.reason and error.reason != "PEM_LIB" else ""
        raise StartupError(
            f"TLS certificate {tls.cert} and key {tls.key}: not a PEM certificate and its"
            f" unencrypted private key{cause}"
        ) from None
    if tls.client_ca:
        try:
            context.load_verify_locations(cafile=tls.client_ca)
        except ssl.SSLError:
            raise StartupError(f"client CA {tls.client_ca}: not a PEM certificate") from None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


class CallTracker:
    """Counts the calls in flight; a call that ends in INTERNAL wakes the storage probe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self.internal_error = threading.Event()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @contextmanager
    def scope(self, context: grpc.ServicerContext) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
            if context.code() is grpc.StatusCode.INTERNAL:
                self.internal_error.set()


def create_server(
    storage: Storage,
    host: str = "127.0.0.1",
    port: int = 0,
    max_workers: int = 16,
    token: str | None = None,
    open_reflection: bool = False,
    stopping: threading.Event | None = None,
    *,
    credentials: grpc.ServerCredentials | None = None,
    tracker: CallTracker | None = None,
    app: Application | None = None,
    authenticator: Authenticator | None = None,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A configured, not yet started server.

    ``token`` is the bootstrap admin token; with it, or with tokens stored in
    the database, every call needs ``authorization: Bearer <secret>``.
    ``stopping`` is set when the shutdown grace period ends: writes still
    running then roll back. ``credentials`` serves TLS. Every service decodes
    its requests in the handler (see ``api/decoding.py``); ``tracker`` counts
    the optserve calls in flight. ``app`` and ``authenticator``, when given, are
    shared with another transport (the HTTP API).

    Returns:
        (server, bound port, health servicer).
    """
    untimed = observability.untimed(storage)
    calls = observability.CallInterceptor(lambda id: untimed.get_experiment(id).type.value)
    storage = observability.instrument_storage(storage)  # timed; counted on /metrics scrapes
    authenticator = authenticator or Authenticator(storage, token)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="optserve"),
        # metrics first: refused calls (UNAUTHENTICATED) are counted too
        interceptors=[calls, AuthInterceptor(authenticator, open_reflection)],
        options=[("grpc.so_reuseport", 0)],
    )
    app = app or Application(storage)
    stopping = stopping or threading.Event()
    scope = tracker.scope if tracker else decoding.no_scope
    decoding.add_servicer(
        service_pb2_grpc.add_OptimizationServiceServicer_to_server,
        OptimizationServicer(app, stopping),
        server,
        scope,
    )
    decoding.add_servicer(
        token_pb2_grpc.add_TokenServiceServicer_to_server,
        TokenServicer(app, authenticator, stopping),
        server,
        scope,
    )
    # Health (open without a token) and reflection leak just as much through grpcio's
    # deserializer path, so they are registered the same way.
    health_servicer = health.HealthServicer()
    decoding.add_servicer(health_pb2_grpc.add_HealthServicer_to_server, health_servicer, server)
    decoding.add_servicer(
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server,
        reflection.ReflectionServicer(
            (SERVICE_NAME, TOKEN_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)
        ),
        server,
    )
    if not authenticator.enabled:
        log.warning("authentication is off: no bootstrap token and no stored tokens")
    address = f"{host}:{port}"
    try:
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
    except RuntimeError as error:  # grpc's "Failed to bind to address ..."
        raise OSError(f"cannot listen on {address}: {str(error).split(';')[0]}") from None
    if bound == 0:
        raise OSError(f"cannot listen on {address}")
    return server, bound, health_servicer


class Probe(Protocol):
    def check(self) -> str | None: ...


@dataclass
class OpenedStorage:
    """The storage a server runs on, how health checks it, and what to release at exit."""

    storage: Storage
    probe: Probe
    held: IO[str] | None = None

    def close(self) -> None:
        self.storage.close()
        if self.held is not None:
            self.held.close()


class _CallProbe:
    def __init__(self, check: Callable[[], str | None]) -> None:
        self._check = check

    def check(self) -> str | None:
        return self._check()


def open_storage(db: str | Path, *, migrate: bool = False, pool_size: int = 20) -> OpenedStorage:
    """The storage ``--db`` names: a ``postgresql://`` URL, or an SQLite file (checked and
    locked by preflight, since one process must own it; it migrates itself on open).

    Raises:
        StartupError, PreflightError: the storage cannot be used.
    """
    if is_postgres_url(db):
        from .storage import postgres

        try:
            shared = postgres.PostgresStorage(str(db), migrate=migrate, pool_size=pool_size)
        except (postgres.DatabaseUnavailable, postgres.SchemaOutdated, SchemaTooNew) as error:
            raise StartupError(str(error)) from None
        return OpenedStorage(shared, _CallProbe(shared.probe))
    path = Path(db)
    held_lock = preflight(path)
    try:
        storage = SqliteStorage(path)
    except SchemaTooNew as error:
        held_lock.close()
        raise StartupError(str(error)) from None
    except BaseException:
        held_lock.close()
        raise
    return OpenedStorage(storage, StorageProbe(path), held_lock)


def _watch_storage(
    probe: Probe,
    health_servicer: health.HealthServicer,
    stop: threading.Event,
    tracker: CallTracker,
    interval: float,
) -> None:
    """Health follows the storage probe: every ``interval`` s and after any INTERNAL."""
    serving = True
    while not stop.is_set():
        tracker.internal_error.wait(interval)
        tracker.internal_error.clear()
        try:
            cause = probe.check()
        except Exception as error:  # a probe that cannot run says the storage is not usable
            cause = f"storage probe failed: {error!r}"
        if (cause is None) != serving:
            serving = cause is None
            if serving:
                log.warning("storage usable again: SERVING")
            else:
                log.error("storage failed: %s; health is NOT_SERVING", cause)
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if serving
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in HEALTH_NAMES:
                health_servicer.set(name, status)


def serve(
    db: str | Path,
    host: str,
    port: int,
    grace: float = 10.0,
    token: str | None = None,
    *,
    tls: TlsFiles | None = None,
    open_reflection: bool = False,
    storage_check_interval: float = 5.0,
    http_port: int | None = None,
    migrate: bool = False,
    max_workers: int = 16,
    suggest_workers: int = 0,
) -> None:
    """Runs the server until SIGTERM or SIGINT; in-flight calls get ``grace`` seconds.

    ``db`` is an SQLite file or a ``postgresql://`` URL; ``migrate`` applies pending
    PostgreSQL migrations first. ``http_port`` also serves the SigOpt-compatible
    HTTP/JSON API (same Application, tokens and TLS files), stopped with gRPC.
    ``suggest_workers`` processes compute model-based suggestions (0: the server's
    own threads do; see ``suggest_pool.py``).

    Raises:
        StartupError, PreflightError: before anything is served.
    """
    credentials = tls_credentials(tls) if tls else None
    # A thread uses one PostgreSQL connection at a time (the lock's, while it makes
    # suggestions): one per gRPC worker, some for HTTP handler threads (more of them
    # wait for a connection), and room for the start-up checks.
    pool_size = max_workers + 2 + (16 if http_port is not None else 0)
    opened = open_storage(db, migrate=migrate, pool_size=pool_size)
    storage = observability.instrument_storage(opened.storage)
    tracker = CallTracker()
    stopping = threading.Event()
    pool = None
    if suggest_workers > 0:
        from .suggest_pool import SuggestPool

        pool = SuggestPool(suggest_workers)  # started by its first call
    app = Application(storage, pool)
    authenticator = Authenticator(storage, token)
    try:
        server, bound, health_servicer = create_server(
            storage,
            host,
            port,
            max_workers,
            token=token,
            open_reflection=open_reflection,
            stopping=stopping,
            credentials=credentials,
            tracker=tracker,
            app=app,
            authenticator=authenticator,
        )
    except OSError as error:
        raise StartupError(str(error)) from None
    http = None
    if http_port is not None:
        from . import dashboard
        from .api.http import HttpServer, build_app

        http_tls = (
            (str(tls.cert), str(tls.key), str(tls.client_ca) if tls.client_ca else None)
            if tls
            else None
        )
        # /metrics and the dashboard (at /) beside SigOpt's /v1 routes, all counted
        extra = [observability.metrics_route(), *dashboard.routes(app, authenticator)]
        web = build_app(app, authenticator, stopping, extra_routes=extra)
        try:
            http = HttpServer(
                observability.HttpMetricsMiddleware(web), host, http_port, grace, tls=http_tls
            )
        except (OSError, OverflowError) as error:
            server.stop(None)
            raise StartupError(f"cannot serve HTTP on {host}:{http_port}: {error}") from None
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch_storage,
        args=(opened.probe, health_servicer, stop, tracker, storage_check_interval),
        name="optserve-storage-probe",
        daemon=True,
    )

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: draining", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    for name in HEALTH_NAMES:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    watcher.start()
    if http is not None:
        http.start()
        print(f"optserve http listening on {host}:{http.port}", flush=True)
    print(f"optserve listening on {host}:{bound}", flush=True)
    # Wake up now and then: a signal the kernel delivers to one of grpc's threads
    # does not interrupt the main thread's wait, and Python runs the handler only
    # once the main thread runs again.
    while not stop.wait(SIGNAL_POLL_SECONDS):
        pass
    health_servicer.enter_graceful_shutdown()
    if http is not None:
        http.begin_stop()
    done = server.stop(grace)
    # past the grace period, writes still running roll back instead of committing
    timer = threading.Timer(grace, stopping.set)
    timer.daemon = True  # an early drain must not keep the process alive until it fires
    timer.start()
    done.wait()
    if http is not None:
        http.wait(grace + 1)
    timer.cancel()
    stopping.set()
    left = tracker.in_flight
    if left:
        # Their clients were told the call failed; ending the process now rolls back
        # whatever they have not committed, as after a crash (commits are atomic).
        log.warning(
            "%d calls still running after the %.1f s grace period: not waited for", left, grace
        )
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)
    if pool is not None:
        pool.close()
    opened.close()
    log.info("stopped")
