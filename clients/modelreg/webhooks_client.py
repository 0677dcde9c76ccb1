"""Webhook calls of the registry (``modelreg.registry.v1.WebhookService``), mixed into RegistryClient.

Event types are EventAction names without the prefix (``"STAGE_TRANSITIONED"``); a secret is
returned only by :meth:`WebhookMethods.create_webhook` and :meth:`WebhookMethods.rotate_webhook_secret`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from modelreg._grpc import Pager, Rpc
from modelreg.exceptions import InvalidArgument
from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.registry.v1 import webhooks_pb2 as pb
from modelreg.registry.v1 import webhooks_pb2_grpc as pb_grpc

DELIVERY_STATUSES = ("pending", "succeeded", "dead")


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    model_name: str  # empty: registry-wide
    event_types: tuple[str, ...]  # empty: all
    active: bool
    description: str
    created_by: str
    creation_time: int
    last_updated_time: int
    # While later than now (ms), deliveries carry the previous secret's signature too.
    previous_secret_expiry_time: int
    # Why the registry made it inactive (e.g. its creator lost access); empty otherwise.
    disabled_reason: str = ""


@dataclass(frozen=True)
class CreatedWebhook:
    webhook: Webhook
    secret: str  # "whsec_...": shown once


@dataclass(frozen=True)
class WebhookDelivery:
    delivery_id: int
    webhook_id: str
    event_id: int
    message_id: str
    status: str  # pending, succeeded or dead
    attempts: int
    next_attempt_time: int
    last_response_code: int
    last_error: str
    creation_time: int
    last_updated_time: int


@dataclass(frozen=True)
class WebhookTest:
    success: bool
    response_code: int
    error: str
    message_id: str


def _action(name: str) -> int:
    try:
        return rpb.EventAction.Value("EVENT_ACTION_" + name.upper().removeprefix("EVENT_ACTION_"))
    except ValueError:
        raise InvalidArgument(
            f"unknown event type {name!r}", code="INVALID_ARGUMENT", reason="INVALID_EVENT_TYPE"
        ) from None


def _webhook(message: pb.Webhook) -> Webhook:
    return Webhook(
        id=message.id,
        url=message.url,
        model_name=message.model_name,
        event_types=tuple(rpb.EventAction.Name(a).removeprefix("EVENT_ACTION_") for a in message.event_types),
        active=message.active,
        description=message.description,
        created_by=message.created_by,
        creation_time=message.creation_time,
        last_updated_time=message.last_updated_time,
        previous_secret_expiry_time=message.previous_secret_expiry_time,
        disabled_reason=message.disabled_reason,
    )


def _delivery(message: pb.WebhookDelivery) -> WebhookDelivery:
    return WebhookDelivery(
        delivery_id=message.delivery_id,
        webhook_id=message.webhook_id,
        event_id=message.event_id,
        message_id=message.message_id,
        status=pb.WebhookDeliveryStatus.Name(message.status).removeprefix("WEBHOOK_DELIVERY_STATUS_").lower(),
        attempts=message.attempts,
        next_attempt_time=message.next_attempt_time,
        last_response_code=message.last_response_code,
        last_error=message.last_error,
        creation_time=message.creation_time,
        last_updated_time=message.last_updated_time,
    )


class WebhookMethods:
    """The webhook calls; the class mixing this in provides ``_rpc``."""

    _rpc: Rpc

    @cached_property
    def _webhooks(self) -> pb_grpc.WebhookServiceStub:
        return pb_grpc.WebhookServiceStub(self._rpc.channel)

    def create_webhook(
        self,
        url: str,
        *,
        model_name: str = "",
        event_types: Sequence[str] = (),
        description: str = "",
        active: bool = True,
    ) -> CreatedWebhook:
        """Subscribes ``url`` to one model's events (``model_name``, MANAGE on it needed) or to
        every model's (an admin's call); the secret comes back only here."""
        request = pb.CreateWebhookRequest(
            url=url,
            model_name=model_name,
            event_types=[_action(t) for t in event_types],  # type: ignore[misc]
            description=description,
            active=active,
        )
        response = self._rpc.unary(self._webhooks.CreateWebhook, request)
        return CreatedWebhook(_webhook(response.webhook), response.secret)

    def get_webhook(self, webhook_id: str) -> Webhook:
        response = self._rpc.unary(self._webhooks.GetWebhook, pb.GetWebhookRequest(id=webhook_id))
        return _webhook(response.webhook)

    def list_webhooks(self, max_results: int | None = None) -> Pager[Webhook]:
        """The webhooks the caller may manage, oldest first."""

        def fetch(token: str, size: int) -> tuple[list[Webhook], str]:
            request = pb.ListWebhooksRequest(page_size=size, page_token=token)
            response = self._rpc.unary(self._webhooks.ListWebhooks, request)
            return [_webhook(w) for w in response.webhooks], response.next_page_token

        return Pager(fetch, max_results=max_results)

    def update_webhook(
        self,
        webhook_id: str,
        *,
        url: str | None = None,
        description: str | None = None,
        active: bool | None = None,
        event_types: Sequence[str] | None = None,
    ) -> Webhook:
        """Changes what is not None; ``event_types=[]`` subscribes to all."""
        request = pb.UpdateWebhookRequest(id=webhook_id, url=url, description=description, active=active)
        if event_types is not None:
            request.event_types.actions.extend(_action(t) for t in event_types)  # type: ignore[misc]
            request.event_types.SetInParent()
        return _webhook(self._rpc.unary(self._webhooks.UpdateWebhook, request).webhook)

    def delete_webhook(self, webhook_id: str) -> None:
        self._rpc.unary(self._webhooks.DeleteWebhook, pb.DeleteWebhookRequest(id=webhook_id))

    def test_webhook(self, webhook_id: str) -> WebhookTest:
        """Sends a signed ``webhook.test`` request now; what the receiver answered."""
        r = self._rpc.unary(self._webhooks.TestWebhook, pb.TestWebhookRequest(id=webhook_id))
        return WebhookTest(r.success, r.response_code, r.error, r.message_id)

    def rotate_webhook_secret(self, webhook_id: str) -> CreatedWebhook:
        """A new secret; the previous one keeps signing for the server's grace period."""
        response = self._rpc.unary(
            self._webhooks.RotateWebhookSecret, pb.RotateWebhookSecretRequest(id=webhook_id)
        )
        return CreatedWebhook(_webhook(response.webhook), response.secret)

    def list_webhook_deliveries(
        self, webhook_id: str, status: str | None = None, max_results: int | None = None
    ) -> Pager[WebhookDelivery]:
        """A webhook's deliveries, newest event first; ``status``: pending, succeeded or dead."""
        number = 0
        if status:
            if status.lower() not in DELIVERY_STATUSES:
                raise InvalidArgument(
                    f"status must be one of {', '.join(DELIVERY_STATUSES)}, got {status!r}",
                    code="INVALID_ARGUMENT",
                    reason="INVALID_STATUS",
                )
            number = pb.WebhookDeliveryStatus.Value(f"WEBHOOK_DELIVERY_STATUS_{status.upper()}")

        def fetch(token: str, size: int) -> tuple[list[WebhookDelivery], str]:
            request = pb.ListWebhookDeliveriesRequest(
                webhook_id=webhook_id,
                status=number,  # type: ignore[arg-type]
                page_size=size,
                page_token=token,
            )
            response = self._rpc.unary(self._webhooks.ListWebhookDeliveries, request)
            return [_delivery(d) for d in response.deliveries], response.next_page_token

        return Pager(fetch, max_results=max_results)

    def replay_webhook_delivery(self, webhook_id: str, delivery_id: int = 0) -> int:
        """Sends a dead (or succeeded) delivery again; 0: every dead one. How many were replayed."""
        request = pb.ReplayWebhookDeliveryRequest(webhook_id=webhook_id, delivery_id=delivery_id)
        return self._rpc.unary(self._webhooks.ReplayWebhookDelivery, request).replayed
