"""ORM tables of the tracking database. Alembic migrations (store/migrations) create them.

Choices worth knowing:
- Experiment ids are integers (strings on the wire); run ids are uuid4 hex.
- String columns use a binary collation on MySQL/MariaDB so names, keys and values compare
  case-sensitively there too, as on SQLite and PostgreSQL (and as in MLflow).
- Metric values: MySQL cannot store NaN or ±inf in a DOUBLE, PostgreSQL can. To round-trip all
  three on every backend, ``value`` holds a finite double (0 for NaN, ±DBL_MAX for ±inf, as MLflow
  stores them, so ordering by ``value`` stays meaningful) and ``is_nan`` / ``is_inf`` say what it
  really was.
- Param and tag values can be 6,000/8,000 characters, longer than a PostgreSQL btree entry or a
  MySQL index key allows, so their search indexes lead with ``key`` (plus ``run_id``), and the
  value test runs over the rows of one key. Metrics are searched by ``(key, value)``.
- The artifact manifest's key is ``(run_id, path_digest)`` (sha256 of the path): a 1,024-character
  path does not fit a MySQL index key.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from modelreg_server.db import NAMING_CONVENTION, text_column
from modelreg_server.event_log import counter_table
from modelreg_server.idempotency import applied_writes_table

# SQLite only auto-increments an INTEGER PRIMARY KEY, not a BIGINT one.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_RUN_ID = sa.String(32)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class ExperimentRow(Base):
    __tablename__ = "experiments"

    experiment_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(text_column(250), unique=True)
    artifact_location: Mapped[str] = mapped_column(text_column(1024))
    lifecycle_stage: Mapped[str] = mapped_column(sa.String(16))
    creation_time: Mapped[int] = mapped_column(sa.BigInteger)
    last_update_time: Mapped[int] = mapped_column(sa.BigInteger)


class ExperimentTagRow(Base):
    __tablename__ = "experiment_tags"

    experiment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(text_column(250), primary_key=True)
    value: Mapped[str] = mapped_column(text_column(8000))


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        sa.Index(None, "experiment_id", "lifecycle_stage", "start_time"),
        sa.Index(None, "experiment_id", "run_name"),  # run lookup by name (migration 0002)
    )

    run_id: Mapped[str] = mapped_column(_RUN_ID, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.experiment_id"))
    run_name: Mapped[str] = mapped_column(text_column(250))
    status: Mapped[str] = mapped_column(sa.String(16))
    start_time: Mapped[int] = mapped_column(sa.BigInteger)
    end_time: Mapped[int | None] = mapped_column(sa.BigInteger)
    artifact_uri: Mapped[str] = mapped_column(text_column(1200))
    lifecycle_stage: Mapped[str] = mapped_column(sa.String(16))
    # When the run was soft-deleted; restoring an experiment restores the runs deleted with it.
    deleted_time: Mapped[int | None] = mapped_column(sa.BigInteger)
    parent_run_id: Mapped[str | None] = mapped_column(_RUN_ID, index=True)


def _run_fk() -> sa.ForeignKey:
    return sa.ForeignKey("runs.run_id", ondelete="CASCADE")


class RunTagRow(Base):
    __tablename__ = "run_tags"
    __table_args__ = (sa.Index(None, "key", "run_id"),)

    run_id: Mapped[str] = mapped_column(_run_fk(), primary_key=True)
    key: Mapped[str] = mapped_column(text_column(250), primary_key=True)
    value: Mapped[str] = mapped_column(text_column(8000))


class ParamRow(Base):
    __tablename__ = "params"
    __table_args__ = (sa.Index(None, "key", "run_id"),)

    run_id: Mapped[str] = mapped_column(_run_fk(), primary_key=True)
    key: Mapped[str] = mapped_column(text_column(250), primary_key=True)
    value: Mapped[str] = mapped_column(text_column(6000))


class MetricRow(Base):
    """Every logged point (the full history)."""

    __tablename__ = "metrics"
    __table_args__ = (sa.Index(None, "run_id", "key", "step", "timestamp"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(_run_fk())
    key: Mapped[str] = mapped_column(text_column(250))
    value: Mapped[float] = mapped_column(sa.Double)
    is_nan: Mapped[bool] = mapped_column(sa.Boolean)
    is_inf: Mapped[bool] = mapped_column(sa.Boolean)
    timestamp: Mapped[int] = mapped_column(sa.BigInteger)
    step: Mapped[int] = mapped_column(sa.BigInteger)


class LatestMetricRow(Base):
    """The latest point of each (run, key) by MLflow's rule, kept current in every write transaction."""

    __tablename__ = "latest_metrics"
    __table_args__ = (sa.Index(None, "key", "value"),)

    run_id: Mapped[str] = mapped_column(_run_fk(), primary_key=True)
    key: Mapped[str] = mapped_column(text_column(250), primary_key=True)
    value: Mapped[float] = mapped_column(sa.Double)
    is_nan: Mapped[bool] = mapped_column(sa.Boolean)
    is_inf: Mapped[bool] = mapped_column(sa.Boolean)
    timestamp: Mapped[int] = mapped_column(sa.BigInteger)
    step: Mapped[int] = mapped_column(sa.BigInteger)


