"""Input limits shared by both services (MLflow's limits are the reference).

No string may hold a NUL character: PostgreSQL cannot store one in text (the write would fail
the whole call), and SQLite and MySQL would store what PostgreSQL refuses, so one rule keeps every
backend the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from modelreg_server.errors import InvalidArgumentError, ResourceExhaustedError

MAX_NAME_LENGTH = 250
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_DESCRIPTION_LENGTH = 65536
MAX_PAGE_SIZE_DEFAULT = 1000
# What an integer column holds on every backend: a larger value fails the query on PostgreSQL and
# SQLite instead of matching nothing, so no caller-sent integer may leave this range.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# experiments.experiment_id is a 32-bit INTEGER: a larger id names no experiment, and on
# PostgreSQL and MySQL comparing the column to one fails the query instead of matching nothing.
MAX_EXPERIMENT_ID = 2**31 - 1

_RUN_ID = re.compile(r"[0-9a-f]{32}")
# Characters that could end a log line, move the cursor or hide text: never in an actor, an id or
# one-line text that is recorded (a serving report's detail).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _refuse_nul(value: str, field: str, reason: str) -> None:
    if "\x00" in value:
        raise InvalidArgumentError(reason, f"{field} contains a NUL character", {"field": field})


def require_name(
    value: str, field: str, reason: str = "INVALID_NAME", max_length: int = MAX_NAME_LENGTH
) -> str:
    """Returns ``value`` unchanged; raises when empty, blank, too long or holding a NUL."""
    if not value or not value.strip():
        raise InvalidArgumentError(reason, f"{field} must not be empty", {"field": field})
    if len(value) > max_length:
        raise InvalidArgumentError(
            reason, f"{field} is {len(value)} characters, the limit is {max_length}", {"field": field}
        )
    _refuse_nul(value, field, reason)
    return value


def require_key(key: str, field: str, reason: str) -> str:
    """A tag, param or metric key: the rules of a name, with the key length limit."""
    return require_name(key, field, reason, MAX_KEY_LENGTH)


def require_run_id(value: str, field: str = "run_id") -> str:
    """A run id as the tracking service makes them: 32 lowercase hex characters."""
    if not _RUN_ID.fullmatch(value):
        raise InvalidArgumentError(
            "INVALID_RUN_ID",
            f"{field} must be 32 lowercase hex characters, got '{value[:64]}'",
            {"field": field},
        )
    return value


def require_value(value: str, field: str, reason: str, max_length: int) -> str:
    if len(value) > max_length:
        raise InvalidArgumentError(
            reason, f"{field} is {len(value)} characters, the limit is {max_length}", {"field": field}
        )
    _refuse_nul(value, field, reason)
    return value


def check_tags(tags: Mapping[str, str], field: str = "tags", reason: str = "INVALID_TAG") -> dict[str, str]:
    """Validates every key and value of a tag map; returns a plain dict copy."""
    for key, value in tags.items():
        require_key(key, f"{field} key", reason)
        require_value(value, f"{field}['{key}']", reason, MAX_TAG_VALUE_LENGTH)
    return dict(tags)


def text_bytes(value: str) -> int:
    """The UTF-8 size of ``value``, as it goes over the wire. ``isascii`` is O(1) on CPython, so
    ASCII text (nearly all of it) costs no encoding."""
    return len(value) if value.isascii() else len(value.encode())


def mapping_bytes(values: Mapping[str, str]) -> int:
    """The UTF-8 size of a tag or param map's keys and values (what the size caps count)."""
    # One string measured at C speed: twice as fast as measuring each key and value.
    return text_bytes("".join(values) + "".join(values.values()))


class LimitExceeded(ResourceExhaustedError):
    """A write that would leave an entity over one of its caps (see README, "Limits"): the reason
    names the cap, the metadata the field and the limit. Nothing of the write is kept."""

    def __init__(self, reason: str, message: str, field: str, limit: int) -> None:
        super().__init__(reason, message, {"field": field, "limit": str(limit)})


def within_limit(owner: str, count: int, things: str, limit: int, reason: str, field: str) -> None:
    """LimitExceeded (``reason``) when ``owner`` would hold ``count`` ``things``, over ``limit``;
    e.g. ``within_limit("run 'ab12'", 1001, "tags", 1000, "TOO_MANY_TAGS", "tags")``."""
    if count > limit:
        raise LimitExceeded(
            reason, f"{owner} would hold {count} {things}, the limit is {limit}", field, limit
        )
