"""The SQLAlchemy implementation of RegistryStore (SQLite, PostgreSQL, MySQL/MariaDB).

Concurrency rules, the same on every backend:
- Every write that touches a model or its versions first locks the model's row with an UPDATE
  (``_lock_model``). Writers of one model are therefore serialised, always in the same order
  (model row, then version rows), so they cannot deadlock one another, and the ids of one model's
  events follow commit order, which is what replaying the history relies on.
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

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from modelreg.wire import now_ms
from modelreg_server.access.policy import Grant, Grantee, GrantEvent, Level, Subject
from modelreg_server.context import CallContext
from modelreg_server.db import read_only
from modelreg_server.sqlfilter import like
from registry_service.domain import errors
from registry_service.domain.entities import (
    EncodedLineage,
    EventAction,
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
from registry_service.domain.rules import RESERVED_ALIAS, ModelUri
from registry_service.store.schema import (
    AliasRow,
    EventRow,
    LineageRow,
    ModelPermissionRow,
    ModelVersionRow,
    ModelVersionTagRow,
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
_MODEL_ACCESS = (
    sa.select(
        M.c.protect_production,
        sa.select(sa.func.max(GRANTS.c.level))
        .where(
            GRANTS.c.model_id == M.c.id,
            _granted_to(sa.bindparam("grantee_user"), sa.bindparam("grantee_groups", expanding=True)),
        )
        .scalar_subquery()
        .label("granted"),
        PROTECTED.c.alias,
    )
    .select_from(M.outerjoin(PROTECTED, PROTECTED.c.model_id == M.c.id))
    .where(M.c.name == sa.bindparam("name"))
)
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


class SqlRegistryStore:
    """RegistryStore on SQLAlchemy; the schema must be at head (Alembic, see store.migrations)."""

    def __init__(self, engine: Engine, clock: Callable[[], int] = now_ms) -> None:
        if engine.dialect.name in ("mysql", "mariadb"):
            engine = engine.execution_options(isolation_level="READ COMMITTED")
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Pure reads (get, search, list, resolve): on SQLite they then never wait for a writer's lock.
        self._reads = sessionmaker(read_only(engine), expire_on_commit=False)
        self._dialect = engine.dialect.name
        # PostgreSQL and SQLite >= 3.35 have UPDATE ... RETURNING; MySQL/MariaDB do not.
        self._update_returning = engine.dialect.update_returning
        self._clock = clock

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
    ) -> None:
        session.execute(
            sa.insert(EVENTS),
            [
                {
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
                for event in events
            ],
        )

    # -- registered models ---------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        description: str,
        tags: Mapping[str, str],
        ctx: CallContext,
        creator_level: Level | None = None,
    ) -> RegisteredModel:
        now = self._clock()
        with self._sessions.begin() as session:
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

    def rename_model(self, name: str, new_name: str, ctx: CallContext) -> RegisteredModel:
        now = self._clock()
        with self._sessions.begin() as session:
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

    def update_model(self, name: str, description: str) -> RegisteredModel:
        with self._sessions.begin() as session:
            self._lock_model(session, name, self._clock(), _DESCRIBE, new_description=description)
            return self._model(session, name)

    def delete_model(self, name: str, ctx: CallContext) -> None:
        now = self._clock()
        with self._sessions.begin() as session:
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
            return self._models(session, session.execute(statement).all())

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, self._clock())
            self._upsert_tag(session, MODEL_TAGS, MODEL_TAGS.c.model_id, model_id, key, value)

    def delete_model_tag(self, name: str, key: str) -> None:
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, self._clock())
            deleted = session.execute(
                sa.delete(MODEL_TAGS).where(MODEL_TAGS.c.model_id == model_id, MODEL_TAGS.c.key == key)
            )
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise errors.TagNotFound(key)

    def _upsert_tag(
        self, session: Session, table: sa.Table, owner: sa.Column[int], owner_id: int, key: str, value: str
    ) -> None:
        # The owner's model is locked, so nobody inserts the same key between UPDATE and INSERT.
        updated = session.execute(
            sa.update(table).where(owner == owner_id, table.c.key == key).values(value=value)
        )
        if updated.rowcount == 0:  # type: ignore[attr-defined]
            session.execute(sa.insert(table).values({owner.name: owner_id, "key": key, "value": value}))

    # -- permissions and protection ------------------------------------------------------------

    def model_access(self, name: str, grantee: Grantee) -> ModelAccess:
        with self._reads.begin() as session:
            rows = session.execute(
                _MODEL_ACCESS,
                {"name": name, "grantee_user": grantee.user, "grantee_groups": list(grantee.groups)},
            ).all()
        if not rows:
            raise errors.RegisteredModelNotFound(name)
        granted = rows[0].granted
        aliases = tuple(sorted(row.alias for row in rows if row.alias is not None))
        return ModelAccess(
            Level(granted) if granted is not None else None,
            ModelProtection(bool(rows[0].protect_production), aliases),
        )

    def set_permission(self, name: str, subject: Subject, level: Level, ctx: CallContext) -> Grant:
        now = self._clock()
        key = (GRANTS.c.subject_kind == subject.kind, GRANTS.c.subject_name == subject.name)
        with self._sessions.begin() as session:
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
            event = NewEvent(
                EventAction.PERMISSION_SET, from_value=_subject_text(subject), to_value=level.name
            )
            self._append(session, model_id, name, ctx, now, event)
        return Grant(subject, level, ctx.actor, now)

    def delete_permission(self, name: str, subject: Subject, ctx: CallContext) -> None:
        now = self._clock()
        with self._sessions.begin() as session:
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

    def set_protection(self, name: str, protection: ModelProtection, ctx: CallContext) -> ModelProtection:
        now = self._clock()
        with self._sessions.begin() as session:
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
    ) -> ModelVersion:
        now = self._clock()
        with self._sessions.begin() as session:
            model_id, version = self._allocate_version(session, name, now)
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

    def update_version(self, name: str, version: int, description: str) -> ModelVersion:
        with self._sessions.begin() as session:
            session.execute(
                sa.update(V)
                .where(
                    V.c.model_id == sa.select(M.c.id).where(M.c.name == name).scalar_subquery(),
                    V.c.version == version,
                )
                .values(description=description, last_updated_time=self._clock())
            )
            return self._version(session, name, version)  # raises when nothing was updated

    def delete_version(self, name: str, version: int, ctx: CallContext) -> None:
        now = self._clock()
        with self._sessions.begin() as session:
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
            return self._versions(session, session.execute(statement).all())

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, self._clock())
            version_id, _ = self._version_key(session, model_id, name, version)
            self._upsert_tag(session, VERSION_TAGS, VERSION_TAGS.c.version_id, version_id, key, value)

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, self._clock())
            version_id, _ = self._version_key(session, model_id, name, version)
            deleted = session.execute(
                sa.delete(VERSION_TAGS).where(
                    VERSION_TAGS.c.version_id == version_id, VERSION_TAGS.c.key == key
                )
            )
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise errors.TagNotFound(key)

    # -- stages --------------------------------------------------------------------------------

    def _set_stages(self, session: Session, stages: Mapping[int, str], now: int) -> None:
        """Moves versions (by id) to stages: one prebuilt statement, executed for each."""
        session.execute(
            _SET_STAGE,
            [{"version_pk": version_id, "stage": stage, "now": now} for version_id, stage in stages.items()],
        )

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
    ) -> ModelVersion:
        now = self._clock()
        archive = archive_existing and stage in (Stage.STAGING, Stage.PRODUCTION)
        with self._sessions.begin() as session:
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

    def rollback_stage(
        self, name: str, stage: Stage, comment: str, ctx: CallContext, protected: Stage | None = None
    ) -> RollbackResult:
        """Restores the most recent other holder of ``stage`` and archives the current holder.

        From the history, newest first, of versions entering ``stage``: the current holder is the
        newest entrant still in the stage; the target is the newest entrant that still exists, is
        not the current holder and is not in the stage now. Deleted versions are skipped.
        """
        now = self._clock()
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, now)
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
            holder = next(
                (live[v] for v in entrants if v in live and live[v].current_stage == stage.value), None
            )
            target = next(
                (
                    live[v]
                    for v in entrants
                    if v in live and live[v] is not holder and live[v].current_stage != stage.value
                ),
                None,
            )
            if target is None:
                raise errors.NoRollbackTarget(name, stage.value)
            if protected is not None and protected.value in (target.current_stage, stage.value):
                raise errors.ProtectedStage(name, target.version)
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
            return RollbackResult(
                restored=self._version(session, name, target.version),
                archived=self._version(session, name, holder.version) if holder is not None else None,
            )

    # -- aliases -------------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int, ctx: CallContext) -> None:
        now = self._clock()
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, now)
            row = session.execute(
                _ALIAS_TARGET, {"model_id": model_id, "alias": alias, "version": version}
            ).one_or_none()
            if row is None:
                raise errors.ModelVersionNotFound(name, version)
            if row.previous is None:
                session.execute(
                    sa.insert(ALIASES), {"model_id": model_id, "alias": alias, "version_id": row.id}
                )
                event = NewEvent(EventAction.ALIAS_SET, version=version, to_value=alias)
            elif row.previous == version:
                return
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

    def delete_alias(self, name: str, alias: str, ctx: CallContext) -> None:
        now = self._clock()
        with self._sessions.begin() as session:
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

    def _history_model_ids(self, session: Session, name: str) -> list[int]:
        """The model's id; for a deleted model, the ids of every deleted model of that name."""
        model_id = session.scalar(sa.select(M.c.id).where(M.c.name == name))
        if model_id is not None:
            return [model_id]
        deleted = session.scalars(
            sa.select(EVENTS.c.model_id)
            .where(EVENTS.c.name == name, EVENTS.c.action == EventAction.MODEL_DELETED.value)
            .distinct()
        ).all()
        return [model_id for model_id in deleted if model_id is not None]

    def list_events(self, name: str, version: int, limit: int, offset: int) -> list[ModelEvent]:
        with self._reads.begin() as session:
            model_ids = self._history_model_ids(session, name)
            if not model_ids:
                return []
            statement = sa.select(EVENTS).where(EVENTS.c.model_id.in_(model_ids))
            if version:
                statement = statement.where(EVENTS.c.version == version)
            rows = session.execute(statement.order_by(EVENTS.c.id).limit(limit).offset(offset)).all()
            return [_event_entity(row) for row in rows]

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
