"""Per-experiment permissions: the grants to users and groups, and the history of their changes.

``experiment_permissions`` goes with its experiment (ON DELETE CASCADE);
``experiment_permission_events`` has no foreign key, as the history of a grant outlives it. Levels
are the integers of modelreg.access.v1.PermissionLevel (READ 2, EDIT 3, MANAGE 4).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def _text(length: int) -> sa.types.TypeEngine[str]:
    # Binary collation: case-sensitive names on MySQL/MariaDB as elsewhere (frozen from 0001).
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


def upgrade() -> None:
    op.create_table(
        "experiment_permissions",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("subject_kind", sa.String(8), nullable=False),
        sa.Column("subject_name", _text(128), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("granted_by", _text(250), nullable=False),
        sa.Column("granted_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name=op.f("fk_experiment_permissions_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "experiment_id", "subject_kind", "subject_name", name=op.f("pk_experiment_permissions")
        ),
    )
    op.create_index(
        op.f("ix_experiment_permissions_subject_kind_subject_name"),
        "experiment_permissions",
        ["subject_kind", "subject_name"],
    )
    op.create_table(
        "experiment_permission_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("actor", _text(250), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("subject_kind", sa.String(8), nullable=False),
        sa.Column("subject_name", _text(128), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_permission_events")),
    )
    op.create_index(
        op.f("ix_experiment_permission_events_experiment_id_id"),
        "experiment_permission_events",
        ["experiment_id", "id"],
    )


def downgrade() -> None:
    op.drop_table("experiment_permission_events")
    op.drop_table("experiment_permissions")
