"""Index runs by (experiment_id, run_name).

Looking a run up by name within an experiment (``attributes.run_name = '...'`` or a LIKE prefix,
as MLflow users do to find or resume a named run) otherwise scans every run of the experiment.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_runs_experiment_id_run_name"), "runs", ["experiment_id", "run_name"])


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_experiment_id_run_name"), table_name="runs")
