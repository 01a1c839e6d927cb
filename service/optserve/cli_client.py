"""What the client commands (experiments, observations, plot) share: the connection to a
running server, calls with retries, error reports and tables that fit the terminal.

They talk to a server over gRPC only, never to its database file.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import textwrap
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from .v1 import experiment_pb2, observation_pb2, service_pb2_grpc, suggestion_pb2
from .v1 import service_pb2 as pb

DEFAULT_TARGET = "localhost:50051"
# Transient failures worth another try: the server restarting, a deadline on a slow write.
# Every write these commands make carries a request id, so a retry never writes twice.
RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
RETRY_DELAYS = (0.2, 0.6, 1.8)
PAGE_SIZE = 1000
EXIT_FAILED = 1

OVERVIEW = """commands that talk to a running server (--target or env OPTSERVE_TARGET,
token from env OPTSERVE_TOKEN, TLS with --tls-ca or env OPTSERVE_TLS_CA, a client
certificate with OPTSERVE_TLS_CERT and OPTSERVE_TLS_KEY):
  experiments  list, show, best, archive, delete
  observations export (CSV or JSON), import (CSV: warm start from past evaluations)
  plot         history, parallel coordinates, parameter importance, Pareto front (PNG)
  tokens       create, list, revoke API tokens

examples:
  optserve serve --port 50051 --http-port 8080 --db optserve.db
      (the dashboard at http://localhost:8080/, metrics at /metrics)
  export OPTSERVE_TARGET=localhost:50051
  optserve experiments list
  optserve experiments show 1
  optserve experiments best 1
  optserve observations export 1 --format csv -o runs.csv
  optserve observations import 2 runs.csv
  optserve plot 1 --kind history -o history.png
  optserve tokens list

`optserve COMMAND --help` shows each command's options and examples.
"""


class CommandError(Exception):
    """Ends a command with exit code 1 and this message on stderr."""


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--target",
        default=os.environ.get("OPTSERVE_TARGET") or DEFAULT_TARGET,
        help=f"server address (env OPTSERVE_TARGET; default {DEFAULT_TARGET});"
        " the token comes from env OPTSERVE_TOKEN",
    )
    group.add_argument(
        "--tls-ca",
        type=Path,
        default=os.environ.get("OPTSERVE_TLS_CA") or None,
        help="CA certificate (PEM) to connect over TLS (env OPTSERVE_TLS_CA)",
    )
    group.add_argument(
        "--tls-cert",
        type=Path,
        default=os.environ.get("OPTSERVE_TLS_CERT") or None,
        help="client certificate (PEM) for servers that require one (env OPTSERVE_TLS_CERT)",
    )
    group.add_argument(
        "--tls-key",
        type=Path,
        default=os.environ.get("OPTSERVE_TLS_KEY") or None,
        help="private key (PEM) of --tls-cert (env OPTSERVE_TLS_KEY)",
    )
    group.add_argument(
        "--timeout", type=float, default=60.0, help="seconds each call may take (default 60)"
    )


def subcommand(
    sub: argparse._SubParsersAction,
    name: str,
    help: str,
    examples: str,
    run: Callable[[argparse.Namespace], None],
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A leaf command with connection options, examples in its help, and ``run``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=paragraphs(description or help),
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_options(parser)
    # a client command's own output is what it prints; logs only for trouble
    parser.set_defaults(run=command(run), log_level="WARNING")
    return parser


def paragraphs(text: str, width: int = 78) -> str:
    """Fills each paragraph made of one line; keeps the others (lists, examples) as written."""
    blocks = text.split("\n\n")
    return "\n\n".join(
        textwrap.fill(b, width) if "\n" not in b and not b.startswith(" ") else b for b in blocks
    )


def command(run: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], None]:
    """Turns failures into one message on stderr and exit code 1."""

    def wrapped(args: argparse.Namespace) -> None:
        try:
            run(args)
        except CommandError as error:
            fail(str(error))
        except grpc.RpcError as error:
            fail(describe_rpc_error(error, args.target))
        except BrokenPipeError:  # `optserve ... | head`
            sys.stderr.close()
            sys.exit(0)

    return wrapped


def fail(message: str) -> NoReturn:
    print(f"optserve: {message}", file=sys.stderr, flush=True)
    sys.exit(EXIT_FAILED)


def describe_rpc_error(error: grpc.RpcError, target: str) -> str:
    code: grpc.StatusCode = error.code()
    details: str = error.details() or ""
    if code is grpc.StatusCode.UNAVAILABLE:
        return f"cannot reach a server at {target}: {details}"
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return f"{details} (set env OPTSERVE_TOKEN to a valid token)"
    lines = [f"{code.name}: {details}"]
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            lines += [f"  {v.field}: {v.description}" for v in bad.field_violations]
    return "\n".join(lines)


def new_request_id() -> str:
    return f"cli-{uuid.uuid4().hex}"


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {what} {path}: {error.strerror}") from None


class Client:
    """The OptimizationService of ``args.target`` with the caller's token."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.target: str = args.target
        if not 0.0 < args.timeout < math.inf:
            raise CommandError("--timeout must be a number of seconds above 0")
        self.timeout: float = args.timeout
        if (args.tls_cert is None) != (args.tls_key is None):
            raise CommandError("--tls-cert and --tls-key (OPTSERVE_TLS_CERT, _KEY) go together")
        if args.tls_cert is not None and args.tls_ca is None:
            raise CommandError("a client certificate needs --tls-ca (OPTSERVE_TLS_CA)")
        if args.tls_ca:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(args.tls_ca, "CA file"),
                private_key=_read(args.tls_key, "TLS key") if args.tls_key else None,
                certificate_chain=_read(args.tls_cert, "TLS certificate")
                if args.tls_cert
                else None,
            )
            self.channel = grpc.secure_channel(self.target, credentials)
        else:
            self.channel = grpc.insecure_channel(self.target)
        self.stub = service_pb2_grpc.OptimizationServiceStub(self.channel)
        token = os.environ.get("OPTSERVE_TOKEN", "").strip()
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def call(self, method: str, request: Any) -> Any:
        """Calls ``method``; retries transient failures (reads, and writes with request ids)."""
        send = getattr(self.stub, method)
        for delay in (*RETRY_DELAYS, None):
            try:
                return send(request, metadata=self.metadata, timeout=self.timeout)
            except grpc.RpcError as error:
                if delay is None or error.code() not in RETRIED:
                    raise
                time.sleep(delay)
        raise AssertionError("not reached")

    def experiment(self, experiment_id: str) -> experiment_pb2.Experiment:
        return self.call("GetExperiment", pb.GetExperimentRequest(id=experiment_id)).experiment

    def experiments(
        self, project: str = "", state: Any = 0, limit: int | None = None
    ) -> list[experiment_pb2.Experiment]:
        found: list[experiment_pb2.Experiment] = []
        token = ""
        while limit is None or len(found) < limit:
            reply = self.call(
                "ListExperiments",
                pb.ListExperimentsRequest(
                    project=project,
                    state=state,
                    page_size=min(PAGE_SIZE, limit or PAGE_SIZE),
                    page_token=token,
                ),
            )
            found.extend(reply.experiments)
            token = reply.next_page_token
            if not token:
                break
        return found if limit is None else found[:limit]

    def observations(self, experiment_id: str) -> list[observation_pb2.Observation]:
        return list(
            self._pages(
                "ListObservations",
                lambda token: pb.ListObservationsRequest(
                    experiment_id=experiment_id, page_size=PAGE_SIZE, page_token=token
                ),
                "observations",
            )
        )

    def open_suggestions(self, experiment_id: str) -> list[suggestion_pb2.Suggestion]:
        return list(
            self._pages(
                "ListSuggestions",
                lambda token: pb.ListSuggestionsRequest(
                    experiment_id=experiment_id,
                    state=suggestion_pb2.SUGGESTION_STATE_OPEN,
                    page_size=PAGE_SIZE,
                    page_token=token,
                ),
                "suggestions",
            )
        )

    def _pages(self, method: str, request: Callable[[str], Any], field: str) -> Iterator[Any]:
        token = ""
        while True:
            reply = self.call(method, request(token))
            yield from getattr(reply, field)
            token = reply.next_page_token
            if not token:
                return


