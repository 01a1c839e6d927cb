"""Domain errors -> SigOpt's error bodies ``{"message", "status"}`` and status codes."""

from __future__ import annotations

import logging

from ...domain.errors import (
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
from ...storage.errors import unavailable
from ..errors import RateLimitedLog, log_unexpected

log = logging.getLogger(__name__)
_storage_down = RateLimitedLog(log)

# SigOpt answers every validation error and state conflict with 400.
STATUS: dict[type[OptserveError], int] = {
    InvalidArgument: 400,
    FailedPrecondition: 400,
    Unauthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    AlreadyExists: 409,
    Unimplemented: 501,
    Cancelled: 503,
    Unavailable: 503,
}


class HttpError(Exception):
    """An error the HTTP layer itself finds (a bad header, an unknown route)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def body(status: int, message: str) -> dict[str, object]:
    return {"message": message, "status": status}


def of(error: Exception, where: str) -> tuple[int, dict[str, object]]:
    """The status and body of an error raised while serving ``where``."""
    if isinstance(error, HttpError):
        return error.status, body(error.status, str(error))
    if isinstance(error, OptserveError) and type(error) in STATUS:
        status = STATUS[type(error)]
        return status, body(status, str(error))
    down = unavailable(error)
    if down is not None:  # a database that is down or busy: the client may retry
        _storage_down.log(logging.WARNING, "%s: storage unavailable: %s", where, error)
        return 503, body(503, str(down))
    log_unexpected(log, where, error)
    return 500, body(500, "internal error; see the server log")
