"""The SQLAlchemy implementation of RegistryStore (SQLite, PostgreSQL, MySQL/MariaDB).

Concurrency rules, the same on every backend:
- Every write that touches a model or its versions first locks the model's row with an UPDATE
  (``_lock_model``). Writers of one model are therefore serialised, always in the same order
  (model row, then version rows, then, last, the event log's position row), so they cannot
  deadlock one another. Event ids follow commit order across all models and processes (see
  ``_append``), which is what replaying the history and following the log rely on.
- SQLite takes its write lock at BEGIN (``BEGIN IMMEDIATE``, see modelreg_server.db); MySQL runs
  at READ COMMITTED like PostgreSQL, so no gap locks surprise concurrent inserts.
- Pure reads run in read-only transactions (``db.read_only``): on SQLite they begin DEFERRED and
  read their snapshot while a writer holds the lock, instead of queueing behind it.

Speed: the hot paths (version reads, registration, transitions, aliases) are Core statements on
the tables, selecting plain columns: building ORM objects cost more than the queries. Related
rows are loaded for all versions at once (tags and aliases by one UNION ALL with an IN list),
never one query per row, and lineage is carried as the stored bytes, never decoded here.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from modelreg.wire import now_ms
from modelreg_server.access.policy import Grant, Grantee, GrantEvent, Level, Subject, grants_limit
from modelreg_server.context import CallContext
from modelreg_server.db import discard_after_large_search, read_only
from modelreg_server.errors import ServiceError
from modelreg_server.event_log import PositionCounter
from modelreg_server.idempotency import AppliedWrites, WriteKey, current_grant, nothing, replayed
from modelreg_server.sqlfilter import like
from modelreg_server.sqlsize import total_bytes
from modelreg_server.validation import within_limit
from registry_service.domain import errors
from registry_service.domain.entities import (
    EncodedLineage,
    EventAction,
    GateResult,
    ModelAccess,
    ModelEvent,
    ModelPermissions,
    ModelProtection,
    ModelVersion,
    NewEvent,
    RegisteredModel,
    RollbackResult,
    Stage,
    VersionStatus,
)
from registry_service.domain.filters import Comparison, Entity, OrderBy
from registry_service.domain.gates import (
    APPROVAL_TTL_MS,
    MAX_GATES_PER_MODEL,
    MAX_PENDING_REQUESTS,
    ApprovalNotPending,
    ApprovalRequest,
    ApprovalRequestNotFound,
    ApprovalStatus,
    GateNotFound,
    PromotionCheck,
    PromotionFacts,
    PromotionGate,
    SelfApproval,
    Verdict,
    gate_comment,
)
from registry_service.domain.gates import Subject as GateSubject
from registry_service.domain.rules import RESERVED_ALIAS, ModelUri, alias_limit, tag_limits
from registry_service.store.schema import (
    APPLIED_WRITES,
    EVENT_POSITION,
    AliasRow,
    ApprovalRequestRow,
    EventGateRow,
    EventRow,
    LineageRow,
    ModelPermissionRow,
    ModelVersionRow,
    ModelVersionTagRow,
    PromotionGateRow,
    ProtectedAliasRow,
    RegisteredModelRow,
    RegisteredModelTagRow,
)

# Core tables: statements on them skip the ORM's compile and row-processing layers.
M = cast(sa.Table, RegisteredModelRow.__table__)
V = cast(sa.Table, ModelVersionRow.__table__)
MODEL_TAGS = cast(sa.Table, RegisteredModelTagRow.__table__)
VERSION_TAGS = cast(sa.Table, ModelVersionTagRow.__table__)
ALIASES = cast(sa.Table, AliasRow.__table__)
LINEAGE = cast(sa.Table, LineageRow.__table__)
EVENTS = cast(sa.Table, EventRow.__table__)
GRANTS = cast(sa.Table, ModelPermissionRow.__table__)
PROTECTED = cast(sa.Table, ProtectedAliasRow.__table__)
GATES = cast(sa.Table, PromotionGateRow.__table__)
REQUESTS = cast(sa.Table, ApprovalRequestRow.__table__)
EVENT_GATES = cast(sa.Table, EventGateRow.__table__)

P = ParamSpec("P")
R = TypeVar("R")
_STAGES = {stage.value: stage for stage in Stage}
_STATUSES = {status.value: status for status in VersionStatus}
_STAGE_ORDER = {stage.value: index for index, stage in enumerate(Stage)}
# Shared by every version without tags: read-only, and no allocation per version of a search.
_NO_TAGS: Mapping[str, str] = MappingProxyType({})


def _compare(column: Any, comparison: Comparison, dialect: str) -> sa.ColumnElement[bool]:
    value = comparison.value
    match comparison.op:
        case "=":
            return column == value  # type: ignore[no-any-return]
        case "!=":
            return column != value  # type: ignore[no-any-return]
        case "<":
            return column < value  # type: ignore[no-any-return]
        case "<=":
            return column <= value  # type: ignore[no-any-return]
        case ">":
            return column > value  # type: ignore[no-any-return]
        case ">=":
            return column >= value  # type: ignore[no-any-return]
        case "LIKE" | "ILIKE":
            # Case-sensitive LIKE, case-insensitive ILIKE, one escape rule, on every backend.
            return like(column, str(value), dialect, case_sensitive=comparison.op == "LIKE")
        case "IN":
            return column.in_(value)  # type: ignore[no-any-return]
    raise AssertionError(f"operator {comparison.op} passed the parser")


def _tags_condition(
    table: sa.Table, owner_column: sa.Column[int], owner: Any, clauses: Sequence[Comparison], dialect: str
) -> sa.ColumnElement[bool]:
    """The owners that have, for every tag clause, a tag satisfying it: one uncorrelated subquery
    for all the clauses, however many. (A correlated EXISTS per clause becomes a semi-join each on
    PostgreSQL, whose join search then grows exponentially: over 10,000 versions 20 tag clauses
    took 2 s, 50 took 20 s, and 95 ran the server out of memory.)"""
    tests = [
        sa.and_(table.c.key == clause.key, _compare(table.c.value, clause, dialect)) for clause in clauses
    ]
    matching = sa.select(owner_column).where(sa.or_(*tests))
    if len(tests) > 1:
        # Every clause must be met by some tag row of the owner.
        matching = matching.group_by(owner_column).having(
            sa.and_(*(sa.func.max(sa.case((test, 1), else_=0)) == 1 for test in tests))
        )
    return owner.in_(matching)  # type: ignore[no-any-return]


# Canonical attribute names (see registry_service.domain.filters) -> columns.
_MODEL_COLUMNS: Mapping[str, Any] = {
    "name": M.c.name,
    "creation_time": M.c.creation_time,
    "last_updated_time": M.c.last_updated_time,
}
_VERSION_COLUMNS: Mapping[str, Any] = {
    "name": M.c.name,
    "run_id": V.c.run_id,
    "version": V.c.version,
    "source": V.c.source,
    "current_stage": V.c.current_stage,
    "creation_time": V.c.creation_time,
    "last_updated_time": V.c.last_updated_time,
}


def _conditions(
    filters: Sequence[Comparison],
    columns: Mapping[str, Any],
    tags: sa.Table,
    tag_owner: sa.Column[int],
    owner: Any,
    dialect: str,
) -> list[sa.ColumnElement[bool]]:
    """The WHERE terms of a search: one per attribute clause, one for all the tag clauses."""
    conditions = [_compare(columns[c.key], c, dialect) for c in filters if c.entity is Entity.ATTRIBUTE]
    tag_clauses = [c for c in filters if c.entity is Entity.TAG]
    if tag_clauses:
        conditions.append(_tags_condition(tags, tag_owner, owner, tag_clauses, dialect))
    return conditions


def _order(columns: Mapping[str, Any], order: Sequence[OrderBy]) -> list[Any]:
    # The registry's specs order by attributes only.
    return [columns[key.key].asc() if key.ascending else columns[key.key].desc() for key in order]


def _version_select(*where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """Every column a ModelVersion needs, except tags and aliases (see _tags_and_aliases), in
    the order _version_entity unpacks them."""
    return (
        sa.select(
            V.c.id,
            M.c.name,
            V.c.version,
            V.c.creation_time,
            V.c.last_updated_time,
            V.c.current_stage,
            V.c.description,
            V.c.source,
            V.c.run_id,
            V.c.status,
            V.c.status_message,
            V.c.user_id,
            LINEAGE.c.data.label("lineage"),
        )
        .select_from(V.join(M, V.c.model_id == M.c.id).outerjoin(LINEAGE, LINEAGE.c.version_id == V.c.id))
        .where(*where)
    )


@dataclass(frozen=True)
class _TagsAndAliases:
    tags: dict[int, dict[str, str]]
    aliases: dict[int, list[str]]

    def of(self, version_id: int) -> tuple[Mapping[str, str], tuple[str, ...]]:
        return self.tags.get(version_id, _NO_TAGS), tuple(self.aliases.get(version_id, ()))


def _version_entity(row: Sequence[Any], tags: Mapping[str, str], aliases: tuple[str, ...]) -> ModelVersion:
    """The entity of a _version_select row; unpacked by position, which is several times cheaper
    than by attribute name when a search builds thousands."""
    (
        _,
        name,
        version,
        created,
        updated,
        stage,
        description,
        source,
        run_id,
        status,
        message,
        user,
        lineage,
    ) = row
    return ModelVersion(
        name=name,
        version=version,
        creation_time=created,
        last_updated_time=updated,
        current_stage=_STAGES[stage],
        description=description,
        source=source,
        run_id=run_id,
        status=_STATUSES[status],
        status_message=message,
        user_id=user,
        tags=tags,
        aliases=aliases,
        lineage=EncodedLineage(lineage) if lineage is not None else None,
    )


def _model_select() -> sa.Select[Any]:
    return sa.select(M.c.id, M.c.name, M.c.creation_time, M.c.last_updated_time, M.c.description)


def _insert_id(session: Session, statement: sa.Insert, values: Mapping[str, Any]) -> int:
    """Executes a one-row INSERT; returns the generated primary key (lastrowid where no RETURNING)."""
    key = cast(sa.CursorResult[Any], session.execute(statement, values)).inserted_primary_key
    assert key is not None  # every one-row INSERT has one
    return int(key[0])


# Events with what a gated promotion recorded beside them (written in the same transaction).
_EVENTS_WITH_GATES = sa.select(
    EVENTS, EVENT_GATES.c.results, EVENT_GATES.c.approver, EVENT_GATES.c.overridden
).outerjoin(EVENT_GATES, EVENT_GATES.c.event_id == EVENTS.c.id)


def _event_entity(row: sa.Row[Any]) -> ModelEvent:
    return ModelEvent(
        event_id=row.id,
        name=row.name,
        version=row.version,
        action=EventAction(row.action),
        from_value=row.from_value,
        to_value=row.to_value,
        actor=row.actor,
        time=row.time,
        comment=row.comment,
        model_id=row.model_id or 0,
        gate_results=tuple(GateResult(**result) for result in json.loads(row.results))
        if row.results is not None
        else (),
        approver=row.approver or "",
        gate_overridden=bool(row.overridden),
    )


# -- prebuilt statements ----------------------------------------------------------------------
# The hot statements are built once and take their values as bind parameters: building a Select
# and its cache key on every call cost more than SQLite takes to run it. (UPDATE parameters are
# not named after columns: SQLAlchemy reserves those names for the SET clause.)


def _newest_per_stage(*where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """The newest version in each stage of the versions ``where`` selects; the
    (model_id, current_stage, version) index answers the grouping."""
    newest = (
        sa.select(V.c.model_id, sa.func.max(V.c.version).label("version"))
        .where(*where)
        .group_by(V.c.model_id, V.c.current_stage)
        .subquery()
    )
    return _version_select().join(
        newest, sa.and_(V.c.model_id == newest.c.model_id, V.c.version == newest.c.version)
    )


_IDS: sa.BindParameter[int] = sa.bindparam("ids", expanding=True)
_MODEL_ID_BY_NAME = sa.select(M.c.id).where(M.c.name == sa.bindparam("name"))
_MODEL_BY_NAME = _model_select().where(M.c.name == sa.bindparam("name"))
_VERSION_BY_NUMBER = _version_select(M.c.name == sa.bindparam("name"), V.c.version == sa.bindparam("version"))
_VERSION_BY_ALIAS = _version_select(
    M.c.name == sa.bindparam("name"), ALIASES.c.alias == sa.bindparam("alias")
).join(ALIASES, sa.and_(ALIASES.c.version_id == V.c.id, ALIASES.c.model_id == M.c.id))
_NEWEST_VERSION = _version_select(M.c.name == sa.bindparam("name")).order_by(V.c.version.desc()).limit(1)
_NEWEST_IN_STAGE = _NEWEST_VERSION.where(V.c.current_stage == sa.bindparam("stage"))
_VERSION_KEY = sa.select(V.c.id, V.c.current_stage).where(
    V.c.model_id == sa.bindparam("model_id"), V.c.version == sa.bindparam("version")
)
_LATEST_OF_MODELS = _newest_per_stage(V.c.model_id.in_(_IDS))
_LATEST_BY_NAME = _newest_per_stage(V.c.model_id == _MODEL_ID_BY_NAME.scalar_subquery())
_LATEST_BY_NAME_IN_STAGES = _newest_per_stage(
    V.c.model_id == _MODEL_ID_BY_NAME.scalar_subquery(),
    V.c.current_stage.in_(sa.bindparam("stages", expanding=True)),
)
# Tag values are never NULL, so a NULL value marks an alias row.
_VERSION_TAGS_AND_ALIASES = sa.union_all(
    sa.select(VERSION_TAGS.c.version_id, VERSION_TAGS.c.key, VERSION_TAGS.c.value).where(
        VERSION_TAGS.c.version_id.in_(_IDS)
    ),
    sa.select(ALIASES.c.version_id, ALIASES.c.alias, sa.null()).where(ALIASES.c.version_id.in_(_IDS)),
)
# A tag row has no version number, an alias row no value: the NULL tells them apart.
_MODEL_TAGS_AND_ALIASES = sa.union_all(
    sa.select(MODEL_TAGS.c.model_id, MODEL_TAGS.c.key, MODEL_TAGS.c.value, sa.null()).where(
        MODEL_TAGS.c.model_id.in_(_IDS)
    ),
    sa.select(ALIASES.c.model_id, ALIASES.c.alias, sa.null(), V.c.version)
    .join(V, ALIASES.c.version_id == V.c.id)
    .where(ALIASES.c.model_id.in_(_IDS)),
)
# A transition's version and, when archiving, the current holders of the target stage (the
# version itself twice when it holds the stage already). Two index lookups rather than one OR,
# which the planners answer by scanning all of the model's versions.
_TRANSITION_ROWS = _version_select(
    V.c.model_id == sa.bindparam("model_id"), V.c.version == sa.bindparam("version")
)
_TRANSITION_ROWS_ARCHIVING = sa.union_all(
    _TRANSITION_ROWS,
    _version_select(V.c.model_id == sa.bindparam("model_id"), V.c.current_stage == sa.bindparam("stage")),
)
_SET_STAGE = (
    sa.update(V)
    .where(V.c.id == sa.bindparam("version_pk"))
    .values(current_stage=sa.bindparam("stage"), last_updated_time=sa.bindparam("now"))
)
# The version's id and the number the alias points at now (NULL: unset), in one query.
_POINTED = V.alias("pointed")
_ALIAS_TARGET = sa.select(
    V.c.id,
    sa.select(_POINTED.c.version)
    .join(ALIASES, ALIASES.c.version_id == _POINTED.c.id)
    .where(ALIASES.c.model_id == sa.bindparam("model_id"), ALIASES.c.alias == sa.bindparam("alias"))
    .scalar_subquery()
    .label("previous"),
).where(V.c.model_id == sa.bindparam("model_id"), V.c.version == sa.bindparam("version"))
_MOVE_ALIAS = (
    sa.update(ALIASES)
    .where(ALIASES.c.model_id == sa.bindparam("model_pk"), ALIASES.c.alias == sa.bindparam("alias_name"))
    .values(version_id=sa.bindparam("target_pk"))
)


# The model id of a version, its row share-locked (where the backend has row locks) until commit.
_SERVED_VERSION = (
    sa.select(V.c.model_id)
    .join(M, M.c.id == V.c.model_id)
    .where(M.c.name == sa.bindparam("name"), V.c.version == sa.bindparam("version"))
    .with_for_update(read=True, of=V)
)


# A caller's serving reports on a model since a time (RegistryStore.record_serving's bound): read
# through the (model_id, time) index.
_RECENT_REPORTS = (
    sa.select(sa.func.count())
    .select_from(EVENTS)
    .where(
        EVENTS.c.model_id == sa.bindparam("model_id"),
        EVENTS.c.time > sa.bindparam("since"),
        EVENTS.c.actor == sa.bindparam("actor"),
        EVENTS.c.action.in_([EventAction.SERVING_LOADED.value, EventAction.SERVING_LOAD_FAILED.value]),
    )
)


# Set on a session that appended events, so that its commit is announced (on_append).
_APPENDED = "modelreg.appended"


@sa.event.listens_for(Session, "after_commit")
def _announce_appended(session: Session) -> None:
    """Runs the on_append callbacks of the store whose transaction appended events. One listener
    for every session, holding no store: a listener bound to a store's sessionmaker would be kept
    by SQLAlchemy's class-level registry, and the store (engine, connections) with it, for good."""
    for callback in session.info.pop(_APPENDED, ()):
        callback()


