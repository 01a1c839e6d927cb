"""grpcio's server keeps ~16-20 KB for good per request whose request_deserializer raises.

Standalone reproduction (grpcio only). In grpc/_server.py, ``_receive_message`` aborts the
call with INTERNAL when the deserializer raises; the handler thread in ``_unary_request``
then finds no request and a closed client and aborts a second time (UNIMPLEMENTED). That
second ``start_server_batch`` on a call whose status was already sent fails with
GRPC_CALL_ERROR_TOO_MANY_OPERATIONS (8), and its batch tag, Py_INCREF'd in
``Call._start_batch`` and holding the server call, is never released. The identity
deserializer (raw bytes, parsed and refused by the handler) does not grow.

Usage: python scripts/grpcio_deserializer_leak.py [REQUESTS]
"""

import contextlib
import logging
import sys
from concurrent import futures

import grpc

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
logging.disable(logging.CRITICAL)  # grpcio logs a traceback per failed deserialization


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def raising(data: bytes) -> bytes:
    raise ValueError("undecodable")


def refuse(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "undecodable")


methods = {
    "Raising": grpc.unary_unary_rpc_method_handler(refuse, request_deserializer=raising),
    "Identity": grpc.unary_unary_rpc_method_handler(refuse),
}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("leak.Test", methods)])
port = server.add_insecure_port("127.0.0.1:0")
server.start()
channel = grpc.insecure_channel(f"127.0.0.1:{port}")
print(f"grpcio {grpc.__version__}, {N} requests per path after {N // 10} to warm up")
for path in ("Identity", "Raising", "Identity"):
    call = channel.unary_unary(f"/leak.Test/{path}")
    for count in (N // 10, N):
        before = rss_kb()
        for _ in range(count):
            with contextlib.suppress(grpc.RpcError):
                call(b"\xff")
    growth = rss_kb() - before
    print(f"{path:>8}: RSS +{growth:6d} KB, {1024 * growth / N:8.1f} bytes per request")
channel.close()
server.stop(None)
