"""The one exception type of the client: :class:`ApiError`."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

__all__ = ["ApiError", "FieldViolation"]


@dataclass(frozen=True)
class FieldViolation:
    """One google.rpc.BadRequest field violation.

    Attributes:
        field: Path of the offending field, e.g. ``experiment.parameters[0].bounds``.
        description: Why the value was rejected.
    """

    field: str
    description: str


class ApiError(Exception):
    """A call to the optserve service failed.

    Raised for every failed RPC, including a server that cannot be reached
    (``UNAVAILABLE``) or does not answer in time (``DEADLINE_EXCEEDED``).

    Attributes:
        code: The gRPC status code (a ``grpc.StatusCode``).
        message: The status message sent by the server (or by gRPC itself).
        field_violations: The google.rpc.BadRequest field violations carried
            in the status details; empty when there are none.
        attempts: How many times the call was made (retries included) before
            it failed with this error.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        field_violations: list[FieldViolation] | None = None,
        attempts: int = 1,
    ) -> None:
        self.code = code
        self.message = message
        self.field_violations = list(field_violations or [])
        self.attempts = attempts
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.attempts > 1:
            text += f" (after {self.attempts} attempts)"
        if self.field_violations:
            text += "".join(f"\n  {v.field}: {v.description}" for v in self.field_violations)
        return text

    def __repr__(self) -> str:
        return f"ApiError({self.code!r}, {self.message!r}, {self.field_violations!r})"

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.code, self.message, self.field_violations, self.attempts))

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, attempts: int = 1) -> ApiError:
        """Builds an ApiError from a failed call (a ``grpc.RpcError`` that is a ``grpc.Call``).

        The field violations come from the rich status in the trailing
        metadata (``grpc-status-details-bin``); a missing or inconsistent
        rich status only leaves them empty.
        """
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = error.details() if hasattr(error, "details") else str(error)
        violations: list[FieldViolation] = []
        try:
            status = rpc_status.from_call(error)
        except (ValueError, AttributeError, TypeError):
            status = None
        if status is not None:
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad_request = error_details_pb2.BadRequest()
                    detail.Unpack(bad_request)
                    violations.extend(
                        FieldViolation(v.field, v.description) for v in bad_request.field_violations
                    )
        return cls(code or grpc.StatusCode.UNKNOWN, message or "", violations, attempts)