# A value longer than an event's from/to column keeps its first characters there, and all of it
# in the comment.
EVENT_VALUE_LENGTH = 255


def _tag_set(action: EventAction, key: str, value: str, version: int = 0) -> NewEvent:
    """MODEL_TAG_SET or VERSION_TAG_SET: the key, and the value (whole in the comment when it is
    longer than the column)."""
    long = len(value) > EVENT_VALUE_LENGTH
    return NewEvent(
        action, version, from_value=key, to_value=value[:EVENT_VALUE_LENGTH], comment=value if long else ""
    )


def _granted_to(user: Any, groups: Any) -> sa.ColumnElement[bool]:
    """The grants that count for a caller: to its user name, or to one of its groups."""
    return sa.or_(
        sa.and_(GRANTS.c.subject_kind == "user", GRANTS.c.subject_name == user),
        sa.and_(GRANTS.c.subject_kind == "group", GRANTS.c.subject_name.in_(groups)),
    )


def _readable_by(grantee: Grantee) -> sa.ColumnElement[bool]:
    """The models ``grantee`` holds READ or more on: an EXISTS on the grants' primary key, inside
    the search query, so pages are full and page tokens stay offsets of the same query."""
    return sa.exists().where(
        GRANTS.c.model_id == M.c.id,
        GRANTS.c.level >= int(Level.READ),
        _granted_to(grantee.user, list(grantee.groups)),
    )


# A permission check in one statement: a row only if the model exists, the caller's highest
# grant, and the protection (one row per protected alias, most models have none).
_MODEL_ACCESS = sa.select(
    M.c.protect_production,
    sa.select(sa.func.max(GRANTS.c.level))
    .where(
        GRANTS.c.model_id == M.c.id,
        _granted_to(sa.bindparam("grantee_user"), sa.bindparam("grantee_groups", expanding=True)),
    )
    .scalar_subquery()
    .label("granted"),
    PROTECTED.c.alias,
).select_from(M.outerjoin(PROTECTED, PROTECTED.c.model_id == M.c.id))
_MODEL_ACCESS_BY_NAME = _MODEL_ACCESS.where(M.c.name == sa.bindparam("name"))
_MODEL_ACCESS_BY_ID = _MODEL_ACCESS.where(M.c.id == sa.bindparam("model_pk"))
_PERMISSION_ACTIONS = {
    EventAction.PERMISSION_SET.value: "SET",
    EventAction.PERMISSION_DELETED.value: "DELETE",
    EventAction.PROTECTION_SET.value: "PROTECTION",
}
MAX_PERMISSION_EVENTS = 1_000


