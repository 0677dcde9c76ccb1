"""Credentials and TLS through the MLflow endpoint, with access control on at the services.

MLflow's client sends ``MLFLOW_TRACKING_TOKEN`` as ``Authorization: Bearer`` and
``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` as Basic credentials; the endpoint relays the token (the
Basic password) to the services, which decide. What the services record names the token's user,
never the endpoint, and never a name the HTTP caller claims in a header of its own.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from mlflow_gateway import registry, tracking
from mlflow_gateway.server import running_in_thread
from mlflow_gateway.settings import GatewaySettings
from modelreg import RegistryClient
from modelreg_server.access.policy import Level
from modelreg_server.tls import write_local_certificates
from tests.integration.access.conftest import SecuredServices, auth_settings
from tests.servers import Services, running_services

API = "/api/2.0/mlflow"


def served(method: str, path: str) -> pytest.MarkDecorator:
    """Skips a test whose endpoint this build of the gateway does not route (yet)."""
    endpoints = (*tracking.ENDPOINTS, *registry.ENDPOINTS)
    routed = any(e.method == method and e.path == path for e in endpoints)
    return pytest.mark.skipif(not routed, reason=f"{method} {path} is not routed by the gateway")


@contextmanager
def endpoint_in_front_of(
    services: Services, tls_cert_file: str | None = None, tls_key_file: str | None = None
) -> Iterator[str]:
    gateway = GatewaySettings(
        port=0,
        tracking_uri=services.tracking,
        registry_uri=services.registry,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_key_file,
    )
    with running_in_thread(gateway) as url:
        yield url


class Secured:
    """Secured services (access control on), the endpoint in front of them, users of them."""

    def __init__(self, services: SecuredServices, url: str) -> None:
        self.services = services
        self.url = url

    def http(
        self,
        token: str | None = None,
        *,
        basic: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Client:
        headers = dict(headers or {})
        if token:
            headers["authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url + API, headers=headers, auth=basic, timeout=30)

    def token(self, user: str) -> str:
        return self.services.user_token(user)

    def creators(self, experiment_id: str) -> list[tuple[str, str, str]]:
        """(user, level, granted by) of each grant on the experiment, read as an admin."""
        with self.services.client(self.services.user_token("auditor", admin=True)) as admin:
            grants, _ = admin.list_experiment_permissions(experiment_id)
        return [(g.user, g.level, g.granted_by) for g in grants]


@contextmanager
def secured_endpoint(root: Path, default_level: Level) -> Iterator[Secured]:
    with (
        running_services(root, auth_settings(root, default_level)) as services,
        endpoint_in_front_of(services) as url,
    ):
        yield Secured(SecuredServices(services), url)


@pytest.fixture(scope="module")
def readers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """Access control on; every authenticated user reads everything, writes only their own."""
    with secured_endpoint(tmp_path_factory.mktemp("readers"), Level.READ) as secured:
        yield secured


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """Access control on; users see only what they are granted."""
    with secured_endpoint(tmp_path_factory.mktemp("private"), Level.NONE) as secured:
        yield secured


def create_experiment(http: httpx.Client, name: str) -> str:
    answer = http.post("/experiments/create", json={"name": name})
    assert answer.status_code == 200, answer.text
    experiment_id: str = answer.json()["experiment_id"]
    return experiment_id


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer"}, {"x-modelreg-actor": "admin"}],
    ids=["none", "empty-bearer", "actor-header-only"],
)
def test_a_request_without_a_token_is_401_unauthenticated(readers: Secured, headers: dict[str, str]) -> None:
    with readers.http(headers=headers) as anonymous:
        created = anonymous.post("/experiments/create", json={"name": "nobody-may"})
        read = anonymous.get("/experiments/get", params={"experiment_id": "0"})
    for answer in (created, read):
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["error_code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "authorization",
    ["Bearer mrt_000000000000_" + "A" * 43, "Bearer not-a-token", "Token abc", "Basic !!not-base64!!"],
)
def test_malformed_or_unknown_credentials_are_401_unauthenticated(
    readers: Secured, authorization: str
) -> None:
    with readers.http(headers={"authorization": authorization}) as caller:
        answer = caller.get("/experiments/get", params={"experiment_id": "0"})
    assert answer.status_code == 401, answer.text
    assert answer.json()["error_code"] == "UNAUTHENTICATED"


def test_a_bearer_token_acts_as_its_user_whatever_actor_the_caller_claims(readers: Secured) -> None:
    with readers.http(readers.token("tara"), headers={"x-modelreg-actor": "ceo@corp"}) as tara:
        experiment_id = create_experiment(tara, "tara-exp")
        fetched = tara.get("/experiments/get", params={"experiment_id": experiment_id})
    assert fetched.status_code == 200 and fetched.json()["experiment"]["name"] == "tara-exp"
    assert readers.creators(experiment_id) == [("tara", "MANAGE", "tara")]


def test_basic_credentials_authenticate_with_the_token_as_password(readers: Secured) -> None:
    """MLFLOW_TRACKING_USERNAME/PASSWORD: the password is the token; the user name claims nothing."""
    with readers.http(basic=("someone-else", readers.token("bo"))) as bo:
        experiment_id = create_experiment(bo, "bo-exp")
    assert readers.creators(experiment_id) == [("bo", "MANAGE", "bo")]
    with readers.http(basic=("bo", "not-a-token")) as wrong:
        assert wrong.post("/experiments/create", json={"name": "bo-2"}).status_code == 401


def test_a_user_without_access_is_403_permission_denied(private: Secured) -> None:
    with private.http(private.token("olga")) as olga:
        experiment_id = create_experiment(olga, "olga-private")
    with private.http(private.token("rick")) as rick:
        answer = rick.get("/experiments/get", params={"experiment_id": experiment_id})
    assert answer.status_code == 403, answer.text
    assert answer.json()["error_code"] == "PERMISSION_DENIED"


@served("POST", "/mlflow/experiments/update")
@served("POST", "/mlflow/runs/create")
def test_a_reader_writing_is_403_permission_denied_and_changes_nothing(readers: Secured) -> None:
    with readers.http(readers.token("owner")) as owner:
        experiment_id = create_experiment(owner, "owned")
    with readers.http(readers.token("reader")) as reader:
        assert reader.get("/experiments/get", params={"experiment_id": experiment_id}).status_code == 200
        renamed = reader.post(
            "/experiments/update", json={"experiment_id": experiment_id, "new_name": "mine"}
        )
        run = reader.post("/runs/create", json={"experiment_id": experiment_id})
        unchanged = reader.get("/experiments/get", params={"experiment_id": experiment_id})
    for answer in (renamed, run):
        assert answer.status_code == 403, answer.text
        assert answer.json()["error_code"] == "PERMISSION_DENIED"
    assert unchanged.json()["experiment"]["name"] == "owned"


@served("POST", "/mlflow/registered-models/create")
def test_the_registry_history_records_the_tokens_user_not_the_endpoint(readers: Secured) -> None:
    with readers.http(readers.token("wendy"), headers={"x-modelreg-actor": "ceo@corp"}) as wendy:
        answer = wendy.post("/registered-models/create", json={"name": "wendys-model"})
    assert answer.status_code == 200, answer.text
    with RegistryClient(readers.services.services.registry, token=readers.token("wendy")) as registry_client:
        events = list(registry_client.list_model_events("wendys-model"))
    assert [e.actor for e in events] == ["wendy"]


@served("POST", "/mlflow/registered-models/create")
@pytest.mark.parametrize(
    ("basic", "actor"), [(None, "mlflow-client"), (("ana", ""), "ana")], ids=["anonymous", "basic-user"]
)
def test_without_access_control_a_forged_actor_header_is_not_relayed(
    tmp_path: Path, basic: tuple[str, str] | None, actor: str
) -> None:
    """Access control off: the recorded actor is the Basic user name (else the endpoint's default),
    never what an ``x-modelreg-actor`` header sent to the endpoint says."""
    with (
        running_services(tmp_path) as services,
        endpoint_in_front_of(services) as url,
        httpx.Client(base_url=url + API, auth=basic, headers={"x-modelreg-actor": "ceo@corp"}) as http,
    ):
        assert http.post("/registered-models/create", json={"name": "m"}).status_code == 200
        with RegistryClient(services.registry) as registry_client:
            events = list(registry_client.list_model_events("m"))
    assert [e.actor for e in events] == [actor]


def test_the_endpoint_serves_https_with_a_certificate_its_clients_verify(tmp_path: Path) -> None:
    """MODELREG_MLFLOW_TLS_CERT_FILE/KEY_FILE on the endpoint (here from `modelreg tls init`);
    MLFLOW_TRACKING_SERVER_CERT_PATH names the CA to MLflow's client."""
    certs = write_local_certificates(tmp_path / "certs")
    with (
        running_services(tmp_path) as services,
        endpoint_in_front_of(
            services, tls_cert_file=str(certs["server.pem"]), tls_key_file=str(certs["server-key.pem"])
        ) as url,
    ):
        assert url.startswith("https://")
        verifying = ssl.create_default_context(cafile=str(certs["ca.pem"]))
        with httpx.Client(base_url=url + API, verify=verifying) as trusting:
            answer = trusting.get("/experiments/get", params={"experiment_id": "0"})
        assert answer.status_code == 200 and answer.json()["experiment"]["name"] == "Default"
        with (
            httpx.Client(base_url=url + API) as system_roots,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE"),
        ):
            system_roots.get("/experiments/get", params={"experiment_id": "0"})
        plain = url.replace("https://", "http://")
        with httpx.Client(base_url=plain + API) as plaintext, pytest.raises(httpx.TransportError):
            plaintext.get("/experiments/get", params={"experiment_id": "0"})  # no plain HTTP on HTTPS
