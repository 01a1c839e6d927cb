"""Echo ceiling of grpcio's two Python servers on this machine (a benchmark, not a test).

Starts a bare Health server in a subprocess, once on the thread-pool server
(``grpc.server``, 16 threads: optserve's) and once on ``grpc.aio``, alternating, and
drives each with 16 asyncio clients calling Health/Check for ``--seconds``. Tells
whether moving optserve to grpc.aio could raise its ceiling.

    .venv/bin/python bench/echo_transports.py [--seconds 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

CLIENTS = 16


def _serve(kind: str) -> None:
    if kind == "threads":
        server = grpc.server(futures.ThreadPoolExecutor(CLIENTS))
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        print(port, flush=True)
        server.wait_for_termination()
        return

    async def main() -> None:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(port, flush=True)
        await server.wait_for_termination()

    asyncio.run(main())


async def _rate(port: int, seconds: float) -> float:
    done = 0

    async def client() -> None:
        nonlocal done
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                await stub.Check(request)
                done += 1

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return done / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve", choices=["threads", "aio"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return
    for _ in range(args.rounds):
        for kind in ("threads", "aio"):
            server = subprocess.Popen(
                [sys.executable, __file__, "--serve", kind], stdout=subprocess.PIPE, text=True
            )
            try:
                assert server.stdout is not None
                port = int(server.stdout.readline())
                asyncio.run(_rate(port, 1.0))  # warm up
                rate = asyncio.run(_rate(port, args.seconds))
                print(f"{kind:8s} {rate:8.0f} calls/s", flush=True)
            finally:
                server.kill()
                server.wait()


if __name__ == "__main__":
    main()
