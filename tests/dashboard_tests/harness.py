"""A gRPC server and the dashboard in one process, on one SQLite file: what
`optserve serve --http-port` serves, until the dashboard is mounted there.

Usage: python -m tests.dashboard_tests.harness DB (env OPTSERVE_SERVER_TOKEN: the
bootstrap token); prints the gRPC target and the dashboard's address, serves until SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from optserve import dashboard, observability
from optserve.api.auth import Authenticator
from optserve.application import Application
from optserve.server import create_server
from optserve.storage import SqliteStorage


def main() -> None:
    storage = observability.instrument_storage(SqliteStorage(Path(sys.argv[1])))
    server, port, _ = create_server(storage, token=os.environ.get("OPTSERVE_SERVER_TOKEN"))
    token = os.environ.get("OPTSERVE_SERVER_TOKEN")
    web = Starlette(routes=dashboard.routes(Application(storage), Authenticator(storage, token)))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(observability.HttpMetricsMiddleware(web), log_level="warning")
    http = uvicorn.Server(config)
    thread = threading.Thread(target=http.run, kwargs={"sockets": [listener]}, daemon=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    thread.start()
    while not http.started:
        if not thread.is_alive():
            raise SystemExit("the dashboard did not start")
        stop.wait(0.05)
    print(f"dashboard on http://127.0.0.1:{listener.getsockname()[1]}/", flush=True)
    print(f"optserve listening on 127.0.0.1:{port}", flush=True)
    stop.wait()
    http.should_exit = True
    thread.join(10)
    server.stop(1).wait()
    storage.close()


if __name__ == "__main__":
    main()
