"""What the access database holds, as frozen values (no SQLAlchemy, no protobuf)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class User:
    name: str
    admin: bool
    service: bool
    disabled: bool
    groups: tuple[str, ...]
    created_at: int
    created_by: str


@dataclass(frozen=True, slots=True)
class Token:
    id: str
    user: str
    description: str
    created_at: int
    created_by: str
    expires_at: int | None
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class TokenOwner:
    """A token and its user, as authentication needs them."""

    secret_hash: str
    expires_at: int | None
    revoked_at: int | None
    user: User


@dataclass(frozen=True, slots=True)
class AccessEvent:
    time: int
    actor: str
    action: str
    target: str
    detail: str
    request_id: str
