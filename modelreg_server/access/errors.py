"""Typed errors of access control (reasons of the ErrorInfo under each service's domain)."""

from __future__ import annotations

from modelreg_server.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnauthenticatedError,
)


class UserNotFound(NotFoundError):
    def __init__(self, name: str) -> None:
        super().__init__("USER_NOT_FOUND", f"user '{name}' does not exist", {"user": name})


class UserAlreadyExists(AlreadyExistsError):
    def __init__(self, name: str) -> None:
        super().__init__("USER_ALREADY_EXISTS", f"user '{name}' already exists", {"user": name})


class NotAServiceUser(FailedPreconditionError):
    def __init__(self, name: str) -> None:
        super().__init__(
            "NOT_A_SERVICE_USER",
            f"user '{name}' exists but is not a (non-admin) service user: the service will not use it as its identity",
            {"user": name},
        )


class TokenNotFound(NotFoundError):
    def __init__(self, token_id: str) -> None:
        super().__init__("TOKEN_NOT_FOUND", f"token '{token_id}' does not exist", {"token_id": token_id})


class InvalidName(InvalidArgumentError):
    def __init__(self, reason: str, field: str, message: str) -> None:
        super().__init__(reason, f"{field} {message}", {"field": field})


class InvalidExpiry(InvalidArgumentError):
    def __init__(self, message: str) -> None:
        super().__init__("INVALID_EXPIRY", f"expires_in_seconds {message}", {"field": "expires_in_seconds"})


def unauthenticated(reason: str, message: str) -> UnauthenticatedError:
    return UnauthenticatedError(reason, message)
