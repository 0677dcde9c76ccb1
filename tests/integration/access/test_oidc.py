"""OIDC access tokens from an identity provider on loopback, verified against its JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from modelreg import exceptions
from modelreg.access_client import AccessClient
from modelreg_server.access.oidc import OidcSettings
from modelreg_server.settings import AuthSettings
from tests.integration.access.conftest import BOOTSTRAP, SecuredServices
from tests.oidc_provider import AUDIENCE, ISSUER, IdentityProvider, identity_provider
from tests.servers import running_services


@pytest.fixture(scope="module")
def provider() -> Iterator[IdentityProvider]:
    with identity_provider() as running:
        yield running


@pytest.fixture(scope="module")
def oidc_services(
    tmp_path_factory: pytest.TempPathFactory, provider: IdentityProvider
) -> Iterator[SecuredServices]:
    root = tmp_path_factory.mktemp("oidc")
    auth = AuthSettings(
        enabled=True,
        database_url=f"sqlite:///{root / 'auth.db'}",
        bootstrap_admin_token=BOOTSTRAP,
        oidc=OidcSettings(issuer=ISSUER, jwks_url=provider.jwks_url, audience=AUDIENCE),
        admin_group="mlops-admins",
    )
    with running_services(root, auth) as services:
        yield SecuredServices(services)


def whoami(services: SecuredServices, token: str) -> tuple[str, tuple[str, ...], bool, str]:
    with AccessClient(services.services.tracking, token=token) as access:
        me = access.whoami()
    return me.name, me.groups, me.admin, me.authenticated_by


def test_a_valid_access_token_names_the_user_and_groups(
    oidc_services: SecuredServices, provider: IdentityProvider
) -> None:
    token = provider.token("olivia@corp", groups=("ml-team",))
    assert whoami(oidc_services, token) == ("olivia@corp", ("ml-team",), False, "oidc")
    with oidc_services.client(token) as olivia:
        olivia.create_registered_model("oidc-model")
        assert [e.actor for e in olivia.registry.list_model_events("oidc-model")] == ["olivia@corp"]


def test_the_admin_group_makes_an_admin(oidc_services: SecuredServices, provider: IdentityProvider) -> None:
    token = provider.token("root@corp", groups=("mlops-admins",))
    assert whoami(oidc_services, token)[2] is True


def test_a_user_row_of_the_same_name_adds_groups_and_can_disable(
    oidc_services: SecuredServices, provider: IdentityProvider
) -> None:
    with oidc_services.access() as admin:
        admin.create_user("gus@corp", groups=("reviewers",))
    token = provider.token("gus@corp", groups=("ml-team",))
    assert whoami(oidc_services, token)[1] == ("ml-team", "reviewers")
    with oidc_services.access() as admin:
        admin.update_user("gus@corp", disabled=True)
    time.sleep(1.0)
    with pytest.raises(exceptions.Unauthenticated) as error:
        whoami(oidc_services, provider.token("gus@corp"))
    assert error.value.reason == "USER_DISABLED"


def _refused(services: SecuredServices, token: str) -> str:
    with pytest.raises(exceptions.Unauthenticated) as error:
        whoami(services, token)
    return error.value.reason


def test_expired_tokens_are_refused(oidc_services: SecuredServices, provider: IdentityProvider) -> None:
    assert _refused(oidc_services, provider.token("late@corp", expires_in=-120)) == "TOKEN_EXPIRED"


@pytest.mark.parametrize(
    "claims",
    [{"aud": "someone-else"}, {"iss": "https://evil.example"}, {"sub": ""}, {"groups": {"not": "a list"}}],
    ids=["audience", "issuer", "empty-subject", "groups-not-a-list"],
)
def test_tokens_for_another_audience_issuer_or_without_a_user_are_refused(
    oidc_services: SecuredServices, provider: IdentityProvider, claims: dict[str, object]
) -> None:
    assert _refused(oidc_services, provider.token("x@corp", claims=claims)) == "INVALID_TOKEN"


def test_a_token_signed_by_another_key_is_refused(
    oidc_services: SecuredServices, provider: IdentityProvider
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert _refused(oidc_services, provider.token("x@corp", key=stranger)) == "INVALID_TOKEN"
    assert (
        _refused(oidc_services, provider.token("x@corp", key=stranger, key_id="unknown")) == "INVALID_TOKEN"
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed_by_hand(header: dict[str, object], payload: dict[str, object], secret: bytes | None) -> str:
    """A JWT built without PyJWT's guards: unsigned, or HMAC-signed with ``secret``."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return f"{signing_input}.{_b64(signature)}"


def test_alg_none_and_hmac_with_the_public_key_are_refused(
    oidc_services: SecuredServices, provider: IdentityProvider
) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x@corp", "exp": int(time.time()) + 300}
    unsigned = _signed_by_hand({"alg": "none", "kid": provider.key_id}, claims, None)
    assert _refused(oidc_services, unsigned) == "INVALID_TOKEN"
    public_pem = provider.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    for secret in (public_pem, json.dumps(provider.jwks()["keys"][0]).encode()):
        forged = _signed_by_hand({"alg": "HS256", "kid": provider.key_id}, claims, secret)
        assert _refused(oidc_services, forged) == "INVALID_TOKEN"


def test_random_key_ids_do_not_refetch_the_key_set_each_call(
    oidc_services: SecuredServices, provider: IdentityProvider
) -> None:
    whoami(oidc_services, provider.token("warm@corp"))  # the key set is loaded
    before = provider.requests
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for index in range(20):
        _refused(oidc_services, provider.token("x@corp", key=stranger, key_id=f"random-{index}"))
    # Each service may refresh once for the first unknown key id, then waits 30 s.
    assert provider.requests - before <= 2


def test_an_identity_provider_login_named_like_the_service_user_is_no_service(
    oidc_services: SecuredServices, provider: IdentityProvider
) -> None:
    """The registry's service user exists (it registers through tracking); a login of that name
    from the provider must not inherit its power to act for others."""
    token = provider.token("modelreg-registry")
    assert whoami(oidc_services, token)[3] == "oidc"
    with AccessClient(oidc_services.services.tracking, token=token) as access:
        assert access.whoami().service is False
    with grpc.insecure_channel(oidc_services.services.tracking) as channel:
        call = channel.unary_unary("/modelreg.access.v1.AccessService/CreateUser")
        with pytest.raises(grpc.RpcError) as error:
            call(
                b"",
                metadata=(
                    ("authorization", f"Bearer {token}"),
                    ("x-modelreg-on-behalf-of", '{"name":"mallory","groups":[],"admin":true}'),
                ),
                timeout=5,
            )
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_an_algorithm_that_does_not_fit_the_key_is_refused_not_internal(
    oidc_services: SecuredServices, provider: IdentityProvider
) -> None:
    valid = provider.token("x@corp")
    header = _b64(json.dumps({"alg": "ES256", "kid": provider.key_id}).encode())
    mismatched = ".".join([header, *valid.split(".")[1:]])
    assert _refused(oidc_services, mismatched) == "INVALID_TOKEN"
