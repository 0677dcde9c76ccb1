"""The access database: users, their groups, API tokens and the audit of changes to them.

One database both services open (MODELREG_AUTH_DATABASE_URL); neither asks the other to
authenticate a call.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from modelreg_server.db import NAMING_CONVENTION, text_column

# Columns of caller-sent text are utf8mb4 on MySQL/MariaDB (migration 0002), names case-sensitive.
Name = text_column(128)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Name, unique=True)
    admin: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    service: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    created_by: Mapped[str] = mapped_column(text_column(250))


class UserGroupRow(Base):
    __tablename__ = "user_groups"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    group_name: Mapped[str] = mapped_column(Name, primary_key=True)


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    description: Mapped[str] = mapped_column(text_column(250), default="")
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    created_by: Mapped[str] = mapped_column(text_column(250))
    expires_at: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    revoked_at: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)


class AccessEventRow(Base):
    __tablename__ = "access_events"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    time: Mapped[int] = mapped_column(sa.BigInteger)
    actor: Mapped[str] = mapped_column(text_column(250))
    action: Mapped[str] = mapped_column(sa.String(32))
    target: Mapped[str] = mapped_column(text_column(128))
    detail: Mapped[str] = mapped_column(text_column(1000), default="")
    request_id: Mapped[str] = mapped_column(sa.String(128), default="")
