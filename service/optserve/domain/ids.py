"""Ids as the service writes them: decimal integers, parsed strictly.

Only ASCII digits, no leading zero, at most 2^63 - 1: so that "１" (fullwidth)
or "007" never resolve to experiment 1 or 7 under a second spelling, and an id
beyond int64 is a bad request rather than a database error.
"""

from __future__ import annotations

from .errors import InvalidArgument
from .limits import MAX_ID

_MAX_DIGITS = len(str(MAX_ID))
ID_RULE = "an id is a decimal integer: ASCII digits, no leading zero, at most 2^63 - 1"


def parse_id(value: str) -> int | None:
    """The integer ``value`` spells, or None when it is not a well-formed id."""
    if not 0 < len(value) <= _MAX_DIGITS or not value.isascii() or not value.isdigit():
        return None
    if value[0] == "0" and len(value) > 1:
        return None
    number = int(value)
    return number if number <= MAX_ID else None


def require_id(value: str, field: str) -> str:
    """``value`` when it is a well-formed id.

    Raises:
        InvalidArgument: naming ``field`` when it is empty or malformed.
    """
    if not value:
        raise InvalidArgument.single(field, "required: an id")
    if parse_id(value) is None:
        raise InvalidArgument.single(field, f"{value[:40]!r} is not an id: {ID_RULE}")
    return value
