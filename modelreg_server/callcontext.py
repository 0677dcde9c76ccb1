"""Per-call context shared between the server interceptor and outgoing client calls.

The interceptor stores the caller's request id and actor here; the ``modelreg`` client reads the
request id back when a service calls another one, so one registration can be followed from the
registry into the tracking service's log.
"""

from __future__ import annotations

from contextvars import ContextVar

ANONYMOUS_ACTOR = "anonymous"

request_id: ContextVar[str | None] = ContextVar("modelreg_request_id", default=None)
actor: ContextVar[str] = ContextVar("modelreg_actor", default=ANONYMOUS_ACTOR)
