"""Webhooks: subscriptions to the registry's history events, validated and authorized here.

Permissions reuse the registry's own checks (RegistryService.require): a webhook of one model
needs MANAGE on it, a registry-wide one an admin. Listing puts "may manage" into the query.

The URL guard refuses, unless the operator allows them, plain http and hosts that are or resolve
to private, loopback, link-local, multicast, reserved or unspecified addresses: a registry inside
a network must not become a way to reach that network's internal services (SSRF). It runs at
create/update here and again at every delivery against the address actually connected to
(registry_service.webhook_delivery), so a name re-pointed after the check gains nothing.
"""

from __future__ import annotations

import base64
import enum
import ipaddress
import json
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from modelreg_server.access.authenticator import BOOTSTRAP_ADMIN
from modelreg_server.access.entities import User
from modelreg_server.access.policy import AccessPolicy, Grantee, Level, Principal, grantee, require_admin
from modelreg_server.context import CallContext
from modelreg_server.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
)
from modelreg_server.idempotency import WriteKey
from modelreg_server.pagination import fingerprint, parse_page
from modelreg_server.validation import require_value
from registry_service.domain import rules
from registry_service.domain.entities import EventAction, ModelEvent, Page

MAX_WEBHOOKS = 1_000
MAX_URL_LENGTH = 2_048
MAX_DESCRIPTION_LENGTH = 1_024
WEBHOOKS_PAGE_DEFAULT, WEBHOOKS_PAGE_MAX = 100, 1_000
DELIVERIES_PAGE_DEFAULT, DELIVERIES_PAGE_MAX = 100, 1_000
# Standard Webhooks: 24 to 64 bytes of key; 32 is what its reference implementations generate.
SECRET_BYTES = 32
SECRET_PREFIX = "whsec_"
TEST_EVENT_TYPE = "webhook.test"
# TestWebhook requests in flight at once per registry process: each holds one of the server's
# worker threads for up to MODELREG_WEBHOOK_TIMEOUT_SECONDS, so slow receivers cannot pin them all.
MAX_TESTS_IN_FLIGHT = 4


@dataclass(frozen=True)
class WebhookSettings:
    """Delivery settings (MODELREG_WEBHOOK_*; see registry_service.config)."""

    allow_http: bool = False
    allow_private: bool = False
    # Seconds to wait after the 1st, 2nd, ... failed attempt; past the last one the delivery is dead.
    retry_seconds: tuple[float, ...] = (5, 30, 120, 600, 3600, 3 * 3600, 6 * 3600)
    timeout_seconds: float = 10.0
    # How often an idle worker looks for new events and due retries.
    poll_seconds: float = 1.0
    secret_grace_hours: float = 24.0
    # Requests in flight at once per registry process.
    concurrency: int = 8
    # Off: this process sends nothing (another replica's worker does).
    worker: bool = True
    # How long succeeded and dead deliveries are kept (pending ones always are).
    retention_days: float = 30.0
    # Longest wait for a URL's host name to resolve, at subscription and at delivery.
    dns_timeout_seconds: float = 5.0

    @property
    def prune_seconds(self) -> float:
        """How often a worker deletes deliveries past their retention: every 5 minutes, or
        sooner when the retention is shorter."""
        return min(300.0, self.retention_days * 86_400)

    @property
    def lease_seconds(self) -> float:
        """How long a claimed attempt stays the claiming worker's. The sender ends every attempt
        by its deadline (``timeout_seconds`` for the whole request, however the receiver drips),
        so the lease must be strictly longer than that deadline plus the time to record the
        result: ``timeout_seconds`` + a margin of ``timeout_seconds`` + 5 s. A live worker thus
        always finishes before anyone else may claim the delivery (never two attempts of one
        delivery at once); a crashed one's attempt is retried once its lease has passed."""
        return self.timeout_seconds * 2 + 5.0


