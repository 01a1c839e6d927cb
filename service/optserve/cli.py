"""Command line: ``optserve serve --port P --db PATH|URL``, ``optserve migrate --db URL``,
``optserve tokens ...``.

A setting the server cannot start with ends the process with exit code 2 and one line on
stderr naming what is wrong, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

# One BLAS thread per request thread: concurrent suggestions must not oversubscribe cores.
# Set before anything imports numpy: OpenBLAS reads it once, when it loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from . import cli_client, cli_experiments, cli_observations, cli_plot, tokens_cli  # noqa: E402

TOKEN_ENV = "OPTSERVE_SERVER_TOKEN"
DB_ENV = "OPTSERVE_DB"
DB_HELP = (
    "an SQLite file (the default, optserve.db), or postgresql://user@host:port/dbname to share"
    f" one PostgreSQL among several replicas (env {DB_ENV}; a password is best given by"
    " PGPASSWORD or ~/.pgpass)"
)
EXIT_BAD_SETUP = 2


SERVE_EXAMPLES = """examples:
  optserve serve --port 50051 --db optserve.db
  optserve serve --port 50051 --db optserve.db --token-file token.txt \\
      --tls-cert server.pem --tls-key server.key
  optserve serve --db optserve.db --http-port 8080     (dashboard: http://localhost:8080/)
  optserve serve --db optserve.db --metrics-port 9464 --log-format json --access-log
  optserve migrate --db postgresql://optserve@db:5432/optserve     (then, on each replica:)
  optserve serve --host 0.0.0.0 --db postgresql://optserve@db:5432/optserve
"""


class SetupError(Exception):
    """A command line or environment the command refuses; the message is one line."""


def _add_serve(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the gRPC server on SQLite or PostgreSQL",
        description="Run the gRPC server on an SQLite file, or on a PostgreSQL database"
        " that several replicas share.",
        epilog=SERVE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=50051, help="port (0 picks a free one)")
    serve.add_argument("--db", default=os.environ.get(DB_ENV) or "optserve.db", help=DB_HELP)
    serve.add_argument(
        "--migrate",
        action="store_true",
        help="apply pending PostgreSQL migrations before serving (SQLite migrates on open)",
    )
    serve.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="seconds that calls in flight get to finish on SIGTERM; later, they roll back",
    )
    serve.add_argument(
        "--token-file",
        type=Path,
        help="file holding the token that every call must send as `authorization: Bearer"
        f" TOKEN` (or env {TOKEN_ENV}); without either, calls need no token",
    )
    serve.add_argument(
        "--token",
        nargs="?",
        const="",
        help=f"refused: the process list would show it; use --token-file or env {TOKEN_ENV}",
    )
    serve.add_argument(
        "--open-reflection",
        action="store_true",
        help="serve reflection without a token (health checks never need one)",
    )
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate chain: serve TLS only")
    serve.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    serve.add_argument(
        "--tls-client-ca",
        type=Path,
        help="PEM CA certificates: clients must present a certificate signed by one (mTLS)",
    )
    serve.add_argument(
        "--storage-check-interval",
        type=float,
        default=5.0,
        help="seconds between checks of the database; health is NOT_SERVING on failure",
    )
    serve.add_argument(
        "--http-port",
        type=int,
        help="also serve the SigOpt-compatible HTTP/JSON API on this port (0 picks one), with"
        " the dashboard at / and Prometheus metrics at /metrics; off when unset",
    )
    serve.add_argument(
        "--max-workers",
        type=int,
        default=16,
        help="threads serving gRPC calls (calls beyond wait for one)",
    )
    serve.add_argument(
        "--suggest-workers",
        type=int,
        default=None,
        help="processes computing model-based (OFFLINE) suggestions, so that several"
        " experiments use several cores; 0 computes them in the server's threads"
        " (default: one per core)",
    )
    serve.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    )
    serve.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="json: one JSON object per line (time, level, logger, message; request_id and"
        " rpc for lines logged during a call)",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="log one line per call: RPC, status code, duration, request id",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics at http://HOST:PORT/metrics (0 picks a free port)",
    )
    serve.add_argument(
        "--metrics-host", default="127.0.0.1", help="address of --metrics-port (default loopback)"
    )
    serve.set_defaults(run=_run_serve)


def _token(args: argparse.Namespace) -> str | None:
    """The bootstrap token from --token-file or the environment; never empty."""
    if args.token is not None:
        raise SetupError(
            f"--token would show the token in the process list; put it in a file given by"
            f" --token-file or in env {TOKEN_ENV}"
        )
    from_env = os.environ.get(TOKEN_ENV)
    if args.token_file is not None and from_env is not None:
        raise SetupError(f"give the token either by --token-file or by env {TOKEN_ENV}, not both")
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as error:
            cause = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise SetupError(f"cannot read token file {args.token_file}: {cause}") from None
        where = f"token file {args.token_file}"
    elif from_env is not None:
        token = from_env.strip()
        where = f"env {TOKEN_ENV}"
    else:
        return None
    if not token:
        raise SetupError(f"{where} is empty; an empty token would turn authentication off")
    if not (token.isascii() and token.isprintable()) or " " in token:
        raise SetupError(f"{where}: a token is printable ASCII without spaces")
    return token


def _run_serve(args: argparse.Namespace) -> None:
    from .server import StartupError, TlsFiles, serve
    from .storage.preflight import PreflightError

    for flag, port in (
        ("--port", args.port),
        ("--http-port", args.http_port),
        ("--metrics-port", args.metrics_port),
    ):
        if port is not None and not 0 <= port <= 65535:
            raise SetupError(f"{flag} must be a port, 0 to 65535 (0 picks a free one)")
    if not 0.0 <= args.grace < math.inf:
        raise SetupError("--grace must be a number of seconds, 0 or more")
    if not 0.0 < args.storage_check_interval < math.inf:
        raise SetupError("--storage-check-interval must be a number of seconds above 0")
    token = _token(args)
    if (args.tls_cert is None) != (args.tls_key is None):
        raise SetupError("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        raise SetupError("--tls-client-ca needs --tls-cert and --tls-key")
    tls = TlsFiles(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    if not args.access_log:
        logging.getLogger("optserve.access").setLevel(logging.WARNING)
    if args.metrics_port is not None:
        from .observability import start_metrics_server

        try:
            bound = start_metrics_server(args.metrics_port, args.metrics_host)
        except OSError as error:
            raise SetupError(
                f"cannot serve metrics on {args.metrics_host}:{args.metrics_port}: {error}"
            ) from None
        print(f"optserve metrics on http://{args.metrics_host}:{bound}/metrics", flush=True)
    try:
        serve(
            args.db,
            args.host,
            args.port,
            args.grace,
            token,
            tls=tls,
            open_reflection=args.open_reflection,
            storage_check_interval=args.storage_check_interval,
            http_port=args.http_port,
            migrate=args.migrate,
            max_workers=_positive(args.max_workers, "--max-workers"),
            suggest_workers=_suggest_workers(args.suggest_workers),
        )
    except (StartupError, PreflightError) as error:
        raise SetupError(str(error)) from None


def _positive(value: int, flag: str) -> int:
    if value < 1:
        raise SetupError(f"{flag} must be 1 or more")
    return value


def _suggest_workers(given: int | None) -> int:
    from .suggest_pool import default_workers

    if given is None:
        return default_workers()
    if given < 0:
        raise SetupError("--suggest-workers must be 0 or more")
    return given


def _add_migrate(sub: argparse._SubParsersAction) -> None:
    migrate = sub.add_parser(
        "migrate",
        help="bring the database's schema to this optserve's version",
        description="Applies pending schema migrations, in one transaction, and prints the"
        " version reached. Safe to run while replicas serve, and from several places at"
        " once. Refuses a database whose schema is newer than this optserve.",
    )
    migrate.add_argument("--db", default=os.environ.get(DB_ENV) or "optserve.db", help=DB_HELP)
    migrate.set_defaults(run=_run_migrate)


def _run_migrate(args: argparse.Namespace) -> None:
    from .server import StartupError, open_storage
    from .storage.preflight import PreflightError

    try:
        opened = open_storage(args.db, migrate=True, pool_size=1)
    except (StartupError, PreflightError) as error:
        raise SetupError(str(error)) from None
    try:
        from .storage.postgres import PostgresStorage

        if isinstance(opened.storage, PostgresStorage):
            version = opened.storage.schema_version()
        else:
            from .storage.sqlite import SCHEMA_VERSION

            version = SCHEMA_VERSION
    finally:
        opened.close()
    print(f"optserve: schema at version {version}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="optserve",
        description="optserve optimization service",
        epilog=cli_client.OVERVIEW,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_serve(sub)
    _add_migrate(sub)
    tokens_cli.add_parser(sub)
    cli_experiments.add_parser(sub)
    cli_observations.add_parser(sub)
    cli_plot.add_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "log_format", "text") == "json":
        from .observability import use_json_logs

        use_json_logs()
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        run(args)
    except SetupError as error:
        message = " ".join(str(error).splitlines())
        print(f"optserve: {message}", file=sys.stderr, flush=True)
        sys.exit(EXIT_BAD_SETUP)


if __name__ == "__main__":
    main()
