"""Retries of failed calls: which codes, how often, how long to wait between them."""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass, field

import grpc

__all__ = ["RETRYABLE_CODES", "RetryPolicy", "new_request_id"]

# The two codes that say nothing about whether the server acted: the call may
# be repeated, and request ids make a repeated write return the first response.
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def new_request_id() -> str:
    """A fresh request id (a UUID4: 36 characters of ``[0-9a-f-]``)."""
    return str(uuid.uuid4())


def check_request_id(request_id: str) -> str:
    """``request_id`` when the server will accept it, else ValueError."""
    if not REQUEST_ID.fullmatch(request_id):
        raise ValueError(
            f"request_id {request_id!r}: at most 64 characters of letters, digits and ._:-"
        )
    return request_id


@dataclass(frozen=True)
class RetryPolicy:
    """How a :class:`~optserve_client.Connection` retries a failed call.

    A call failing with ``UNAVAILABLE`` or ``DEADLINE_EXCEEDED`` is made again,
    up to ``max_attempts`` attempts in all, after a pause drawn uniformly from
    ``[0, min(max_backoff, initial_backoff * multiplier ** n)]`` before retry
    ``n + 1`` ("full jitter", so that many clients do not retry in step). Every
    other code is raised at once. A write carries the same request id on each
    attempt, so the server applies it once.

    Attributes:
        max_attempts: Attempts in all, the first included (1: never retry).
        initial_backoff: Upper bound of the first pause, in seconds.
        max_backoff: Cap of the pause's upper bound, in seconds.
        multiplier: Growth of the upper bound from one retry to the next.
        deadline: Time allowed for the whole call, attempts and pauses
            included, in seconds (None: only ``max_attempts`` bounds it). An
            attempt's own deadline (the Connection's ``timeout``) is cut to
            what is left of it, and no pause runs past it.
        retryable_codes: The codes that are retried.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    deadline: float | None = None
    retryable_codes: frozenset[grpc.StatusCode] = field(default=RETRYABLE_CODES)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not 0 <= self.initial_backoff <= self.max_backoff:
            raise ValueError("need 0 <= initial_backoff <= max_backoff")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError(f"deadline must be positive, got {self.deadline}")

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that makes every call once."""
        return cls(max_attempts=1)

    def backoff_cap(self, retry: int) -> float:
        """Upper bound of the pause before retry ``retry + 1`` (``retry`` from 0)."""
        # min() before the power would overflow on a long run of retries.
        cap = self.initial_backoff
        for _ in range(retry):
            cap *= self.multiplier
            if cap >= self.max_backoff:
                return self.max_backoff
        return min(cap, self.max_backoff)

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """A pause before retry ``retry + 1``: uniform in ``[0, backoff_cap(retry)]``."""
        return (rng or random).uniform(0.0, self.backoff_cap(retry))