class DeliveryStatus(enum.Enum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    DEAD = "dead"


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    model_id: int | None
    model_name: str
    event_types: tuple[EventAction, ...]
    active: bool
    description: str
    created_by: str
    creation_time: int
    last_updated_time: int
    previous_secret_expiry_time: int
    disabled_reason: str = ""


@dataclass(frozen=True)
class CreatedWebhook:
    webhook: Webhook
    secret: str


@dataclass(frozen=True)
class WebhookChanges:
    """What UpdateWebhook changes; None leaves a field as it is."""

    url: str | None = None
    description: str | None = None
    active: bool | None = None
    event_types: tuple[EventAction, ...] | None = None


@dataclass(frozen=True)
class WebhookDelivery:
    id: int
    webhook_id: str
    event_id: int
    status: DeliveryStatus
    attempts: int
    next_attempt_time: int
    last_response_code: int
    last_error: str
    creation_time: int
    last_updated_time: int

    @property
    def message_id(self) -> str:
        return message_id(self.webhook_id, self.event_id)


@dataclass(frozen=True)
class Message:
    """One signed request: its webhook-id, the JSON body, the secrets that sign it."""

    id: str
    body: str
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class SendResult:
    status_code: int = 0
    error: str = ""

    @property
    def success(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass(frozen=True)
class WebhookScope:
    """What a non-admin's listing shows: the webhooks of the models ``grantee`` holds MANAGE on,
    or of every model when ``grantee`` is None (MANAGE is everyone's default); never a
    registry-wide one."""

    grantee: Grantee | None


# -- errors ------------------------------------------------------------------------------------


class InvalidWebhookUrl(InvalidArgumentError):
    def __init__(self, message: str) -> None:
        super().__init__("INVALID_WEBHOOK_URL", message, {"field": "url"})


class InvalidEventType(InvalidArgumentError):
    def __init__(self, message: str) -> None:
        super().__init__("INVALID_EVENT_TYPE", message, {"field": "event_types"})


class WebhookNotFound(NotFoundError):
    def __init__(self, webhook_id: str) -> None:
        super().__init__("WEBHOOK_NOT_FOUND", f"webhook '{webhook_id}' does not exist", {"id": webhook_id})


class DeliveryNotFound(NotFoundError):
    def __init__(self, webhook_id: str, delivery_id: int) -> None:
        super().__init__(
            "DELIVERY_NOT_FOUND",
            f"webhook '{webhook_id}' has no delivery {delivery_id}",
            {"webhook_id": webhook_id, "delivery_id": str(delivery_id)},
        )


class DeliveryPending(FailedPreconditionError):
    def __init__(self, delivery_id: int) -> None:
        super().__init__(
            "DELIVERY_PENDING",
            f"delivery {delivery_id} is still pending: only dead or succeeded ones are replayed",
            {"delivery_id": str(delivery_id)},
        )


class TooManyWebhookTests(ResourceExhaustedError):
    def __init__(self) -> None:
        super().__init__(
            "TOO_MANY_WEBHOOK_TESTS",
            f"{MAX_TESTS_IN_FLIGHT} webhook tests are being sent by this registry: try again shortly",
            {"limit": str(MAX_TESTS_IN_FLIGHT)},
        )


class TooManyWebhooks(ResourceExhaustedError):
    def __init__(self) -> None:
        super().__init__(
            "TOO_MANY_WEBHOOKS",
            f"the registry holds its limit of {MAX_WEBHOOKS} webhooks",
            {"field": "url", "limit": str(MAX_WEBHOOKS)},
        )


# -- the message -------------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def message_id(webhook_id: str, event_id: int) -> str:
    """The webhook-id header: one per (webhook, event), so receivers deduplicate retries by it."""
    return f"msg_{webhook_id}_{event_id}"


_EVENT_OBJECTS = (
    ("VERSION_", "model_version"),
    ("STAGE_", "model_version"),
    ("MODEL_", "registered_model"),
    ("SERVING_", "model_version"),
)


def event_type(action: EventAction) -> str:
    """``STAGE_TRANSITIONED`` -> ``model_version.stage_transitioned``, ``MODEL_CREATED`` ->
    ``registered_model.created``, ``SERVING_LOADED`` -> ``model_version.serving_loaded``; aliases,
    grants, protection and gates are the model's."""
    name = action.value
    for prefix, thing in _EVENT_OBJECTS:
        if name.startswith(prefix):
            rest = name[len(prefix) :] if prefix not in ("STAGE_", "SERVING_") else name
            return f"{thing}.{rest.lower()}"
    return f"registered_model.{name.lower()}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_body(event: ModelEvent) -> str:
    data: dict[str, Any] = {
        "event_id": event.event_id,
        "model_name": event.name,
        "model_id": event.model_id,
        "version": event.version,
        "action": event.action.value,
        "from": event.from_value,
        "to": event.to_value,
        "actor": event.actor,
        "time": _iso(event.time),
        "comment": event.comment,
    }
    return json.dumps(
        {"type": event_type(event.action), "timestamp": _iso(event.time), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def test_body(webhook: Webhook, now_ms: int) -> str:
    return json.dumps(
        {"type": TEST_EVENT_TYPE, "timestamp": _iso(now_ms), "data": {"webhook_id": webhook.id}},
        separators=(",", ":"),
    )


def retry_delay(settings: WebhookSettings, attempts: int) -> float | None:
    """Seconds until the next attempt after ``attempts`` failed ones; None: the delivery is dead."""
    return settings.retry_seconds[attempts - 1] if attempts <= len(settings.retry_seconds) else None


# -- the URL guard -----------------------------------------------------------------------------


def address_refusal(address: str, allow_private: bool) -> str:
    """Why a delivery must not connect to ``address`` (an IP), or "" when it may."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if allow_private:
        return "" if not (ip.is_multicast or ip.is_unspecified) else f"address {ip} is not a unicast host"
    if isinstance(ip, ipaddress.IPv6Address):
        # Tunnels carry an IPv4 address inside: 6to4 (2002::/16) reaches the IPv4 it embeds (a
        # relay may deliver to a private one), Teredo (2001::/32) a NAT-ed host behind a relay.
        if ip.teredo is not None:
            return f"address {ip} is a Teredo tunnel (MODELREG_WEBHOOK_ALLOW_PRIVATE=true allows it)"
        if ip.sixtofour is not None and not ip.sixtofour.is_global:
            return (
                f"address {ip} is 6to4 of the non-public {ip.sixtofour}"
                " (MODELREG_WEBHOOK_ALLOW_PRIVATE=true allows it)"
            )
    for what, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private or not ip.is_global),
    ):
        if flag:
            return f"address {ip} is {what} (MODELREG_WEBHOOK_ALLOW_PRIVATE=true allows it)"
    return ""


def parse_url(url: str, settings: WebhookSettings) -> tuple[str, str, int]:
    """(scheme, host, port) of a webhook URL, or INVALID_WEBHOOK_URL."""
    if not url or len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 0x20 for c in url):
        raise InvalidWebhookUrl(f"url must be 1 to {MAX_URL_LENGTH} characters without spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrl(f"url is not a URL: {exc}") from None
    allowed = ("https", "http") if settings.allow_http else ("https",)
    if parts.scheme not in allowed:
        raise InvalidWebhookUrl(
            "url must be https (MODELREG_WEBHOOK_ALLOW_HTTP=true allows http)"
            if parts.scheme == "http"
            else f"url must be {' or '.join(allowed)}"
        )
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("url must name a host and no user or password")
    return parts.scheme, ascii_host(parts.hostname), port or (443 if parts.scheme == "https" else 80)


def ascii_host(host: str) -> str:
    """An internationalised host name as DNS and HTTP carry it (IDNA), or INVALID_WEBHOOK_URL."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidWebhookUrl(f"url host {host!r} is not a valid internationalised name: {exc}") from None


def loggable_url(url: str) -> str:
    """scheme://host/path of a webhook URL: its query may carry a receiver's token, never logged."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def normalised_url(url: str, settings: WebhookSettings) -> str:
    """The URL in ASCII, as it is stored and sent: the host IDNA-encoded, the path and query
    percent-encoded where they are not ASCII."""
    _, host, port = parse_url(url, settings)
    parts = urlsplit(url)
    if url.isascii():
        return url
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{port}"
    safe = "/%:@!$&'()*+,;=-._~?"
    return urlunsplit((parts.scheme, netloc, quote(parts.path, safe), quote(parts.query, safe), ""))


# Every address of (host, port); OSError when it does not resolve, TimeoutError when it takes
# longer than MODELREG_WEBHOOK_DNS_TIMEOUT_SECONDS.
Resolver = Callable[[str, int], Sequence[str]]


def check_url(url: str, settings: WebhookSettings, resolve: Resolver) -> str:
    """The URL if its host's addresses are all allowed. A name that does not resolve now is
    accepted: the delivery checks again where it connects. Returns it normalised (ASCII)."""
    url = normalised_url(url, settings)
    _, host, port = parse_url(url, settings)
    try:
        addresses: Sequence[str] = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolve(host, port)
        except TimeoutError:
            raise InvalidWebhookUrl(
                f"url host {host} did not resolve in time (MODELREG_WEBHOOK_DNS_TIMEOUT_SECONDS)"
            ) from None
        except OSError:
            addresses = []
    for address in addresses:
        refusal = address_refusal(address, settings.allow_private)
        if refusal:
            raise InvalidWebhookUrl(f"url host {host}: {refusal}")
    return url


def event_types(values: Sequence[int | EventAction]) -> tuple[EventAction, ...]:
    checked: list[EventAction] = []
    for value in values:
        if not isinstance(value, EventAction):
            raise InvalidEventType(f"event_types holds an unknown or unspecified action ({value})")
        if value not in checked:
            checked.append(value)
    return tuple(checked)


def description(text: str) -> str:
    return require_value(text, "description", "INVALID_DESCRIPTION", MAX_DESCRIPTION_LENGTH)


# -- ports -------------------------------------------------------------------------------------


class ModelChecks(Protocol):
    """The registry's permission check on a model (RegistryService.require)."""

    def require(self, ctx: CallContext, name: str, need: Level) -> None: ...


class Identities(Protocol):
    """The access database's users (modelreg_server.access.store.SqlAccessStore)."""

    def get_user(self, name: str) -> User | None: ...


class Sender(Protocol):
    """POSTs one signed message (registry_service.webhook_delivery.HttpSender)."""

    def send(self, url: str, message: Message) -> SendResult: ...


class WebhookStore(Protocol):
    """Persists webhooks and deliveries (registry_service.store.webhooks). Every method is one
    transaction; NotFound errors are the domain's."""

    def create_webhook(
        self,
        webhook_id: str,
        url: str,
        model_name: str,
        event_types: Sequence[EventAction],
        active: bool,
        description: str,
        created_by: str,
        secret: str,
        max_webhooks: int,
        *,
        write: WriteKey | None = None,
    ) -> CreatedWebhook:
        """``write``: the call's idempotency key; a retry returns the webhook and its secret."""
        ...

    def get_webhook(self, webhook_id: str) -> Webhook: ...
    def list_webhooks(self, limit: int, offset: int, scope: WebhookScope | None) -> list[Webhook]: ...
    def update_webhook(self, webhook_id: str, changes: WebhookChanges, actor: str) -> Webhook:
        """``actor`` becomes the webhook's created_by when it re-activates it."""
        ...

    def delete_webhook(self, webhook_id: str, *, write: WriteKey | None = None) -> None: ...
    def rotate_secret(
        self, webhook_id: str, secret: str, grace_ms: int, *, write: WriteKey | None = None
    ) -> CreatedWebhook: ...
    def signing_secrets(self, webhook_id: str) -> tuple[str, ...]: ...
    def list_deliveries(
        self, webhook_id: str, status: DeliveryStatus | None, limit: int, offset: int
    ) -> list[WebhookDelivery]: ...
    def replay(self, webhook_id: str, delivery_id: int) -> int: ...


# -- the use cases -----------------------------------------------------------------------------


@dataclass
class WebhookService:
    store: WebhookStore
    models: ModelChecks
    sender: Sender
    resolve: Resolver
    policy: AccessPolicy = field(default_factory=AccessPolicy)
    settings: WebhookSettings = field(default_factory=WebhookSettings)
    clock: Callable[[], int] = field(default=lambda: int(datetime.now(UTC).timestamp() * 1000))
    # The users whose current access deliveries need (None: access control is off).
    identities: Identities | None = None
    admin_group: str | None = None
    # MODELREG_BOOTSTRAP_ADMIN_TOKEN is set: its admin, no user, keeps its webhooks until unset.
    bootstrap_admin: bool = False
    _tests: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(MAX_TESTS_IN_FLIGHT), init=False
    )

    def _require_manage(self, ctx: CallContext, model_name: str, what: str) -> None:
        if model_name:
            self.models.require(ctx, model_name, Level.MANAGE)
        else:
            require_admin(ctx.principal, what, "webhooks")

    def _managed(self, ctx: CallContext, webhook_id: str) -> Webhook:
        """The webhook, if the caller may manage it. A per-model webhook whose model was deleted
        has no model left to hold MANAGE on: only an admin manages it."""
        if not webhook_id:
            raise WebhookNotFound(webhook_id)
        webhook = self.store.get_webhook(webhook_id)
        if webhook.model_id is not None and not webhook.model_name:
            require_admin(ctx.principal, f"managing webhook '{webhook_id}' of a deleted model", "webhooks")
        else:
            self._require_manage(ctx, webhook.model_name, f"managing registry-wide webhook '{webhook_id}'")
        return webhook

    def create_webhook(
        self,
        ctx: CallContext,
        url: str,
        model_name: str = "",
        types: Sequence[int | EventAction] = (),
        description_text: str = "",
        active: bool = True,
    ) -> CreatedWebhook:
        if model_name:
            rules.model_name(model_name, "model_name")
        checked_types = event_types(types)
        text = description(description_text)
        # Authorized before the URL is looked at: its check resolves names, which must tell
        # nothing of the network to a caller who may not subscribe.
        self._require_manage(ctx, model_name, "creating a registry-wide webhook")
        url = check_url(url, self.settings, self.resolve)
        return self.store.create_webhook(
            "wh_" + secrets.token_hex(12),
            url,
            model_name,
            checked_types,
            active,
            text,
            ctx.actor,
            new_secret(),
            MAX_WEBHOOKS,
            write=ctx.write,
        )

    def lost_access(self, created_by: str, model_id: int | None, model_name: str) -> str:
        """Why the webhook's creator may no longer receive its events, or "": MANAGE on the
        model (an admin, for a registry-wide webhook), checked as the registry checks a call by
        that user now. A deleted model's last events still go: no grant on it remains to check."""
        if self.identities is None or (model_id is not None and not model_name):
            return ""
        user = self.identities.get_user(created_by)
        if user is not None and user.disabled:
            return f"user '{created_by}' who created it is disabled"
        # A user known only to the identity provider has no groups here: only direct grants count.
        groups = frozenset(user.groups if user else ())
        admin = (
            bool(user and user.admin)
            or (self.admin_group is not None and self.admin_group in groups)
            or (user is None and self.bootstrap_admin and created_by == BOOTSTRAP_ADMIN)
        )
        ctx = CallContext(created_by, "webhook-delivery", Principal(created_by, groups, admin=admin))
        try:
            self._require_manage(ctx, model_name, "receiving a registry-wide webhook's events")
        except (PermissionDeniedError, NotFoundError) as exc:
            return f"'{created_by}' who created it lost access: {exc.message}"
        return ""

    def get_webhook(self, ctx: CallContext, webhook_id: str) -> Webhook:
        return self._managed(ctx, webhook_id)

    def list_webhooks(self, ctx: CallContext, page_size: int, page_token: str) -> Page[Webhook]:
        page = parse_page(
            page_size,
            page_token,
            default=WEBHOOKS_PAGE_DEFAULT,
            maximum=WEBHOOKS_PAGE_MAX,
            query=fingerprint("webhooks"),
        )
        principal = ctx.principal
        scope: WebhookScope | None = None
        if principal is not None and not principal.admin:
            everyone = self.policy.default_level >= Level.MANAGE
            scope = WebhookScope(None if everyone else grantee(principal))
        # A webhook is at most ~3.5 kB (URL, description, every event type): 1,000 fit a page.
        items, token = page.split(self.store.list_webhooks(page.fetch_limit, page.offset, scope), 4_096)
        return Page(tuple(items), token)

    def update_webhook(self, ctx: CallContext, webhook_id: str, changes: WebhookChanges) -> Webhook:
        self._managed(ctx, webhook_id)
        checked = WebhookChanges(
            url=check_url(changes.url, self.settings, self.resolve) if changes.url is not None else None,
            description=description(changes.description) if changes.description is not None else None,
            active=changes.active,
            event_types=event_types(changes.event_types) if changes.event_types is not None else None,
        )
        return self.store.update_webhook(webhook_id, checked, ctx.actor)

    def delete_webhook(self, ctx: CallContext, webhook_id: str) -> None:
        try:
            self._managed(ctx, webhook_id)
        except WebhookNotFound:
            if ctx.write is None:
                raise
            # Perhaps the retry of a delete that was applied: the store answers it by its key
            # (and raises WEBHOOK_NOT_FOUND when it was not), revealing nothing of others' webhooks.
        self.store.delete_webhook(webhook_id, write=ctx.write)

    def rotate_secret(self, ctx: CallContext, webhook_id: str) -> CreatedWebhook:
        self._managed(ctx, webhook_id)
        grace_ms = int(self.settings.secret_grace_hours * 3_600_000)
        return self.store.rotate_secret(webhook_id, new_secret(), grace_ms, write=ctx.write)

    def test_webhook(self, ctx: CallContext, webhook_id: str) -> tuple[SendResult, str]:
        """Sends a "webhook.test" message now (outside any transaction); (result, webhook-id)."""
        webhook = self._managed(ctx, webhook_id)
        now = self.clock()
        msg_id = f"msg_{webhook.id}_test_{now}"
        message = Message(msg_id, test_body(webhook, now), self.store.signing_secrets(webhook.id))
        if not self._tests.acquire(blocking=False):
            raise TooManyWebhookTests()
        try:
            return self.sender.send(webhook.url, message), msg_id
        finally:
            self._tests.release()

    def list_deliveries(
        self,
        ctx: CallContext,
        webhook_id: str,
        status: DeliveryStatus | None,
        page_size: int,
        page_token: str,
    ) -> Page[WebhookDelivery]:
        page = parse_page(
            page_size,
            page_token,
            default=DELIVERIES_PAGE_DEFAULT,
            maximum=DELIVERIES_PAGE_MAX,
            query=fingerprint("deliveries", webhook_id, status),
        )
        self._managed(ctx, webhook_id)
        rows = self.store.list_deliveries(webhook_id, status, page.fetch_limit, page.offset)
        items, token = page.split(rows, 1_536)
        return Page(tuple(items), token)

    def replay(self, ctx: CallContext, webhook_id: str, delivery_id: int) -> int:
        self._managed(ctx, webhook_id)
        return self.store.replay(webhook_id, delivery_id)
