"""Sealed artifact paths: a file or directory of a run that a registered version holds.

An upload to a sealed path or below it is refused, so the files a version was registered with
never change. A seal goes with its run (ON DELETE CASCADE) and is never lifted otherwise.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "artifact_seals",
        sa.Column("run_id", sa.String(32), nullable=False),
        # sha256 of the path, as in ``artifacts``: the key stays short whatever the path's length.
        sa.Column("path_digest", sa.String(64), nullable=False),
        sa.Column(
            "path",
            sa.String(1024).with_variant(
                mysql.VARCHAR(1024, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
            ),
            nullable=False,
        ),
        sa.Column("sealed_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_artifact_seals_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "path_digest", name=op.f("pk_artifact_seals")),
    )


def downgrade() -> None:
    op.drop_table("artifact_seals")
