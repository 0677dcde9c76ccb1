"""Database engines and Alembic schema management shared by both services.

- SQLite (the embedded default) gets WAL, a busy timeout and foreign keys on every connection.
- Schemas are created and upgraded only by Alembic; a server refuses to start on a schema that is
  not at head and names the command that fixes it.
- Upgrades take a database-wide lock on PostgreSQL and MySQL so two containers running
  ``db upgrade`` at once serialise instead of racing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Arbitrary constant shared by every modelreg migration: one lock per database.
_MIGRATION_LOCK_ID = 0x6D6F64656C726567 % (2**31)


class SchemaOutOfDate(RuntimeError):
    """The database schema is not at the migration head; the message names the fix."""


def database_url_error(url: str) -> str | None:
    """Why ``url`` cannot open a database (unparseable, unknown dialect, driver not installed).

    Checked while reading settings, so a typo stops the service at start with the variable named
    instead of failing later inside SQLAlchemy.
    """
    try:
        sa.make_url(url).get_dialect().import_dbapi()
    except sa.exc.NoSuchModuleError:  # a subclass of ArgumentError: test it first
        return "names an unknown database dialect"
    except sa.exc.ArgumentError:
        return "is not a database URL"
    except ImportError as exc:
        return f"needs a database driver that is not installed ({exc.name})"
    return None


def create_db_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``url``; SQLite files get their directory created and per-connection pragmas."""
    sa_url = sa.make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    database = sa_url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if in_memory:
        engine = sa.create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own BEGIN handling defers locking; take control so "BEGIN IMMEDIATE" works.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _sqlite_begin(connection: sa.Connection) -> None:
        # Take the write lock at BEGIN: a read-then-write transaction can then never fail with
        # "database is locked" halfway, it waits (busy timeout) for its turn instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(script_location: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _head_revision(script_location: str, url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(script_location, url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, script_location: str, revision: str = "head") -> None:
    """Upgrades the schema under a database-wide lock (idempotent, safe from two processes)."""
    config = alembic_config(script_location, engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        dialect = connection.dialect.name
        if dialect == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        elif dialect in ("mysql", "mariadb"):
            connection.execute(sa.text("SELECT GET_LOCK('modelreg_migrations', 600)"))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        if dialect in ("mysql", "mariadb"):
            connection.execute(sa.text("SELECT RELEASE_LOCK('modelreg_migrations')"))


def ensure_schema(engine: Engine, script_location: str, *, auto_upgrade: bool, fix_command: str) -> None:
    """Checks the schema is at head; an empty database is created when ``auto_upgrade`` is set."""
    head = _head_revision(script_location, str(engine.url))
    current = current_revision(engine)
    if current == head:
        return
    # Only an empty database is created automatically; upgrading live data is always an explicit
    # step, so a rolled-out binary never migrates a shared database behind the operator's back.
    if auto_upgrade and current is None:
        upgrade(engine, script_location)
        return
    raise SchemaOutOfDate(
        f"database schema is at revision {current or 'none'}, this server needs {head}; run `{fix_command}`"
    )


def run_migrations_in_env(target_metadata: sa.MetaData) -> None:
    """Body of each service's Alembic env.py (online mode; render_as_batch for SQLite)."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:
        engine = create_db_engine(context.config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as own_connection:
            _configure_and_run(context, own_connection, target_metadata)
        return
    _configure_and_run(context, connection, target_metadata)


def _configure_and_run(context: Any, connection: sa.Connection, target_metadata: sa.MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
