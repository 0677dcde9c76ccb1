"""The access use cases: users, groups, API tokens and their audit.

Who may: admins manage users and see every token and the audit; any user creates, lists and
revokes their own tokens. With access control off there is no access database: WhoAmI answers
(the claimed actor, ``authenticated_by="none"``) and everything else is FAILED_PRECONDITION
(ACCESS_CONTROL_OFF), since users and tokens would mean nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from modelreg_server.access import errors, tokens
from modelreg_server.access.entities import AccessEvent, Token, User
from modelreg_server.access.policy import Principal, Subject, require_admin
from modelreg_server.context import CallContext
from modelreg_server.errors import FailedPreconditionError
from modelreg_server.pagination import fingerprint, parse_page
from modelreg_server.validation import require_value, text_bytes

# Letters (any script), digits and the punctuation identity providers put in user and group
# names (e-mail addresses, Keycloak's "/team/sub-team" group paths, "org:team"); no spaces or
# control characters, which would make names ambiguous in tables and logs.
_NAME = re.compile(r"[\w.@+/:=-]{1,128}")
MAX_GROUPS = 100
MAX_DESCRIPTION = 250
MAX_EXPIRY_SECONDS = 10 * 365 * 24 * 3600
EVENTS_PAGE_DEFAULT, EVENTS_PAGE_MAX = 100, 1_000
USERS_PAGE_DEFAULT, USERS_PAGE_MAX = 100, 1_000
TOKENS_PAGE_DEFAULT, TOKENS_PAGE_MAX = 100, 1_000
# The fixed fields and framing of an event, a user, a token, and each of a user's groups, for
# pages sized by bytes (modelreg_server.pagination): tags, length prefixes and int64 varints.
_EVENT_OVERHEAD, _USER_OVERHEAD, _TOKEN_OVERHEAD, _GROUP_OVERHEAD = 64, 64, 96, 8


class TokenStore(Protocol):
    def create_token(
        self,
        user: str,
        *,
        token_id: str,
        secret_hash: str,
        description: str,
        expires_at: int | None,
        ctx: CallContext,
    ) -> Token: ...


class AccessStore(TokenStore, Protocol):
    def create_user(
        self, name: str, *, admin: bool, service: bool, groups: Sequence[str], ctx: CallContext
    ) -> User: ...
    def update_user(
        self,
        name: str,
        *,
        admin: bool | None,
        disabled: bool | None,
        groups: Sequence[str] | None,
        ctx: CallContext,
    ) -> User: ...
    def get_user(self, name: str) -> User | None: ...
    def list_users(self, limit: int, offset: int) -> list[User]: ...
    def list_tokens(
        self, user: str | None, *, include_revoked: bool, limit: int, offset: int
    ) -> list[Token]: ...
    def get_token(self, token_id: str) -> Token | None: ...
    def revoke_token(self, token_id: str, ctx: CallContext) -> Token: ...
    def list_events(self, limit: int, offset: int) -> list[AccessEvent]: ...


@dataclass(frozen=True, slots=True)
class CreatedToken:
    token: Token
    secret: str


def user_name(value: str, field: str = "name") -> str:
    if not _NAME.fullmatch(value):
        raise errors.InvalidName(
            "INVALID_USER_NAME", field, "must be 1-128 characters: letters, digits and . _ @ + / : = -"
        )
    return value


def group_names(values: Sequence[str], field: str = "groups") -> list[str]:
    if len(values) > MAX_GROUPS:
        raise errors.InvalidName("INVALID_GROUP_NAME", field, f"may hold at most {MAX_GROUPS} groups")
    for value in values:
        if not _NAME.fullmatch(value):
            raise errors.InvalidName(
                "INVALID_GROUP_NAME",
                field,
                "entries must be 1-128 characters: letters, digits and . _ @ + / : = -",
            )
    return sorted(set(values))


def subject(user: str, group: str, field: str = "principal") -> Subject:
    """The user or group a grant names: exactly one of the two (INVALID_PRINCIPAL otherwise)."""
    if bool(user) == bool(group):
        raise errors.InvalidName("INVALID_PRINCIPAL", field, "must name exactly one of user and group")
    if user:
        return Subject("user", user_name(user, f"{field}.user"))
    return Subject("group", group_names([group], f"{field}.group")[0])


class AccessService:
    def __init__(self, store: AccessStore | None) -> None:
        self._optional_store = store

    @property
    def _store(self) -> AccessStore:
        if self._optional_store is None:
            raise FailedPreconditionError(
                "ACCESS_CONTROL_OFF",
                "access control is off on this server (MODELREG_AUTH=off): there are no users or tokens",
            )
        return self._optional_store

    def who_am_i(self, ctx: CallContext) -> Principal:
        return ctx.principal or Principal(ctx.actor, admin=True, authenticated_by="none")

    # -- users ---------------------------------------------------------------------------------

    def create_user(
        self, ctx: CallContext, name: str, *, admin: bool, service: bool, groups: Sequence[str]
    ) -> User:
        require_admin(ctx.principal, "creating a user")
        return self._store.create_user(
            user_name(name), admin=admin, service=service, groups=group_names(groups), ctx=ctx
        )

    def list_users(self, ctx: CallContext, page_size: int, page_token: str) -> tuple[list[User], str]:
        require_admin(ctx.principal, "listing users")
        query = fingerprint("access-users")
        page = parse_page(
            page_size, page_token, default=USERS_PAGE_DEFAULT, maximum=USERS_PAGE_MAX, query=query
        )
        items, token = page.split(self._store.list_users(page.fetch_limit, page.offset), user_bytes)
        return list(items), token

    def update_user(
        self,
        ctx: CallContext,
        name: str,
        *,
        admin: bool | None,
        disabled: bool | None,
        groups: Sequence[str] | None,
    ) -> User:
        require_admin(ctx.principal, "changing a user")
        return self._store.update_user(
            user_name(name),
            admin=admin,
            disabled=disabled,
            groups=None if groups is None else group_names(groups),
            ctx=ctx,
        )

    # -- tokens --------------------------------------------------------------------------------

    def create_token(
        self, ctx: CallContext, user: str, description: str, expires_in_seconds: int, now_ms: int
    ) -> CreatedToken:
        owner = self._own_or_admin(ctx, user, "creating a token for another user")
        description = require_value(description, "description", "INVALID_DESCRIPTION", MAX_DESCRIPTION)
        if not 0 <= expires_in_seconds <= MAX_EXPIRY_SECONDS:
            raise errors.InvalidExpiry(f"must be between 0 (never) and {MAX_EXPIRY_SECONDS} (10 years)")
        expires_at = now_ms + expires_in_seconds * 1000 if expires_in_seconds else None
        limit = (
            ctx.principal.token_expires_at if ctx.principal is not None and not ctx.principal.admin else None
        )
        if limit is not None and (expires_at is None or expires_at > limit):
            # Else a short-lived token could mint a permanent one and escape its own expiry.
            raise errors.InvalidExpiry(
                f"must not outlive the token creating it: at most {max(0, (limit - now_ms) // 1000)} seconds"
            )
        new = tokens.new_token()
        token = self._store.create_token(
            owner,
            token_id=new.id,
            secret_hash=new.secret_hash,
            description=description,
            expires_at=expires_at,
            ctx=ctx,
        )
        return CreatedToken(token, new.secret)

    def list_tokens(
        self, ctx: CallContext, user: str, include_revoked: bool, page_size: int, page_token: str
    ) -> tuple[list[Token], str]:
        owner: str | None
        if ctx.principal is None or ctx.principal.admin:
            owner = user_name(user, "user") if user else None
        else:
            owner = self._own_or_admin(ctx, user, "listing another user's tokens")
        query = fingerprint("access-tokens", owner, include_revoked)
        page = parse_page(
            page_size, page_token, default=TOKENS_PAGE_DEFAULT, maximum=TOKENS_PAGE_MAX, query=query
        )
        found = self._store.list_tokens(
            owner, include_revoked=include_revoked, limit=page.fetch_limit, offset=page.offset
        )
        items, token = page.split(found, token_bytes)
        return list(items), token

    def revoke_token(self, ctx: CallContext, token_id: str) -> Token:
        if not re.fullmatch(r"[0-9a-f]{12}", token_id):
            raise errors.InvalidName("INVALID_TOKEN_ID", "id", "must be a token id: 12 hex digits")
        token = self._store.get_token(token_id)
        if token is None:
            raise errors.TokenNotFound(token_id[:12])
        self._own_or_admin(ctx, token.user, "revoking another user's token")
        return self._store.revoke_token(token.id, ctx)

    def _own_or_admin(self, ctx: CallContext, user: str, action: str) -> str:
        """``user`` (the caller when empty), if the caller may act for them."""
        principal = ctx.principal
        if not user:
            if principal is None:
                raise errors.InvalidName(
                    "INVALID_USER_NAME", "user", "is required when access control is off"
                )
            return principal.name
        user = user_name(user, "user")
        if principal is not None and user != principal.name:
            require_admin(principal, action)
        return user

    # -- audit ---------------------------------------------------------------------------------

    def list_events(self, ctx: CallContext, page_size: int, page_token: str) -> tuple[list[AccessEvent], str]:
        require_admin(ctx.principal, "reading the access audit")
        page = parse_page(
            page_size,
            page_token,
            default=EVENTS_PAGE_DEFAULT,
            maximum=EVENTS_PAGE_MAX,
            query=fingerprint("access-events"),
        )
        items, token = page.split(self._store.list_events(page.fetch_limit, page.offset), event_bytes)
        return list(items), token


# What one entity takes in its listing's response, at least (tests/unit/test_size_estimates.py).


def event_bytes(event: AccessEvent) -> int:
    text = (event.actor, event.action, event.target, event.detail, event.request_id)
    return _EVENT_OVERHEAD + sum(map(text_bytes, text))


def user_bytes(user: User) -> int:
    groups = text_bytes("".join(user.groups)) + _GROUP_OVERHEAD * len(user.groups)
    return _USER_OVERHEAD + text_bytes(user.name + user.created_by) + groups


def token_bytes(token: Token) -> int:
    return _TOKEN_OVERHEAD + text_bytes(token.id + token.user + token.description + token.created_by)
