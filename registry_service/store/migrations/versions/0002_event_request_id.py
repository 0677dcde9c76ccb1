"""Record the request id of the call behind each history event.

The id is the ``x-request-id`` the client sent (and the registry forwarded to the tracking
service), so an audit entry leads straight to the log lines of that call in both services.
Events written before this revision get an empty id.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_events") as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(128), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("model_events") as batch_op:
        batch_op.drop_column("request_id")