def _subject_text(subject: Subject) -> str:
    return f"{subject.kind}:{subject.name}"


def _grant_event(row: sa.Row[Any]) -> GrantEvent:
    action = _PERMISSION_ACTIONS[row.action]
    if action == "PROTECTION":
        return GrantEvent(row.time, row.actor, action, None, None, row.request_id, row.comment)
    kind, _, name = row.from_value.partition(":")
    level = Level[row.to_value] if row.to_value else None
    return GrantEvent(row.time, row.actor, action, Subject(kind, name), level, row.request_id)


def _protection_comment(protection: ModelProtection) -> str:
    production = "true" if protection.production else "false"
    return f"production={production} aliases={','.join(protection.aliases)}"


@dataclass(frozen=True)
class _ModelLock:
    """An UPDATE of a model's row found by name (it takes the row's lock), prebuilt with and
    without RETURNING (id, next_version)."""

    plain: sa.Update
    returning: sa.Executable

    @classmethod
    def of(cls, statement: sa.Update) -> _ModelLock:
        return cls(statement, statement.returning(M.c.id, M.c.next_version))


_TOUCH = _ModelLock.of(
    sa.update(M).where(M.c.name == sa.bindparam("model_name")).values(last_updated_time=sa.bindparam("now"))
)
_ALLOCATE = _ModelLock.of(_TOUCH.plain.values(next_version=M.c.next_version + 1))
_DESCRIBE = _ModelLock.of(_TOUCH.plain.values(description=sa.bindparam("new_description")))
_LOCKED_MODEL = sa.select(M.c.id, M.c.next_version).where(M.c.name == sa.bindparam("name"))


