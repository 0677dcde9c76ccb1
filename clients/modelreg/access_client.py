"""``AccessClient``: users, groups and API tokens of services with access control on.

Both services serve the access API over one shared access database, so either target works;
``target`` defaults to the registry (``MODELREG_REGISTRY_URI``). Creating and changing users
needs an admin; any user manages their own tokens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from types import TracebackType

from modelreg import entities as e
from modelreg._grpc import Pager, Rpc
from modelreg.access.v1 import access_pb2 as pb
from modelreg.access.v1 import access_pb2_grpc as pb_grpc
from modelreg.config import ClientSettings, TlsConfig


def _user(u: pb.User) -> e.User:
    return e.User(u.name, u.admin, u.service, u.disabled, tuple(u.groups), u.created_at, u.created_by)


def _token(t: pb.Token) -> e.Token:
    return e.Token(
        t.id, t.user, t.description, t.created_at, t.created_by, t.expires_at or None, t.revoked_at or None
    )


class AccessClient:
    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float | None = None,
        token: str | None = None,
        tls: TlsConfig | None = None,
    ) -> None:
        settings = ClientSettings.from_env()
        self.target = target or settings.registry_uri
        self._rpc = Rpc.for_client(
            self.target,
            settings,
            timeout=timeout,
            token=token,
            tls=tls,
        )
        # The access service keeps no idempotency keys: only its reads are retried.
        self._rpc.retry = dataclasses.replace(self._rpc.retry, writes=False)
        self._stub = pb_grpc.AccessServiceStub(self._rpc.channel)

    def close(self) -> None:
        self._rpc.close()

    def __enter__(self) -> AccessClient:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def whoami(self) -> e.Identity:
        r = self._rpc.unary(self._stub.WhoAmI, pb.WhoAmIRequest())
        return e.Identity(r.name, tuple(r.groups), r.admin, r.service, r.authenticated_by)

    def create_user(
        self, name: str, *, admin: bool = False, service: bool = False, groups: Sequence[str] = ()
    ) -> e.User:
        request = pb.CreateUserRequest(name=name, admin=admin, service=service, groups=list(groups))
        return _user(self._rpc.unary(self._stub.CreateUser, request).user)

    def list_users(self, *, page_size: int = 0) -> list[e.User]:
        """Every user, by name: the pages of ``page_size`` users (0: the server's default) that
        the server answers, followed to the last."""

        def fetch(token: str, size: int) -> tuple[list[e.User], str]:
            r = self._rpc.unary(self._stub.ListUsers, pb.ListUsersRequest(page_size=size, page_token=token))
            return [_user(u) for u in r.users], r.next_page_token

        return list(Pager(fetch, page_size=page_size))

    def update_user(
        self,
        name: str,
        *,
        admin: bool | None = None,
        disabled: bool | None = None,
        groups: Sequence[str] | None = None,
    ) -> e.User:
        request = pb.UpdateUserRequest(name=name, admin=admin, disabled=disabled)
        if groups is not None:
            request.groups.groups.extend(groups)
        return _user(self._rpc.unary(self._stub.UpdateUser, request).user)

    def create_token(
        self, user: str = "", *, description: str = "", expires_in_seconds: int = 0
    ) -> e.CreatedToken:
        """A new token for ``user`` (default: the caller); the secret is returned only here."""
        request = pb.CreateTokenRequest(
            user=user, description=description, expires_in_seconds=expires_in_seconds
        )
        response = self._rpc.unary(self._stub.CreateToken, request)
        return e.CreatedToken(_token(response.token), response.secret)

    def list_tokens(
        self, user: str = "", *, include_revoked: bool = False, page_size: int = 0
    ) -> list[e.Token]:
        """Every token of ``user`` (default: the caller's own, or everyone's for an admin), oldest
        first: the pages of ``page_size`` tokens (0: the server's default), followed to the last."""

        def fetch(token: str, size: int) -> tuple[list[e.Token], str]:
            request = pb.ListTokensRequest(
                user=user, include_revoked=include_revoked, page_size=size, page_token=token
            )
            r = self._rpc.unary(self._stub.ListTokens, request)
            return [_token(t) for t in r.tokens], r.next_page_token

        return list(Pager(fetch, page_size=page_size))

    def revoke_token(self, token_id: str) -> e.Token:
        return _token(self._rpc.unary(self._stub.RevokeToken, pb.RevokeTokenRequest(id=token_id)).token)

    def list_access_events(self, max_results: int | None = None) -> Pager[e.AccessEvent]:
        """The audit of user and token changes, newest first."""

        def fetch(token: str, size: int) -> tuple[list[e.AccessEvent], str]:
            r = self._rpc.unary(
                self._stub.ListAccessEvents, pb.ListAccessEventsRequest(page_size=size, page_token=token)
            )
            events = [
                e.AccessEvent(v.time, v.actor, v.action, v.target, v.detail, v.request_id) for v in r.events
            ]
            return events, r.next_page_token

        return Pager(fetch, max_results=max_results)
