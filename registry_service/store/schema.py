"""The registry's tables (its own database; it never reads the tracking tables).

MySQL/MariaDB: every column of caller-sent text is utf8mb4 whatever the database's default
character set (migration 0006), so it holds any text within the limits (README, "Limits"), with
the binary collation so that equality, uniqueness and LIKE are case-sensitive there as on
PostgreSQL. Descriptions and comments (65,536 characters, 256 KiB in four-byte characters) are
MEDIUMTEXT: TEXT holds 65,535 bytes there.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from modelreg_server.db import MYSQL_CHARSET, MYSQL_COLLATION, NAMING_CONVENTION, text_column
from modelreg_server.event_log import counter_table
from modelreg_server.idempotency import applied_writes_table

# Up to 65,535 bytes on MySQL: tag values (8,000 characters) and sources (4,096).
Text = sa.Text().with_variant(
    mysql.TEXT(charset=MYSQL_CHARSET, collation=MYSQL_COLLATION), "mysql", "mariadb"
)
# Descriptions and comments.
LongText = sa.Text().with_variant(
    mysql.MEDIUMTEXT(charset=MYSQL_CHARSET, collation=MYSQL_COLLATION), "mysql", "mariadb"
)
# MySQL's BLOB stops at 64 KiB, too small for the lineage of a run with many long params.
LongBlob = sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")
# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class RegisteredModelRow(Base):
    __tablename__ = "registered_models"
    # Ids tie history events to a model across renames: SQLite must never reuse a deleted one.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(text_column(250), unique=True)
    description: Mapped[str] = mapped_column(LongText, default="")
    creation_time: Mapped[int] = mapped_column(sa.BigInteger)
    last_updated_time: Mapped[int] = mapped_column(sa.BigInteger)
    # The number the next version of this model gets. Incremented under the row lock by the
    # transaction that inserts the version; see SqlRegistryStore._allocate_version.
    next_version: Mapped[int] = mapped_column(sa.BigInteger, default=1, server_default="1")
    # Moving a version into or out of Production needs MANAGE on the model (see ModelProtection).
    protect_production: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true())


class RegisteredModelTagRow(Base):
    __tablename__ = "registered_model_tags"

    model_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(text_column(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        sa.UniqueConstraint("model_id", "version"),
        sa.Index(None, "model_id", "current_stage", "version"),
        sa.Index(None, "run_id"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(sa.ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(sa.BigInteger)
    creation_time: Mapped[int] = mapped_column(sa.BigInteger)
    last_updated_time: Mapped[int] = mapped_column(sa.BigInteger)
    current_stage: Mapped[str] = mapped_column(sa.String(20))
    description: Mapped[str] = mapped_column(LongText, default="")
    source: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str] = mapped_column(sa.String(64), default="")
    status: Mapped[str] = mapped_column(sa.String(32))
    status_message: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[str] = mapped_column(text_column(250), default="")


class ModelVersionTagRow(Base):
    __tablename__ = "model_version_tags"

    version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(text_column(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AliasRow(Base):
    __tablename__ = "model_aliases"
    __table_args__ = (sa.Index(None, "version_id"),)

    model_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(text_column(255), primary_key=True)
    version_id: Mapped[int] = mapped_column(sa.ForeignKey("model_versions.id", ondelete="CASCADE"))


class ModelPermissionRow(Base):
    """A grant of a level (modelreg_server.access.policy.Level's value) on a model to a user or a
    group. Goes with its model (ON DELETE CASCADE); its history lives in model_events."""

    __tablename__ = "model_permissions"

    model_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    subject_kind: Mapped[str] = mapped_column(sa.String(5), primary_key=True)  # user or group
    subject_name: Mapped[str] = mapped_column(text_column(128), primary_key=True)
    level: Mapped[int] = mapped_column(sa.SmallInteger)
    granted_by: Mapped[str] = mapped_column(text_column(250))
    granted_at: Mapped[int] = mapped_column(sa.BigInteger)


class ProtectedAliasRow(Base):
    """An alias whose setting, moving or deletion needs MANAGE on the model."""

    __tablename__ = "model_protected_aliases"

    model_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(text_column(255), primary_key=True)


class LineageRow(Base):
    """One row per version registered from a run: a copy of the run's lineage, not a reference.

    Stored as the serialized Lineage message (see registry_service.lineage_codec) in a table of
    its own, so that scans of model_versions stay narrow.
    """

    __tablename__ = "model_version_lineage"

    version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LongBlob)


class EventRow(Base):
    """Append-only history. No foreign key: events outlive the model and versions they describe.

    ``name`` is the model's name when the event happened; ``model_id`` ties events across renames.
    ``id`` is the event's position in the log, given by SqlRegistryStore._append in commit order
    (never by the column's autoincrement, which only rows of before migration 0007 used).
    """

    __tablename__ = "model_events"
    __table_args__ = (
        sa.Index(None, "model_id", "time"),
        sa.Index(None, "name", "time"),
        sa.Index(None, "model_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    name: Mapped[str] = mapped_column(text_column(250))
    version: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    action: Mapped[str] = mapped_column(sa.String(32))
    from_value: Mapped[str] = mapped_column(text_column(255), default="")
    to_value: Mapped[str] = mapped_column(text_column(255), default="")
    actor: Mapped[str] = mapped_column(text_column(250))
    time: Mapped[int] = mapped_column(sa.BigInteger)
    comment: Mapped[str] = mapped_column(LongText, default="")
    # The x-request-id of the call that wrote the event: joins the audit trail to both services' logs.
    request_id: Mapped[str] = mapped_column(sa.String(128), default="", server_default="")


# The last event position handed out: writing transactions take their events' ids from it, last
# (modelreg_server.event_log; SqlRegistryStore._append).
EVENT_POSITION = counter_table(Base.metadata, "model_event_position")


class PromotionGateRow(Base):
    """What a promotion of a model's version into ``target`` (a stage, or "@alias") must satisfy
    (registry_service.domain.gates). Goes with its model."""

    __tablename__ = "promotion_gates"

    model_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    target: Mapped[str] = mapped_column(text_column(256), primary_key=True)
    condition: Mapped[str] = mapped_column(Text, default="")
    require_signature: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    require_digests: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    approvals_required: Mapped[int] = mapped_column(sa.SmallInteger, default=0)
    updated_by: Mapped[str] = mapped_column(text_column(250))
    updated_time: Mapped[int] = mapped_column(sa.BigInteger)


class ApprovalRequestRow(Base):
    """A request to promote one version into one target, and its decision. ``status`` is
    PENDING, APPROVED, REJECTED or CONSUMED; expiry is read from ``expires_time``."""

    __tablename__ = "approval_requests"
    __table_args__ = (sa.Index(None, "model_id", "version", "target", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(sa.ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(sa.BigInteger)
    target: Mapped[str] = mapped_column(text_column(256))
    status: Mapped[str] = mapped_column(sa.String(16))
    requested_by: Mapped[str] = mapped_column(text_column(250))
    requested_time: Mapped[int] = mapped_column(sa.BigInteger)
    expires_time: Mapped[int] = mapped_column(sa.BigInteger)
    comment: Mapped[str] = mapped_column(LongText, default="")
    decided_by: Mapped[str] = mapped_column(text_column(250), default="")
    decided_time: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    decision_comment: Mapped[str] = mapped_column(LongText, default="")


class EventGateRow(Base):
    """What a gated promotion (or its refusal) recorded beside its history event: the gate's
    results as JSON, the approver, whether an admin overrode the gate. A side table, so the
    events table and its writer stay as they are; no foreign key, as events have none."""

    __tablename__ = "model_event_gates"

    event_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    results: Mapped[str] = mapped_column(LongText)
    approver: Mapped[str] = mapped_column(text_column(250), default="")
    overridden: Mapped[bool] = mapped_column(sa.Boolean, default=False)


# The idempotency keys of the writes applied (modelreg_server.idempotency).
APPLIED_WRITES = applied_writes_table(Base.metadata)


class WebhookRow(Base):
    """A subscription to the history events (registry_service.domain.webhooks). ``cursor`` is the
    id of the last event handed off to its deliveries: events are fanned out past it, in order."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    # No foreign key: a deleted model's webhook stays (admins manage it) and its id is not reused.
    model_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    model_name: Mapped[str] = mapped_column(text_column(250), default="")
    # Comma-separated EventAction values; empty: all.
    event_types: Mapped[str] = mapped_column(sa.Text, default="")
    active: Mapped[bool] = mapped_column(sa.Boolean)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(text_column(250))
    # Why the registry made it inactive (its creator lost access); "" otherwise.
    disabled_reason: Mapped[str] = mapped_column(Text, default="")
    creation_time: Mapped[int] = mapped_column(sa.BigInteger)
    last_updated_time: Mapped[int] = mapped_column(sa.BigInteger)
    secret: Mapped[str] = mapped_column(sa.String(128))
    previous_secret: Mapped[str] = mapped_column(sa.String(128), default="")
    previous_secret_until: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    cursor: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class WebhookDeliveryRow(Base):
    """One event on its way to one webhook. ``leased_until``/``leased_by``: the worker sending
    the current attempt claimed it until then (ms); an expired lease is free to take again."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("webhook_id", "event_id"),
        sa.Index(None, "status", "next_attempt_at"),
        sa.Index(None, "webhook_id", "status", "event_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(sa.ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(sa.BigInteger)
    leased_until: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    leased_by: Mapped[str] = mapped_column(sa.String(64), default="")
    last_status_code: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_error: Mapped[str] = mapped_column(sa.String(1024), default="")
    creation_time: Mapped[int] = mapped_column(sa.BigInteger)
    last_updated_time: Mapped[int] = mapped_column(sa.BigInteger)
