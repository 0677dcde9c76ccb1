"""Page sizes and opaque page tokens.

A token is URL-safe base64 of a small JSON object. It carries the offset into the ordered result
and a fingerprint of the query it belongs to, so a token replayed against another query is
INVALID_ARGUMENT rather than a silently wrong page.

A token comes back from the caller, so anything may arrive in its place: whatever does not decode
to an object with an int64 offset and a string fingerprint is INVALID_PAGE_TOKEN, before any
query. (An offset beyond int64 failed the query on PostgreSQL and SQLite, ``Infinity`` failed the
conversion to int, and a deeply nested array Python's JSON decoder: each was INTERNAL.)

Pages are bounded by bytes as well as by rows: every listing hands ``split`` the size of each row
as it will go over the wire (an estimate from its text, see ``modelreg_server.validation.text_bytes``),
and a page ends before the row that would take it past :data:`RESPONSE_BYTE_BUDGET`, with a token
that resumes at that row. A page always holds at least one row: the caps on what one entity may
hold (README, "Limits") keep any one row well under the gRPC message limit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from modelreg_server.errors import InvalidArgumentError
from modelreg_server.validation import INT64_MAX

# Tokens this module writes are under 100 characters; the bound keeps decoding cheap and shallow.
MAX_PAGE_TOKEN_LENGTH = 512
# What the rows of one listing response may add up to: half the 8 MiB gRPC message limit
# (modelreg_server.bootstrap.MAX_MESSAGE_BYTES), so the estimate per row and the fields around
# the rows have room to spare.
RESPONSE_BYTE_BUDGET = 4 * 1024 * 1024

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    """A validated page: how many rows to return and how many to skip."""

    size: int
    offset: int
    query_fingerprint: str

    @property
    def fetch_limit(self) -> int:
        """Rows to ask the database for: one past the page, whose presence says another follows."""
        return self.size + 1

    def split(
        self, rows: Sequence[T], size_of: Callable[[T], int] | int, budget: int = RESPONSE_BYTE_BUDGET
    ) -> tuple[Sequence[T], str]:
        """The page's rows and the next page's token, from rows fetched with ``fetch_limit``.

        The page ends at ``size`` rows, or before the row that would take the rows' total size
        past ``budget`` (the first row always stays); the token then resumes exactly at the first
        row left out. ``size_of`` gives a row's size, or is the size of every row."""
        items = rows[: self.size]
        if isinstance(size_of, int):
            items = items[: max(1, budget // size_of)] if size_of > 0 else items
        else:
            total = 0
            for count, row in enumerate(items):
                total += size_of(row)
                if total > budget and count:
                    items = items[:count]
                    break
        return items, self.next_token(len(items), len(rows) > len(items))

    def next_token(self, returned: int, has_more: bool) -> str:
        """The token of the following page, or "" when this page was the last."""
        if not has_more:
            return ""
        payload = {"o": self.offset + returned, "q": self.query_fingerprint}
        return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def fingerprint(*parts: object) -> str:
    """A short digest of the query a page token belongs to."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def parse_page(page_size: int, page_token: str, *, default: int, maximum: int, query: str) -> PageRequest:
    """Validates page_size (0 = default, negative = error, clamped to maximum) and the token."""
    if page_size < 0:
        raise InvalidArgumentError(
            "INVALID_PAGE_SIZE", f"page_size must not be negative, got {page_size}", {"field": "page_size"}
        )
    size = min(page_size or default, maximum)
    if not page_token:
        return PageRequest(size=size, offset=0, query_fingerprint=query)
    offset, token_query = _read_token(page_token)
    if token_query != query:
        raise InvalidArgumentError(
            "INVALID_PAGE_TOKEN",
            "page_token does not belong to this query (filter or order changed)",
            {"field": "page_token"},
        )
    return PageRequest(size=size, offset=offset, query_fingerprint=query)


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")  # Infinity, -Infinity and NaN, which json accepts


def _read_token(page_token: str) -> tuple[int, str]:
    """The offset and query fingerprint a token carries; INVALID_PAGE_TOKEN unless it is one."""
    malformed = InvalidArgumentError("INVALID_PAGE_TOKEN", "page_token is malformed", {"field": "page_token"})
    if len(page_token) > MAX_PAGE_TOKEN_LENGTH:
        raise malformed
    try:
        payload = json.loads(base64.urlsafe_b64decode(page_token.encode()), parse_constant=_refuse_constant)
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise malformed from exc
    offset = payload.get("o") if isinstance(payload, dict) else None
    token_query = payload.get("q") if isinstance(payload, dict) else None
    # type() rather than isinstance(): True is an int to Python, never an offset.
    if type(offset) is not int or not 0 <= offset <= INT64_MAX or not isinstance(token_query, str):
        raise malformed
    return offset, token_query
