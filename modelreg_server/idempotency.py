"""Writes applied at most once, whatever the retries: the idempotency keys of both services.

A client sends every write with ``x-modelreg-idempotency-key`` (one random key per logical call,
the same on each retry of it). The interceptor reads it into the call's :class:`WriteKey` (the
key, the method, a digest of the request); the domain passes that to its one store call, and the
store claims the key in the same transaction as the write (:meth:`AppliedWrites.claim`, the
first statement that writes): the ``applied_writes`` row commits with the write or not at all.

- A key seen before with the same method and request: the write is not applied again. The claim's
  INSERT fails (on PostgreSQL and MySQL it first waits for a transaction still holding the key,
  i.e. a first attempt still running), the transaction rolls back, and :func:`replayed` answers
  from what is there now: the entity the write created (its id is the row's ``result``) or
  changed, nothing for a void write.
- The same key with another method or request: INVALID_ARGUMENT, reason IDEMPOTENCY_KEY_REUSED.
- A write that failed rolled its claim back with it: its retry runs (and fails) again.
- A LogMetrics stream has one key; its n-th message is claimed as ``<key>/<n>`` (:meth:`WriteKey.part`),
  so a stream sent again stores only the messages that were not stored before.

Keys are kept ``MODELREG_IDEMPOTENCY_HOURS`` (default 24): every service process deletes older
ones at start and every PRUNE_SECONDS (:meth:`AppliedWrites.start_pruning`), a DELETE that any
number of replicas may run at once. A client retries for a minute by default, far inside that.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from modelreg import wire
from modelreg.wire import now_ms
from modelreg_server.access.policy import Grant, Level, Subject
from modelreg_server.errors import InvalidArgumentError, UnavailableError

MAX_KEY_LENGTH = 128
# A key, "/" and the number of a LogMetrics stream's message.
KEY_COLUMN_LENGTH = 150
DEFAULT_RETENTION_HOURS = 24.0
PRUNE_SECONDS = 300.0
TABLE = "applied_writes"
_log = logging.getLogger("modelreg.idempotency")


@dataclass(frozen=True, slots=True)
class WriteKey:
    """One write's claim: the client's ``key``, the ``method`` called and a ``digest`` of its request."""

    key: str
    method: str
    digest: str

    def part(self, index: int, *content: object) -> WriteKey:
        """The claim of the ``index``-th message of a stream, whose content is ``content``."""
        return WriteKey(f"{self.key}/{index}", self.method, content_digest(*content))


def content_digest(*content: object) -> str:
    """sha256 of the values' reprs (exact for str, int and float)."""
    return hashlib.sha256(repr(content).encode()).hexdigest()


class IdempotencyKeyReused(InvalidArgumentError):
    def __init__(self, write: WriteKey) -> None:
        super().__init__(
            "IDEMPOTENCY_KEY_REUSED",
            f"{wire.IDEMPOTENCY_HEADER} '{write.key}' was already used by another request: "
            "send a new key with each write (the same key only when retrying the same request)",
            {"field": wire.IDEMPOTENCY_HEADER},
        )


class WriteInProgress(UnavailableError):
    """The key's first write is neither committed nor visible yet: retry (UNAVAILABLE)."""

    def __init__(self, write: WriteKey) -> None:
        super().__init__(
            "WRITE_IN_PROGRESS",
            f"the write of {wire.IDEMPOTENCY_HEADER} '{write.key}' is still being applied: retry",
            {"field": wire.IDEMPOTENCY_HEADER},
        )


class AlreadyApplied(Exception):
    """Raised by :meth:`AppliedWrites.claim` for a key claimed before; :func:`replayed` answers it."""

    def __init__(self, write: WriteKey) -> None:
        super().__init__(write.key)
        self.write = write


