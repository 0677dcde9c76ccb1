"""The runs' lifecycle log (finished, failed, killed, deleted, restored) and its position counter.

``run_events.id`` is not autoincremented: writers take positions from the one row of
``run_event_counter`` as the last statement of their transaction, so positions follow commit
order (see modelreg_server.event_log; what this migration needs of it is written out here).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "run_events",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column(
            "actor",
            sa.String(250).with_variant(
                mysql.VARCHAR(250, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
            ),
            nullable=False,
        ),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_events")),
    )
    op.create_index(op.f("ix_run_events_experiment_id_id"), "run_events", ["experiment_id", "id"])
    op.create_index(op.f("ix_run_events_run_id_id"), "run_events", ["run_id", "id"])
    counter = op.create_table(
        "run_event_counter",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_event_counter")),
    )
    op.bulk_insert(counter, [{"id": 1, "last_position": 0}])


def downgrade() -> None:
    op.drop_table("run_event_counter")
    op.drop_index(op.f("ix_run_events_run_id_id"), table_name="run_events")
    op.drop_index(op.f("ix_run_events_experiment_id_id"), table_name="run_events")
    op.drop_table("run_events")
