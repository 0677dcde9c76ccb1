"""Permission levels, the authenticated principal, and the policy every domain check applies.

Levels are ordered (READ < EDIT < MANAGE) and a principal's level on a resource is the highest
of: the default level every authenticated user has, its own grant, and the grants of its groups.
Admins have every level everywhere. A service principal (the registry asking tracking) reads
everything and writes nothing in its own name; it acts for an end user by naming them.

Nothing here imports grpc or SQLAlchemy: the domains of both services use it.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from modelreg_server.errors import InvalidArgumentError, PermissionDeniedError
from modelreg_server.validation import within_limit

# Grants one experiment or registered model may hold (README, "Limits"): its permission listing
# answers them all at once, and 1,000 grants to the longest names (512 bytes each, granted by one
# as long) take ~1.1 MB of it.
MAX_GRANTS = 1000


class Level(enum.IntEnum):
    """The values of modelreg.access.v1.PermissionLevel."""

    NONE = 1
    READ = 2
    EDIT = 3
    MANAGE = 4


GRANTABLE = (Level.READ, Level.EDIT, Level.MANAGE)


def parse_level(value: int | str, field: str = "level") -> Level:
    """READ, EDIT or MANAGE (by enum value or name); INVALID_PERMISSION_LEVEL otherwise."""
    try:
        level = Level[value.upper()] if isinstance(value, str) else Level(value)
    except (KeyError, ValueError):
        level = None
    if level not in GRANTABLE:
        raise InvalidArgumentError(
            "INVALID_PERMISSION_LEVEL",
            f"{field} must be READ, EDIT or MANAGE, got {value!r}",
            {"field": field},
        )
    return level


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``authenticated_by``: token, oidc, bootstrap or service (an end
    user named by a service principal, ``via`` naming that service)."""

    name: str
    groups: frozenset[str] = frozenset()
    admin: bool = False
    service: bool = False
    authenticated_by: str = "token"
    via: str = ""
    # When the API token that authenticated the call expires (ms since the epoch; None: never or
    # not an API token): a token it creates may not outlive it.
    token_expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class Grantee:
    """Whose grants count for a caller: its user name and its groups. Stores match grants on these."""

    user: str
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Subject:
    """What a grant names: a user or a group (exactly one)."""

    kind: str  # "user" or "group"
    name: str


@dataclass(frozen=True, slots=True)
class Grant:
    subject: Subject
    level: Level
    granted_by: str
    granted_at: int


@dataclass(frozen=True, slots=True)
class GrantEvent:
    time: int
    actor: str
    action: str  # SET or DELETE (or PROTECTION for a model's protection)
    subject: Subject | None
    level: Level | None
    request_id: str
    detail: str = ""


def grants_limit(resource: str, count: int) -> None:
    """RESOURCE_EXHAUSTED (TOO_MANY_GRANTS) when ``resource`` would hold ``count`` grants, over
    MAX_GRANTS; the store counts them after its write, under the resource's row lock."""
    within_limit(resource, count, "grants", MAX_GRANTS, "TOO_MANY_GRANTS", "principal")


@dataclass(frozen=True)
class AccessPolicy:
    """How levels are decided when access control is on (MODELREG_DEFAULT_PERMISSION,
    MODELREG_CREATOR_PERMISSION)."""

    default_level: Level = Level.READ
    # What the creator of an experiment or model is granted; NONE grants nothing.
    creator_level: Level = Level.MANAGE

    def unconditional(self, principal: Principal | None, need: Level) -> bool:
        """True when ``need`` holds without looking at any grant: access control off (no
        principal), an admin, a service reading, or a default level that suffices."""
        return (
            principal is None
            or principal.admin
            or (principal.service and need <= Level.READ)
            or self.default_level >= need
        )

    def creator_grant(self, principal: Principal | None, kind: str) -> Level | None:
        """What the creator of an experiment or model (``kind``) is granted, None for nothing:
        with access control off there is nobody to grant, and the bootstrap admin is no user to
        hold a grant (it is meant to go once real users exist). A service principal creates
        nothing in its own name (PERMISSION_DENIED): it acts for users."""
        if principal is not None and principal.service:
            raise PermissionDeniedError(
                "PERMISSION_DENIED",
                f"{principal.name} is a service principal: it creates {kind}s only on behalf of a user",
                {"permission": "USER", "resource": f"{kind}s"},
            )
        if principal is None or principal.authenticated_by == "bootstrap" or self.creator_level == Level.NONE:
            return None
        return self.creator_level

    def readable_by(self, principal: Principal | None) -> Grantee | None:
        """The grantee a search must restrict to, or None when everything is readable."""
        if self.unconditional(principal, Level.READ):
            return None
        assert principal is not None
        return Grantee(principal.name, tuple(sorted(principal.groups)))


def grantee(principal: Principal) -> Grantee:
    return Grantee(principal.name, tuple(sorted(principal.groups)))


def denied(
    principal: Principal, need: Level, kind: str, resource: str, has: Level | None
) -> PermissionDeniedError:
    """PERMISSION_DENIED naming the level needed and the resource, e.g. ``experiments/3``."""
    held = f"; {principal.name} has {has.name}" if has is not None else ""
    return PermissionDeniedError(
        "PERMISSION_DENIED",
        f"{need.name} on {kind} '{resource}' is needed{held}",
        {"permission": need.name, "resource": f"{kind}s/{resource}"},
    )


def require_admin(principal: Principal | None, action: str, resource: str = "access") -> None:
    if principal is not None and not principal.admin:
        raise PermissionDeniedError(
            "PERMISSION_DENIED", f"{action} needs an admin", {"permission": "ADMIN", "resource": resource}
        )


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A small thread-safe cache whose entries live ``ttl`` seconds: the bound on how long a
    revoked token or a removed grant may still be honoured. At ``max_entries`` it is cleared
    rather than tracked per entry: a flood of distinct keys costs lookups, never memory."""

    def __init__(
        self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < self._clock():
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = (self._clock() + self._ttl, value)

    def discard(self, where: Callable[[K, V], bool]) -> None:
        """Drops the entries ``where(key, value)`` holds for: a change made in this process
        takes effect here at once, not after the ttl."""
        with self._lock:
            for key in [k for k, (_, v) in self._entries.items() if where(k, v)]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