# ---------------------------------------------------------------- values


def value_of(v: suggestion_pb2.AssignmentValue) -> float | int | str | None:
    kind = v.WhichOneof("kind")
    return None if kind is None else getattr(v, kind)


def fmt(value: Any) -> str:
    """A short rendering of a value for tables (CSV and JSON keep full precision)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def enum_name(enum: Any, value: int, prefix: str, unset: str = "-") -> str:
    """``EXPERIMENT_STATE_ACTIVE`` -> ``active``; values newer than this client by number."""
    if value == 0:
        return unset
    try:
        return str(enum.Name(value)).removeprefix(prefix).lower()
    except ValueError:
        return str(value)


def type_name(value: int) -> str:
    return enum_name(experiment_pb2.ExperimentType, value, "EXPERIMENT_TYPE_", "offline")


def state_name(value: int) -> str:
    return enum_name(experiment_pb2.ExperimentState, value, "EXPERIMENT_STATE_")


def optimized_metrics(exp: experiment_pb2.Experiment) -> list[experiment_pb2.Metric]:
    return [
        m
        for m in exp.metrics
        if m.strategy
        in (experiment_pb2.METRIC_STRATEGY_UNSPECIFIED, experiment_pb2.METRIC_STRATEGY_OPTIMIZE)
    ]


def minimizes(metric: experiment_pb2.Metric) -> bool:
    return metric.objective == experiment_pb2.METRIC_OBJECTIVE_MINIMIZE


# ---------------------------------------------------------------- tables


def terminal_width() -> int:
    """The terminal's width; 80 when the output is not a terminal (unless COLUMNS says)."""
    return max(40, shutil.get_terminal_size((80, 24)).columns)


