"""Store each version's lineage as the serialized Lineage message instead of eight columns.

Every read of a version returned its lineage, and decoding four JSON documents and rebuilding a
message from them per version dominated searches. One ``data`` column now holds the message's
bytes, which reads hand to the response as they are (see registry_service.lineage_codec). Rows of
earlier revisions are converted in place, in batches, so memory stays bounded on large
registries; the downgrade converts them back.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from registry_service import lineage_codec
from registry_service.domain.entities import EncodedLineage, FileDigest, LineageRecord

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "model_version_lineage"
_BATCH = 1_000
_BLOB = sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")
# The columns of revisions 0001-0002, dropped by this one.
_OLD_COLUMNS = (
    sa.Column("run_id", sa.String(length=64)),
    sa.Column("experiment_id", sa.String(length=64)),
    sa.Column("run_name", sa.String(length=250)),
    sa.Column("artifact_path", sa.Text()),
    sa.Column("params", sa.JSON()),
    sa.Column("metrics", sa.JSON()),
    sa.Column("run_tags", sa.JSON()),
    sa.Column("files", sa.JSON()),
)
_lineage = sa.table(
    _TABLE,
    sa.column("version_id", sa.Integer()),
    sa.column("data", sa.LargeBinary()),
    *(sa.column(column.name, column.type) for column in _OLD_COLUMNS),
)


def _batches(*columns: str) -> Iterator[Sequence[sa.Row[Any]]]:
    """All rows in version_id order, ``_BATCH`` at a time (keyset paging: no open cursor while updating)."""
    connection, last = op.get_bind(), -1
    while rows := connection.execute(
        sa.select(_lineage.c.version_id, *(_lineage.c[name] for name in columns))
        .where(_lineage.c.version_id > last)
        .order_by(_lineage.c.version_id)
        .limit(_BATCH)
    ).all():
        yield rows
        last = rows[-1].version_id


def _encode(row: sa.Row[Any]) -> bytes:
    # Metrics were stored as repr(float) (JSON has no NaN/Infinity); files as [path, size, sha256].
    return lineage_codec.encode(
        LineageRecord(
            run_id=row.run_id,
            experiment_id=row.experiment_id,
            run_name=row.run_name,
            artifact_path=row.artifact_path,
            params=row.params,
            metrics={key: float(value) for key, value in row.metrics.items()},
            run_tags=row.run_tags,
            files=tuple(FileDigest(path, int(size), sha256) for path, size, sha256 in row.files),
        )
    )


def _decode(row: sa.Row[Any]) -> dict[str, Any]:
    record = lineage_codec.decode(EncodedLineage(row.data))
    return {
        "run_id": record.run_id,
        "experiment_id": record.experiment_id,
        "run_name": record.run_name,
        "artifact_path": record.artifact_path,
        "params": dict(record.params),
        "metrics": {key: repr(value) for key, value in record.metrics.items()},
        "run_tags": dict(record.run_tags),
        "files": [[f.path, f.size, f.sha256] for f in record.files],
    }


def _update(values: list[dict[str, Any]]) -> None:
    # No .values(): the SET clause comes from the keys of the parameter sets (executemany).
    statement = sa.update(_lineage).where(_lineage.c.version_id == sa.bindparam("key"))
    op.get_bind().execute(statement, values)


def upgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch_op:
        batch_op.add_column(sa.Column("data", _BLOB, nullable=True))
    for rows in _batches(*(column.name for column in _OLD_COLUMNS)):
        _update([{"key": row.version_id, "data": _encode(row)} for row in rows])
    with op.batch_alter_table(_TABLE) as batch_op:
        batch_op.alter_column("data", existing_type=_BLOB, nullable=False)
        for column in _OLD_COLUMNS:
            batch_op.drop_column(column.name)


def downgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch_op:
        for column in _OLD_COLUMNS:
            batch_op.add_column(sa.Column(column.name, column.type, nullable=True))
    for rows in _batches("data"):
        _update([{"key": row.version_id, **_decode(row)} for row in rows])
    with op.batch_alter_table(_TABLE) as batch_op:
        for column in _OLD_COLUMNS:
            batch_op.alter_column(column.name, existing_type=column.type, nullable=False)
        batch_op.drop_column("data")
