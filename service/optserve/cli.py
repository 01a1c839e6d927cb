"""Command line: ``optserve serve --port P --db PATH``."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

# One BLAS thread per request thread: concurrent suggestions must not oversubscribe cores.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="optserve", description="optserve optimization service")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gRPC server on an SQLite file")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=50051, help="port (0 picks a free one)")
    serve.add_argument("--db", type=Path, default=Path("optserve.db"), help="SQLite file")
    serve.add_argument("--grace", type=float, default=10.0, help="seconds to drain on SIGTERM")
    serve.add_argument(
        "--token",
        default=os.environ.get("OPTSERVE_SERVER_TOKEN") or None,
        help="require `authorization: Bearer TOKEN` on every call (env OPTSERVE_SERVER_TOKEN)",
    )
    serve.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        from .server import serve as run

        run(args.db, args.host, args.port, args.grace, args.token)


if __name__ == "__main__":
    main()
