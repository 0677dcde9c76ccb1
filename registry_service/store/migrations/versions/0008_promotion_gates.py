"""Promotion gates, approval requests, and what a gated promotion records beside its event.

``promotion_gates``: per model and target (a stage or "@alias"), the condition and checks a
promotion must pass. ``approval_requests``: two-person approvals of one version into one target.
``model_event_gates``: gate results, approver and override of the event a gated promotion (or
its refusal) wrote, keyed by the event's id. New tables only: existing rows are untouched.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHARSET, _COLLATION = "utf8mb4", "utf8mb4_bin"


def _name(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length=length).with_variant(
        mysql.VARCHAR(length, charset=_CHARSET, collation=_COLLATION), "mysql", "mariadb"
    )


def _text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.TEXT(charset=_CHARSET, collation=_COLLATION), "mysql", "mariadb")


def _long_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(
        mysql.MEDIUMTEXT(charset=_CHARSET, collation=_COLLATION), "mysql", "mariadb"
    )


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "promotion_gates",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("target", _name(256), nullable=False),
        sa.Column("condition", _text(), nullable=False),
        sa.Column("require_signature", sa.Boolean(), nullable=False),
        sa.Column("require_digests", sa.Boolean(), nullable=False),
        sa.Column("approvals_required", sa.SmallInteger(), nullable=False),
        sa.Column("updated_by", _name(250), nullable=False),
        sa.Column("updated_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_promotion_gates_model_id_registered_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "target", name=op.f("pk_promotion_gates")),
    )
    op.create_table(
        "approval_requests",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("target", _name(256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", _name(250), nullable=False),
        sa.Column("requested_time", sa.BigInteger(), nullable=False),
        sa.Column("expires_time", sa.BigInteger(), nullable=False),
        sa.Column("comment", _long_text(), nullable=False),
        sa.Column("decided_by", _name(250), nullable=False),
        sa.Column("decided_time", sa.BigInteger(), nullable=False),
        sa.Column("decision_comment", _long_text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_approval_requests_model_id_registered_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_requests")),
    )
    op.create_index(
        op.f("ix_approval_requests_model_id_version_target_status"),
        "approval_requests",
        ["model_id", "version", "target", "status"],
    )
    op.create_table(
        "model_event_gates",
        sa.Column("event_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("results", _long_text(), nullable=False),
        sa.Column("approver", _name(250), nullable=False),
        sa.Column("overridden", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_model_event_gates")),
    )


def downgrade() -> None:
    op.drop_table("model_event_gates")
    # The table takes its index with it (MySQL refuses to drop an index its foreign key uses).
    op.drop_table("approval_requests")
    op.drop_table("promotion_gates")