def cell_text(text: str) -> str:
    """One line of printable text: names may hold newlines or control characters."""
    return "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in text)


def display_width(text: str) -> int:
    """Terminal columns: East Asian wide characters take two, combining marks none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns, ending in … when cut."""
    text = cell_text(text)
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for c in text:
        w = display_width(c)
        if used + w > width - 1:
            break
        out.append(c)
        used += w
    return "".join(out) + "…"


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(0, width - display_width(text))
    return gap + text if right else text + gap


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    shrink: Sequence[int] = (),
    right: Sequence[int] = (),
    width: int | None = None,
) -> str:
    """Columns two spaces apart, within ``width``: the columns in ``shrink`` are cut
    (with …) when the rows would be wider; those in ``right`` are right-aligned."""
    width = width or terminal_width()
    rows = [[cell_text(c) for c in r] for r in rows]
    widths = [
        max([display_width(h), *(display_width(r[i]) for r in rows)]) for i, h in enumerate(headers)
    ]
    floors = {i: min(widths[i], max(len(headers[i]), 6)) for i in shrink}
    excess = sum(widths) + 2 * (len(widths) - 1) - width
    while excess > 0:
        candidates = [i for i in shrink if widths[i] > floors[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            _pad(clip(cell, widths[i]), widths[i], i in right) for i, cell in enumerate(cells)
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def confirm(question: str) -> bool:
    """Asks on the terminal; False when there is none to ask on."""
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, otherwise one line
    every tenth of the way, so that logs stay short."""

    def __init__(self, total: int, label: str, stream: Any = None) -> None:
        self.total, self.label = total, label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.done = 0
        self._shown = 0

    def advance(self, n: int = 1) -> None:
        self.done += n
        step = 100 if self.tty else 10
        mark = self.done * step // max(1, self.total)
        if mark != self._shown or self.done == self.total:
            self._shown = mark
            self._draw()

    def _draw(self) -> None:
        filled = self.done * 30 // max(1, self.total)
        bar = "#" * filled + "." * (30 - filled)
        percent = self.done * 100 // max(1, self.total)
        text = f"{self.label} [{bar}] {self.done}/{self.total} ({percent}%)"
        end = "\n" if self.done == self.total or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + text + end)
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.done != self.total:
            self.stream.write("\n")
            self.stream.flush()
