"""Database engines and Alembic schema management shared by both services.

- SQLite (the embedded default) gets WAL, a busy timeout and foreign keys on every connection,
  and a per-connection statement cache of SQLITE_CACHED_STATEMENTS (see there).
  Transactions that may write begin IMMEDIATE (they wait for the write lock up front); read-only
  ones, through :func:`read_only`, begin DEFERRED and read their WAL snapshot beside a writer.
  WAL checkpoints run on a helper thread, not inside the commit of whichever call crosses the
  threshold.
- Schemas are created and upgraded only by Alembic; a server refuses to start on a schema that is
  not at head and names the command that fixes it.
- Upgrades take a database-wide lock on PostgreSQL and MySQL so two containers running
  ``db upgrade`` at once serialise instead of racing.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from modelreg_server.filters import Comparison

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# The character set and collation of every column of caller-sent text on MySQL/MariaDB, whatever
# the database's default: utf8mb4 holds any text, and the binary collation compares it
# case-sensitively, as PostgreSQL and SQLite do.
MYSQL_CHARSET, MYSQL_COLLATION = "utf8mb4", "utf8mb4_bin"


def text_column(length: int) -> sa.types.TypeEngine[str]:
    """A column of caller-sent text of up to ``length`` characters on every backend (VARCHAR
    counts characters on MySQL/MariaDB as on PostgreSQL)."""
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset=MYSQL_CHARSET, collation=MYSQL_COLLATION), "mysql", "mariadb"
    )


SQLITE_BUSY_TIMEOUT_MS = 30_000
# Prepared statements the sqlite3 module keeps per connection, by SQL text (its default is 128).
# A search's SQL text differs with the length of each IN list of its filter, and the prepared
# form of a large one (5,000 bound values, the filter limit) holds about 0.2 MiB: a server's 16
# pooled connections kept hundreds of them. 64 holds every statement of the common calls (about
# 30) with room to spare; a connection that ran a large statement is replaced after it
# (discard_after_use), so what stays cached is small.
SQLITE_CACHED_STATEMENTS = 64
# The largest search whose statement is kept for the next identical search (see small_search).
CACHED_SEARCH_VALUES = 100
CACHED_SEARCH_CHARACTERS = 2_048
# Execution option marking an engine's transactions as read-only (see read_only()).
READ_ONLY_OPTION = "modelreg_read_only"
# The WAL checkpoint thread's period. Request connections checkpoint only past the safety net
# below, which the thread keeps the WAL far from (a second of writes is well under 10,000 pages).
WAL_CHECKPOINT_INTERVAL_S = 0.5
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000
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
    connect_args: dict[str, Any] = {"check_same_thread": False, "cached_statements": SQLITE_CACHED_STATEMENTS}
    if in_memory:
        engine = sa.create_engine(url, poolclass=StaticPool, connect_args=connect_args)
    else:
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_MS / 1000
        engine = sa.create_engine(url, connect_args=connect_args)

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own BEGIN handling defers locking; take control so "BEGIN IMMEDIATE" works.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _sqlite_begin(connection: sa.Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            # A deferred read takes no lock in WAL mode: it reads its snapshot while a writer works.
            connection.exec_driver_sql("BEGIN")
        else:
            # Take the write lock at BEGIN: a read-then-write transaction can then never fail with
            # "database is locked" halfway, it waits (busy timeout) for its turn instead.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    if not in_memory:
        _start_wal_checkpointer(engine)
    return engine


def discard_after_use(connection: sa.Connection) -> None:
    """On SQLite, closes ``connection``'s database connection when it goes back to the pool (a new
    one replaces it at the next checkout) instead of keeping it: its statement cache would keep
    the large statement it just ran (see SQLITE_CACHED_STATEMENTS). Elsewhere, a no-op: psycopg
    and PyMySQL keep no statement run once. An in-memory database lives in its one connection,
    which is kept."""
    if connection.dialect.name == "sqlite" and not isinstance(connection.engine.pool, StaticPool):
        connection.connection.invalidate(soft=True)


def small_search(filters: Iterable[Comparison], ids: int = 0) -> bool:
    """Whether a search's statement is worth keeping, in a memo or a connection's statement
    cache: at most CACHED_SEARCH_VALUES bound values (``ids`` ids and the filters' values),
    together at most CACHED_SEARCH_CHARACTERS long. A statement keeps every value it binds."""
    values = [str(v) for c in filters for v in (c.value if isinstance(c.value, tuple) else (c.value,))]
    return ids + len(values) <= CACHED_SEARCH_VALUES and sum(map(len, values)) <= CACHED_SEARCH_CHARACTERS


def discard_after_large_search(
    connection: sa.Connection, filters: Iterable[Comparison], ids: int = 0
) -> None:
    """discard_after_use for a search that is not a small_search: its statement is not kept."""
    if not small_search(filters, ids):
        discard_after_use(connection)


def read_only(engine: Engine) -> Engine:
    """``engine`` (same pool) for transactions that only read.

    On SQLite they begin DEFERRED instead of IMMEDIATE, so a read never queues behind a writer.
    A write inside one could fail with "database is locked" instead of waiting: use it for pure
    reads only. PostgreSQL and MySQL reads take no locks either way; the option changes nothing there.
    """
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def _start_wal_checkpointer(engine: Engine) -> None:
    """Checkpoints the WAL of ``engine``'s SQLite file every WAL_CHECKPOINT_INTERVAL_S on a daemon
    thread, until the engine is garbage-collected.

    SQLite's automatic checkpoint runs inside the commit that crosses its threshold (1,000 pages by
    default): that one call took ~4 ms instead of ~0.2 ms here, every ~180 create_run calls, which
    is what set the p99 of single writes. A PASSIVE checkpoint waits for no lock and the sqlite3
    module releases the GIL while it runs, so on this thread it costs the calls nothing.
    """
    stop = threading.Event()
    engine_dialect = engine.dialect
    cargs, cparams = engine_dialect.create_connect_args(engine.url)

    def run() -> None:
        connection = engine_dialect.connect(*cargs, **cparams)
        try:
            while not stop.wait(WAL_CHECKPOINT_INTERVAL_S):
                # On failure (e.g. the file is gone) the commits' safety-net checkpoint still applies.
                with suppress(sqlite3.Error):
                    connection.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()

    # The thread holds no reference to the engine, so the engine can be collected and stop it.
    weakref.finalize(engine, stop.set)
    name = f"sqlite-wal-checkpoint {engine.url.database}"
    threading.Thread(target=run, name=name, daemon=True).start()


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