def applied_writes_table(metadata: sa.MetaData) -> sa.Table:
    """The ``applied_writes`` table in a service's schema (its migrations 0005 create it)."""
    return sa.Table(
        TABLE,
        metadata,
        sa.Column(
            "key",
            sa.String(KEY_COLUMN_LENGTH).with_variant(
                mysql.VARCHAR(KEY_COLUMN_LENGTH, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
            ),
            primary_key=True,
        ),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("result", sa.String(255), nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Index(None, "created_at"),
    )


class AppliedWrites:
    """Claims, looks up and prunes the keys of one database's ``applied_writes`` table."""

    def __init__(
        self, table: sa.Table, sessions: sessionmaker[Session], reads: sessionmaker[Session]
    ) -> None:
        self._table = table
        self._sessions = sessions
        self._reads = reads
        self._insert = sa.insert(table)
        self._lookup = sa.select(table.c.method, table.c.request_digest, table.c.result).where(
            table.c.key == sa.bindparam("key")
        )
        self._record = sa.update(table).where(table.c.key == sa.bindparam("b_key"))

    @contextmanager
    def begin(self, write: WriteKey | None, result: str = "") -> Iterator[Session]:
        """A write transaction (as ``sessions.begin()``) whose first statement claims ``write``."""
        with self._sessions.begin() as session:
            self.claim(session, write, result)
            yield session

    def claim(self, session: Session, write: WriteKey | None, result: str = "") -> None:
        """Claims ``write``'s key in ``session``'s transaction (nothing without one); AlreadyApplied
        when another transaction has claimed it and committed. ``result`` identifies what the write
        creates, when known already (else see :meth:`record`)."""
        if write is None:
            return
        try:
            # On the connection: the ORM's execute path costs more than this insert on SQLite.
            session.connection().execute(
                self._insert,
                {
                    "key": write.key,
                    "method": write.method,
                    "request_digest": write.digest,
                    "result": result,
                    "created_at": now_ms(),
                },
            )
        except IntegrityError:
            raise AlreadyApplied(write) from None
        except OperationalError as exc:
            # MySQL: duplicates that waited on a first attempt which then rolled back can deadlock
            # on the key (1213) or time out waiting (1205); the retry finds the key settled.
            if getattr(exc.orig, "args", (None,))[:1] in ((1213,), (1205,)):
                raise WriteInProgress(write) from None
            raise

    def record(self, session: Session, write: WriteKey | None, result: object) -> None:
        """Records what the claimed write created (an id), for its replays."""
        if write is not None:
            session.execute(self._record, {"b_key": write.key, "result": str(result)})

    def result(self, write: WriteKey) -> str:
        """What the committed write of ``write``'s key recorded; IdempotencyKeyReused when that
        write was another request."""
        with self._reads.begin() as session:
            row = session.execute(self._lookup, {"key": write.key}).first()
        if row is None:  # claimed by a transaction that then rolled back, or pruned meanwhile
            raise WriteInProgress(write)
        if (row.method, row.request_digest) != (write.method, write.digest):
            raise IdempotencyKeyReused(write)
        return str(row.result)

    def prune(self, retention_hours: float) -> int:
        """Deletes the keys older than ``retention_hours``; returns how many."""
        cutoff = now_ms() - int(retention_hours * 3_600_000)
        with self._sessions.begin() as session:
            deleted = session.execute(sa.delete(self._table).where(self._table.c.created_at < cutoff))
        return int(getattr(deleted, "rowcount", 0))

    def start_pruning(self, retention_hours: float, every: float = PRUNE_SECONDS) -> None:
        """Prunes now and then every ``every`` seconds on a daemon thread, until this object is
        garbage-collected (the thread holds it only while pruning)."""
        stop = threading.Event()
        ref = weakref.ref(self)

        def run() -> None:
            while True:
                applied = ref()
                if applied is None:
                    return
                try:
                    deleted = applied.prune(retention_hours)
                    if deleted:
                        _log.info("deleted %d idempotency keys older than %s h", deleted, retention_hours)
                except Exception:  # a database away for a while: try again next time
                    _log.warning("deleting old idempotency keys failed", exc_info=True)
                del applied
                if stop.wait(every):
                    return

        weakref.finalize(self, stop.set)
        threading.Thread(target=run, name="modelreg-prune-idempotency-keys", daemon=True).start()


P = ParamSpec("P")
T = TypeVar("T")


def replayed(answer: Callable[..., T]) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorates a store write (a method of a store with an ``applied_writes``) that takes
    ``write: WriteKey | None`` by keyword: when its claim finds the key applied already, it returns
    ``answer(store, result, *args, **kwargs)`` instead, i.e. what the call returns now for what the
    first one created (``result`` identifies it) or changed."""

    def decorate(method: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(method)
        def claimed(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return method(*args, **kwargs)
            except AlreadyApplied as applied:
                store = args[0]
                applied_writes: AppliedWrites = getattr(store, "applied_writes")  # noqa: B009
                return answer(store, applied_writes.result(applied.write), *args[1:], **kwargs)

        return claimed

    return decorate


def current_grant(grants: Iterable[Grant], subject: Subject, level: Level, actor: str) -> Grant:
    """The replay of a grant set before: ``subject``'s grant among ``grants`` (as set by ``actor``,
    if removed since)."""
    return next((g for g in grants if g.subject == subject), None) or Grant(subject, level, actor, 0)


def nothing(_store: Any, _result: str, /, *_args: Any, **_kwargs: Any) -> None:
    """The replay of a write that returns nothing."""