def _recording_refusals(
    method: Callable[Concatenate[SqlRegistryStore, str, P], R],
) -> Callable[Concatenate[SqlRegistryStore, str, P], R]:
    """A promotion (of the model named first) whose gate refused it: its transaction has rolled
    back; the refusal is recorded in a transaction of its own and raised."""

    @functools.wraps(method)
    def recording(store: SqlRegistryStore, name: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(store, name, *args, **kwargs)
        except _Refused as refused:
            raise store._refused(name, refused) from None

    return recording


def _replayed_grant(
    store: SqlRegistryStore,
    _result: str,
    name: str,
    subject: Subject,
    level: Level,
    ctx: CallContext,
    **_: Any,
) -> Grant:
    """SetRegisteredModelPermission applied before: the subject's grant now (as set, if removed since)."""
    return current_grant(store.permissions(name).grants, subject, level, ctx.actor)


def _replayed_rollback(store: SqlRegistryStore, result: str, name: str, *_: Any, **__: Any) -> RollbackResult:
    """A rollback applied before: the versions it restored and archived ("<restored> <archived>"), now."""
    restored, archived = result.split(" ")
    return RollbackResult(
        restored=store.get_version(name, int(restored)),
        archived=store.get_version(name, int(archived)) if archived else None,
    )


class SqlRegistryStore:
    """RegistryStore on SQLAlchemy; the schema must be at head (Alembic, see store.migrations)."""

    def __init__(self, engine: Engine, clock: Callable[[], int] = now_ms) -> None:
        if engine.dialect.name in ("mysql", "mariadb"):
            engine = engine.execution_options(isolation_level="READ COMMITTED")
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Pure reads (get, search, list, resolve): on SQLite they then never wait for a writer's lock.
        self._reads = sessionmaker(read_only(engine), expire_on_commit=False)
        self.applied_writes = AppliedWrites(APPLIED_WRITES, self._sessions, self._reads)
        self._dialect = engine.dialect.name
        # PostgreSQL and SQLite >= 3.35 have UPDATE ... RETURNING; MySQL/MariaDB do not.
        self._update_returning = engine.dialect.update_returning
        self._positions = PositionCounter(EVENT_POSITION, engine.dialect.update_returning)
        self._clock = clock
        self._appended: list[Callable[[], None]] = []

    def on_append(self, callback: Callable[[], None]) -> None:
        """Calls ``callback`` (no arguments, quick, never raising) after each commit that
        appended events: how this process's event feed learns of a write without waiting for
        its next poll."""
        self._appended.append(callback)

    # -- locking and allocation ---------------------------------------------------------------

    def _lock_model(
        self, session: Session, name: str, now: int, lock: _ModelLock = _TOUCH, **params: Any
    ) -> tuple[int, int]:
        """Locks the model's row by updating it (last_updated_time, and what ``lock`` sets from
        ``params``); returns (model id, next_version).

        The UPDATE takes the row lock (PostgreSQL/MySQL; SQLite already holds the database write
        lock) until the transaction ends, and finds the model in the same statement.
        """
        values = {"model_name": name, "now": now, **params}
        if self._update_returning:
            row = session.execute(lock.returning, values).one_or_none()
        else:
            session.execute(lock.plain, values)
            row = session.execute(_LOCKED_MODEL, {"name": name}).one_or_none()
        if row is None:
            raise errors.RegisteredModelNotFound(name)
        return int(row[0]), int(row[1])

    def _allocate_version(self, session: Session, name: str, now: int) -> tuple[int, int]:
        """Allocates the next version number of a model; returns (model id, version).

        Why this cannot collide (MLflow reads MAX(version)+1 and retries when two writers pick the
        same number): the number comes from the model's own counter row, incremented by
        ``UPDATE registered_models SET next_version = next_version + 1`` and read back (RETURNING,
        or a SELECT of the row just updated on MySQL/MariaDB). The UPDATE holds the row's write
        lock until commit, so a second allocator of the same model blocks on that row and then
        sees the incremented value: no two transactions can read the same number. The version
        row is inserted in that same transaction, so a failure rolls the counter back with it:
        no gaps. Deleting a version never decrements the counter: numbers are never reused.
        """
        model_id, next_version = self._lock_model(session, name, now, _ALLOCATE)
        return model_id, next_version - 1

    # -- loading -------------------------------------------------------------------------------

    def _model_id(self, session: Session, name: str) -> int:
        model_id = session.scalar(_MODEL_ID_BY_NAME, {"name": name})
        if model_id is None:
            raise errors.RegisteredModelNotFound(name)
        return int(model_id)

    def _tags_and_aliases(self, session: Session, ids: Sequence[int]) -> _TagsAndAliases:
        """Tags and sorted aliases by version id, in one statement for all of the versions."""
        tags: dict[int, dict[str, str]] = defaultdict(dict)
        aliases: dict[int, list[str]] = defaultdict(list)
        if not ids:
            return _TagsAndAliases(tags, aliases)
        for version_id, key, value in session.execute(_VERSION_TAGS_AND_ALIASES, {"ids": ids}):
            if value is None:
                aliases[version_id].append(key)
            else:
                tags[version_id][key] = value
        for names in aliases.values():
            names.sort()
        return _TagsAndAliases(tags, aliases)

    def _versions(self, session: Session, rows: Sequence[sa.Row[Any]]) -> list[ModelVersion]:
        """Entities for rows of _version_select (id first), with their tags and aliases."""
        related = self._tags_and_aliases(session, [row[0] for row in rows])
        return [_version_entity(row, *related.of(row[0])) for row in rows]

    def _version(self, session: Session, name: str, version: int) -> ModelVersion:
        row = session.execute(_VERSION_BY_NUMBER, {"name": name, "version": version}).one_or_none()
        if row is None:
            self._model_id(session, name)
            raise errors.ModelVersionNotFound(name, version)
        return self._versions(session, [row])[0]

    def _version_key(self, session: Session, model_id: int, name: str, version: int) -> tuple[int, str]:
        """(id, current_stage) of a version of a locked model."""
        row = session.execute(_VERSION_KEY, {"model_id": model_id, "version": version}).one_or_none()
        if row is None:
            raise errors.ModelVersionNotFound(name, version)
        return int(row.id), row.current_stage

    def _newest_per_stage(
        self, session: Session, statement: sa.Select[Any], params: Mapping[str, Any]
    ) -> list[ModelVersion]:
        """Runs one of the _newest_per_stage statements; the versions ordered by stage."""
        rows = session.execute(statement, params).all()
        return self._versions(session, sorted(rows, key=lambda row: _STAGE_ORDER[row.current_stage]))

    def _models(self, session: Session, rows: Sequence[sa.Row[Any]]) -> list[RegisteredModel]:
        """Entities for registered_models rows: tags and aliases in one statement, then the
        newest version per stage of all of them."""
        ids = [row.id for row in rows]
        if not ids:
            return []
        tags: dict[int, dict[str, str]] = defaultdict(dict)
        aliases: dict[int, dict[str, int]] = defaultdict(dict)
        for model_id, key, value, version in session.execute(_MODEL_TAGS_AND_ALIASES, {"ids": ids}):
            if version is None:
                tags[model_id][key] = value
            else:
                aliases[model_id][key] = version
        latest: dict[str, list[ModelVersion]] = defaultdict(list)
        for version in self._newest_per_stage(session, _LATEST_OF_MODELS, {"ids": ids}):
            latest[version.name].append(version)
        return [
            RegisteredModel(
                name=row.name,
                creation_time=row.creation_time,
                last_updated_time=row.last_updated_time,
                description=row.description,
                tags=tags[row.id],
                latest_versions=tuple(latest[row.name]),
                aliases=dict(sorted(aliases[row.id].items())),
            )
            for row in rows
        ]

    def _model(self, session: Session, name: str) -> RegisteredModel:
        row = session.execute(_MODEL_BY_NAME, {"name": name}).one_or_none()
        if row is None:
            raise errors.RegisteredModelNotFound(name)
        return self._models(session, [row])[0]

    # -- events --------------------------------------------------------------------------------

    def _append(
        self, session: Session, model_id: int, name: str, ctx: CallContext, now: int, *events: NewEvent
    ) -> int:
        """Appends events to the log, at the next positions, which become their ids; returns the
        first one's.

        Why not the id column's autoincrement: a sequence hands out its number when a transaction
        inserts, not when it commits. On PostgreSQL and MySQL/MariaDB a transaction that took 5
        and committed after one that took 6 made 6 visible first, and a reader of ``id > cursor``
        (a watcher, a webhook sender), having moved its cursor to 6, never saw 5. Here every
        writing transaction takes its positions from the one row of ``model_event_position`` with
        an UPDATE, and that UPDATE's row lock is held until the transaction ends: a second writer
        waits on the row until the first commits (and then reads the incremented value) or rolls
        back (and then reads the same one, so positions have no holes either). Position order is
        therefore commit order, and once a reader sees position n, every position below n is
        visible too. The lock serialises the ends of all the registry's writing transactions, so
        it is taken as late as possible: callers append last, after their own checks and changes
        (SQLite takes its one write lock at BEGIN anyway).
        """
        first = self._positions.take(session, len(events))
        session.info[_APPENDED] = self._appended
        session.execute(
            sa.insert(EVENTS),
            [
                {
                    "id": first + index,
                    "model_id": model_id,
                    "name": name,
                    "version": event.version,
                    "action": event.action.value,
                    "from_value": event.from_value,
                    "to_value": event.to_value,
                    "actor": ctx.actor,
                    "time": now,
                    "comment": event.comment,
                    "request_id": ctx.request_id,
                }
                for index, event in enumerate(events)
            ],
        )
        return first

    # -- registered models ---------------------------------------------------------------------

    @replayed(lambda store, _result, name, *_, **__: store.get_model(name))
    def create_model(
        self,
        name: str,
        description: str,
        tags: Mapping[str, str],
        ctx: CallContext,
        creator_level: Level | None = None,
        *,
        write: WriteKey | None = None,
    ) -> RegisteredModel:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            if session.scalar(_MODEL_ID_BY_NAME, {"name": name}) is not None:
                raise errors.RegisteredModelAlreadyExists(name)
            try:
                model_id = _insert_id(
                    session,
                    sa.insert(M),
                    {
                        "name": name,
                        "description": description,
                        "creation_time": now,
                        "last_updated_time": now,
                    },
                )
            except IntegrityError as exc:  # a concurrent create of the same name won the race
                raise errors.RegisteredModelAlreadyExists(name) from exc
            if tags:
                session.execute(
                    sa.insert(MODEL_TAGS),
                    [{"model_id": model_id, "key": key, "value": value} for key, value in tags.items()],
                )
            if creator_level is not None:
                # The creator's grant is part of the creation (MODEL_CREATED records it).
                session.execute(
                    sa.insert(GRANTS),
                    {
                        "model_id": model_id,
                        "subject_kind": "user",
                        "subject_name": ctx.actor,
                        "level": int(creator_level),
                        "granted_by": ctx.actor,
                        "granted_at": now,
                    },
                )
            self._append(session, model_id, name, ctx, now, NewEvent(EventAction.MODEL_CREATED))
            return RegisteredModel(name, now, now, description, dict(tags))

    def get_model(self, name: str) -> RegisteredModel:
        with self._reads.begin() as session:
            return self._model(session, name)

    def require_model(self, name: str) -> None:
        with self._reads.begin() as session:
            self._model_id(session, name)

    @replayed(lambda store, _result, _name, new_name, *_, **__: store.get_model(new_name))
    def rename_model(
        self, name: str, new_name: str, ctx: CallContext, *, write: WriteKey | None = None
    ) -> RegisteredModel:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            if new_name != name:
                if session.scalar(sa.select(M.c.id).where(M.c.name == new_name)) is not None:
                    raise errors.RegisteredModelAlreadyExists(new_name)
                try:
                    session.execute(sa.update(M).where(M.c.id == model_id).values(name=new_name))
                except IntegrityError as exc:
                    raise errors.RegisteredModelAlreadyExists(new_name) from exc
                self._append(
                    session,
                    model_id,
                    new_name,
                    ctx,
                    now,
                    NewEvent(EventAction.MODEL_RENAMED, from_value=name, to_value=new_name),
                )
            return self._model(session, new_name)

    @replayed(lambda store, _result, name, *_, **__: store.get_model(name))
    def update_model(
        self, name: str, description: str, ctx: CallContext, *, write: WriteKey | None = None
    ) -> RegisteredModel:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now, _DESCRIBE, new_description=description)
            event = NewEvent(EventAction.MODEL_DESCRIPTION_UPDATED, comment=description)
            self._append(session, model_id, name, ctx, now, event)
            return self._model(session, name)

    @replayed(nothing)
    def delete_model(self, name: str, ctx: CallContext, *, write: WriteKey | None = None) -> None:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            # Versions, aliases, tags and lineage go by ON DELETE CASCADE; events have no FK.
            session.execute(sa.delete(M).where(M.c.id == model_id))
            self._append(session, model_id, name, ctx, now, NewEvent(EventAction.MODEL_DELETED))

    def search_models(
        self,
        filters: Sequence[Comparison],
        order: Sequence[OrderBy],
        limit: int,
        offset: int,
        readable_by: Grantee | None = None,
    ) -> list[RegisteredModel]:
        statement = (
            _model_select()
            .where(
                *_conditions(
                    filters, _MODEL_COLUMNS, MODEL_TAGS, MODEL_TAGS.c.model_id, M.c.id, self._dialect
                ),
                *([_readable_by(readable_by)] if readable_by is not None else []),
            )
            .order_by(*_order(_MODEL_COLUMNS, order), M.c.name.asc(), M.c.id.asc())
            .limit(limit)
            .offset(offset)
        )
        with self._reads.begin() as session:
            rows = session.execute(statement).all()
            discard_after_large_search(session.connection(), filters)
            return self._models(session, rows)

    @replayed(nothing)
    def set_model_tag(
        self, name: str, key: str, value: str, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            self._upsert_tag(session, MODEL_TAGS, MODEL_TAGS.c.model_id, model_id, key, value)
            tag_limits("model", f"'{name}'", *self._tags_size(session, MODEL_TAGS.c.model_id, model_id))
            self._append(session, model_id, name, ctx, now, _tag_set(EventAction.MODEL_TAG_SET, key, value))

    @replayed(nothing)
    def delete_model_tag(
        self, name: str, key: str, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            deleted = session.execute(
                sa.delete(MODEL_TAGS).where(MODEL_TAGS.c.model_id == model_id, MODEL_TAGS.c.key == key)
            )
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise errors.TagNotFound(key)
            event = NewEvent(EventAction.MODEL_TAG_DELETED, from_value=key)
            self._append(session, model_id, name, ctx, now, event)

    def _upsert_tag(
        self, session: Session, table: sa.Table, owner: sa.Column[int], owner_id: int, key: str, value: str
    ) -> None:
        # The owner's model is locked, so nobody inserts the same key between UPDATE and INSERT.
        updated = session.execute(
            sa.update(table).where(owner == owner_id, table.c.key == key).values(value=value)
        )
        if updated.rowcount == 0:  # type: ignore[attr-defined]
            session.execute(sa.insert(table).values({owner.name: owner_id, "key": key, "value": value}))

    def _tags_size(self, session: Session, owner: sa.Column[int], owner_id: int) -> tuple[int, int]:
        """How many tags the owner holds and their bytes, counted after a write under the model's
        lock (so a key set again counts once, and concurrent writers cannot both slip under)."""
        table = owner.table
        count, tag_bytes = session.execute(
            sa.select(sa.func.count(), total_bytes(table.c.key, table.c.value)).where(owner == owner_id)
        ).one()
        return int(count), int(tag_bytes)

    # -- permissions and protection ------------------------------------------------------------

    def model_access(self, name: str, grantee: Grantee) -> ModelAccess:
        found = self._model_access(_MODEL_ACCESS_BY_NAME, {"name": name}, grantee)
        if found is None:
            raise errors.RegisteredModelNotFound(name)
        return found

    def model_access_by_id(self, model_id: int, grantee: Grantee) -> ModelAccess | None:
        return self._model_access(_MODEL_ACCESS_BY_ID, {"model_pk": model_id}, grantee)

    def _model_access(
        self, statement: sa.Select[Any], model: Mapping[str, Any], grantee: Grantee
    ) -> ModelAccess | None:
        with self._reads.begin() as session:
            rows = session.execute(
                statement,
                {**model, "grantee_user": grantee.user, "grantee_groups": list(grantee.groups)},
            ).all()
        if not rows:
            return None
        granted = rows[0].granted
        aliases = tuple(sorted(row.alias for row in rows if row.alias is not None))
        return ModelAccess(
            Level(granted) if granted is not None else None,
            ModelProtection(bool(rows[0].protect_production), aliases),
        )

    @replayed(_replayed_grant)
    def set_permission(
        self, name: str, subject: Subject, level: Level, ctx: CallContext, *, write: WriteKey | None = None
    ) -> Grant:
        now = self._clock()
        key = (GRANTS.c.subject_kind == subject.kind, GRANTS.c.subject_name == subject.name)
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            values = {"level": int(level), "granted_by": ctx.actor, "granted_at": now}
            # The model is locked, so nobody inserts the same grant between UPDATE and INSERT.
            updated = session.execute(
                sa.update(GRANTS).where(GRANTS.c.model_id == model_id, *key).values(values)
            )
            if updated.rowcount == 0:  # type: ignore[attr-defined]
                session.execute(
                    sa.insert(GRANTS).values(
                        model_id=model_id, subject_kind=subject.kind, subject_name=subject.name, **values
                    )
                )
                count = session.scalar(
                    sa.select(sa.func.count()).select_from(GRANTS).where(GRANTS.c.model_id == model_id)
                )
                grants_limit(f"registered model '{name}'", int(count or 0))
            event = NewEvent(
                EventAction.PERMISSION_SET, from_value=_subject_text(subject), to_value=level.name
            )
            self._append(session, model_id, name, ctx, now, event)
        return Grant(subject, level, ctx.actor, now)

    @replayed(nothing)
    def delete_permission(
        self, name: str, subject: Subject, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            deleted = session.execute(
                sa.delete(GRANTS).where(
                    GRANTS.c.model_id == model_id,
                    GRANTS.c.subject_kind == subject.kind,
                    GRANTS.c.subject_name == subject.name,
                )
            )
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise errors.PermissionNotFound(name, subject.kind, subject.name)
            event = NewEvent(EventAction.PERMISSION_DELETED, from_value=_subject_text(subject))
            self._append(session, model_id, name, ctx, now, event)

    @replayed(lambda store, _result, name, *_, **__: store.permissions(name).protection)
    def set_protection(
        self, name: str, protection: ModelProtection, ctx: CallContext, *, write: WriteKey | None = None
    ) -> ModelProtection:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            session.execute(
                sa.update(M).where(M.c.id == model_id).values(protect_production=protection.production)
            )
            session.execute(sa.delete(PROTECTED).where(PROTECTED.c.model_id == model_id))
            if protection.aliases:
                session.execute(
                    sa.insert(PROTECTED), [{"model_id": model_id, "alias": a} for a in protection.aliases]
                )
            event = NewEvent(EventAction.PROTECTION_SET, comment=_protection_comment(protection))
            self._append(session, model_id, name, ctx, now, event)
        return protection

    def permissions(self, name: str) -> ModelPermissions:
        with self._reads.begin() as session:
            row = session.execute(
                sa.select(M.c.id, M.c.protect_production).where(M.c.name == name)
            ).one_or_none()
            if row is None:
                raise errors.RegisteredModelNotFound(name)
            grants = session.execute(
                sa.select(GRANTS)
                .where(GRANTS.c.model_id == row.id)
                # 'user' sorts after 'group': descending kind lists users first.
                .order_by(GRANTS.c.subject_kind.desc(), GRANTS.c.subject_name)
            ).all()
            aliases = session.scalars(
                sa.select(PROTECTED.c.alias).where(PROTECTED.c.model_id == row.id).order_by(PROTECTED.c.alias)
            ).all()
            events = session.execute(
                sa.select(EVENTS)
                .where(EVENTS.c.model_id == row.id, EVENTS.c.action.in_(list(_PERMISSION_ACTIONS)))
                .order_by(EVENTS.c.id.desc())
                .limit(MAX_PERMISSION_EVENTS)
            ).all()
        return ModelPermissions(
            tuple(
                Grant(Subject(g.subject_kind, g.subject_name), Level(g.level), g.granted_by, g.granted_at)
                for g in grants
            ),
            ModelProtection(bool(row.protect_production), tuple(aliases)),
            tuple(_grant_event(event) for event in reversed(events)),
        )

    # -- model versions ------------------------------------------------------------------------

    @replayed(lambda store, result, name, **_: store.get_version(name, int(result)))
    def create_version(
        self,
        name: str,
        *,
        source: str,
        run_id: str,
        description: str,
        tags: Mapping[str, str],
        lineage: EncodedLineage | None,
        ctx: CallContext,
        write: WriteKey | None = None,
    ) -> ModelVersion:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, version = self._allocate_version(session, name, now)
            self.applied_writes.record(session, write, version)
            version_id = _insert_id(
                session,
                sa.insert(V),
                {
                    "model_id": model_id,
                    "version": version,
                    "creation_time": now,
                    "last_updated_time": now,
                    "current_stage": Stage.NONE.value,
                    "description": description,
                    "source": source,
                    "run_id": run_id,
                    "status": VersionStatus.READY.value,
                    "status_message": "",
                    "user_id": ctx.actor,
                },
            )
            if tags:
                session.execute(
                    sa.insert(VERSION_TAGS),
                    [{"version_id": version_id, "key": key, "value": value} for key, value in tags.items()],
                )
            if lineage is not None:
                session.execute(sa.insert(LINEAGE), {"version_id": version_id, "data": lineage})
            self._append(
                session,
                model_id,
                name,
                ctx,
                now,
                NewEvent(EventAction.VERSION_CREATED, version=version, to_value=Stage.NONE.value),
            )
        return ModelVersion(
            name=name,
            version=version,
            creation_time=now,
            last_updated_time=now,
            current_stage=Stage.NONE,
            description=description,
            source=source,
            run_id=run_id,
            status=VersionStatus.READY,
            status_message="",
            user_id=ctx.actor,
            tags=dict(tags),
            lineage=lineage,
        )

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self._reads.begin() as session:
            return self._version(session, name, version)

    def version_lineage(self, name: str, version: int) -> EncodedLineage | None:
        with self._reads.begin() as session:
            row = session.execute(
                sa.select(LINEAGE.c.data)
                .select_from(
                    V.join(M, V.c.model_id == M.c.id).outerjoin(LINEAGE, LINEAGE.c.version_id == V.c.id)
                )
                .where(M.c.name == name, V.c.version == version)
            ).one_or_none()
            if row is None:
                self._model_id(session, name)
                raise errors.ModelVersionNotFound(name, version)
        return EncodedLineage(row.data) if row.data is not None else None

    @replayed(lambda store, _result, name, version, *_, **__: store.get_version(name, version))
    def update_version(
        self, name: str, version: int, description: str, ctx: CallContext, *, write: WriteKey | None = None
    ) -> ModelVersion:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            version_id, _ = self._version_key(session, model_id, name, version)
            session.execute(
                sa.update(V)
                .where(V.c.id == version_id)
                .values(description=description, last_updated_time=now)
            )
            event = NewEvent(EventAction.VERSION_DESCRIPTION_UPDATED, version=version, comment=description)
            self._append(session, model_id, name, ctx, now, event)
            return self._version(session, name, version)

    @replayed(nothing)
    def delete_version(
        self, name: str, version: int, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            version_id, stage = self._version_key(session, model_id, name, version)
            aliases = session.scalars(
                sa.select(ALIASES.c.alias).where(ALIASES.c.version_id == version_id).order_by(ALIASES.c.alias)
            ).all()
            # Tags, lineage and the aliases pointing at it go by ON DELETE CASCADE.
            session.execute(sa.delete(V).where(V.c.id == version_id))
            self._append(
                session,
                model_id,
                name,
                ctx,
                now,
                *[
                    NewEvent(EventAction.ALIAS_DELETED, version=version, from_value=alias)
                    for alias in aliases
                ],
                NewEvent(EventAction.VERSION_DELETED, version=version, from_value=stage),
            )

    def search_versions(
        self,
        filters: Sequence[Comparison],
        order: Sequence[OrderBy],
        limit: int,
        offset: int,
        readable_by: Grantee | None = None,
    ) -> list[ModelVersion]:
        statement = (
            _version_select(
                *_conditions(
                    filters, _VERSION_COLUMNS, VERSION_TAGS, VERSION_TAGS.c.version_id, V.c.id, self._dialect
                ),
                *([_readable_by(readable_by)] if readable_by is not None else []),
            )
            .order_by(*_order(_VERSION_COLUMNS, order), M.c.name.asc(), V.c.version.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._reads.begin() as session:
            rows = session.execute(statement).all()
            discard_after_large_search(session.connection(), filters)
            return self._versions(session, rows)

    @replayed(nothing)
    def set_version_tag(
        self,
        name: str,
        version: int,
        key: str,
        value: str,
        ctx: CallContext,
        *,
        write: WriteKey | None = None,
    ) -> None:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            version_id, _ = self._version_key(session, model_id, name, version)
            self._upsert_tag(session, VERSION_TAGS, VERSION_TAGS.c.version_id, version_id, key, value)
            size = self._tags_size(session, VERSION_TAGS.c.version_id, version_id)
            tag_limits("version", f"{version} of '{name}'", *size)
            event = _tag_set(EventAction.VERSION_TAG_SET, key, value, version)
            self._append(session, model_id, name, ctx, now, event)

    @replayed(nothing)
    def delete_version_tag(
        self, name: str, version: int, key: str, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            version_id, _ = self._version_key(session, model_id, name, version)
            deleted = session.execute(
                sa.delete(VERSION_TAGS).where(
                    VERSION_TAGS.c.version_id == version_id, VERSION_TAGS.c.key == key
                )
            )
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise errors.TagNotFound(key)
            event = NewEvent(EventAction.VERSION_TAG_DELETED, version=version, from_value=key)
            self._append(session, model_id, name, ctx, now, event)

    # -- stages --------------------------------------------------------------------------------

    def _set_stages(self, session: Session, stages: Mapping[int, str], now: int) -> None:
        """Moves versions (by id) to stages: one prebuilt statement, executed for each."""
        session.execute(
            _SET_STAGE,
            [{"version_pk": version_id, "stage": stage, "now": now} for version_id, stage in stages.items()],
        )

    @replayed(lambda store, _result, name, version, *_, **__: store.get_version(name, version))
    @_recording_refusals
    def transition_stage(
        self,
        name: str,
        version: int,
        stage: Stage,
        *,
        archive_existing: bool,
        comment: str,
        ctx: CallContext,
        protected: Stage | None = None,
        check: PromotionCheck | None = None,
        write: WriteKey | None = None,
    ) -> ModelVersion:
        """``check``: the gate on ``stage``, judged under the lock against its holder then."""
        now = self._clock()
        archive = archive_existing and stage in (Stage.STAGING, Stage.PRODUCTION)
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            rows = session.execute(
                _TRANSITION_ROWS_ARCHIVING if archive else _TRANSITION_ROWS,
                {"model_id": model_id, "version": version, "stage": stage.value},
            ).all()
            row = next((row for row in rows if row.version == version), None)
            if row is None:
                raise errors.ModelVersionNotFound(name, version)
            if protected is not None and protected.value in (row.current_stage, stage.value):
                raise errors.ProtectedStage(name, version)
            verdict = None
            if check is not None:
                verdict = self._judge(
                    session,
                    model_id,
                    name,
                    stage.value,
                    lambda: self._subject(session, row.id, version),
                    lambda: self._stage_holder(session, model_id, stage, row.id),
                    check,
                    ctx,
                )
            others = sorted((other for other in rows if other.id != row.id), key=lambda other: other.version)
            self._set_stages(
                session, {row.id: stage.value, **{other.id: Stage.ARCHIVED.value for other in others}}, now
            )
            events = [
                NewEvent(
                    EventAction.STAGE_TRANSITIONED,
                    version=version,
                    from_value=row.current_stage,
                    to_value=stage.value,
                    comment=comment,
                ),
                *[
                    NewEvent(
                        EventAction.STAGE_TRANSITIONED,
                        version=other.version,
                        from_value=stage.value,
                        to_value=Stage.ARCHIVED.value,
                        comment=f"archived by the transition of version {version} to {stage.value}",
                    )
                    for other in others
                ],
            ]
            self._append(session, model_id, name, ctx, now, *events)
            if verdict is not None:
                self._record_gates(session, model_id, EventAction.STAGE_TRANSITIONED, version, verdict)
            entity = _version_entity(row, *self._tags_and_aliases(session, [row.id]).of(row.id))
            return replace(entity, current_stage=stage, last_updated_time=now)

    def latest_versions(self, name: str, stages: Sequence[Stage]) -> list[ModelVersion]:
        statement, params = _LATEST_BY_NAME, dict[str, Any](name=name)
        if stages:
            statement, params["stages"] = _LATEST_BY_NAME_IN_STAGES, [stage.value for stage in stages]
        with self._reads.begin() as session:
            versions = self._newest_per_stage(session, statement, params)
            if not versions:  # no version in those stages, or no such model
                self._model_id(session, name)
            return versions

    def _rollback_rows(self, session: Session, model_id: int, stage: Stage) -> tuple[Any, Any]:
        """(current holder, rollback target) rows (id, version, current_stage) of ``stage``: from
        the history, newest first, of versions entering it, the holder is the newest entrant still
        in the stage; the target the newest entrant that still exists, is not the holder and is
        not in the stage now. Deleted versions are skipped."""
        entrants = session.scalars(
            sa.select(EVENTS.c.version)
            .where(
                EVENTS.c.model_id == model_id,
                EVENTS.c.action == EventAction.STAGE_TRANSITIONED.value,
                EVENTS.c.to_value == stage.value,
            )
            .order_by(EVENTS.c.id.desc())
        ).all()
        live = {
            row.version: row
            for row in session.execute(
                sa.select(V.c.id, V.c.version, V.c.current_stage).where(
                    V.c.model_id == model_id, V.c.version.in_(set(entrants))
                )
            )
        }
        holder = next((live[v] for v in entrants if v in live and live[v].current_stage == stage.value), None)
        target = next(
            (
                live[v]
                for v in entrants
                if v in live and live[v] is not holder and live[v].current_stage != stage.value
            ),
            None,
        )
        return holder, target

    def rollback_target(self, name: str, stage: Stage) -> int | None:
        """The version a rollback of ``stage`` would restore now (None: none)."""
        with self._reads.begin() as session:
            _holder, target = self._rollback_rows(session, self._model_id(session, name), stage)
            return None if target is None else int(target.version)

    @replayed(_replayed_rollback)
    @_recording_refusals
    def rollback_stage(
        self,
        name: str,
        stage: Stage,
        comment: str,
        ctx: CallContext,
        protected: Stage | None = None,
        *,
        check: PromotionCheck | None = None,
        write: WriteKey | None = None,
    ) -> RollbackResult:
        """Restores the most recent other holder of ``stage`` and archives the current holder.

        From the history, newest first, of versions entering ``stage``: the current holder is the
        newest entrant still in the stage; the target is the newest entrant that still exists, is
        not the current holder and is not in the stage now. Deleted versions are skipped.
        """
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            holder, target = self._rollback_rows(session, model_id, stage)
            if target is None:
                raise errors.NoRollbackTarget(name, stage.value)
            if protected is not None and protected.value in (target.current_stage, stage.value):
                raise errors.ProtectedStage(name, target.version)
            verdict = None
            if check is not None:
                verdict = self._judge(
                    session,
                    model_id,
                    name,
                    stage.value,
                    lambda: self._subject(session, target.id, target.version),
                    lambda: (
                        self._stage_holder(session, model_id, stage, target.id)
                        if holder is None
                        else self._subject(session, holder.id, holder.version)
                    ),
                    check,
                    ctx,
                )
            events = [
                NewEvent(
                    EventAction.STAGE_TRANSITIONED,
                    version=target.version,
                    from_value=target.current_stage,
                    to_value=stage.value,
                    comment=comment,
                )
            ]
            moves = {target.id: stage.value}
            if holder is not None:
                events.append(
                    NewEvent(
                        EventAction.STAGE_TRANSITIONED,
                        version=holder.version,
                        from_value=stage.value,
                        to_value=Stage.ARCHIVED.value,
                        comment=comment,
                    )
                )
                moves[holder.id] = Stage.ARCHIVED.value
            events.append(
                NewEvent(
                    EventAction.STAGE_ROLLED_BACK,
                    version=target.version,
                    from_value=str(holder.version) if holder is not None else "",
                    to_value=str(target.version),
                    comment=comment,
                )
            )
            self._set_stages(session, moves, now)
            self._append(session, model_id, name, ctx, now, *events)
            if verdict is not None:
                self._record_gates(session, model_id, EventAction.STAGE_ROLLED_BACK, target.version, verdict)
            archived = holder.version if holder is not None else ""
            self.applied_writes.record(session, write, f"{target.version} {archived}")
            return RollbackResult(
                restored=self._version(session, name, target.version),
                archived=self._version(session, name, holder.version) if holder is not None else None,
            )

    # -- aliases -------------------------------------------------------------------------------

    @replayed(nothing)
    @_recording_refusals
    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        ctx: CallContext,
        *,
        check: PromotionCheck | None = None,
        write: WriteKey | None = None,
    ) -> None:
        """``check``: the gate on ``@alias``, judged under the lock against the version it points to."""
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            row = session.execute(
                _ALIAS_TARGET, {"model_id": model_id, "alias": alias, "version": version}
            ).one_or_none()
            if row is None:
                raise errors.ModelVersionNotFound(name, version)
            if row.previous == version:
                return
            verdict = None
            if check is not None:
                verdict = self._judge(
                    session,
                    model_id,
                    name,
                    f"@{alias}",
                    lambda: self._subject(session, row.id, version),
                    lambda: self._alias_holder(session, model_id, alias, row.id),
                    check,
                    ctx,
                )
            if row.previous is None:
                session.execute(
                    sa.insert(ALIASES), {"model_id": model_id, "alias": alias, "version_id": row.id}
                )
                count = session.scalar(
                    sa.select(sa.func.count()).select_from(ALIASES).where(ALIASES.c.model_id == model_id)
                )
                alias_limit(name, int(count or 0))
                event = NewEvent(EventAction.ALIAS_SET, version=version, to_value=alias)
            else:
                session.execute(_MOVE_ALIAS, {"model_pk": model_id, "alias_name": alias, "target_pk": row.id})
                # ALIAS_MOVED's from/to are version numbers; the alias travels in the comment.
                event = NewEvent(
                    EventAction.ALIAS_MOVED,
                    version=version,
                    from_value=str(row.previous),
                    to_value=str(version),
                    comment=alias,
                )
            self._append(session, model_id, name, ctx, now, event)
            if verdict is not None:
                self._record_gates(session, model_id, event.action, version, verdict)

    @replayed(nothing)
    def delete_alias(self, name: str, alias: str, ctx: CallContext, *, write: WriteKey | None = None) -> None:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            version = session.scalar(
                sa.select(V.c.version)
                .join(ALIASES, ALIASES.c.version_id == V.c.id)
                .where(ALIASES.c.model_id == model_id, ALIASES.c.alias == alias)
            )
            if version is None:
                raise errors.AliasNotFound(name, alias)
            session.execute(
                sa.delete(ALIASES).where(ALIASES.c.model_id == model_id, ALIASES.c.alias == alias)
            )
            self._append(
                session,
                model_id,
                name,
                ctx,
                now,
                NewEvent(EventAction.ALIAS_DELETED, version=version, from_value=alias),
            )

    def _by_alias(self, session: Session, name: str, alias: str) -> ModelVersion:
        if alias.lower() == RESERVED_ALIAS:
            newest = self._newest(session, name)
            if newest is None:
                raise errors.AliasNotFound(name, alias)
            return newest
        row = session.execute(_VERSION_BY_ALIAS, {"name": name, "alias": alias}).one_or_none()
        if row is None:
            self._model_id(session, name)
            raise errors.AliasNotFound(name, alias)
        return self._versions(session, [row])[0]

    def _newest(self, session: Session, name: str, stage: Stage | None = None) -> ModelVersion | None:
        if stage is None:
            row = session.execute(_NEWEST_VERSION, {"name": name}).one_or_none()
        else:
            row = session.execute(_NEWEST_IN_STAGE, {"name": name, "stage": stage.value}).one_or_none()
        if row is None:
            self._model_id(session, name)
            return None
        return self._versions(session, [row])[0]

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self._reads.begin() as session:
            return self._by_alias(session, name, alias)

    # -- history -------------------------------------------------------------------------------

    def _history_model_ids(self, session: Session, name: str, include_deleted: bool) -> list[int]:
        """The model's id, with ``include_deleted`` also those of the models deleted under its
        name; for a name with no current model, the ids of every deleted model of that name."""
        model_id = session.scalar(sa.select(M.c.id).where(M.c.name == name))
        if model_id is not None and not include_deleted:
            return [model_id]
        deleted = session.scalars(
            sa.select(EVENTS.c.model_id)
            .where(EVENTS.c.name == name, EVENTS.c.action == EventAction.MODEL_DELETED.value)
            .distinct()
        ).all()
        current = [] if model_id is None else [model_id]
        return current + [model_id for model_id in deleted if model_id is not None]

    def list_events(
        self, name: str, version: int, limit: int, offset: int, *, include_deleted: bool = False
    ) -> list[ModelEvent]:
        with self._reads.begin() as session:
            model_ids = self._history_model_ids(session, name, include_deleted)
            if not model_ids:
                return []
            statement = _EVENTS_WITH_GATES.where(EVENTS.c.model_id.in_(model_ids))
            if version:
                statement = statement.where(EVENTS.c.version == version)
            rows = session.execute(statement.order_by(EVENTS.c.id).limit(limit).offset(offset)).all()
            return [_event_entity(row) for row in rows]

    def _event(self, event_id: int) -> ModelEvent:
        with self._reads.begin() as session:
            return _event_entity(session.execute(_EVENTS_WITH_GATES.where(EVENTS.c.id == event_id)).one())

    @replayed(lambda store, result, *_, **__: store._event(int(result)))
    def record_serving(
        self,
        name: str,
        version: int,
        action: EventAction,
        detail: str,
        instance: str,
        ctx: CallContext,
        per_minute: int,
        *,
        write: WriteKey | None = None,
    ) -> ModelEvent:
        """Appends a serving report without locking the model (a report changes nothing of it):
        the version's row is read with a shared lock instead, so a deletion of the version
        committed first makes this MODEL_VERSION_NOT_FOUND, and one that comes later waits and
        is logged after the report. The reports counted against ``per_minute`` are those
        committed: reports of one caller running at the same moment may pass it by as many."""
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id = session.scalar(_SERVED_VERSION, {"name": name, "version": version})
            if model_id is None:
                self._model_id(session, name)
                raise errors.ModelVersionNotFound(name, version)
            recent = session.scalar(
                _RECENT_REPORTS, {"model_id": model_id, "actor": ctx.actor, "since": now - 60_000}
            )
            within_limit(
                f"registered model '{name}'",
                (recent or 0) + 1,
                f"serving reports by '{ctx.actor}' in 60 s",
                per_minute,
                "TOO_MANY_SERVING_REPORTS",
                "name",  # the bound is the caller's on this model
            )
            event = NewEvent(action, version=version, to_value=instance, comment=detail)
            event_id = self._append(session, model_id, name, ctx, now, event)
            self.applied_writes.record(session, write, event_id)
        return ModelEvent(
            event_id, name, version, action, "", instance, ctx.actor, now, detail, model_id=model_id
        )

    def event_head(self) -> int:
        """The last position of the log (0: empty): every event up to it is committed."""
        with self._reads.begin() as session:
            return self._positions.head(session)

    def events_after(
        self,
        after: int,
        limit: int,
        *,
        until: int | None = None,
        model_id: int | None = None,
        actions: Collection[EventAction] = (),
    ) -> list[ModelEvent]:
        """Up to ``limit`` events with ``after`` < id (<= ``until``), in log order; only those of
        ``model_id`` and of ``actions`` when given. Positions are commit-ordered (see _append),
        so a reader that moves ``after`` to the last id it read never skips one."""
        statement = _EVENTS_WITH_GATES.where(EVENTS.c.id > after)
        if until is not None:
            statement = statement.where(EVENTS.c.id <= until)
        if model_id is not None:
            statement = statement.where(EVENTS.c.model_id == model_id)
        if actions:
            statement = statement.where(EVENTS.c.action.in_(sorted(action.value for action in actions)))
        with self._reads.begin() as session:
            rows = session.execute(statement.order_by(EVENTS.c.id).limit(limit)).all()
        return [_event_entity(row) for row in rows]

    def model_id(self, name: str) -> int:
        with self._reads.begin() as session:
            return self._model_id(session, name)

    def stage_holders_at(self, name: str, stage: Stage, time: int) -> list[int]:
        """Replays the model's history up to ``time`` (inclusive): who was in ``stage`` then."""
        replayed = (EventAction.VERSION_CREATED, EventAction.STAGE_TRANSITIONED, EventAction.VERSION_DELETED)
        with self._reads.begin() as session:
            model_id = self._model_id(session, name)
            rows = session.execute(
                sa.select(EVENTS.c.version, EVENTS.c.action, EVENTS.c.to_value)
                .where(
                    EVENTS.c.model_id == model_id,
                    EVENTS.c.time <= time,
                    EVENTS.c.action.in_([action.value for action in replayed]),
                )
                .order_by(EVENTS.c.id)
            )
            stages: dict[int, str] = {}
            for version, action, to_value in rows:
                if action == EventAction.VERSION_DELETED.value:
                    stages.pop(version, None)
                else:
                    stages[version] = to_value
        return sorted((v for v, held in stages.items() if held == stage.value), reverse=True)

    def resolve(self, uri: ModelUri) -> ModelVersion:
        with self._reads.begin() as session:
            if uri.version is not None:
                return self._version(session, uri.name, uri.version)
            if uri.alias is not None:
                return self._by_alias(session, uri.name, uri.alias)
            newest = self._newest(session, uri.name, uri.stage)
            if newest is None:
                raise errors.NoVersionInStage(uri.name, uri.stage)
            return newest

    # -- promotion gates and approvals ---------------------------------------------------------

    def _subject(self, session: Session, version_id: int, version: int) -> GateSubject:
        tags = self._tags_and_aliases(session, [version_id]).of(version_id)[0]
        data = session.scalar(sa.select(LINEAGE.c.data).where(LINEAGE.c.version_id == version_id))
        return GateSubject(version, dict(tags), EncodedLineage(data) if data is not None else None)

    def _stage_holder(
        self, session: Session, model_id: int, stage: Stage, candidate_id: int
    ) -> GateSubject | None:
        """What a candidate for ``stage`` is compared with, under the lock: the newest other
        version in the stage, else the last other version that entered it and still exists
        (emptying the stage first must not lift the comparison)."""
        row = session.execute(
            sa.select(V.c.id, V.c.version)
            .where(V.c.model_id == model_id, V.c.current_stage == stage.value, V.c.id != candidate_id)
            .order_by(V.c.version.desc())
            .limit(1)
        ).one_or_none()
        if row is None:
            entered = (
                EVENTS.c.action == EventAction.STAGE_TRANSITIONED.value,
                EVENTS.c.to_value == stage.value,
            )
            return self._last_holder(session, model_id, candidate_id, *entered)
        return self._subject(session, row.id, row.version)

    def _alias_holder(
        self, session: Session, model_id: int, alias: str, candidate_id: int
    ) -> GateSubject | None:
        """What a candidate for ``@alias`` is compared with, under the lock: the last other
        version the alias pointed to (now, or before it was deleted) that still exists."""
        pointed = sa.or_(
            sa.and_(EVENTS.c.action == EventAction.ALIAS_SET.value, EVENTS.c.to_value == alias),
            sa.and_(EVENTS.c.action == EventAction.ALIAS_MOVED.value, EVENTS.c.comment == alias),
        )
        return self._last_holder(session, model_id, candidate_id, pointed)

    def _last_holder(
        self, session: Session, model_id: int, candidate_id: int, *entered: sa.ColumnElement[bool]
    ) -> GateSubject | None:
        """The version of the newest ``entered`` event of the model that still exists and is
        not the candidate (the history as rollbacks read it; deleted versions are skipped)."""
        row = session.execute(
            sa.select(V.c.id, V.c.version)
            .join(EVENTS, sa.and_(EVENTS.c.model_id == V.c.model_id, EVENTS.c.version == V.c.version))
            .where(V.c.model_id == model_id, V.c.id != candidate_id, *entered)
            .order_by(EVENTS.c.id.desc())
            .limit(1)
        ).one_or_none()
        return None if row is None else self._subject(session, row.id, row.version)

    def _judge(
        self,
        session: Session,
        model_id: int,
        name: str,
        target: str,
        candidate_of: Callable[[], GateSubject],
        holder_of: Callable[[], GateSubject | None],
        check: PromotionCheck,
        ctx: CallContext,
    ) -> Verdict:
        """Runs ``check`` on the facts under the model's lock; a refusal raises _Refused (the
        caller's transaction rolls back, then the refusal is recorded in its own). The candidate
        and the holder (lineage and a history search) are read only for a gated target: an
        ungated move costs one indexed read."""
        gate_row = session.execute(
            sa.select(GATES).where(GATES.c.model_id == model_id, GATES.c.target == target)
        ).one_or_none()
        if gate_row is None:
            return Verdict(gated=False)
        gate = _gate_entity(name, gate_row)
        candidate, holder = candidate_of(), holder_of()
        approvals: tuple[ApprovalRequest, ...] = ()
        if gate is not None and gate.approvals_required:
            now = self._clock()
            rows = session.execute(
                sa.select(REQUESTS)
                .where(
                    REQUESTS.c.model_id == model_id,
                    REQUESTS.c.version == candidate.version,
                    REQUESTS.c.target == target,
                    REQUESTS.c.status == ApprovalStatus.APPROVED.value,
                    REQUESTS.c.expires_time > now,
                )
                .order_by(REQUESTS.c.decided_time.desc(), REQUESTS.c.id.desc())
                .limit(MAX_PENDING_REQUESTS)
            ).all()
            approvals = tuple(_request_entity(name, row, now) for row in rows)
        facts = PromotionFacts(name, target, gate, candidate, holder, approvals, ctx.actor)
        verdict = check(facts)
        if verdict.refusal is not None:
            raise _Refused(ctx, facts, verdict)
        if verdict.approval_id is not None:
            session.execute(
                sa.update(REQUESTS)
                .where(REQUESTS.c.id == verdict.approval_id)
                .values(status=ApprovalStatus.CONSUMED.value)
            )
        return verdict

    def _record_gates(
        self, session: Session, model_id: int, action: EventAction, version: int, verdict: Verdict
    ) -> None:
        """Stores ``verdict`` beside the newest ``action`` event of ``version`` of the (locked)
        model: the event this transaction just appended."""
        if not verdict.gated:
            return
        event_id = session.scalar(
            sa.select(sa.func.max(EVENTS.c.id)).where(
                EVENTS.c.model_id == model_id, EVENTS.c.action == action.value, EVENTS.c.version == version
            )
        )
        session.execute(
            sa.insert(EVENT_GATES),
            {
                "event_id": event_id,
                "results": json.dumps([dataclasses.asdict(result) for result in verdict.results]),
                "approver": verdict.approver,
                "overridden": verdict.overridden,
            },
        )

    def _refused(self, name: str, refused: _Refused) -> ServiceError:
        """Records a refused promotion in a transaction of its own (the change's rolled back)."""
        now = self._clock()
        ctx, facts, verdict = refused.ctx, refused.facts, refused.verdict
        assert verdict.refusal is not None
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, now)
            event = NewEvent(
                EventAction.PROMOTION_REFUSED,
                version=facts.candidate.version,
                from_value=str(facts.holder.version) if facts.holder is not None else "",
                to_value=facts.target[:255],
                comment=verdict.refusal.message,
            )
            self._append(session, model_id, name, ctx, now, event)
            self._record_gates(
                session, model_id, EventAction.PROMOTION_REFUSED, facts.candidate.version, verdict
            )
        return verdict.refusal

    @contextmanager
    def _gate_change(
        self,
        name: str,
        target: str,
        *,
        approvals_after: int,
        weakening: Callable[[int], str],
        weaken: Callable[[str], None],
        write: WriteKey | None,
    ) -> Iterator[tuple[Session, int, int]]:
        """Opens the write and locks model ``name``; when the change leaves the gate on ``target``
        requiring fewer approvals than stored (a deletion leaves 0), first calls ``weaken`` with
        ``weakening(stored)``, under the lock so the stored gate cannot move. Yields the session,
        the time and the model id."""
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            stored = session.scalar(
                sa.select(GATES.c.approvals_required).where(
                    GATES.c.model_id == model_id, GATES.c.target == target
                )
            )
            if stored is not None and stored > approvals_after:
                weaken(weakening(stored))
            yield session, now, model_id

    def promotion_gates(self, name: str) -> list[PromotionGate]:
        with self._reads.begin() as session:
            model_id = self._model_id(session, name)
            rows = session.execute(
                sa.select(GATES).where(GATES.c.model_id == model_id).order_by(GATES.c.target)
            ).all()
            return [_gate_entity(name, row) for row in rows]

    @replayed(
        lambda store, _result, name, gate, *_, **__: next(
            (g for g in store.promotion_gates(name) if g.target == gate.target), gate
        )
    )
    def set_promotion_gate(
        self,
        name: str,
        gate: PromotionGate,
        ctx: CallContext,
        *,
        weaken: Callable[[str], None],
        write: WriteKey | None = None,
    ) -> PromotionGate:
        with self._gate_change(
            name,
            gate.target,
            approvals_after=gate.approvals_required,
            weakening=lambda stored: (
                f"lowering approvals_required on {gate.target} from {stored} to {gate.approvals_required}"
            ),
            weaken=weaken,
            write=write,
        ) as (session, now, model_id):
            values = {
                "condition": gate.condition,
                "require_signature": gate.require_signature,
                "require_digests": gate.require_digests,
                "approvals_required": gate.approvals_required,
                "updated_by": ctx.actor,
                "updated_time": now,
            }
            key = (GATES.c.model_id == model_id, GATES.c.target == gate.target)
            # The model is locked, so nobody inserts the same gate between UPDATE and INSERT.
            updated = session.execute(sa.update(GATES).where(*key).values(**values))
            if updated.rowcount == 0:  # type: ignore[attr-defined]
                count = session.scalar(
                    sa.select(sa.func.count()).select_from(GATES).where(GATES.c.model_id == model_id)
                )
                within_limit(
                    f"registered model '{name}'",
                    int(count or 0) + 1,
                    "gates",
                    MAX_GATES_PER_MODEL,
                    "TOO_MANY_GATES",
                    "target",
                )
                session.execute(sa.insert(GATES), {"model_id": model_id, "target": gate.target, **values})
            event = NewEvent(EventAction.GATE_SET, to_value=gate.target[:255], comment=gate_comment(gate))
            self._append(session, model_id, name, ctx, now, event)
            return replace(gate, updated_by=ctx.actor, updated_time=now)

    @replayed(nothing)
    def delete_promotion_gate(
        self,
        name: str,
        target: str,
        ctx: CallContext,
        *,
        weaken: Callable[[str], None],
        write: WriteKey | None = None,
    ) -> None:
        with self._gate_change(
            name,
            target,
            approvals_after=0,
            weakening=lambda stored: f"deleting the gate on {target}, which requires {stored} approval,",
            weaken=weaken,
            write=write,
        ) as (session, now, model_id):
            deleted = session.execute(
                sa.delete(GATES).where(GATES.c.model_id == model_id, GATES.c.target == target)
            )
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise GateNotFound(name, target)
            self._append(
                session, model_id, name, ctx, now, NewEvent(EventAction.GATE_DELETED, from_value=target[:255])
            )

    @replayed(lambda store, result, name, *_, **__: store.approval_request(name, int(result)))
    def request_approval(
        self,
        name: str,
        version: int,
        target: str,
        comment: str,
        ctx: CallContext,
        *,
        write: WriteKey | None = None,
    ) -> ApprovalRequest:
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            self._version_key(session, model_id, name, version)
            pending = session.scalar(
                sa.select(sa.func.count())
                .select_from(REQUESTS)
                .where(
                    REQUESTS.c.model_id == model_id,
                    REQUESTS.c.status == ApprovalStatus.PENDING.value,
                    REQUESTS.c.expires_time > now,
                )
            )
            within_limit(
                f"registered model '{name}'",
                int(pending or 0) + 1,
                "pending approval requests",
                MAX_PENDING_REQUESTS,
                "TOO_MANY_APPROVAL_REQUESTS",
                "version",
            )
            values = {
                "model_id": model_id,
                "version": version,
                "target": target,
                "status": ApprovalStatus.PENDING.value,
                "requested_by": ctx.actor,
                "requested_time": now,
                "expires_time": now + APPROVAL_TTL_MS,
                "comment": comment,
                "decided_by": "",
                "decided_time": 0,
                "decision_comment": "",
            }
            request_id = _insert_id(session, sa.insert(REQUESTS), values)
            event = NewEvent(
                EventAction.APPROVAL_REQUESTED,
                version=version,
                from_value=str(request_id),
                to_value=target[:255],
                comment=comment,
            )
            self._append(session, model_id, name, ctx, now, event)
            self.applied_writes.record(session, write, str(request_id))
            return ApprovalRequest(
                request_id,
                name,
                version,
                target,
                ApprovalStatus.PENDING,
                ctx.actor,
                now,
                now + APPROVAL_TTL_MS,
                comment,
            )

    @replayed(lambda store, _result, name, request_id, *_, **__: store.approval_request(name, request_id))
    def decide_approval(
        self,
        name: str,
        request_id: int,
        approve: bool,
        comment: str,
        ctx: CallContext,
        *,
        write: WriteKey | None = None,
    ) -> ApprovalRequest:
        """Approves or rejects a pending request; SELF_APPROVAL when ``ctx.actor`` made it."""
        now = self._clock()
        with self.applied_writes.begin(write) as session:
            model_id, _ = self._lock_model(session, name, now)
            request = self._request(session, model_id, name, request_id, now)
            if request.status is not ApprovalStatus.PENDING:
                raise ApprovalNotPending(request_id, request.status)
            if request.requested_by == ctx.actor:
                raise SelfApproval(ctx.actor)
            status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
            session.execute(
                sa.update(REQUESTS)
                .where(REQUESTS.c.id == request_id)
                .values(status=status.value, decided_by=ctx.actor, decided_time=now, decision_comment=comment)
            )
            action = EventAction.APPROVAL_GRANTED if approve else EventAction.APPROVAL_REJECTED
            event = NewEvent(
                action,
                version=request.version,
                from_value=str(request_id),
                to_value=request.target[:255],
                comment=comment,
            )
            self._append(session, model_id, name, ctx, now, event)
            return replace(
                request, status=status, decided_by=ctx.actor, decided_time=now, decision_comment=comment
            )

    def approval_request(self, name: str, request_id: int) -> ApprovalRequest:
        with self._reads.begin() as session:
            return self._request(session, self._model_id(session, name), name, request_id, self._clock())

    def _request(
        self, session: Session, model_id: int, name: str, request_id: int, now: int
    ) -> ApprovalRequest:
        row = session.execute(
            sa.select(REQUESTS).where(REQUESTS.c.model_id == model_id, REQUESTS.c.id == request_id)
        ).one_or_none()
        if row is None:
            raise ApprovalRequestNotFound(name, request_id)
        return _request_entity(name, row, now)

    def approval_requests(
        self, name: str, status: ApprovalStatus | None, limit: int, offset: int
    ) -> list[ApprovalRequest]:
        """The model's requests, newest first; ``status`` EXPIRED selects the pending and approved
        ones past their expiry, PENDING and APPROVED only those not expired."""
        now = self._clock()
        with self._reads.begin() as session:
            model_id = self._model_id(session, name)
            statement = sa.select(REQUESTS).where(REQUESTS.c.model_id == model_id)
            live = (ApprovalStatus.PENDING.value, ApprovalStatus.APPROVED.value)
            if status is ApprovalStatus.EXPIRED:
                statement = statement.where(REQUESTS.c.status.in_(live), REQUESTS.c.expires_time <= now)
            elif status is not None:
                statement = statement.where(REQUESTS.c.status == status.value)
                if status.value in live:
                    statement = statement.where(REQUESTS.c.expires_time > now)
            rows = session.execute(statement.order_by(REQUESTS.c.id.desc()).limit(limit).offset(offset)).all()
            return [_request_entity(name, row, now) for row in rows]


class _Refused(Exception):
    """A promotion its gate refused, carried out of the transaction that rolls back."""

    def __init__(self, ctx: CallContext, facts: PromotionFacts, verdict: Verdict) -> None:
        super().__init__(verdict.refusal)
        self.ctx, self.facts, self.verdict = ctx, facts, verdict


def _gate_entity(name: str, row: sa.Row[Any]) -> PromotionGate:
    return PromotionGate(
        name=name,
        target=row.target,
        condition=row.condition,
        require_signature=bool(row.require_signature),
        require_digests=bool(row.require_digests),
        approvals_required=int(row.approvals_required),
        updated_by=row.updated_by,
        updated_time=row.updated_time,
    )


def _request_entity(name: str, row: sa.Row[Any], now: int) -> ApprovalRequest:
    status = ApprovalStatus(row.status)
    if status in (ApprovalStatus.PENDING, ApprovalStatus.APPROVED) and row.expires_time <= now:
        status = ApprovalStatus.EXPIRED
    return ApprovalRequest(
        request_id=row.id,
        name=name,
        version=row.version,
        target=row.target,
        status=status,
        requested_by=row.requested_by,
        requested_time=row.requested_time,
        expires_time=row.expires_time,
        comment=row.comment,
        decided_by=row.decided_by,
        decided_time=row.decided_time,
        decision_comment=row.decision_comment,
    )
