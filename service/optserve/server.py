"""The gRPC server: OptimizationService, health checking and reflection."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .api.auth import Authenticator, AuthInterceptor
from .api.servicer import OptimizationServicer
from .api.token_servicer import TokenServicer
from .application import Application
from .storage import SqliteStorage, Storage
from .v1 import service_pb2, service_pb2_grpc, token_pb2, token_pb2_grpc

log = logging.getLogger(__name__)
SERVICE_NAME = service_pb2.DESCRIPTOR.services_by_name["OptimizationService"].full_name
TOKEN_SERVICE_NAME = token_pb2.DESCRIPTOR.services_by_name["TokenService"].full_name


def create_server(
    storage: Storage,
    host: str = "127.0.0.1",
    port: int = 0,
    max_workers: int = 16,
    token: str | None = None,
    open_reflection: bool = False,
    stopping: threading.Event | None = None,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A configured, not yet started server.

    ``token`` is the bootstrap admin token; with it, or with tokens stored in
    the database, every call needs ``authorization: Bearer <secret>``.
    ``stopping`` is set when the shutdown grace period ends: writes still
    running then roll back.

    Returns:
        (server, bound port, health servicer).
    """
    authenticator = Authenticator(storage, token)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="optserve"),
        interceptors=[AuthInterceptor(authenticator, open_reflection)],
        options=[("grpc.so_reuseport", 0)],
    )
    app = Application(storage)
    stopping = stopping or threading.Event()
    service_pb2_grpc.add_OptimizationServiceServicer_to_server(
        OptimizationServicer(app, stopping), server
    )
    token_pb2_grpc.add_TokenServiceServicer_to_server(
        TokenServicer(app, authenticator, stopping), server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, TOKEN_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    if not authenticator.enabled:
        log.warning("authentication is off: no bootstrap token and no stored tokens")
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    return server, bound, health_servicer


def serve(db: Path, host: str, port: int, grace: float = 10.0, token: str | None = None) -> None:
    """Runs the server until SIGTERM or SIGINT; in-flight calls get ``grace`` seconds."""
    storage = SqliteStorage(db)
    stopping = threading.Event()
    server, bound, health_servicer = create_server(
        storage, host, port, token=token, stopping=stopping
    )
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    print(f"optserve listening on {host}:{bound}", flush=True)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: draining", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    health_servicer.enter_graceful_shutdown()
    done = server.stop(grace)
    # past the grace period, writes still running roll back instead of committing
    threading.Timer(grace, stopping.set).start()
    done.wait()
    stopping.set()
    storage.close()
    log.info("stopped")
