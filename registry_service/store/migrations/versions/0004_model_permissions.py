"""Per-model permissions and protected promotion.

``model_permissions`` holds the grants (a level per user or group and model, going with the
model); ``registered_models.protect_production`` (true for every model, existing ones included)
and ``model_protected_aliases`` say which promotions need MANAGE rather than EDIT. Their history
is events in model_events, which need no change.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _name(length: int) -> sa.types.TypeEngine[str]:
    # Case-sensitive on MySQL/MariaDB as on the other backends (the schema's _name, frozen here).
    return sa.String(length=length).with_variant(
        mysql.VARCHAR(charset="utf8mb4", collation="utf8mb4_bin", length=length), "mysql", "mariadb"
    )


def upgrade() -> None:
    # A plain ADD COLUMN everywhere: a batch (copying) rebuild of the table on SQLite would drop
    # its AUTOINCREMENT, and deleted model ids must never be reused (events refer to them).
    op.add_column(
        "registered_models",
        sa.Column("protect_production", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.create_table(
        "model_permissions",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("subject_kind", sa.String(length=5), nullable=False),
        sa.Column("subject_name", _name(128), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("granted_by", sa.String(length=250), nullable=False),
        sa.Column("granted_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_model_permissions_model_id_registered_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "model_id", "subject_kind", "subject_name", name=op.f("pk_model_permissions")
        ),
    )
    op.create_table(
        "model_protected_aliases",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", _name(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_model_protected_aliases_model_id_registered_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "alias", name=op.f("pk_model_protected_aliases")),
    )


def downgrade() -> None:
    op.drop_table("model_protected_aliases")
    op.drop_table("model_permissions")
    # A plain DROP COLUMN (SQLite >= 3.35) for the same reason, and because a rebuild would drop
    # the table that versions cascade from.
    op.drop_column("registered_models", "protect_production")
