"""Columns of caller-sent text hold any text within its limits on MySQL/MariaDB.

A stage change's comment may be 65,536 characters, as a description may, but ``comment`` was a
TEXT, which holds 65,535 bytes on MySQL/MariaDB: a comment of that length, or of a quarter of it
in four-byte characters, failed the call there. It becomes a MEDIUMTEXT, as the descriptions are.

The columns of caller-sent text that did not name a character set (descriptions, tag values,
source, comments, the values and actors of history events, the grantor of a permission) took the
database's default, on which a character outside it (an emoji on a latin1 database) failed the
call. They are now utf8mb4 whatever the default, with the binary collation, as names, keys and
aliases already were. Other backends store any text in these columns: nothing changes there.

The downgrade restores the earlier types; it fails on a comment that no longer fits a TEXT, or on
a character that the database's default cannot hold.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHARSET, _COLLATION = "utf8mb4", "utf8mb4_bin"
# (table, column, type before, type after) on MySQL/MariaDB.
_COLUMNS: tuple[tuple[str, str, sa.types.TypeEngine[str], sa.types.TypeEngine[str]], ...] = (
    (
        "registered_models",
        "description",
        mysql.MEDIUMTEXT(),
        mysql.MEDIUMTEXT(charset=_CHARSET, collation=_COLLATION),
    ),
    ("registered_model_tags", "value", mysql.TEXT(), mysql.TEXT(charset=_CHARSET, collation=_COLLATION)),
    (
        "model_versions",
        "description",
        mysql.MEDIUMTEXT(),
        mysql.MEDIUMTEXT(charset=_CHARSET, collation=_COLLATION),
    ),
    ("model_versions", "source", mysql.TEXT(), mysql.TEXT(charset=_CHARSET, collation=_COLLATION)),
    ("model_versions", "status_message", mysql.TEXT(), mysql.TEXT(charset=_CHARSET, collation=_COLLATION)),
    (
        "model_versions",
        "user_id",
        mysql.VARCHAR(250),
        mysql.VARCHAR(250, charset=_CHARSET, collation=_COLLATION),
    ),
    ("model_version_tags", "value", mysql.TEXT(), mysql.TEXT(charset=_CHARSET, collation=_COLLATION)),
    (
        "model_events",
        "from_value",
        mysql.VARCHAR(255),
        mysql.VARCHAR(255, charset=_CHARSET, collation=_COLLATION),
    ),
    (
        "model_events",
        "to_value",
        mysql.VARCHAR(255),
        mysql.VARCHAR(255, charset=_CHARSET, collation=_COLLATION),
    ),
    ("model_events", "actor", mysql.VARCHAR(250), mysql.VARCHAR(250, charset=_CHARSET, collation=_COLLATION)),
    ("model_events", "comment", mysql.TEXT(), mysql.MEDIUMTEXT(charset=_CHARSET, collation=_COLLATION)),
    (
        "model_permissions",
        "granted_by",
        mysql.VARCHAR(250),
        mysql.VARCHAR(250, charset=_CHARSET, collation=_COLLATION),
    ),
)


def _mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    if not _mysql():
        return
    for table, column, before, after in _COLUMNS:
        op.alter_column(table, column, type_=after, existing_type=before, existing_nullable=False)


def downgrade() -> None:
    if not _mysql():
        return
    for table, column, before, after in _COLUMNS:
        op.alter_column(table, column, type_=before, existing_type=after, existing_nullable=False)
