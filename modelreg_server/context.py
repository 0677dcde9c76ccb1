"""Who is calling and which call this is, as one explicit value.

The interceptor builds a :class:`CallContext` once per call from the call's metadata. The api
layer (the servicers) reads it with :func:`call_context` and passes it as an argument to the
domain service, which passes it on to the store wherever a change is recorded (the actor and
request id of a history event). Nothing below the api layer reads :data:`_current_call`; the
layering test enforces that.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass

from modelreg import wire
from modelreg_server.access.policy import Principal
from modelreg_server.errors import InvalidArgumentError
from modelreg_server.idempotency import MAX_KEY_LENGTH, WriteKey
from modelreg_server.validation import CONTROL_CHARACTERS

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
    the actor is the name the client claims). ``write`` is the call's idempotency key (with the
    method and a digest of the request) when the client sent ``x-modelreg-idempotency-key``: a
    write passes it to its store call, which applies the key once (modelreg_server.idempotency)."""

    actor: str
    request_id: str
    principal: Principal | None = None
    write: WriteKey | None = None


# A request id (and an idempotency key) is a token: visible ASCII, no spaces (uuids, trace ids,
# ULIDs all fit).
_REQUEST_ID = re.compile(r"[\x21-\x7e]+")


def require_bounded(call: CallContext) -> None:
    """INVALID_ARGUMENT (reason INVALID_METADATA, the header named) for an over-long actor,
    request id or idempotency key, an actor with control characters, or a request id or key other
    than visible ASCII: the interceptor checks every call before its handler runs. They are
    recorded (history, call log, applied_writes), so none may carry anything that changes how a
    record reads."""
    tokens = [(wire.REQUEST_ID_HEADER, call.request_id, MAX_REQUEST_ID_LENGTH)]
    if call.write is not None:
        tokens.append((wire.IDEMPOTENCY_HEADER, call.write.key, MAX_KEY_LENGTH))
    for header, value, limit in ((wire.ACTOR_HEADER, call.actor, MAX_ACTOR_LENGTH), *tokens):
        if len(value) > limit:
            raise InvalidArgumentError(
                "INVALID_METADATA",
                f"{header} is {len(value)} characters, the limit is {limit}",
                {"field": header},
            )
    if CONTROL_CHARACTERS.search(call.actor):
        raise InvalidArgumentError(
            "INVALID_METADATA", f"{wire.ACTOR_HEADER} holds control characters", {"field": wire.ACTOR_HEADER}
        )
    for header, value, _ in tokens:
        if not _REQUEST_ID.fullmatch(value):
            raise InvalidArgumentError(
                "INVALID_METADATA", f"{header} must be visible ASCII without spaces", {"field": header}
            )


_current_call: ContextVar[CallContext] = ContextVar("modelreg_current_call")


def begin_call(context: CallContext) -> None:
    """The interceptor: makes ``context`` the context of the call being served on this thread."""
    _current_call.set(context)


def call_context() -> CallContext:
    """The api layer: the context of the call being served (set by the interceptor)."""
    return _current_call.get()
