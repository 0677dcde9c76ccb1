"""Event logs whose positions follow commit order, and the cursors that name a position.

A reader that follows a log by asking for "events after position P" misses an event for good if a
lower position can become visible after a higher one. Autoincrement ids allow exactly that on
PostgreSQL and MySQL: transaction A takes id 5, transaction B takes id 6 and commits first, a
reader sees 6 and moves its cursor past 5 before A commits.

So positions come from a one-row counter table instead: the writer increments it (``UPDATE ...
SET last_position = last_position + n``) as the last statement before its commit and inserts its
events with the positions it got. The UPDATE holds the row's lock until the transaction ends, so
the next writer's increment waits for that commit (or rollback) and gets higher positions: the
order of positions is the order of commits, on every replica sharing the database. A rolled-back
transaction rolls its increment back with it, so there are no holes either. SQLite serialises
writers anyway. The price is that writers of one service serialise over that last statement and
their commit, not over their whole transaction.

A cursor is the position of the last event a reader has, in an opaque, versioned text form, so
its encoding can change without breaking readers that stored one.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelreg_server.errors import InvalidArgumentError

# One spelling per position (no leading zeros), so a cursor read back writes the same text.
_CURSOR = re.compile(r"v1\.(0|[1-9][0-9]{0,18})")
MAX_POSITION = 2**63 - 1


def counter_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """The one-row table holding the last position handed out (0 when none was)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_position", sa.BigInteger, nullable=False),
    )


class PositionCounter:
    """Hands out commit-ordered positions from a :func:`counter_table`."""

    def __init__(self, table: sa.Table, update_returning: bool) -> None:
        increment = sa.update(table).where(table.c.id == 1)
        increment = increment.values(last_position=table.c.last_position + sa.bindparam("count"))
        self._increment = increment
        self._returning = increment.returning(table.c.last_position) if update_returning else None
        self._read = sa.select(table.c.last_position).where(table.c.id == 1)

    def take(self, session: Session, count: int) -> int:
        """Reserves ``count`` positions in the session's transaction; returns the first. Call it
        last before the commit: it holds the counter's lock until then."""
        params: dict[str, Any] = {"count": count}
        if self._returning is not None:
            last = session.execute(self._returning, params).scalar_one()
        else:  # MySQL/MariaDB: no UPDATE ... RETURNING; the row is ours until commit
            session.execute(self._increment, params)
            last = session.execute(self._read).scalar_one()
        return int(last) - count + 1

    def head(self, session: Session) -> int:
        """The last position handed out and committed (as the session sees it)."""
        return int(session.execute(self._read).scalar_one())


def encode_cursor(position: int) -> str:
    return f"v1.{position}"


def decode_cursor(text: str, field: str = "cursor") -> int:
    """The position a cursor names; INVALID_ARGUMENT (INVALID_CURSOR) naming ``field`` otherwise."""
    match = _CURSOR.fullmatch(text)
    if match is None or int(match.group(1)) > MAX_POSITION:
        shown = text[:40] + ("..." if len(text) > 40 else "")
        raise InvalidArgumentError(
            "INVALID_CURSOR",
            f"{field} {shown!r} is not a cursor this service wrote (use one from an event it returned)",
            {"field": field},
        )
    return int(match.group(1))


class CursorAhead(InvalidArgumentError):
    """A cursor past the end of the log: written against another database, or forged."""

    def __init__(self, head: int) -> None:
        super().__init__(
            "CURSOR_AHEAD",
            "cursor is past the end of this service's event log: it was written by another database",
            {"field": "cursor", "head": str(head)},
        )
