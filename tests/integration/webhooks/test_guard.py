"""The URL guard (SSRF), at subscription and at delivery, and the signature against the spec."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest

from modelreg.exceptions import InvalidArgument
from modelreg.registry_client import RegistryClient
from registry_service.domain.webhooks import InvalidWebhookUrl, Message, WebhookSettings, check_url
from registry_service.webhook_delivery import HttpSender, resolver, signature
from tests.integration.webhooks.conftest import Receiver, new_model, running_registry


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryClient]:
    """A registry with the operator's defaults: https to public addresses only."""
    path: Path = tmp_path_factory.mktemp("guarded") / "registry.db"
    with (
        running_registry(f"sqlite:///{path}", webhooks=WebhookSettings(poll_seconds=0.05)) as target,
        RegistryClient(target) as client,
    ):
        yield client


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10:8443/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
        "https://[2002:c0a8:1::1]/hook",  # 6to4 of 192.168.0.1
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://localhost/hook",  # a name resolving to loopback
        "ftp://example.com/hook",
        "https:///no-host",
        "https://user:pw@example.com/hook",
        "https://example.com/" + "a" * 2048,
    ],
)
def test_refused_urls_name_the_field(guarded: RegistryClient, url: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        guarded.create_webhook(url)
    assert refused.value.reason == "INVALID_WEBHOOK_URL"
    assert refused.value.metadata["field"] == "url"


def test_update_checks_the_url_too(guarded: RegistryClient) -> None:
    created = guarded.create_webhook("https://93.184.215.14/hook", model_name=new_model(guarded))
    with pytest.raises(InvalidArgument) as refused:
        guarded.update_webhook(created.webhook.id, url="https://10.0.0.1/hook")
    assert refused.value.reason == "INVALID_WEBHOOK_URL"
    assert guarded.get_webhook(created.webhook.id).url == "https://93.184.215.14/hook"


def test_unknown_event_types_are_refused(guarded: RegistryClient) -> None:
    with pytest.raises(InvalidArgument) as refused:
        guarded.create_webhook("https://93.184.215.14/hook", event_types=["NOT_AN_ACTION"])
    assert refused.value.reason == "INVALID_EVENT_TYPE"


def test_delivery_refuses_a_name_resolving_to_loopback(receiver: Receiver) -> None:
    """The check at delivery, on the address connected to: a stored URL whose name now resolves
    to loopback is not requested, whatever the check at subscription said."""
    sender = HttpSender(WebhookSettings(allow_http=True, timeout_seconds=2))
    url = receiver.url.replace("127.0.0.1", "localhost")
    result = sender.send(url, Message("msg_1", "{}", ("whsec_" + "A" * 44,)))
    assert not result.success and "loopback" in result.error
    allowed = HttpSender(WebhookSettings(allow_http=True, allow_private=True, timeout_seconds=2))
    assert allowed.send(url, Message("msg_2", "{}", ("whsec_" + "A" * 44,))).status_code == 200
    assert [r.id for r in receiver.requests] == ["msg_2"]
    assert receiver.requests[0].headers["host"] == url.split("/")[2]


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.answer = lambda _: 307
    sender = HttpSender(WebhookSettings(allow_http=True, allow_private=True, timeout_seconds=2))
    result = sender.send(receiver.url, Message("msg_3", "{}", ("whsec_" + "A" * 44,)))
    assert (result.success, result.status_code) == (False, 307)
    assert len(receiver.requests) == 1


def test_signature_matches_the_specification_test_vector() -> None:
    """The example of the Standard Webhooks specification (and svix's libraries)."""
    message = Message(
        "msg_p5jXN8AQM9LWM0D4loKWxJek", '{"test": 2432232314}', ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",)
    )
    assert signature(message, datetime.fromtimestamp(1614265330, UTC)) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_internationalised_hosts_are_stored_idna_encoded(tmp_path: Path, receiver: Receiver) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    with (
        running_registry(f"sqlite:///{tmp_path / 'registry.db'}") as target,
        RegistryClient(target) as client,
    ):
        created = client.create_webhook(f"http://b\u00fccher.example:{port}/h\u00e9?q=\u00e9")
        assert created.webhook.url == f"http://xn--bcher-kva.example:{port}/h%C3%A9?q=%C3%A9"
        with pytest.raises(InvalidArgument) as refused:
            client.create_webhook("https://" + "\u00e9" * 70 + ".example/hook")
        assert refused.value.reason == "INVALID_WEBHOOK_URL"


def test_any_failure_of_a_send_is_a_failed_attempt(receiver: Receiver) -> None:
    """A URL stored before normalising (non-ASCII host or path): an error, never an exception."""
    sender = HttpSender(WebhookSettings(allow_http=True, allow_private=True, timeout_seconds=2))
    message = Message("msg_1", "{}", ("whsec_" + "A" * 44,))
    for url in (receiver.url.replace("127.0.0.1", "\uff4cocalhost"), receiver.url + "/h\u00e9"):
        result = sender.send(url, message)
        assert not result.success and result.error


def test_a_name_that_does_not_resolve_in_time_is_refused() -> None:
    stuck = threading.Event()

    def hanging_lookup(host: str, port: int) -> list[str]:
        stuck.wait()
        return ["93.184.215.14"]

    with (
        mock.patch("registry_service.webhook_delivery._getaddrinfo", hanging_lookup),
        pytest.raises(InvalidWebhookUrl) as refused,
    ):
        check_url("https://slow.example/hook", WebhookSettings(), resolver(0.1))
    stuck.set()
    assert "did not resolve in time" in refused.value.message


def test_each_resolved_address_is_tried_in_order(receiver: Receiver) -> None:
    """A name whose first address refuses connections is reached at the next one."""
    port = int(receiver.url.split(":")[2].split("/")[0])
    sender = HttpSender(WebhookSettings(allow_http=True, allow_private=True, timeout_seconds=5))
    lookup = mock.patch(
        "registry_service.webhook_delivery._getaddrinfo", lambda host, port: ["127.0.0.2", "127.0.0.1"]
    )
    with lookup:
        result = sender.send(f"http://hooks.test:{port}/hook", Message("msg_2", "{}", ("whsec_" + "A" * 44,)))
    assert (result.success, result.error) == (True, "")
    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.test:{port}"
