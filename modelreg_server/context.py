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

ANONYMOUS_ACTOR = "anonymous"


@dataclass(frozen=True, slots=True)
class CallContext:
    """The caller of one RPC: ``actor`` is who does it (recorded in history), ``request_id`` the id
    both services log and the registry stores with each event."""

    actor: str
    request_id: str


_current_call: ContextVar[CallContext] = ContextVar("modelreg_current_call")


def begin_call(context: CallContext) -> None:
    """The interceptor: makes ``context`` the context of the call being served on this thread."""
    _current_call.set(context)


def call_context() -> CallContext:
    """The api layer: the context of the call being served (set by the interceptor)."""
    return _current_call.get()
