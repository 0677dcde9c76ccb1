"""Columns of caller-sent text are utf8mb4 on MySQL/MariaDB whatever the database's default.

Token descriptions, the user names copied into ``created_by`` and the events' actor, target and
detail took the database's default character set, on which a character outside it (an emoji
description, a user name in Chinese on a latin1 database) failed the call. They now hold any
text within their limits, as the names already did. Other backends: nothing changes.

The downgrade restores the earlier types; it fails on a character that the database's default
cannot hold.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, length) of the VARCHAR columns converted on MySQL/MariaDB.
_COLUMNS = (
    ("users", "created_by", 250),
    ("tokens", "description", 250),
    ("tokens", "created_by", 250),
    ("access_events", "actor", 250),
    ("access_events", "target", 128),
    ("access_events", "detail", 1000),
)


def _convert(utf8mb4: bool) -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    for table, column, length in _COLUMNS:
        converted = mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin")
        before, after = (mysql.VARCHAR(length), converted) if utf8mb4 else (converted, mysql.VARCHAR(length))
        op.alter_column(table, column, type_=after, existing_type=before, existing_nullable=False)


def upgrade() -> None:
    _convert(utf8mb4=True)


def downgrade() -> None:
    _convert(utf8mb4=False)
