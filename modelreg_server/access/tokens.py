"""modelreg API tokens: ``mrt_<id>_<secret>``.

The id (12 hex digits) is public: it names the token in listings, revocations and the audit. The
secret (32 random bytes, base64url) is shown once at creation; the database keeps only its
SHA-256. A slow password hash would buy nothing here: the secret has 256 bits of entropy, so a
stolen hash cannot be brute-forced, and verification must cost microseconds on every call.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "mrt_"
_TOKEN = re.compile(r"mrt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class NewToken:
    id: str
    secret: str  # the whole bearer string, mrt_<id>_<secret>
    secret_hash: str


def new_token() -> NewToken:
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewToken(token_id, f"{PREFIX}{token_id}_{secret}", hash_secret(secret))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split(bearer: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token string, else None."""
    match = _TOKEN.fullmatch(bearer)
    return (match.group(1), match.group(2)) if match else None


def matches(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_hash)
