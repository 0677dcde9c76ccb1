"""Webhooks: subscriptions to the history events and their deliveries.

``webhooks`` holds each subscription, its signing secrets and its cursor (the last event id fanned
out to its deliveries); ``webhook_deliveries`` one row per (webhook, event) with its attempts,
status and the lease of the worker sending it.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _name(length: int) -> sa.types.TypeEngine[str]:
    # Case-sensitive utf8mb4 on MySQL/MariaDB (the schema's text_column, frozen here).
    return sa.String(length=length).with_variant(
        mysql.VARCHAR(charset="utf8mb4", collation="utf8mb4_bin", length=length), "mysql", "mariadb"
    )


def _text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.TEXT(charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("url", _text(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("model_name", _name(250), nullable=False),
        sa.Column("event_types", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("description", _text(), nullable=False),
        sa.Column("created_by", _name(250), nullable=False),
        sa.Column("disabled_reason", _text(), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_time", sa.BigInteger(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("previous_secret", sa.String(length=128), nullable=False),
        sa.Column("previous_secret_until", sa.BigInteger(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("webhook_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("leased_until", sa.BigInteger(), nullable=False),
        sa.Column("leased_by", sa.String(length=64), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=1024), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("webhook_id", "event_id", name=op.f("uq_webhook_deliveries_webhook_id_event_id")),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_status_next_attempt_at"),
        "webhook_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        op.f("ix_webhook_deliveries_webhook_id_status_event_id"),
        "webhook_deliveries",
        ["webhook_id", "status", "event_id"],
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
