"""The SQLAlchemy implementation of RegistryStore (SQLite, PostgreSQL, MySQL/MariaDB).

Concurrency rules, the same on every backend:
- Every write that touches a model or its versions first locks the model's row with an UPDATE
  (``_lock_model``). Writers of one model are therefore serialised, always in the same order
  (model row, then version rows), so they cannot deadlock one another, and the ids of one model's
  events follow commit order, which is what replaying the history relies on.
- SQLite takes its write lock at BEGIN (``BEGIN IMMEDIATE``, see modelreg._service.db); MySQL runs
  at READ COMMITTED like PostgreSQL, so no gap locks surprise concurrent inserts.
- Reads take no lock and load related rows (tags, aliases) with one IN query per kind, never one
  query per row.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from modelreg._service import callcontext
from registry_service.domain import errors
from registry_service.domain.entities import (
    EventAction,
    FileDigest,
    LineageRecord,
    ModelEvent,
    ModelVersion,
    NewEvent,
    RegisteredModel,
    RollbackResult,
    Stage,
    VersionStatus,
)
from registry_service.domain.filters import Comparison, OrderKey
from registry_service.domain.rules import RESERVED_ALIAS, ModelUri
from registry_service.store.schema import (
    AliasRow,
    EventRow,
    LineageRow,
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelRow,
    RegisteredModelTagRow,
)

M = RegisteredModelRow
V = ModelVersionRow
_STAGE_ORDER = {stage.value: index for index, stage in enumerate(Stage)}
_NO_SYNC = {"synchronize_session": False}
_VersionRow = tuple[ModelVersionRow, str, LineageRow | None]
_REQUEST_ID_LENGTH = 128  # model_events.request_id; a caller may send any x-request-id


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def like_to_glob(pattern: str) -> str:
    """A LIKE pattern as an SQLite GLOB pattern: SQLite's LIKE ignores ASCII case, GLOB does not."""
    special = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join(special.get(char, char) for char in pattern)


def _compare(column: Any, comparison: Comparison, dialect: str) -> sa.ColumnElement[bool]:
    value = comparison.value
    if comparison.op == "LIKE" and dialect == "sqlite":
        return column.op("GLOB")(like_to_glob(str(value)))  # type: ignore[no-any-return]
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
        case "LIKE":
            return column.like(value)  # type: ignore[no-any-return]
        case "ILIKE":
            return column.ilike(value)  # type: ignore[no-any-return]
        case "IN":
            return column.in_(value)  # type: ignore[no-any-return]
    raise AssertionError(f"operator {comparison.op} passed the parser")


def _tag_condition(
    table: type[RegisteredModelTagRow] | type[ModelVersionTagRow],
    owner: Any,
    comparison: Comparison,
    dialect: str,
) -> sa.ColumnElement[bool]:
    owner_column = table.model_id if table is RegisteredModelTagRow else table.version_id  # type: ignore[union-attr]
    return sa.exists().where(
        owner_column == owner, table.key == comparison.tag_key, _compare(table.value, comparison, dialect)
    )


_MODEL_COLUMNS: Mapping[str, Any] = {
    "name": M.name,
    "creation_time": M.creation_time,
    "last_updated_time": M.last_updated_time,
}
_VERSION_COLUMNS: Mapping[str, Any] = {
    "name": M.name,
    "run_id": V.run_id,
    "version": V.version,
    "source": V.source,
    "current_stage": V.current_stage,
    "creation_time": V.creation_time,
    "last_updated_time": V.last_updated_time,
}


def _model_condition(comparison: Comparison, dialect: str) -> sa.ColumnElement[bool]:
    if comparison.column == "tags":
        return _tag_condition(RegisteredModelTagRow, M.id, comparison, dialect)
    return _compare(_MODEL_COLUMNS[comparison.column], comparison, dialect)


def _version_condition(comparison: Comparison, dialect: str) -> sa.ColumnElement[bool]:
    if comparison.column == "tags":
        return _tag_condition(ModelVersionTagRow, V.id, comparison, dialect)
    return _compare(_VERSION_COLUMNS[comparison.column], comparison, dialect)


