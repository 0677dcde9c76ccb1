"""WebhookService servicer: protos in, WebhookService calls, protos out (errors: the interceptor)."""

from __future__ import annotations

import grpc

from modelreg.registry.v1 import webhooks_pb2 as pb
from modelreg.registry.v1 import webhooks_pb2_grpc
from modelreg_server.context import call_context
from registry_service.api.convert import ACTION_NUMBERS, message_from
from registry_service.domain.entities import EventAction
from registry_service.domain.webhooks import (
    DeliveryStatus,
    Webhook,
    WebhookChanges,
    WebhookDelivery,
    WebhookService,
)

_ACTIONS = {number: action for action, number in ACTION_NUMBERS.items()}
_STATUSES = {pb.WebhookDeliveryStatus.Value(f"WEBHOOK_DELIVERY_STATUS_{s.name}"): s for s in DeliveryStatus}
_STATUS_NUMBERS = {status: number for number, status in _STATUSES.items()}


def _actions(numbers: list[int]) -> list[int | EventAction]:
    """Known actions as the domain's, anything else as the number (the domain refuses it)."""
    return [_ACTIONS.get(number, number) for number in numbers]  # type: ignore[call-overload]


def webhook_pb(webhook: Webhook) -> pb.Webhook:
    return message_from(pb.Webhook, webhook, event_types=[ACTION_NUMBERS[a] for a in webhook.event_types])


def delivery_pb(delivery: WebhookDelivery) -> pb.WebhookDelivery:
    return message_from(
        pb.WebhookDelivery,
        delivery,
        delivery_id=delivery.id,
        message_id=delivery.message_id,
        status=_STATUS_NUMBERS[delivery.status],
    )


class WebhookServicer(webhooks_pb2_grpc.WebhookServiceServicer):
    def __init__(self, service: WebhookService) -> None:
        self._service = service

    def CreateWebhook(
        self, request: pb.CreateWebhookRequest, context: grpc.ServicerContext
    ) -> pb.CreateWebhookResponse:
        created = self._service.create_webhook(
            call_context(),
            request.url,
            request.model_name,
            _actions(list(request.event_types)),
            request.description,
            request.active if request.HasField("active") else True,
        )
        return pb.CreateWebhookResponse(webhook=webhook_pb(created.webhook), secret=created.secret)

    def GetWebhook(
        self, request: pb.GetWebhookRequest, context: grpc.ServicerContext
    ) -> pb.GetWebhookResponse:
        return pb.GetWebhookResponse(
            webhook=webhook_pb(self._service.get_webhook(call_context(), request.id))
        )

    def ListWebhooks(
        self, request: pb.ListWebhooksRequest, context: grpc.ServicerContext
    ) -> pb.ListWebhooksResponse:
        page = self._service.list_webhooks(call_context(), request.page_size, request.page_token)
        return pb.ListWebhooksResponse(
            webhooks=[webhook_pb(w) for w in page.items], next_page_token=page.next_page_token
        )

    def UpdateWebhook(
        self, request: pb.UpdateWebhookRequest, context: grpc.ServicerContext
    ) -> pb.UpdateWebhookResponse:
        changes = WebhookChanges(
            url=request.url if request.HasField("url") else None,
            description=request.description if request.HasField("description") else None,
            active=request.active if request.HasField("active") else None,
            event_types=tuple(_actions(list(request.event_types.actions)))  # type: ignore[arg-type]
            if request.HasField("event_types")
            else None,
        )
        webhook = self._service.update_webhook(call_context(), request.id, changes)
        return pb.UpdateWebhookResponse(webhook=webhook_pb(webhook))

    def DeleteWebhook(
        self, request: pb.DeleteWebhookRequest, context: grpc.ServicerContext
    ) -> pb.DeleteWebhookResponse:
        self._service.delete_webhook(call_context(), request.id)
        return pb.DeleteWebhookResponse()

    def TestWebhook(
        self, request: pb.TestWebhookRequest, context: grpc.ServicerContext
    ) -> pb.TestWebhookResponse:
        result, message_id = self._service.test_webhook(call_context(), request.id)
        return pb.TestWebhookResponse(
            success=result.success,
            response_code=result.status_code,
            error=result.error,
            message_id=message_id,
        )

    def RotateWebhookSecret(
        self, request: pb.RotateWebhookSecretRequest, context: grpc.ServicerContext
    ) -> pb.RotateWebhookSecretResponse:
        rotated = self._service.rotate_secret(call_context(), request.id)
        return pb.RotateWebhookSecretResponse(webhook=webhook_pb(rotated.webhook), secret=rotated.secret)

    def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: grpc.ServicerContext
    ) -> pb.ListWebhookDeliveriesResponse:
        page = self._service.list_deliveries(
            call_context(),
            request.webhook_id,
            _STATUSES.get(request.status),
            request.page_size,
            request.page_token,
        )
        return pb.ListWebhookDeliveriesResponse(
            deliveries=[delivery_pb(d) for d in page.items], next_page_token=page.next_page_token
        )

    def ReplayWebhookDelivery(
        self, request: pb.ReplayWebhookDeliveryRequest, context: grpc.ServicerContext
    ) -> pb.ReplayWebhookDeliveryResponse:
        replayed = self._service.replay(call_context(), request.webhook_id, request.delivery_id)
        return pb.ReplayWebhookDeliveryResponse(replayed=replayed)
