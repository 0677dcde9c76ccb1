"""Webhook deliveries through a real registry to a real HTTP receiver, on each backend."""

from __future__ import annotations

import dataclasses
import threading
import time

from modelreg.registry_client import RegistryClient
from tests.conftest import Backend
from tests.integration.webhooks.conftest import (
    TEST_WEBHOOKS,
    Received,
    Receiver,
    new_model,
    running_registry,
    settled,
    verify,
)


def _event_id(request: Received) -> int:
    return int(request.id.rpartition("_")[2])


def test_events_arrive_signed_in_order_with_the_event_fields(
    registry: RegistryClient, receiver: Receiver
) -> None:
    model = new_model(registry)
    created = registry.create_webhook(receiver.url, model_name=model, description="ci")
    assert created.secret.startswith("whsec_")
    registry.create_model_version(model, "s3://bucket/m1")
    registry.create_model_version(model, "s3://bucket/m2")
    registry.transition_model_version_stage(model, 1, "Production")
    registry.set_registered_model_alias(model, "champion", 2)

    got = receiver.wait_for(lambda seen: len(seen) >= 4)
    payloads = [verify(created.secret, r) for r in got]
    assert [p["type"] for p in payloads] == [
        "model_version.created",
        "model_version.created",
        "model_version.stage_transitioned",
        "registered_model.alias_set",
    ]
    ids = [_event_id(r) for r in got]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert all(r.id == f"msg_{created.webhook.id}_{i}" for r, i in zip(got, ids, strict=True))
    stage = payloads[2]["data"]
    assert isinstance(stage, dict)
    assert stage["model_name"] == model and stage["version"] == 1
    assert (stage["from"], stage["to"], stage["action"]) == ("None", "Production", "STAGE_TRANSITIONED")
    assert stage["event_id"] == ids[2] and stage["time"].endswith("Z")
    # Recorded, newest first, all succeeded on their first attempt.
    deliveries = settled(registry, created.webhook.id, 4)
    assert [d.event_id for d in deliveries] == ids[::-1]
    assert {(d.status, d.attempts, d.last_response_code) for d in deliveries} == {("succeeded", 1, 200)}
    # The secret is never shown again.
    assert "secret" not in repr(registry.get_webhook(created.webhook.id)).lower().replace(
        "previous_secret", ""
    )


def test_a_failed_attempt_is_retried_with_the_same_id(registry: RegistryClient, receiver: Receiver) -> None:
    answers = iter([500, 503])
    receiver.answer = lambda _: next(answers, 200)
    model = new_model(registry)
    created = registry.create_webhook(receiver.url, model_name=model)
    registry.create_model_version(model, "s3://bucket/m1")

    got = receiver.wait_for(lambda seen: len(seen) >= 3)
    assert len({r.id for r in got}) == 1
    for request in got:
        verify(created.secret, request)
    [delivery] = settled(registry, created.webhook.id, 1)
    assert (delivery.status, delivery.attempts, delivery.message_id) == ("succeeded", 3, got[0].id)


def test_dead_letters_hold_nothing_back_and_replay_with_the_same_id(
    registry: RegistryClient, receiver: Receiver
) -> None:
    failing = threading.Event()
    failing.set()
    receiver.answer = lambda _: 500 if failing.is_set() else 204
    model = new_model(registry)
    created = registry.create_webhook(receiver.url, model_name=model)
    registry.create_model_version(model, "s3://bucket/m1")
    registry.create_model_version(model, "s3://bucket/m2")

    # First event: 1 attempt + 2 retries (the test schedule), then dead; only then the second.
    got = receiver.wait_for(lambda seen: len(seen) >= 4)
    first = got[0].id
    assert [r.id for r in got[:3]] == [first] * 3 and got[3].id != first
    receiver.wait_for(lambda seen: len(seen) >= 6)
    settled(registry, created.webhook.id, 2)
    dead = list(registry.list_webhook_deliveries(created.webhook.id, status="dead"))
    assert len(dead) == 2
    assert {(d.attempts, d.last_response_code) for d in dead} == {(3, 500)}
    assert not list(registry.list_webhook_deliveries(created.webhook.id, status="pending"))

    failing.clear()
    assert registry.replay_webhook_delivery(created.webhook.id, dead[-1].delivery_id) == 1
    got = receiver.wait_for(lambda seen: len(seen) >= 7)
    assert got[6].id == first
    verify(created.secret, got[6])
    assert registry.replay_webhook_delivery(created.webhook.id) == 1  # every dead one: the other
    receiver.wait_for(lambda seen: len(seen) >= 8)
    statuses = {d.status for d in settled(registry, created.webhook.id, 2)}
    assert statuses == {"succeeded"}


