"""``modelreg webhooks`` and modelreg.Client's webhook methods against a real registry and receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

import modelreg
from modelreg._grpc import from_rpc_error
from modelreg.cli import main
from modelreg.registry.v1 import webhooks_pb2 as pb
from modelreg.registry.v1 import webhooks_pb2_grpc
from tests.integration.webhooks.conftest import Receiver, running_registry, settled, verify


@pytest.fixture
def target(tmp_path: Path) -> Iterator[str]:
    with running_registry(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        yield registry


def run(capsys: pytest.CaptureFixture[str], target: str, *argv: str) -> tuple[int, str]:
    code = main([*argv, "--registry-uri", target])
    return code, capsys.readouterr().out


def test_the_cli_subscribes_lists_tests_and_replays(
    capsys: pytest.CaptureFixture[str], target: str, receiver: Receiver
) -> None:
    with modelreg.Client(registry_uri=target) as client:
        client.create_registered_model("cli-model")
        code, out = run(
            capsys,
            target,
            "webhooks",
            "create",
            receiver.url,
            "--model",
            "cli-model",
            "--event",
            "VERSION_CREATED",
        )
        secret = out.strip()
        assert code == 0 and secret.startswith("whsec_")
        code, out = run(capsys, target, "webhooks", "list", "--json")
        [listed] = json.loads(out)
        assert (listed["model_name"], listed["event_types"]) == ("cli-model", ["VERSION_CREATED"])
        assert "secret" not in listed
        hook = listed["id"]
        assert [w.id for w in client.list_webhooks()] == [hook]

        code, out = run(capsys, target, "webhooks", "test", hook)
        assert code == 0 and "HTTP 200" in out
        assert verify(secret, receiver.wait_for(lambda seen: len(seen) >= 1)[0])["type"] == "webhook.test"

        receiver.answer = lambda _: 500
        client.create_model_version("cli-model", "s3://bucket/m")
        settled(client.registry, hook, 1)
        code, out = run(capsys, target, "webhooks", "deliveries", hook, "--status", "dead", "--json")
        [dead] = json.loads(out)
        assert (dead["attempts"], dead["last_response_code"]) == (3, 500)

        receiver.answer = lambda _: 200
        code, out = run(capsys, target, "webhooks", "replay", hook)
        assert (code, out.strip()) == (0, "1 replayed")
        assert {d.status for d in settled(client.registry, hook, 1)} == {"succeeded"}

        code, _ = run(capsys, target, "webhooks", "update", hook, "--inactive", "--events")
        updated = client.get_webhook(hook)
        assert (updated.active, updated.event_types) == (False, ())
        code, out = run(capsys, target, "webhooks", "rotate-secret", hook)
        assert code == 0 and out.strip().startswith("whsec_") and out.strip() != secret
        assert run(capsys, target, "webhooks", "delete", hook)[0] == 0
        assert list(client.list_webhooks()) == []


def test_a_retried_create_rotation_or_delete_applies_once(target: str) -> None:
    """Writes with one idempotency key (as the client's retries send them) apply once, and a
    retried create or rotation answers the same secret."""
    stub = webhooks_pb2_grpc.WebhookServiceStub(grpc.insecure_channel(target))

    def call(method: Any, request: Any, key: str) -> Any:
        return method(request, metadata=(("x-modelreg-idempotency-key", key),))

    create = pb.CreateWebhookRequest(url="http://127.0.0.1:9/hook")
    first, again = (call(stub.CreateWebhook, create, "create-1") for _ in range(2))
    assert (again.webhook.id, again.secret) == (first.webhook.id, first.secret)
    with modelreg.Client(registry_uri=target) as client:
        assert [w.id for w in client.list_webhooks()] == [first.webhook.id]
        rotate = pb.RotateWebhookSecretRequest(id=first.webhook.id)
        rotated, retried = (call(stub.RotateWebhookSecret, rotate, "rotate-1") for _ in range(2))
        assert rotated.secret == retried.secret != first.secret
        for _ in range(2):
            call(stub.DeleteWebhook, pb.DeleteWebhookRequest(id=first.webhook.id), "delete-1")
        assert list(client.list_webhooks()) == []


def test_bad_input_is_invalid_argument_naming_the_field(target: str) -> None:
    stub = webhooks_pb2_grpc.WebhookServiceStub(grpc.insecure_channel(target))
    for method, request, reason in (
        (
            stub.CreateWebhook,
            pb.CreateWebhookRequest(url="http://127.0.0.1:9/", event_types=[0]),
            "INVALID_EVENT_TYPE",
        ),
        (
            stub.CreateWebhook,
            pb.CreateWebhookRequest(url="http://127.0.0.1:9/", event_types=[999]),
            "INVALID_EVENT_TYPE",
        ),
        (stub.CreateWebhook, pb.CreateWebhookRequest(url=""), "INVALID_WEBHOOK_URL"),
        (
            stub.CreateWebhook,
            pb.CreateWebhookRequest(url="http://127.0.0.1:9/", model_name="a/b"),
            "INVALID_NAME",
        ),
        (
            stub.CreateWebhook,
            pb.CreateWebhookRequest(url="http://127.0.0.1:9/", description="d" * 1025),
            "INVALID_DESCRIPTION",
        ),
        (stub.ListWebhooks, pb.ListWebhooksRequest(page_size=-1), "INVALID_PAGE_SIZE"),
        (stub.ListWebhooks, pb.ListWebhooksRequest(page_token="nonsense"), "INVALID_PAGE_TOKEN"),
    ):
        with pytest.raises(grpc.RpcError) as failed:
            method(request)
        error = from_rpc_error(failed.value, tls=False)
        assert (error.code, error.reason) == ("INVALID_ARGUMENT", reason)
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetWebhook(pb.GetWebhookRequest(id=""))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
