"""``modelreg webhooks``: subscriptions to the registry's history events and their deliveries.

Talks to the WebhookService of the registry target (``--registry-uri`` / ``MODELREG_REGISTRY_URI``).
Output, errors and exit codes follow :mod:`modelreg.cli`.
"""

from __future__ import annotations

import argparse
from typing import Any

from modelreg.cli import EXIT_FAILED, EXIT_OK, MODEL_HELP, CommandTree, Output, _time, positive_int, target
from modelreg.registry_client import RegistryClient
from modelreg.webhooks_client import DELIVERY_STATUSES, Webhook

EVENTS_HELP = "an event type (EventAction name, e.g. STAGE_TRANSITIONED); repeatable; none: all"


def _registry(args: argparse.Namespace) -> RegistryClient:
    return RegistryClient(target(args, "registry"))


def _show(out: Output, webhook: Webhook, secret: str = "") -> None:
    if out.as_json:
        out.json({"webhook": webhook, "secret": secret} if secret else webhook)
    elif secret:
        # Only the secret, so that it can be captured (it is never shown again).
        out.line(secret)
    else:
        out.fields(
            [
                ("id", webhook.id),
                ("url", webhook.url),
                ("model", webhook.model_name or "(all models)"),
                ("events", webhook.event_types or "(all)"),
                ("active", webhook.active),
                ("description", webhook.description),
                ("created by", webhook.created_by),
                ("created", _time(webhook.creation_time)),
            ]
        )


def cmd_create(args: argparse.Namespace, out: Output) -> int:
    with _registry(args) as registry:
        created = registry.create_webhook(
            args.url,
            model_name=args.model or "",
            event_types=args.event or [],
            description=args.description,
            active=not args.inactive,
        )
    _show(out, created.webhook, created.secret)
    return EXIT_OK


def cmd_list(args: argparse.Namespace, out: Output) -> int:
    with _registry(args) as registry:
        webhooks = list(registry.list_webhooks())
    if out.as_json:
        out.json(webhooks)
    else:
        out.table(
            ["ID", "URL", "MODEL", "EVENTS", "ACTIVE", "CREATED_BY"],
            [
                (w.id, w.url, w.model_name or "(all)", w.event_types or "(all)", w.active, w.created_by)
                for w in webhooks
            ],
        )
    return EXIT_OK


def cmd_update(args: argparse.Namespace, out: Output) -> int:
    with _registry(args) as registry:
        webhook = registry.update_webhook(
            args.id,
            url=args.url,
            description=args.description,
            active=args.active,
            event_types=args.events,
        )
    _show(out, webhook)
    return EXIT_OK


def cmd_delete(args: argparse.Namespace, out: Output) -> int:
    with _registry(args) as registry:
        registry.delete_webhook(args.id)
    return EXIT_OK


def cmd_rotate(args: argparse.Namespace, out: Output) -> int:
    with _registry(args) as registry:
        rotated = registry.rotate_webhook_secret(args.id)
    _show(out, rotated.webhook, rotated.secret)
    return EXIT_OK


def cmd_test(args: argparse.Namespace, out: Output) -> int:
    with _registry(args) as registry:
        result = registry.test_webhook(args.id)
    if out.as_json:
        out.json(result)
    else:
        out.line(
            f"{result.message_id}: "
            + (f"HTTP {result.response_code}" if result.response_code else result.error)
        )
    return EXIT_OK if result.success else EXIT_FAILED


def cmd_deliveries(args: argparse.Namespace, out: Output) -> int:
    with _registry(args) as registry:
        deliveries = list(registry.list_webhook_deliveries(args.id, args.status, args.max_results))
    if out.as_json:
        out.json(deliveries)
    else:
        out.table(
            ["DELIVERY", "EVENT", "STATUS", "ATTEMPTS", "LAST_CODE", "NEXT_ATTEMPT", "LAST_ERROR"],
            [
                (
                    d.delivery_id,
                    d.event_id,
                    d.status,
                    d.attempts,
                    d.last_response_code or "-",
                    _time(d.next_attempt_time) if d.status == "pending" else "-",
                    d.last_error or "-",
                )
                for d in deliveries
            ],
        )
    return EXIT_OK


def cmd_replay(args: argparse.Namespace, out: Output) -> int:
    with _registry(args) as registry:
        replayed = registry.replay_webhook_delivery(args.id, args.delivery or 0)
    if out.as_json:
        out.json({"replayed": replayed})
    else:
        out.line(f"{replayed} replayed")
    return EXIT_OK


def add_webhook_commands(tree: CommandTree) -> None:
    leaf = tree.leaf
    webhooks: Any = tree.group("webhooks", "webhooks: the registry's events POSTed to your endpoints")
    create = leaf(webhooks, "create", cmd_create, "subscribe a URL; prints only its signing secret")
    create.add_argument("url", help="https://... (at most 2,048 characters)")
    create.add_argument(
        "--model", default=None, help=f"{MODEL_HELP} (MANAGE needed); default: every model (admin)"
    )
    create.add_argument("--event", action="append", metavar="TYPE", help=EVENTS_HELP)
    create.add_argument("--description", default="", metavar="TEXT", help="what it is for")
    create.add_argument("--inactive", action="store_true", help="create it paused")
    leaf(webhooks, "list", cmd_list, "the webhooks you may manage")
    update = leaf(webhooks, "update", cmd_update, "change a webhook")
    update.add_argument("id", help="the webhook id")
    update.add_argument("--url", default=None, help="a new https://... address")
    update.add_argument("--description", default=None, metavar="TEXT", help="a new description")
    active = update.add_mutually_exclusive_group()
    active.add_argument(
        "--active", dest="active", action="store_const", const=True, default=None, help="resume"
    )
    active.add_argument("--inactive", dest="active", action="store_const", const=False, help="pause")
    update.add_argument(
        "--events", nargs="*", metavar="TYPE", default=None, help="replace the event types (none: all)"
    )
    leaf(webhooks, "delete", cmd_delete, "delete a webhook and its deliveries").add_argument(
        "id", help="the webhook id"
    )
    leaf(webhooks, "rotate-secret", cmd_rotate, "a new signing secret; prints only it").add_argument(
        "id", help="the webhook id"
    )
    leaf(webhooks, "test", cmd_test, "send a signed webhook.test request now").add_argument(
        "id", help="the webhook id"
    )
    deliveries = leaf(webhooks, "deliveries", cmd_deliveries, "a webhook's deliveries, newest first")
    deliveries.add_argument("id", help="the webhook id")
    deliveries.add_argument("--status", choices=DELIVERY_STATUSES, default=None, help="only these")
    deliveries.add_argument("--max-results", type=positive_int, default=100, help="default %(default)s")
    replay = leaf(webhooks, "replay", cmd_replay, "send dead deliveries again (same webhook-id)")
    replay.add_argument("id", help="the webhook id")
    replay.add_argument(
        "delivery", nargs="?", type=positive_int, help="one delivery; default: every dead one"
    )
