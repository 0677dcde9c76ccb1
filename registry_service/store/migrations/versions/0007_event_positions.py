"""Event ids become commit-ordered positions.

Event ids came from the column's autoincrement (a sequence on PostgreSQL), which hands out a
number when a transaction inserts, not when it commits: a transaction that took 5 and committed
after one that took 6 made 6 visible first, and a reader following ``id > cursor`` skipped 5 for
good. ``model_event_position`` holds the last position given out, in one row; the registry takes
positions from it with an UPDATE at the end of each writing transaction, whose row lock, held to
the commit, makes position order the commit order (see SqlRegistryStore._append). The row starts
at the largest event id so far, so positions continue the existing ids.

An index on (model_id, id) serves readers of one model's events after a position (a watch of
one model catching up).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    position = op.create_table(
        "model_event_position",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_event_position")),
    )
    events = sa.table("model_events", sa.column("id", sa.BigInteger()))
    op.execute(
        sa.insert(position).from_select(
            ["id", "last_position"],
            sa.select(sa.literal(1), sa.func.coalesce(sa.func.max(events.c.id), 0)),
        )
    )
    op.create_index(op.f("ix_model_events_model_id_id"), "model_events", ["model_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_model_events_model_id_id"), table_name="model_events")
    op.drop_table("model_event_position")
