"""Domain errors; the API layer maps each to one gRPC status code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One broken rule: the field path (e.g. ``experiment.parameters[0].bounds``) and why."""

    field: str
    description: str


class OptserveError(Exception):
    """Base of every error the service reports to clients."""


class InvalidArgument(OptserveError):
    """The request breaks one or more rules; ``violations`` names each field."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = list(violations)
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations))

    @classmethod
    def single(cls, field: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field, description)])


class NotFound(OptserveError):
    """An id names nothing."""


class FailedPrecondition(OptserveError):
    """The request conflicts with the current state (archived experiment, closed suggestion)."""


class Unimplemented(OptserveError):
    """A feature the service does not offer yet."""


class PermissionDenied(OptserveError):
    """The caller's token may read the resource but not change it."""


class Unauthenticated(OptserveError):
    """The call carries no valid token."""


class Cancelled(OptserveError):
    """The call was cancelled, ran past its deadline or the server is stopping: nothing written."""


class AlreadyExists(OptserveError):
    """A resource with the given id exists already (a project)."""


class Unavailable(OptserveError):
    """The database cannot be reached now (down, restarting, failing over): the call may
    be retried, a write with its request id (it may or may not have committed)."""
