"""The registry's tables (its own database; it never reads the tracking tables).

MySQL/MariaDB: names, keys and aliases use the binary collation so that equality, uniqueness and
LIKE are case-sensitive there as on PostgreSQL; long texts use MEDIUMTEXT (TEXT stops at 64 KiB).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from modelreg_server.db import NAMING_CONVENTION


def _name(length: int = 250) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
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
    name: Mapped[str] = mapped_column(_name(), unique=True)
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
    key: Mapped[str] = mapped_column(_name(), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


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
    source: Mapped[str] = mapped_column(sa.Text)
    run_id: Mapped[str] = mapped_column(sa.String(64), default="")
    status: Mapped[str] = mapped_column(sa.String(32))
    status_message: Mapped[str] = mapped_column(sa.Text, default="")
    user_id: Mapped[str] = mapped_column(sa.String(250), default="")


class ModelVersionTagRow(Base):
    __tablename__ = "model_version_tags"

    version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(_name(), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


class AliasRow(Base):
    __tablename__ = "model_aliases"
    __table_args__ = (sa.Index(None, "version_id"),)

    model_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(_name(255), primary_key=True)
    version_id: Mapped[int] = mapped_column(sa.ForeignKey("model_versions.id", ondelete="CASCADE"))


class ModelPermissionRow(Base):
    """A grant of a level (modelreg_server.access.policy.Level's value) on a model to a user or a
    group. Goes with its model (ON DELETE CASCADE); its history lives in model_events."""

    __tablename__ = "model_permissions"

    model_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    subject_kind: Mapped[str] = mapped_column(sa.String(5), primary_key=True)  # user or group
    subject_name: Mapped[str] = mapped_column(_name(128), primary_key=True)
    level: Mapped[int] = mapped_column(sa.SmallInteger)
    granted_by: Mapped[str] = mapped_column(sa.String(250))
    granted_at: Mapped[int] = mapped_column(sa.BigInteger)


class ProtectedAliasRow(Base):
    """An alias whose setting, moving or deletion needs MANAGE on the model."""

    __tablename__ = "model_protected_aliases"

    model_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(_name(255), primary_key=True)


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
    """

    __tablename__ = "model_events"
    __table_args__ = (
        sa.Index(None, "model_id", "time"),
        sa.Index(None, "name", "time"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    name: Mapped[str] = mapped_column(_name())
    version: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    action: Mapped[str] = mapped_column(sa.String(32))
    from_value: Mapped[str] = mapped_column(sa.String(255), default="")
    to_value: Mapped[str] = mapped_column(sa.String(255), default="")
    actor: Mapped[str] = mapped_column(sa.String(250))
    time: Mapped[int] = mapped_column(sa.BigInteger)
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    # The x-request-id of the call that wrote the event: joins the audit trail to both services' logs.
    request_id: Mapped[str] = mapped_column(sa.String(128), default="", server_default="")
