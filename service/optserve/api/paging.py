"""Responses bounded in bytes: list pages and result lists stop before
``limits.MAX_RESPONSE_BYTES``, so that no response passes gRPC's message limit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf.message import Message

from ..domain.errors import InvalidArgument
from ..domain.limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_RESPONSE_BYTES

# Items read from storage at a time: memory stays bounded whatever the page_size.
CHUNK = 50


def element_size(message: Message) -> int:
    """Bytes ``message`` takes as one element of a repeated field (tag, length, body)."""
    n = message.ByteSize()
    return 1 + max(1, (n.bit_length() + 6) // 7) + n


def _fitting(messages: Sequence[Message], room: int, first: bool) -> tuple[int, int]:
    """(how many of ``messages`` fit in ``room`` bytes, their size); the first
    message of a response always goes, whatever its size."""
    used = 0
    for i, message in enumerate(messages):
        size = element_size(message)
        if used + size > room and not (first and i == 0):
            return i, used
        used += size
    return len(messages), used


def bounded_page(
    fetch: Callable[[int, str], Any],
    convert: Callable[[Any], Message],
    page_size: int,
    page_token: str,
    budget: int = MAX_RESPONSE_BYTES,
) -> tuple[list[Message], str]:
    """Up to ``page_size`` items from ``fetch(size, token)`` (a storage Page),
    converted, and the token of the next page.

    The page ends early when the next item would pass ``budget`` bytes; its
    token then points right after the last item returned, so nothing is skipped.
    """
    if page_size < 0:
        raise InvalidArgument.single("page_size", "must be >= 0")
    wanted = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    out: list[Message] = []
    used, token = 0, page_token
    while len(out) < wanted:
        size = min(CHUNK, wanted - len(out))
        full = False
        while True:
            page = fetch(size, token)
            messages = [convert(item) for item in page.items]
            fit, fit_bytes = _fitting(messages, budget - used, first=not out)
            if fit == len(messages):
                break
            if fit == 0:
                return out, token
            # Read exactly the items that fit again, for the cursor right after them.
            size, full = fit, True
        out += messages
        used += fit_bytes
        token = page.next_token
        if full or not token:
            break
    return out, token


def bounded_list(
    items: Sequence[Any], convert: Callable[[Any], Message], budget: int = MAX_RESPONSE_BYTES
) -> tuple[list[Message], int]:
    """The leading ``items``, converted, that fit in ``budget`` bytes (at least
    one), and how many were left out; converts no more than it returns, plus one."""
    out: list[Message] = []
    used = 0
    for item in items:
        message = convert(item)
        size = element_size(message)
        if out and used + size > budget:
            break
        out.append(message)
        used += size
    return out, len(items) - len(out)