class ArtifactRow(Base):
    """The manifest of a run's artifact files: the source of truth for list and stat."""

    __tablename__ = "artifacts"

    run_id: Mapped[str] = mapped_column(_run_fk(), primary_key=True)
    path_digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    path: Mapped[str] = mapped_column(text_column(1024))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[int] = mapped_column(sa.BigInteger)


class ArtifactSealRow(Base):
    """A file or directory of a run that nothing may be uploaded to any more (migration 0004)."""

    __tablename__ = "artifact_seals"

    run_id: Mapped[str] = mapped_column(_run_fk(), primary_key=True)
    path_digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    path: Mapped[str] = mapped_column(text_column(1024))
    sealed_at: Mapped[int] = mapped_column(sa.BigInteger)


class ExperimentPermissionRow(Base):
    """A grant of a level on an experiment to a user or a group (migration 0003)."""

    __tablename__ = "experiment_permissions"
    # Searches restricted to a caller look its grants up by subject.
    __table_args__ = (sa.Index(None, "subject_kind", "subject_name"),)

    experiment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"), primary_key=True
    )
    subject_kind: Mapped[str] = mapped_column(sa.String(8), primary_key=True)  # user or group
    subject_name: Mapped[str] = mapped_column(text_column(128), primary_key=True)
    level: Mapped[int] = mapped_column(sa.Integer)  # modelreg_server.access.policy.Level
    granted_by: Mapped[str] = mapped_column(text_column(250))
    granted_at: Mapped[int] = mapped_column(sa.BigInteger)


class ExperimentPermissionEventRow(Base):
    """Every set and delete of a grant. No foreign key: the history outlives the grant."""

    __tablename__ = "experiment_permission_events"
    __table_args__ = (sa.Index(None, "experiment_id", "id"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(sa.Integer)
    time: Mapped[int] = mapped_column(sa.BigInteger)
    actor: Mapped[str] = mapped_column(text_column(250))
    action: Mapped[str] = mapped_column(sa.String(16))  # SET or DELETE
    subject_kind: Mapped[str] = mapped_column(sa.String(8))
    subject_name: Mapped[str] = mapped_column(text_column(128))
    level: Mapped[int | None] = mapped_column(sa.Integer)  # None for DELETE
    request_id: Mapped[str] = mapped_column(sa.String(128))


class RunEventRow(Base):
    """The runs' lifecycle log: a run finished, failed, was killed, deleted or restored. ``id`` is
    the event's position, handed out in commit order by RUN_EVENT_COUNTER (modelreg_server.event_log).
    No foreign key: events outlive their run (``modelreg gc``)."""

    __tablename__ = "run_events"
    __table_args__ = (sa.Index(None, "experiment_id", "id"), sa.Index(None, "run_id", "id"))

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    run_id: Mapped[str] = mapped_column(_RUN_ID)
    experiment_id: Mapped[int] = mapped_column(sa.Integer)
    action: Mapped[str] = mapped_column(sa.String(16))  # RunEventAction's value
    actor: Mapped[str] = mapped_column(text_column(250))
    time: Mapped[int] = mapped_column(sa.BigInteger)
    request_id: Mapped[str] = mapped_column(sa.String(128))


# The last position of run_events handed out.
RUN_EVENT_COUNTER = counter_table(Base.metadata, "run_event_counter")

# The idempotency keys of the writes applied (modelreg_server.idempotency).
APPLIED_WRITES = applied_writes_table(Base.metadata)
