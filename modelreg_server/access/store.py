"""The SQLAlchemy store of the access database (users, groups, tokens, access events).

Every change and its audit event are written in one transaction. The store takes validated
values; the domain (modelreg_server.access.service) validates and decides who may do what.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from modelreg.wire import now_ms
from modelreg_server.access import errors
from modelreg_server.access.entities import AccessEvent, Token, TokenOwner, User
from modelreg_server.access.schema import AccessEventRow, TokenRow, UserGroupRow, UserRow
from modelreg_server.context import CallContext
from modelreg_server.db import read_only

_users = cast(sa.Table, UserRow.__table__)
_groups = cast(sa.Table, UserGroupRow.__table__)
_tokens = cast(sa.Table, TokenRow.__table__)
_events = cast(sa.Table, AccessEventRow.__table__)


class SqlAccessStore:
    def __init__(self, engine: Engine, clock: Callable[[], int] = now_ms) -> None:
        self._write = sessionmaker(engine, expire_on_commit=False)
        self._read = sessionmaker(read_only(engine), expire_on_commit=False)
        self._clock = clock

    # -- users ---------------------------------------------------------------------------------

    def create_user(
        self, name: str, *, admin: bool, service: bool, groups: Sequence[str], ctx: CallContext
    ) -> User:
        now = self._clock()
        with self._write.begin() as session:
            try:
                inserted = session.execute(
                    sa.insert(_users).values(
                        name=name,
                        admin=admin,
                        service=service,
                        disabled=False,
                        created_at=now,
                        created_by=ctx.actor,
                    )
                )
                key = cast(sa.CursorResult[Any], inserted).inserted_primary_key
                assert key is not None
                user_id = key[0]
            except IntegrityError as exc:
                raise errors.UserAlreadyExists(name) from exc
            if groups:
                session.execute(sa.insert(_groups), [{"user_id": user_id, "group_name": g} for g in groups])
            flags = "".join((" admin" if admin else "", " service" if service else ""))
            detail = f"groups={','.join(groups)}{flags}".strip()
            self._event(session, ctx, "USER_CREATED", name, detail)
        return User(name, admin, service, False, tuple(sorted(groups)), now, ctx.actor)

    def update_user(
        self,
        name: str,
        *,
        admin: bool | None,
        disabled: bool | None,
        groups: Sequence[str] | None,
        ctx: CallContext,
    ) -> User:
        changes = {
            key: value for key, value in (("admin", admin), ("disabled", disabled)) if value is not None
        }
        with self._write.begin() as session:
            user_id = session.execute(sa.select(_users.c.id).where(_users.c.name == name)).scalar()
            if user_id is None:
                raise errors.UserNotFound(name)
            if changes:
                session.execute(sa.update(_users).where(_users.c.id == user_id).values(changes))
            if groups is not None:
                session.execute(sa.delete(_groups).where(_groups.c.user_id == user_id))
                if groups:
                    session.execute(
                        sa.insert(_groups), [{"user_id": user_id, "group_name": g} for g in groups]
                    )
            detail = " ".join(f"{k}={v}" for k, v in changes.items())
            if groups is not None:
                detail += f" groups={','.join(groups)}"
            self._event(session, ctx, "USER_UPDATED", name, detail.strip())
            return self._users_where(session, _users.c.id == user_id)[0]

    def get_user(self, name: str) -> User | None:
        with self._read.begin() as session:
            found = self._users_where(session, _users.c.name == name)
        return found[0] if found else None

    def list_users(self, limit: int, offset: int) -> list[User]:
        with self._read.begin() as session:
            return self._users_where(session, sa.true(), limit=limit, offset=offset)

    def ensure_service_user(self, name: str, ctx: CallContext) -> None:
        """Creates the service user ``name`` unless it exists (a service's own identity); a user of
        that name who is not a service is never turned into one."""
        if self.get_user(name) is None:
            with suppress(errors.UserAlreadyExists):  # another replica created it first
                self.create_user(name, admin=False, service=True, groups=(), ctx=ctx)
        existing = self.get_user(name)
        if existing is None or not existing.service or existing.admin:
            raise errors.NotAServiceUser(name)

    def _users_where(
        self,
        session: Session,
        condition: sa.ColumnElement[bool],
        *,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[User]:
        query = sa.select(_users).where(condition).order_by(_users.c.name).limit(limit).offset(offset)
        rows = session.execute(query).all()
        groups: dict[int, list[str]] = defaultdict(list)
        if rows:
            for user_id, group in session.execute(
                sa.select(_groups.c.user_id, _groups.c.group_name)
                .where(_groups.c.user_id.in_([row.id for row in rows]))
                .order_by(_groups.c.group_name)
            ):
                groups[user_id].append(group)
        return [
            User(r.name, r.admin, r.service, r.disabled, tuple(groups[r.id]), r.created_at, r.created_by)
            for r in rows
        ]

    # -- tokens --------------------------------------------------------------------------------

    def create_token(
        self,
        user: str,
        *,
        token_id: str,
        secret_hash: str,
        description: str,
        expires_at: int | None,
        ctx: CallContext,
    ) -> Token:
        now = self._clock()
        with self._write.begin() as session:
            user_id = session.execute(sa.select(_users.c.id).where(_users.c.name == user)).scalar()
            if user_id is None:
                raise errors.UserNotFound(user)
            session.execute(
                sa.insert(_tokens).values(
                    id=token_id,
                    user_id=user_id,
                    secret_hash=secret_hash,
                    description=description,
                    created_at=now,
                    created_by=ctx.actor,
                    expires_at=expires_at,
                    revoked_at=None,
                )
            )
            self._event(session, ctx, "TOKEN_CREATED", token_id, f"user={user}")
        return Token(token_id, user, description, now, ctx.actor, expires_at, None)

    def list_tokens(self, user: str | None, *, include_revoked: bool, limit: int, offset: int) -> list[Token]:
        query = self._token_query()
        if user is not None:
            query = query.where(_users.c.name == user)
        if not include_revoked:
            query = query.where(_tokens.c.revoked_at.is_(None))
        with self._read.begin() as session:
            return [
                _token(row)
                for row in session.execute(
                    query.order_by(_tokens.c.created_at, _tokens.c.id).limit(limit).offset(offset)
                )
            ]

    def get_token(self, token_id: str) -> Token | None:
        with self._read.begin() as session:
            row = session.execute(self._token_query().where(_tokens.c.id == token_id)).first()
        return _token(row) if row else None

    def revoke_token(self, token_id: str, ctx: CallContext) -> Token:
        now = self._clock()
        with self._write.begin() as session:
            session.execute(
                sa.update(_tokens)
                .where(_tokens.c.id == token_id, _tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = session.execute(self._token_query().where(_tokens.c.id == token_id)).first()
            if row is None:
                raise errors.TokenNotFound(token_id)
            self._event(session, ctx, "TOKEN_REVOKED", token_id, f"user={row.user}")
        return _token(row)

    def token_owner(self, token_id: str) -> TokenOwner | None:
        """The hot path of authentication: one indexed read."""
        with self._read.begin() as session:
            row = session.execute(
                sa.select(_tokens.c.secret_hash, _tokens.c.expires_at, _tokens.c.revoked_at, _users.c.name)
                .join(_users, _users.c.id == _tokens.c.user_id)
                .where(_tokens.c.id == token_id)
            ).first()
            if row is None:
                return None
            user = self._users_where(session, _users.c.name == row.name)[0]
        return TokenOwner(row.secret_hash, row.expires_at, row.revoked_at, user)

    @staticmethod
    def _token_query() -> sa.Select[tuple[str, str, str, int, str, int | None, int | None]]:
        return sa.select(
            _tokens.c.id,
            _users.c.name.label("user"),
            _tokens.c.description,
            _tokens.c.created_at,
            _tokens.c.created_by,
            _tokens.c.expires_at,
            _tokens.c.revoked_at,
        ).join(_users, _users.c.id == _tokens.c.user_id)

    # -- audit ---------------------------------------------------------------------------------

    def list_events(self, limit: int, offset: int) -> list[AccessEvent]:
        with self._read.begin() as session:
            rows = session.execute(
                sa.select(
                    _events.c.time,
                    _events.c.actor,
                    _events.c.action,
                    _events.c.target,
                    _events.c.detail,
                    _events.c.request_id,
                )
                .order_by(_events.c.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return [AccessEvent(*row) for row in rows]

    def _event(self, session: Session, ctx: CallContext, action: str, target: str, detail: str) -> None:
        session.execute(
            sa.insert(_events).values(
                time=self._clock(),
                actor=ctx.actor,
                action=action,
                target=target,
                detail=detail[:1000],
                request_id=ctx.request_id,
            )
        )


def _token(row: sa.Row[Any]) -> Token:
    return Token(
        row.id, row.user, row.description, row.created_at, row.created_by, row.expires_at, row.revoked_at
    )
