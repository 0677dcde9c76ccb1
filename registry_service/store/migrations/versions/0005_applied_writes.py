"""Idempotency keys of applied writes.

A write sent with ``x-modelreg-idempotency-key`` claims its key here in the transaction that
applies it, so a retry of it (same key, same request) is answered without being applied again.
``result`` identifies what the write created (an id); ``created_at`` (ms) lets every server
process delete keys past their retention.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "applied_writes",
        sa.Column(
            "key",
            # Case-sensitive on MySQL/MariaDB too: keys are visible ASCII, compared exactly.
            sa.String(150).with_variant(
                mysql.VARCHAR(150, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
            ),
            nullable=False,
        ),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("result", sa.String(255), nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_applied_writes")),
    )
    op.create_index(op.f("ix_applied_writes_created_at"), "applied_writes", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_applied_writes_created_at"), table_name="applied_writes")
    op.drop_table("applied_writes")