def _order(columns: Mapping[str, Any], order: Sequence[OrderKey]) -> list[Any]:
    return [columns[key.column].asc() if key.ascending else columns[key.column].desc() for key in order]


def _version_select() -> sa.Select[ModelVersionRow, str, LineageRow]:
    return (
        sa.select(V, M.name, LineageRow)
        .join(M, V.model_id == M.id)
        .outerjoin(LineageRow, LineageRow.version_id == V.id)
    )


def _lineage_entity(row: LineageRow) -> LineageRecord:
    return LineageRecord(
        run_id=row.run_id,
        experiment_id=row.experiment_id,
        run_name=row.run_name,
        artifact_path=row.artifact_path,
        params=dict(row.params),
        metrics={key: float(value) for key, value in row.metrics.items()},
        run_tags=dict(row.run_tags),
        files=tuple(FileDigest(path, int(size), sha256) for path, size, sha256 in row.files),
    )


def _lineage_row(version_id: int, lineage: LineageRecord) -> LineageRow:
    return LineageRow(
        version_id=version_id,
        run_id=lineage.run_id,
        experiment_id=lineage.experiment_id,
        run_name=lineage.run_name,
        artifact_path=lineage.artifact_path,
        params=dict(lineage.params),
        metrics={key: repr(float(value)) for key, value in lineage.metrics.items()},
        run_tags=dict(lineage.run_tags),
        files=[[digest.path, digest.size, digest.sha256] for digest in lineage.files],
    )


def _version_entity(
    row: ModelVersionRow,
    name: str,
    lineage: LineageRow | None,
    tags: Mapping[str, str],
    aliases: Iterable[str],
) -> ModelVersion:
    return ModelVersion(
        name=name,
        version=row.version,
        creation_time=row.creation_time,
        last_updated_time=row.last_updated_time,
        current_stage=Stage(row.current_stage),
        description=row.description,
        source=row.source,
        run_id=row.run_id,
        status=VersionStatus(row.status),
        status_message=row.status_message,
        user_id=row.user_id,
        tags=dict(tags),
        aliases=tuple(aliases),
        lineage=_lineage_entity(lineage) if lineage is not None else None,
    )


def _event_entity(row: EventRow) -> ModelEvent:
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


