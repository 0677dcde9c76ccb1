"""AccessService servicer (served by both services): protos in, AccessService calls, protos out."""

from __future__ import annotations

import grpc

from modelreg.access.v1 import access_pb2 as pb
from modelreg.access.v1 import access_pb2_grpc
from modelreg.wire import now_ms
from modelreg_server.access.entities import AccessEvent, Token, User
from modelreg_server.access.policy import Grant, GrantEvent, Subject
from modelreg_server.access.service import AccessService
from modelreg_server.context import call_context

SERVICE_NAME = "modelreg.access.v1.AccessService"


def user_pb(user: User) -> pb.User:
    return pb.User(
        name=user.name,
        admin=user.admin,
        service=user.service,
        disabled=user.disabled,
        groups=list(user.groups),
        created_at=user.created_at,
        created_by=user.created_by,
    )


def token_pb(token: Token) -> pb.Token:
    return pb.Token(
        id=token.id,
        user=token.user,
        description=token.description,
        created_at=token.created_at,
        created_by=token.created_by,
        expires_at=token.expires_at or 0,
        revoked_at=token.revoked_at or 0,
    )


def event_pb(event: AccessEvent) -> pb.AccessEvent:
    return pb.AccessEvent(
        time=event.time,
        actor=event.actor,
        action=event.action,
        target=event.target,
        detail=event.detail,
        request_id=event.request_id,
    )


def _principal_pb(subject: Subject | None) -> pb.Principal:
    return pb.Principal() if subject is None else pb.Principal(**{subject.kind: subject.name})


def permission_pb(grant: Grant) -> pb.Permission:
    """A grant as both services' permission RPCs return it."""
    return pb.Permission(
        principal=_principal_pb(grant.subject),
        level=pb.PermissionLevel.ValueType(grant.level),  # Level's values are the enum's numbers
        granted_by=grant.granted_by,
        granted_at=grant.granted_at,
    )


def permission_event_pb(event: GrantEvent) -> pb.PermissionEvent:
    return pb.PermissionEvent(
        time=event.time,
        actor=event.actor,
        action=event.action,
        principal=_principal_pb(event.subject),
        level=pb.PermissionLevel.ValueType(event.level or 0),
        request_id=event.request_id,
    )


class AccessServicer(access_pb2_grpc.AccessServiceServicer):
    def __init__(self, service: AccessService) -> None:
        self._service = service

    def WhoAmI(self, request: pb.WhoAmIRequest, context: grpc.ServicerContext) -> pb.WhoAmIResponse:
        principal = self._service.who_am_i(call_context())
        return pb.WhoAmIResponse(
            name=principal.name,
            groups=sorted(principal.groups),
            admin=principal.admin,
            service=principal.service,
            authenticated_by=principal.authenticated_by,
        )

    def CreateUser(
        self, request: pb.CreateUserRequest, context: grpc.ServicerContext
    ) -> pb.CreateUserResponse:
        user = self._service.create_user(
            call_context(),
            request.name,
            admin=request.admin,
            service=request.service,
            groups=list(request.groups),
        )
        return pb.CreateUserResponse(user=user_pb(user))

    def ListUsers(self, request: pb.ListUsersRequest, context: grpc.ServicerContext) -> pb.ListUsersResponse:
        users, token = self._service.list_users(call_context(), request.page_size, request.page_token)
        return pb.ListUsersResponse(users=[user_pb(u) for u in users], next_page_token=token)

    def UpdateUser(
        self, request: pb.UpdateUserRequest, context: grpc.ServicerContext
    ) -> pb.UpdateUserResponse:
        user = self._service.update_user(
            call_context(),
            request.name,
            admin=request.admin if request.HasField("admin") else None,
            disabled=request.disabled if request.HasField("disabled") else None,
            groups=list(request.groups.groups) if request.HasField("groups") else None,
        )
        return pb.UpdateUserResponse(user=user_pb(user))

    def CreateToken(
        self, request: pb.CreateTokenRequest, context: grpc.ServicerContext
    ) -> pb.CreateTokenResponse:
        created = self._service.create_token(
            call_context(), request.user, request.description, request.expires_in_seconds, now_ms()
        )
        return pb.CreateTokenResponse(token=token_pb(created.token), secret=created.secret)

    def ListTokens(
        self, request: pb.ListTokensRequest, context: grpc.ServicerContext
    ) -> pb.ListTokensResponse:
        found, token = self._service.list_tokens(
            call_context(),
            request.user,
            request.include_revoked,
            request.page_size,
            request.page_token,
        )
        return pb.ListTokensResponse(tokens=[token_pb(t) for t in found], next_page_token=token)

    def RevokeToken(
        self, request: pb.RevokeTokenRequest, context: grpc.ServicerContext
    ) -> pb.RevokeTokenResponse:
        return pb.RevokeTokenResponse(token=token_pb(self._service.revoke_token(call_context(), request.id)))

    def ListAccessEvents(
        self, request: pb.ListAccessEventsRequest, context: grpc.ServicerContext
    ) -> pb.ListAccessEventsResponse:
        events, token = self._service.list_events(call_context(), request.page_size, request.page_token)
        return pb.ListAccessEventsResponse(events=[event_pb(e) for e in events], next_page_token=token)
