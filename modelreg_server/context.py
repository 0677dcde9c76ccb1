"""Who is calling and which call this is, as one explicit value.

The interceptor builds a :class:`CallContext` once per call from the call's metadata. The api
layer (the servicers) reads it with :func:`call_context` and passes it as an argument to the
domain service, which passes it on to the store wherever a change is recorded (the actor and
request id of a history event). Nothing below the api layer reads :data:`_current_call`; the
layering test enforces that.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from modelreg import wire
from modelreg_server.access.policy import Principal
from modelreg_server.errors import InvalidArgumentError

ANONYMOUS_ACTOR = "anonymous"
# The columns that record them (model_events.actor, model_versions.user_id, model_events.request_id):
# a longer value is refused up front rather than failing the write on PostgreSQL and MySQL.
MAX_ACTOR_LENGTH = 250
MAX_REQUEST_ID_LENGTH = 128


@dataclass(frozen=True, slots=True)
class CallContext:
    """The caller of one RPC: ``actor`` is who does it (recorded in history), ``request_id`` the id
    both services log and the registry stores with each event, ``principal`` the authenticated
    caller whose permissions apply (None when access control is off: every call is allowed and
    the actor is the name the client claims)."""

    actor: str
    request_id: str
    principal: Principal | None = None


def require_bounded(call: CallContext) -> None:
    """INVALID_ARGUMENT (reason INVALID_METADATA, the header named) for an over-long actor or
    request id: the interceptor checks every call before its handler runs."""
    for header, value, limit in (
        (wire.ACTOR_HEADER, call.actor, MAX_ACTOR_LENGTH),
        (wire.REQUEST_ID_HEADER, call.request_id, MAX_REQUEST_ID_LENGTH),
    ):
        if len(value) > limit:
            raise InvalidArgumentError(
                "INVALID_METADATA",
                f"{header} is {len(value)} characters, the limit is {limit}",
                {"field": header},
            )


_current_call: ContextVar[CallContext] = ContextVar("modelreg_current_call")


def begin_call(context: CallContext) -> None:
    """The interceptor: makes ``context`` the context of the call being served on this thread."""
    _current_call.set(context)


def call_context() -> CallContext:
    """The api layer: the context of the call being served (set by the interceptor)."""
    return _current_call.get()