def test_per_model_registry_wide_and_event_type_filters(registry: RegistryClient, receiver: Receiver) -> None:
    mine, other = new_model(registry), new_model(registry)
    per_model = registry.create_webhook(receiver.url, model_name=mine).webhook
    stages = registry.create_webhook(receiver.url, event_types=["STAGE_TRANSITIONED"]).webhook
    everything = registry.create_webhook(receiver.url).webhook
    for model in (mine, other):
        registry.create_model_version(model, "s3://bucket/m")
        registry.transition_model_version_stage(model, 1, "Staging")

    got = receiver.wait_for(lambda seen: len(seen) >= 8)
    by_hook: dict[str, list[str]] = {}
    for request, body in zip(got, receiver.bodies(), strict=True):
        hook = request.id.split("_")[1] + "_" + request.id.split("_")[2]
        data = body["data"]
        assert isinstance(data, dict)
        by_hook.setdefault(hook, []).append(f"{data['model_name']}:{data['action']}")
    assert by_hook[per_model.id] == [f"{mine}:VERSION_CREATED", f"{mine}:STAGE_TRANSITIONED"]
    assert by_hook[stages.id] == [f"{mine}:STAGE_TRANSITIONED", f"{other}:STAGE_TRANSITIONED"]
    assert by_hook[everything.id] == [
        f"{mine}:VERSION_CREATED",
        f"{mine}:STAGE_TRANSITIONED",
        f"{other}:VERSION_CREATED",
        f"{other}:STAGE_TRANSITIONED",
    ]
    assert per_model.model_name == mine and stages.event_types == ("STAGE_TRANSITIONED",)


def test_rotation_signs_with_both_secrets_during_the_grace(
    registry: RegistryClient, receiver: Receiver
) -> None:
    model = new_model(registry)
    created = registry.create_webhook(receiver.url, model_name=model)
    rotated = registry.rotate_webhook_secret(created.webhook.id)
    assert rotated.secret != created.secret and rotated.webhook.previous_secret_expiry_time > 0
    registry.create_model_version(model, "s3://bucket/m1")

    [request] = receiver.wait_for(lambda seen: len(seen) >= 1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verify(created.secret, request) == verify(rotated.secret, request)


def test_inactive_webhooks_receive_nothing_and_test_sends_now(
    registry: RegistryClient, receiver: Receiver
) -> None:
    model = new_model(registry)
    created = registry.create_webhook(receiver.url, model_name=model, active=False)
    registry.create_model_version(model, "s3://bucket/m1")
    result = registry.test_webhook(created.webhook.id)
    assert (result.success, result.response_code) == (True, 200)
    [request] = receiver.wait_for(lambda seen: len(seen) >= 1)
    assert verify(created.secret, request)["type"] == "webhook.test"

    registry.update_webhook(created.webhook.id, active=True, event_types=["VERSION_CREATED"])
    registry.create_model_version(model, "s3://bucket/m2")
    got = receiver.wait_for(lambda seen: len(seen) >= 2)
    data = verify(created.secret, got[1])["data"]
    assert isinstance(data, dict) and data["version"] == 2  # version 1 came while inactive
    assert [d.event_id for d in settled(registry, created.webhook.id, 1)] == [_event_id(got[1])]


def test_settled_deliveries_are_deleted_after_their_retention(backend: Backend, receiver: Receiver) -> None:
    short = dataclasses.replace(TEST_WEBHOOKS, retention_days=0.5 / 86_400)
    with running_registry(backend.url, webhooks=short) as target, RegistryClient(target) as client:
        model = new_model(client)
        created = client.create_webhook(receiver.url, model_name=model)
        client.create_model_version(model, "s3://bucket/m1")
        receiver.wait_for(lambda seen: len(seen) >= 1)
        deadline = time.monotonic() + 30
        while list(client.list_webhook_deliveries(created.webhook.id)):
            assert time.monotonic() < deadline, "the delivery was never deleted"
            time.sleep(0.1)
        # Its event is not delivered again: the webhook's cursor is past it.
        client.create_model_version(model, "s3://bucket/m2")
        got = receiver.wait_for(lambda seen: len(seen) >= 2)
        assert len({r.id for r in got}) == 2


def test_a_hung_receiver_holds_back_only_its_own_deliveries(
    registry: RegistryClient, receiver: Receiver
) -> None:
    """Writes complete while the receiver holds the first request; it gets one request at a time,
    and the rest in order once it answers."""
    receiver.hold = threading.Event()
    model = new_model(registry)
    created = registry.create_webhook(receiver.url, model_name=model)
    registry.create_model_version(model, "s3://bucket/m0")
    [first] = receiver.wait_for(lambda seen: len(seen) >= 1)
    for n in range(1, 10):
        registry.create_model_version(model, f"s3://bucket/m{n}")  # none waits for the receiver
    assert len(list(registry.search_model_versions(f"name='{model}'"))) == 10
    # Only the held event was sent (again, should its attempt time out meanwhile).
    assert {r.id for r in receiver.requests} == {first.id}
    hold, receiver.hold = receiver.hold, None
    hold.set()
    got = receiver.wait_for(lambda seen: len({r.id for r in seen}) >= 10)
    versions = {r.id: verify(created.secret, r)["data"]["version"] for r in got}  # type: ignore[index]
    assert list(versions.values()) == list(range(1, 11))
