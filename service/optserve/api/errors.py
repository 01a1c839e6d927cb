"""Domain errors -> gRPC status, in one place, with google.rpc details."""

from __future__ import annotations

import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..domain.errors import (
    AlreadyExists,
    Cancelled,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OptserveError,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from ..storage.errors import unavailable

log = logging.getLogger(__name__)


class RateLimitedLog:
    """At most one record per ``interval`` seconds; the next one says how many were dropped.

    Whatever a client can trigger at will (undecodable bytes, a bug's traceback) must not
    let it fill the disk with log lines.
    """

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self._logger = logger
        self._interval = interval
        self._lock = threading.Lock()
        self._next = 0.0
        self._suppressed = 0

    def log(
        self, level: int, message: str, *args: Any, exc_info: bool | BaseException = False
    ) -> bool:
        """Logs unless one was logged less than ``interval`` ago; True if logged."""
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                self._suppressed += 1
                return False
            suppressed, self._suppressed = self._suppressed, 0
            self._next = now + self._interval
        if suppressed:
            message += " (%d more since the previous one, not logged)"
            args = (*args, suppressed)
        self._logger.log(level, message, *args, exc_info=exc_info)
        return True


# One limiter per failure (where it was served, the exception's type, the line that
# raised it): a flood of one bug does not hide the first report of another.
_unexpected: dict[tuple[str, str, str], RateLimitedLog] = {}
_unexpected_lock = threading.Lock()


def log_unexpected(logger: logging.Logger, where: str, error: BaseException) -> None:
    """Logs an unexpected error with its traceback, rate-limited per failure."""
    frames = traceback.extract_tb(error.__traceback__)
    raised = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    key = (where, type(error).__name__, raised)
    with _unexpected_lock:
        limiter = _unexpected.setdefault(key, RateLimitedLog(logger))
    limiter.log(logging.ERROR, "unexpected error in %s", where, exc_info=error)


_storage_down = RateLimitedLog(log)

_CODES = {
    InvalidArgument: code_pb2.INVALID_ARGUMENT,
    NotFound: code_pb2.NOT_FOUND,
    FailedPrecondition: code_pb2.FAILED_PRECONDITION,
    Unimplemented: code_pb2.UNIMPLEMENTED,
    PermissionDenied: code_pb2.PERMISSION_DENIED,
    Unauthenticated: code_pb2.UNAUTHENTICATED,
    Cancelled: code_pb2.CANCELLED,
    AlreadyExists: code_pb2.ALREADY_EXISTS,
    Unavailable: code_pb2.UNAVAILABLE,
}


def to_status(error: OptserveError) -> grpc.Status:
    """The gRPC status of a domain error; INVALID_ARGUMENT carries a BadRequest."""
    code = _CODES.get(type(error), code_pb2.INTERNAL)
    status = status_pb2.Status(code=code, message=str(error))
    if isinstance(error, InvalidArgument):
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in error.violations
                ]
            )
        )
        status.details.append(detail)
    return rpc_status.to_status(status)


F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(method: F) -> F:
    """Turns domain errors into their status; anything else into a bare INTERNAL."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except OptserveError as error:
            context.abort_with_status(to_status(error))
        except Exception as error:
            down = unavailable(error)
            if down is not None:  # a database that is down or busy: the client may retry
                _storage_down.log(
                    logging.WARNING, "%s: storage unavailable: %s", method.__name__, error
                )
                context.abort_with_status(to_status(down))
            log_unexpected(log, method.__name__, error)
            context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")

    return wrapper  # type: ignore[return-value]