class SqlRegistryStore:
    """RegistryStore on SQLAlchemy; the schema must be at head (Alembic, see store.migrations)."""

    def __init__(self, engine: Engine, clock: Callable[[], int] = now_ms) -> None:
        if engine.dialect.name in ("mysql", "mariadb"):
            engine = engine.execution_options(isolation_level="READ COMMITTED")
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._dialect = engine.dialect.name
        # PostgreSQL and SQLite >= 3.35 have UPDATE ... RETURNING; MySQL/MariaDB do not.
        self._update_returning = engine.dialect.update_returning
        self._clock = clock

    # -- locking and allocation ---------------------------------------------------------------

    def _lock_model(self, session: Session, name: str, **values: Any) -> tuple[int, int]:
        """Locks the model's row by updating it; returns (model id, next_version).

        The UPDATE takes the row lock (PostgreSQL/MySQL; SQLite already holds the database write
        lock) until the transaction ends, and finds the model in the same statement.
        """
        statement = sa.update(M).where(M.name == name).values(**values).execution_options(**_NO_SYNC)
        if self._update_returning:
            row = session.execute(statement.returning(M.id, M.next_version)).one_or_none()
        else:
            session.execute(statement)
            row = session.execute(sa.select(M.id, M.next_version).where(M.name == name)).one_or_none()
        if row is None:
            raise errors.model_not_found(name)
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
        model_id, next_version = self._lock_model(
            session, name, next_version=M.next_version + 1, last_updated_time=now
        )
        return model_id, next_version - 1

    # -- loading -------------------------------------------------------------------------------

    def _model_id(self, session: Session, name: str) -> int:
        model_id = session.scalar(sa.select(M.id).where(M.name == name))
        if model_id is None:
            raise errors.model_not_found(name)
        return model_id

    def _versions(self, session: Session, rows: Sequence[_VersionRow]) -> list[ModelVersion]:
        """Entities for version rows, with their tags and aliases loaded by one IN query each."""
        ids = [row.id for row, _, _ in rows]
        tags: dict[int, dict[str, str]] = defaultdict(dict)
        aliases: dict[int, list[str]] = defaultdict(list)
        if ids:
            tag_rows = session.execute(
                sa.select(
                    ModelVersionTagRow.version_id, ModelVersionTagRow.key, ModelVersionTagRow.value
                ).where(ModelVersionTagRow.version_id.in_(ids))
            )
            for version_id, key, value in tag_rows:
                tags[version_id][key] = value
            alias_rows = session.execute(
                sa.select(AliasRow.version_id, AliasRow.alias)
                .where(AliasRow.version_id.in_(ids))
                .order_by(AliasRow.alias)
            )
            for version_id, alias in alias_rows:
                aliases[version_id].append(alias)
        return [
            _version_entity(row, name, lineage, tags[row.id], aliases[row.id]) for row, name, lineage in rows
        ]

    def _version(self, session: Session, name: str, version: int) -> ModelVersion:
        return self._versions(session, [self._version_row(session, name, version)])[0]

    def _version_row(self, session: Session, name: str, version: int) -> _VersionRow:
        row = session.execute(_version_select().where(M.name == name, V.version == version)).one_or_none()
        if row is None:
            self._model_id(session, name)
            raise errors.version_not_found(name, version)
        return row

    def _version_by_number(self, session: Session, model_id: int, name: str, version: int) -> ModelVersionRow:
        row = session.scalar(sa.select(V).where(V.model_id == model_id, V.version == version))
        if row is None:
            raise errors.version_not_found(name, version)
        return row

    def _newest_per_stage(
        self, session: Session, model_ids: Sequence[int], stages: Sequence[Stage] = ()
    ) -> list[ModelVersion]:
        newest = sa.select(V.model_id, sa.func.max(V.version).label("version")).where(
            V.model_id.in_(model_ids)
        )
        if stages:
            newest = newest.where(V.current_stage.in_([stage.value for stage in stages]))
        subquery = newest.group_by(V.model_id, V.current_stage).subquery()
        rows = session.execute(
            _version_select().join(
                subquery, sa.and_(V.model_id == subquery.c.model_id, V.version == subquery.c.version)
            )
        ).all()
        return self._versions(session, sorted(rows, key=lambda row: _STAGE_ORDER[row[0].current_stage]))

    def _models(self, session: Session, rows: Sequence[RegisteredModelRow]) -> list[RegisteredModel]:
        ids = [row.id for row in rows]
        if not ids:
            return []
        tags: dict[int, dict[str, str]] = defaultdict(dict)
        for model_id, key, value in session.execute(
            sa.select(
                RegisteredModelTagRow.model_id, RegisteredModelTagRow.key, RegisteredModelTagRow.value
            ).where(RegisteredModelTagRow.model_id.in_(ids))
        ):
            tags[model_id][key] = value
        aliases: dict[int, dict[str, int]] = defaultdict(dict)
        for model_id, alias, number in session.execute(
            sa.select(AliasRow.model_id, AliasRow.alias, V.version)
            .join(V, AliasRow.version_id == V.id)
            .where(AliasRow.model_id.in_(ids))
            .order_by(AliasRow.alias)
        ):
            aliases[model_id][alias] = number
        names = {row.id: row.name for row in rows}
        latest: dict[str, list[ModelVersion]] = defaultdict(list)
        for version in self._newest_per_stage(session, ids):
            latest[version.name].append(version)
        return [
            RegisteredModel(
                name=row.name,
                creation_time=row.creation_time,
                last_updated_time=row.last_updated_time,
                description=row.description,
                tags=tags[row.id],
                latest_versions=tuple(latest[names[row.id]]),
                aliases=aliases[row.id],
            )
            for row in rows
        ]

    def _model(self, session: Session, name: str) -> RegisteredModel:
        row = session.scalar(sa.select(M).where(M.name == name))
        if row is None:
            raise errors.model_not_found(name)
        return self._models(session, [row])[0]

    # -- events --------------------------------------------------------------------------------

    def _append(
        self, session: Session, model_id: int, name: str, actor: str, now: int, *events: NewEvent
    ) -> None:
        # Read here rather than passed down: every write of the registry appends its events here.
        request_id = (callcontext.request_id.get() or "")[:_REQUEST_ID_LENGTH]
        session.execute(
            sa.insert(EventRow),
            [
                {
                    "model_id": model_id,
                    "name": name,
                    "version": event.version,
                    "action": event.action.value,
                    "from_value": event.from_value,
                    "to_value": event.to_value,
                    "actor": actor,
                    "time": now,
                    "comment": event.comment,
                    "request_id": request_id,
                }
                for event in events
            ],
        )

    # -- registered models ---------------------------------------------------------------------

    def create_model(
        self, name: str, description: str, tags: Mapping[str, str], actor: str
    ) -> RegisteredModel:
        now = self._clock()
        with self._sessions.begin() as session:
            if session.scalar(sa.select(M.id).where(M.name == name)) is not None:
                raise errors.model_exists(name)
            row = M(name=name, description=description, creation_time=now, last_updated_time=now)
            session.add(row)
            try:
                session.flush()
            except IntegrityError as exc:  # a concurrent create of the same name won the race
                raise errors.model_exists(name) from exc
            if tags:
                session.execute(
                    sa.insert(RegisteredModelTagRow),
                    [{"model_id": row.id, "key": key, "value": value} for key, value in tags.items()],
                )
            self._append(session, row.id, name, actor, now, NewEvent(EventAction.MODEL_CREATED))
            return RegisteredModel(name, now, now, description, dict(tags))

    def get_model(self, name: str) -> RegisteredModel:
        with self._sessions.begin() as session:
            return self._model(session, name)

    def require_model(self, name: str) -> None:
        with self._sessions.begin() as session:
            self._model_id(session, name)

    def rename_model(self, name: str, new_name: str, actor: str) -> RegisteredModel:
        now = self._clock()
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, last_updated_time=now)
            if new_name != name:
                if session.scalar(sa.select(M.id).where(M.name == new_name)) is not None:
                    raise errors.model_exists(new_name)
                try:
                    session.execute(
                        sa.update(M)
                        .where(M.id == model_id)
                        .values(name=new_name)
                        .execution_options(**_NO_SYNC)
                    )
                except IntegrityError as exc:
                    raise errors.model_exists(new_name) from exc
                self._append(
                    session,
                    model_id,
                    new_name,
                    actor,
                    now,
                    NewEvent(EventAction.MODEL_RENAMED, from_value=name, to_value=new_name),
                )
            return self._model(session, new_name)

    def update_model(self, name: str, description: str) -> RegisteredModel:
        with self._sessions.begin() as session:
            self._lock_model(session, name, description=description, last_updated_time=self._clock())
            return self._model(session, name)

    def delete_model(self, name: str, actor: str) -> None:
        now = self._clock()
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, last_updated_time=now)
            # Versions, aliases, tags and lineage go by ON DELETE CASCADE; events have no FK.
            session.execute(sa.delete(M).where(M.id == model_id).execution_options(**_NO_SYNC))
            self._append(session, model_id, name, actor, now, NewEvent(EventAction.MODEL_DELETED))

    def search_models(
        self, filters: Sequence[Comparison], order: Sequence[OrderKey], limit: int, offset: int
    ) -> list[RegisteredModel]:
        statement = (
            sa.select(M)
            .where(*[_model_condition(comparison, self._dialect) for comparison in filters])
            .order_by(*_order(_MODEL_COLUMNS, order), M.name.asc(), M.id.asc())
            .limit(limit)
            .offset(offset)
        )
        with self._sessions.begin() as session:
            return self._models(session, session.scalars(statement).all())

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, last_updated_time=self._clock())
            tag = session.get(RegisteredModelTagRow, (model_id, key))
            if tag is None:
                session.add(RegisteredModelTagRow(model_id=model_id, key=key, value=value))
            else:
                tag.value = value

    def delete_model_tag(self, name: str, key: str) -> None:
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, last_updated_time=self._clock())
            deleted = session.execute(
                sa.delete(RegisteredModelTagRow)
                .where(RegisteredModelTagRow.model_id == model_id, RegisteredModelTagRow.key == key)
                .execution_options(**_NO_SYNC)
            )
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise errors.tag_not_found(key)

    # -- model versions ------------------------------------------------------------------------

    def create_version(
        self,
        name: str,
        *,
        source: str,
        run_id: str,
        description: str,
        tags: Mapping[str, str],
        lineage: LineageRecord | None,
        actor: str,
    ) -> ModelVersion:
        now = self._clock()
        with self._sessions.begin() as session:
            model_id, version = self._allocate_version(session, name, now)
            row = V(
                model_id=model_id,
                version=version,
                creation_time=now,
                last_updated_time=now,
                current_stage=Stage.NONE.value,
                description=description,
                source=source,
                run_id=run_id,
                status=VersionStatus.READY.value,
                status_message="",
                user_id=actor,
            )
            session.add(row)
            session.flush()
            if tags:
                session.execute(
                    sa.insert(ModelVersionTagRow),
                    [{"version_id": row.id, "key": key, "value": value} for key, value in tags.items()],
                )
            lineage_row = _lineage_row(row.id, lineage) if lineage is not None else None
            if lineage_row is not None:
                session.add(lineage_row)
            self._append(
                session,
                model_id,
                name,
                actor,
                now,
                NewEvent(EventAction.VERSION_CREATED, version=version, to_value=Stage.NONE.value),
            )
            return _version_entity(row, name, lineage_row, tags, ())

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self._sessions.begin() as session:
            return self._version(session, name, version)

    def update_version(self, name: str, version: int, description: str) -> ModelVersion:
        with self._sessions.begin() as session:
            row, _, _ = self._version_row(session, name, version)
            row.description = description
            row.last_updated_time = self._clock()
            session.flush()
            return self._version(session, name, version)

    def delete_version(self, name: str, version: int, actor: str) -> None:
        now = self._clock()
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, last_updated_time=now)
            row = self._version_by_number(session, model_id, name, version)
            aliases = session.scalars(sa.select(AliasRow.alias).where(AliasRow.version_id == row.id)).all()
            # Tags, lineage and the aliases pointing at it go by ON DELETE CASCADE.
            session.execute(sa.delete(V).where(V.id == row.id).execution_options(**_NO_SYNC))
            self._append(
                session,
                model_id,
                name,
                actor,
                now,
                *[
                    NewEvent(EventAction.ALIAS_DELETED, version=version, from_value=alias)
                    for alias in aliases
                ],
                NewEvent(EventAction.VERSION_DELETED, version=version, from_value=row.current_stage),
            )

    def search_versions(
        self, filters: Sequence[Comparison], order: Sequence[OrderKey], limit: int, offset: int
    ) -> list[ModelVersion]:
        statement = (
            _version_select()
            .where(*[_version_condition(comparison, self._dialect) for comparison in filters])
            .order_by(*_order(_VERSION_COLUMNS, order), M.name.asc(), V.version.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._sessions.begin() as session:
            return self._versions(session, [row for row in session.execute(statement)])

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, last_updated_time=self._clock())
            row = self._version_by_number(session, model_id, name, version)
            tag = session.get(ModelVersionTagRow, (row.id, key))
            if tag is None:
                session.add(ModelVersionTagRow(version_id=row.id, key=key, value=value))
            else:
                tag.value = value

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, last_updated_time=self._clock())
            row = self._version_by_number(session, model_id, name, version)
            deleted = session.execute(
                sa.delete(ModelVersionTagRow)
                .where(ModelVersionTagRow.version_id == row.id, ModelVersionTagRow.key == key)
                .execution_options(**_NO_SYNC)
            )
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise errors.tag_not_found(key)

    # -- stages --------------------------------------------------------------------------------

    def transition_stage(
        self, name: str, version: int, stage: Stage, *, archive_existing: bool, comment: str, actor: str
    ) -> ModelVersion:
        now = self._clock()
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, last_updated_time=now)
            row = self._version_by_number(session, model_id, name, version)
            events = [
                NewEvent(
                    EventAction.STAGE_TRANSITIONED,
                    version=version,
                    from_value=row.current_stage,
                    to_value=stage.value,
                    comment=comment,
                )
            ]
            row.current_stage = stage.value
            row.last_updated_time = now
            if archive_existing and stage in (Stage.STAGING, Stage.PRODUCTION):
                others = session.scalars(
                    sa.select(V).where(V.model_id == model_id, V.current_stage == stage.value, V.id != row.id)
                ).all()
                for other in others:
                    other.current_stage = Stage.ARCHIVED.value
                    other.last_updated_time = now
                    events.append(
                        NewEvent(
                            EventAction.STAGE_TRANSITIONED,
                            version=other.version,
                            from_value=stage.value,
                            to_value=Stage.ARCHIVED.value,
                            comment=f"archived by the transition of version {version} to {stage.value}",
                        )
                    )
            session.flush()
            self._append(session, model_id, name, actor, now, *events)
            return self._version(session, name, version)

    def latest_versions(self, name: str, stages: Sequence[Stage]) -> list[ModelVersion]:
        with self._sessions.begin() as session:
            return self._newest_per_stage(session, [self._model_id(session, name)], stages)

    def rollback_stage(self, name: str, stage: Stage, comment: str, actor: str) -> RollbackResult:
        """Restores the most recent other holder of ``stage`` and archives the current holder.

        From the history, newest first, of versions entering ``stage``: the current holder is the
        newest entrant still in the stage; the target is the newest entrant that still exists, is
        not the current holder and is not in the stage now. Deleted versions are skipped.
        """
        now = self._clock()
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, last_updated_time=now)
            entrants = session.scalars(
                sa.select(EventRow.version)
                .where(
                    EventRow.model_id == model_id,
                    EventRow.action == EventAction.STAGE_TRANSITIONED.value,
                    EventRow.to_value == stage.value,
                )
                .order_by(EventRow.id.desc())
            ).all()
            live = {
                row.version: row
                for row in session.scalars(
                    sa.select(V).where(V.model_id == model_id, V.version.in_(set(entrants)))
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
                raise errors.no_rollback_target(name, stage.value)
            events = [
                NewEvent(
                    EventAction.STAGE_TRANSITIONED,
                    version=target.version,
                    from_value=target.current_stage,
                    to_value=stage.value,
                    comment=comment,
                )
            ]
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
                holder.current_stage = Stage.ARCHIVED.value
                holder.last_updated_time = now
            target.current_stage = stage.value
            target.last_updated_time = now
            events.append(
                NewEvent(
                    EventAction.STAGE_ROLLED_BACK,
                    version=target.version,
                    from_value=str(holder.version) if holder is not None else "",
                    to_value=str(target.version),
                    comment=comment,
                )
            )
            session.flush()
            self._append(session, model_id, name, actor, now, *events)
            return RollbackResult(
                restored=self._version(session, name, target.version),
                archived=self._version(session, name, holder.version) if holder is not None else None,
            )

    # -- aliases -------------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int, actor: str) -> None:
        now = self._clock()
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, last_updated_time=now)
            row = self._version_by_number(session, model_id, name, version)
            current = session.get(AliasRow, (model_id, alias))
            if current is None:
                session.add(AliasRow(model_id=model_id, alias=alias, version_id=row.id))
                event = NewEvent(EventAction.ALIAS_SET, version=version, to_value=alias)
            elif current.version_id == row.id:
                return
            else:
                previous = session.scalar(sa.select(V.version).where(V.id == current.version_id))
                current.version_id = row.id
                # ALIAS_MOVED's from/to are version numbers; the alias travels in the comment.
                event = NewEvent(
                    EventAction.ALIAS_MOVED,
                    version=version,
                    from_value=str(previous),
                    to_value=str(version),
                    comment=alias,
                )
            session.flush()
            self._append(session, model_id, name, actor, now, event)

    def delete_alias(self, name: str, alias: str, actor: str) -> None:
        now = self._clock()
        with self._sessions.begin() as session:
            model_id, _ = self._lock_model(session, name, last_updated_time=now)
            current = session.get(AliasRow, (model_id, alias))
            if current is None:
                raise errors.alias_not_found(name, alias)
            version = session.scalar(sa.select(V.version).where(V.id == current.version_id))
            session.delete(current)
            session.flush()
            self._append(
                session,
                model_id,
                name,
                actor,
                now,
                NewEvent(EventAction.ALIAS_DELETED, version=version or 0, from_value=alias),
            )

    def _by_alias(self, session: Session, name: str, alias: str) -> ModelVersion:
        if alias.lower() == RESERVED_ALIAS:
            newest = self._newest(session, name)
            if newest is None:
                raise errors.alias_not_found(name, alias)
            return newest
        row = session.execute(
            _version_select()
            .join(AliasRow, AliasRow.version_id == V.id)
            .where(M.name == name, AliasRow.alias == alias)
        ).one_or_none()
        if row is None:
            self._model_id(session, name)
            raise errors.alias_not_found(name, alias)
        return self._versions(session, [row])[0]

    def _newest(self, session: Session, name: str, stage: Stage | None = None) -> ModelVersion | None:
        statement = _version_select().where(M.name == name).order_by(V.version.desc()).limit(1)
        if stage is not None:
            statement = statement.where(V.current_stage == stage.value)
        row = session.execute(statement).one_or_none()
        if row is None:
            self._model_id(session, name)
            return None
        return self._versions(session, [row])[0]

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self._sessions.begin() as session:
            return self._by_alias(session, name, alias)

    # -- history -------------------------------------------------------------------------------

    def _history_model_ids(self, session: Session, name: str) -> list[int]:
        """The model's id; for a deleted model, the ids of every deleted model of that name."""
        model_id = session.scalar(sa.select(M.id).where(M.name == name))
        if model_id is not None:
            return [model_id]
        deleted = session.scalars(
            sa.select(EventRow.model_id)
            .where(EventRow.name == name, EventRow.action == EventAction.MODEL_DELETED.value)
            .distinct()
        ).all()
        return [model_id for model_id in deleted if model_id is not None]

    def list_events(self, name: str, version: int, limit: int, offset: int) -> list[ModelEvent]:
        with self._sessions.begin() as session:
            model_ids = self._history_model_ids(session, name)
            if not model_ids:
                return []
            statement = sa.select(EventRow).where(EventRow.model_id.in_(model_ids))
            if version:
                statement = statement.where(EventRow.version == version)
            rows = session.scalars(statement.order_by(EventRow.id).limit(limit).offset(offset)).all()
            return [_event_entity(row) for row in rows]

    def stage_holders_at(self, name: str, stage: Stage, time: int) -> list[int]:
        """Replays the model's history up to ``time`` (inclusive): who was in ``stage`` then."""
        replayed = (EventAction.VERSION_CREATED, EventAction.STAGE_TRANSITIONED, EventAction.VERSION_DELETED)
        with self._sessions.begin() as session:
            model_id = self._model_id(session, name)
            rows = session.execute(
                sa.select(EventRow.version, EventRow.action, EventRow.to_value)
                .where(
                    EventRow.model_id == model_id,
                    EventRow.time <= time,
                    EventRow.action.in_([action.value for action in replayed]),
                )
                .order_by(EventRow.id)
            )
            stages: dict[int, str] = {}
            for version, action, to_value in rows:
                if action == EventAction.VERSION_DELETED.value:
                    stages.pop(version, None)
                else:
                    stages[version] = to_value
        return sorted((v for v, held in stages.items() if held == stage.value), reverse=True)

    def resolve(self, uri: ModelUri) -> ModelVersion:
        with self._sessions.begin() as session:
            if uri.version is not None:
                return self._version(session, uri.name, uri.version)
            if uri.alias is not None:
                return self._by_alias(session, uri.name, uri.alias)
            newest = self._newest(session, uri.name, uri.stage)
            if newest is None:
                raise errors.no_version(uri.name, uri.stage)
            return newest
