"""The authenticator on its own: credential shapes, the cache bound, and fuzzed headers."""

from __future__ import annotations

import contextlib
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg_server.access import tokens
from modelreg_server.access.authenticator import Authenticator
from modelreg_server.access.entities import TokenOwner, User
from modelreg_server.access.oidc import OidcSettings, OidcVerifier
from modelreg_server.errors import PermissionDeniedError, ServiceError, UnauthenticatedError, UnavailableError

ALICE = User(
    "alice", admin=False, service=False, disabled=False, groups=("ml",), created_at=0, created_by="t"
)
REGISTRY = User(
    "modelreg-registry", admin=False, service=True, disabled=False, groups=(), created_at=0, created_by="t"
)


class FakeIdentities:
    def __init__(self) -> None:
        self.owners: dict[str, TokenOwner] = {}
        self.lookups = 0

    def add(self, user: User, expires_at: int | None = None) -> str:
        new = tokens.new_token()
        self.owners[new.id] = TokenOwner(new.secret_hash, expires_at, None, user)
        return new.secret

    def token_owner(self, token_id: str) -> TokenOwner | None:
        self.lookups += 1
        return self.owners.get(token_id)

    def get_user(self, name: str) -> User | None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_looked_up_once_per_cache_period_and_then_again() -> None:
    identities, clock = FakeIdentities(), Clock()
    secret = identities.add(ALICE)
    authenticator = Authenticator(identities, clock=clock)
    for _ in range(5):
        assert authenticator.authenticate(f"Bearer {secret}").name == "alice"
    assert identities.lookups == 1


def test_a_token_that_expires_while_cached_is_refused_at_once() -> None:
    identities, clock = FakeIdentities(), Clock()
    secret = identities.add(ALICE, expires_at=int((clock.now + 0.1) * 1000))
    authenticator = Authenticator(identities, clock=clock)
    authenticator.authenticate(f"Bearer {secret}")
    clock.now += 0.2
    with pytest.raises(UnauthenticatedError) as error:
        authenticator.authenticate(f"Bearer {secret}")
    assert error.value.reason == "TOKEN_EXPIRED"


def test_a_tampered_secret_of_a_real_token_id_is_refused() -> None:
    identities = FakeIdentities()
    secret = identities.add(ALICE)
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    with pytest.raises(UnauthenticatedError) as error:
        Authenticator(identities).authenticate(f"Bearer {tampered}")
    assert error.value.reason == "INVALID_TOKEN"


def test_a_service_acts_for_the_user_it_names_and_nobody_else_may() -> None:
    identities = FakeIdentities()
    service, user = identities.add(REGISTRY), identities.add(ALICE)
    authenticator = Authenticator(identities)
    end_user = '{"name":"bob","groups":["ml"],"admin":false}'
    acting = authenticator.authenticate(f"Bearer {service}", end_user)
    assert (acting.name, acting.groups, acting.admin, acting.via) == (
        "bob",
        frozenset({"ml"}),
        False,
        "modelreg-registry",
    )
    with pytest.raises(PermissionDeniedError):
        authenticator.authenticate(f"Bearer {user}", end_user)
    with pytest.raises(UnauthenticatedError):
        authenticator.authenticate(f"Bearer {service}", '{"name": 3}')
    with pytest.raises(UnauthenticatedError):  # was RecursionError → INTERNAL
        authenticator.authenticate(f"Bearer {service}", "[" * 3000 + "]" * 3000)
    with pytest.raises(UnauthenticatedError):
        authenticator.authenticate(
            f"Bearer {service}",
            '{"name":"x","admin":false,"groups":' + str(["g"] * 1001).replace("'", '"') + "}",
        )


def test_a_service_never_acts_for_a_user_on_a_call_that_writes() -> None:
    identities = FakeIdentities()
    service = identities.add(REGISTRY)
    admin_end_user = '{"name":"mallory","groups":[],"admin":true}'
    with pytest.raises(PermissionDeniedError) as error:
        Authenticator(identities).authenticate(f"Bearer {service}", admin_end_user, reads_only=False)
    assert error.value.reason == "ON_BEHALF_NOT_ALLOWED"


HEADER_TEXT = st.text(alphabet=string.printable, max_size=300)


@settings(max_examples=300, deadline=None)
@given(
    header=st.one_of(
        HEADER_TEXT,
        HEADER_TEXT.map(lambda text: f"Bearer {text}"),
        st.from_regex(r"Bearer mrt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", fullmatch=True),
        st.tuples(HEADER_TEXT, HEADER_TEXT, HEADER_TEXT).map(lambda p: "Bearer " + ".".join(p)),
    ),
    on_behalf=st.one_of(st.none(), HEADER_TEXT),
)
def test_fuzzed_credentials_fail_only_with_an_authentication_error(
    header: str, on_behalf: str | None
) -> None:
    identities = FakeIdentities()
    identities.add(REGISTRY)
    oidc = OidcVerifier(
        OidcSettings("https://idp", "http://127.0.0.1:9/jwks", "modelreg"), fetch=lambda _: {"keys": []}
    )
    with contextlib.suppress(UnauthenticatedError, PermissionDeniedError):
        Authenticator(identities, oidc=oidc).authenticate(header, on_behalf)


def test_an_unreachable_identity_provider_is_unavailable_not_a_hang_or_internal() -> None:
    def unreachable(url: str) -> dict[str, object]:
        raise OSError("connection refused")

    verifier = OidcVerifier(
        OidcSettings("https://idp", "http://127.0.0.1:9/jwks", "modelreg"), fetch=unreachable
    )
    token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJ4In0.c2ln"
    with pytest.raises(UnavailableError) as error:
        verifier.verify(token)
    assert error.value.reason == "IDENTITY_PROVIDER_UNAVAILABLE"
    assert isinstance(error.value, ServiceError)


def test_a_service_identity_is_never_a_user_who_is_not_a_service(tmp_path: object) -> None:
    import pathlib

    from modelreg_server.access.errors import NotAServiceUser
    from modelreg_server.access.setup import open_access
    from modelreg_server.context import CallContext
    from modelreg_server.settings import AuthSettings

    root = pathlib.Path(str(tmp_path))
    store = open_access(
        AuthSettings(enabled=True, database_url=f"sqlite:///{root / 'auth.db'}"),
        pool_size=2,
        auto_migrate=True,
    ).store
    assert store is not None
    ctx = CallContext("admin", "req")
    store.ensure_service_user("modelreg-registry", ctx)  # created
    store.ensure_service_user("modelreg-registry", ctx)  # kept
    store.create_user("someone", admin=True, service=False, groups=(), ctx=ctx)
    with pytest.raises(NotAServiceUser):
        store.ensure_service_user("someone", ctx)
