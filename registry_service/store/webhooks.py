"""SQL of webhooks and their deliveries (registry_service.domain.webhooks).

How deliveries stay ordered, exactly-claimed and crash-safe on any number of replicas:
- Fan-out: a webhook's events past its ``cursor`` become delivery rows, and the cursor moves past
  them, in one transaction whose UPDATE of the cursor only applies if it still holds the value
  read (a replica that raced it changes nothing); (webhook_id, event_id) is unique besides. Event
  ids never appear below one already seen, so a cursor misses nothing.
- Claim: only a webhook's lowest pending delivery (its head) is claimable, when due and not leased.
  A worker takes it with ``UPDATE ... SET leased_until, leased_by WHERE id AND status='pending'
  AND leased_until < now``: of two replicas racing, the second's WHERE no longer holds once the
  first commits (the row lock on PostgreSQL/MySQL, the database lock on SQLite), so it gets 0 rows.
  While a delivery of a webhook is leased nothing else of it is claimable (not even a delivery
  replayed below it): one request at a time per webhook, in event order.
- A worker killed mid-request leaves its lease, which expires after the request's timeout and a
  margin; any worker then attempts the delivery again (at least once, never lost).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from modelreg.wire import now_ms
from modelreg_server.access.policy import Level
from modelreg_server.db import read_only
from modelreg_server.idempotency import AppliedWrites, WriteKey, nothing, replayed
from registry_service.domain.entities import EventAction, ModelEvent
from registry_service.domain.errors import RegisteredModelNotFound
from registry_service.domain.webhooks import (
    CreatedWebhook,
    DeliveryNotFound,
    DeliveryPending,
    DeliveryStatus,
    SendResult,
    TooManyWebhooks,
    Webhook,
    WebhookChanges,
    WebhookDelivery,
    WebhookNotFound,
    WebhookScope,
)
from registry_service.store.schema import APPLIED_WRITES, WebhookDeliveryRow, WebhookRow
from registry_service.store.sql import _EVENTS_WITH_GATES, EVENTS, GRANTS, M, _event_entity, _granted_to

W = cast(sa.Table, WebhookRow.__table__)
D = cast(sa.Table, WebhookDeliveryRow.__table__)
_PENDING, _SUCCEEDED, _DEAD = (s.value for s in DeliveryStatus)
_ACTIONS = {action.value: action for action in EventAction}

_WEBHOOK_SELECT = sa.select(W, M.c.name.label("current_name")).select_from(
    W.outerjoin(M, M.c.id == W.c.model_id)
)
_LAST_EVENT = sa.select(sa.func.coalesce(sa.func.max(EVENTS.c.id), 0))


@dataclass(frozen=True)
class Job:
    """A claimed attempt: what the worker sends, and to whom."""

    delivery: WebhookDelivery
    url: str
    event: ModelEvent
    secrets: tuple[str, ...]
    # Whose access the delivery needs, and to what (the model's current name; "" once deleted).
    created_by: str
    model_id: int | None
    model_name: str
    # This claim's lease (leased_by): only its own attempt's result is recorded, never that of
    # an earlier claim of the same delivery, even by the same worker.
    lease: str


def _webhook(row: sa.Row[Any]) -> Webhook:
    return Webhook(
        id=row.id,
        url=row.url,
        model_id=row.model_id,
        model_name=row.current_name or "",
        event_types=tuple(_ACTIONS[v] for v in row.event_types.split(",") if v in _ACTIONS),
        active=bool(row.active),
        description=row.description,
        created_by=row.created_by,
        creation_time=row.creation_time,
        last_updated_time=row.last_updated_time,
        previous_secret_expiry_time=row.previous_secret_until if row.previous_secret else 0,
        disabled_reason=row.disabled_reason,
    )


def _delivery(row: sa.Row[Any]) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_time=row.next_attempt_at,
        last_response_code=row.last_status_code,
        last_error=row.last_error,
        creation_time=row.creation_time,
        last_updated_time=row.last_updated_time,
    )


def _secrets(row: Any, now: int) -> tuple[str, ...]:
    if row.previous_secret and row.previous_secret_until > now:
        return (row.secret, row.previous_secret)
    return (row.secret,)


def _replayed_created(store: SqlWebhookStore, webhook_id: str, *_: Any, **__: Any) -> CreatedWebhook:
    """A retried create or rotation is answered with the webhook and its current secret."""
    with store._reads.begin() as session:
        secret = session.scalar(sa.select(W.c.secret).where(W.c.id == webhook_id))
        if secret is None:
            raise WebhookNotFound(webhook_id)
        return CreatedWebhook(store._get(session, webhook_id), secret)


class SqlWebhookStore:
    """WebhookStore on the registry's database; also the worker's fan-out, claim and finish."""

    def __init__(self, engine: Engine, clock: Callable[[], int] = now_ms) -> None:
        if engine.dialect.name in ("mysql", "mariadb"):
            engine = engine.execution_options(isolation_level="READ COMMITTED")
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._reads = sessionmaker(read_only(engine), expire_on_commit=False)
        # The registry's idempotency keys: a retried create, rotation or delete applies once.
        self.applied_writes = AppliedWrites(APPLIED_WRITES, self._sessions, self._reads)
        self._clock = clock

    def _get(self, session: Session, webhook_id: str) -> Webhook:
        row = session.execute(_WEBHOOK_SELECT.where(W.c.id == webhook_id)).one_or_none()
        if row is None:
            raise WebhookNotFound(webhook_id)
        return _webhook(row)

    # -- subscriptions -------------------------------------------------------------------------

    @replayed(_replayed_created)
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
        now = self._clock()
        with self.applied_writes.begin(write, webhook_id) as session:
            if (session.scalar(sa.select(sa.func.count()).select_from(W)) or 0) >= max_webhooks:
                raise TooManyWebhooks()
            model_id = None
            if model_name:
                model_id = session.scalar(sa.select(M.c.id).where(M.c.name == model_name))
                if model_id is None:
                    raise RegisteredModelNotFound(model_name)
            session.execute(
                sa.insert(W).values(
                    id=webhook_id,
                    url=url,
                    model_id=model_id,
                    model_name=model_name,
                    event_types=",".join(a.value for a in event_types),
                    active=active,
                    description=description,
                    created_by=created_by,
                    disabled_reason="",
                    creation_time=now,
                    last_updated_time=now,
                    secret=secret,
                    previous_secret="",
                    previous_secret_until=0,
                    # Only events appended from now on are delivered.
                    cursor=_LAST_EVENT.scalar_subquery(),
                )
            )
            return CreatedWebhook(self._get(session, webhook_id), secret)

    def get_webhook(self, webhook_id: str) -> Webhook:
        with self._reads.begin() as session:
            return self._get(session, webhook_id)

    def list_webhooks(self, limit: int, offset: int, scope: WebhookScope | None) -> list[Webhook]:
        statement = _WEBHOOK_SELECT.order_by(W.c.creation_time, W.c.id).limit(limit).offset(offset)
        if scope is not None:
            condition: sa.ColumnElement[bool] = W.c.model_id.is_not(None)
            if scope.grantee is not None:
                condition = sa.and_(
                    condition,
                    sa.exists().where(
                        GRANTS.c.model_id == W.c.model_id,
                        GRANTS.c.level >= int(Level.MANAGE),
                        _granted_to(scope.grantee.user, list(scope.grantee.groups)),
                    ),
                )
            statement = statement.where(condition)
        with self._reads.begin() as session:
            return [_webhook(row) for row in session.execute(statement)]

    def update_webhook(self, webhook_id: str, changes: WebhookChanges, actor: str) -> Webhook:
        values: dict[str, Any] = {"last_updated_time": self._clock()}
        if changes.url is not None:
            values["url"] = changes.url
        if changes.description is not None:
            values["description"] = changes.description
        if changes.event_types is not None:
            values["event_types"] = ",".join(a.value for a in changes.event_types)
        with self._sessions.begin() as session:
            current = session.execute(sa.select(W.c.active).where(W.c.id == webhook_id)).one_or_none()
            if current is None:
                raise WebhookNotFound(webhook_id)
            if changes.active is not None:
                values["active"] = changes.active
                if changes.active and not current.active:
                    # Re-activated: the events of the pause are not delivered, and deliveries
                    # go on under the access of whoever re-activated it.
                    values["cursor"] = _LAST_EVENT.scalar_subquery()
                    values["created_by"] = actor
                    values["disabled_reason"] = ""
            session.execute(sa.update(W).where(W.c.id == webhook_id).values(**values))
            return self._get(session, webhook_id)

    @replayed(nothing)
    def delete_webhook(self, webhook_id: str, *, write: WriteKey | None = None) -> None:
        with self.applied_writes.begin(write, webhook_id) as session:
            session.execute(sa.delete(D).where(D.c.webhook_id == webhook_id))
            if (
                cast(sa.CursorResult[Any], session.execute(sa.delete(W).where(W.c.id == webhook_id))).rowcount
                != 1
            ):
                raise WebhookNotFound(webhook_id)

    @replayed(_replayed_created)
    def rotate_secret(
        self, webhook_id: str, secret: str, grace_ms: int, *, write: WriteKey | None = None
    ) -> CreatedWebhook:
        now = self._clock()
        with self.applied_writes.begin(write, webhook_id) as session:
            result = session.execute(
                sa.update(W)
                .where(W.c.id == webhook_id)
                # MySQL assigns left to right, reading columns already assigned: the old secret
                # must be copied before it is replaced.
                .ordered_values(
                    (W.c.previous_secret, W.c.secret),
                    (W.c.previous_secret_until, now + grace_ms),
                    (W.c.secret, secret),
                    (W.c.last_updated_time, now),
                )
            )
            if cast(sa.CursorResult[Any], result).rowcount != 1:
                raise WebhookNotFound(webhook_id)
            return CreatedWebhook(self._get(session, webhook_id), secret)

    def signing_secrets(self, webhook_id: str) -> tuple[str, ...]:
        with self._reads.begin() as session:
            row = session.execute(
                sa.select(W.c.secret, W.c.previous_secret, W.c.previous_secret_until).where(
                    W.c.id == webhook_id
                )
            ).one_or_none()
        if row is None:
            raise WebhookNotFound(webhook_id)
        return _secrets(row, self._clock())

    # -- deliveries ----------------------------------------------------------------------------

    def list_deliveries(
        self, webhook_id: str, status: DeliveryStatus | None, limit: int, offset: int
    ) -> list[WebhookDelivery]:
        statement = sa.select(D).where(D.c.webhook_id == webhook_id)
        if status is not None:
            statement = statement.where(D.c.status == status.value)
        statement = statement.order_by(D.c.event_id.desc()).limit(limit).offset(offset)
        with self._reads.begin() as session:
            return [_delivery(row) for row in session.execute(statement)]

    def replay(self, webhook_id: str, delivery_id: int) -> int:
        """Pending again, attempts from zero, due now; 0 = every dead delivery of the webhook."""
        now = self._clock()
        reset = {
            "status": _PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "leased_until": 0,
            "leased_by": "",
            "last_updated_time": now,
        }
        with self._sessions.begin() as session:
            if delivery_id == 0:
                result = session.execute(
                    sa.update(D).where(D.c.webhook_id == webhook_id, D.c.status == _DEAD).values(**reset)
                )
                return int(cast(sa.CursorResult[Any], result).rowcount)
            status = session.scalar(
                sa.select(D.c.status).where(D.c.id == delivery_id, D.c.webhook_id == webhook_id)
            )
            if status is None:
                raise DeliveryNotFound(webhook_id, delivery_id)
            if status == _PENDING:
                raise DeliveryPending(delivery_id)
            session.execute(sa.update(D).where(D.c.id == delivery_id).values(**reset))
            return 1

    # -- the worker ----------------------------------------------------------------------------

    def fan_out(self, batch: int) -> int:
        """Turns the events past each active webhook's cursor (up to ``batch`` per webhook) into
        pending deliveries of those it subscribes to; returns how many were created."""
        created = 0
        with self._reads.begin() as session:
            webhooks = session.execute(
                sa.select(W.c.id, W.c.model_id, W.c.event_types, W.c.cursor).where(
                    W.c.active == sa.true(), W.c.cursor < _LAST_EVENT.scalar_subquery()
                )
            ).all()
        for webhook in webhooks:
            created += self._fan_out_one(webhook, batch)
        return created

    def _fan_out_one(self, webhook: Any, batch: int) -> int:
        now = self._clock()
        wanted = set(webhook.event_types.split(",")) - {""}
        with self._sessions.begin() as session:
            events = session.execute(
                sa.select(EVENTS.c.id, EVENTS.c.model_id, EVENTS.c.action)
                .where(EVENTS.c.id > webhook.cursor)
                .order_by(EVENTS.c.id)
                .limit(batch)
            ).all()
            if not events:
                return 0
            moved = session.execute(
                sa.update(W)
                .where(W.c.id == webhook.id, W.c.cursor == webhook.cursor)
                .values(cursor=events[-1].id)
            )
            if cast(sa.CursorResult[Any], moved).rowcount != 1:
                return 0  # another worker fanned these out
            rows = [
                {
                    "webhook_id": webhook.id,
                    "event_id": e.id,
                    "status": _PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "leased_until": 0,
                    "leased_by": "",
                    "last_status_code": 0,
                    "last_error": "",
                    "creation_time": now,
                    "last_updated_time": now,
                }
                for e in events
                if (webhook.model_id is None or e.model_id == webhook.model_id)
                and (not wanted or e.action in wanted)
            ]
            if rows:
                session.execute(sa.insert(D), rows)
            return len(rows)

    def claim(self, worker: str, limit: int, lease_ms: int) -> list[Job]:
        """Leases up to ``limit`` due head deliveries (one per webhook) to ``worker``."""
        now = self._clock()
        head, busy = D.alias("head"), D.alias("busy")
        candidates = (
            sa.select(D.c.id)
            .join(W, W.c.id == D.c.webhook_id)
            .where(
                W.c.active == sa.true(),
                D.c.status == _PENDING,
                D.c.next_attempt_at <= now,
                D.c.leased_until < now,
                D.c.event_id
                == sa.select(sa.func.min(head.c.event_id))
                .where(head.c.webhook_id == D.c.webhook_id, head.c.status == _PENDING)
                .scalar_subquery(),
                # A delivery replayed below one in flight waits for that one to finish.
                ~sa.exists().where(
                    busy.c.webhook_id == D.c.webhook_id, busy.c.status == _PENDING, busy.c.leased_until >= now
                ),
            )
            .order_by(D.c.next_attempt_at)
            .limit(limit)
        )
        with self._reads.begin() as session:
            ids = list(session.scalars(candidates))
        jobs: list[Job] = []
        if not ids:
            return jobs
        # One transaction for the batch: a commit per claim would bound the whole worker's rate.
        with self._sessions.begin() as session:
            for delivery_id in ids:
                lease = f"{secrets.token_hex(8)}@{worker}"[:64]
                taken = session.execute(
                    sa.update(D)
                    .where(D.c.id == delivery_id, D.c.status == _PENDING, D.c.leased_until < now)
                    .values(leased_until=now + lease_ms, leased_by=lease)
                )
                if cast(sa.CursorResult[Any], taken).rowcount != 1:
                    continue  # another worker took it
                row = session.execute(
                    sa.select(
                        D,
                        W.c.url,
                        W.c.secret,
                        W.c.previous_secret,
                        W.c.previous_secret_until,
                        W.c.created_by,
                        W.c.model_id,
                        M.c.name.label("current_name"),
                    )
                    .join(W, W.c.id == D.c.webhook_id)
                    .outerjoin(M, M.c.id == W.c.model_id)
                    .where(D.c.id == delivery_id)
                ).one()
                event = session.execute(_EVENTS_WITH_GATES.where(EVENTS.c.id == row.event_id)).one()
                jobs.append(
                    Job(
                        _delivery(row),
                        row.url,
                        _event_entity(event),
                        _secrets(row, now),
                        row.created_by,
                        row.model_id,
                        row.current_name or "",
                        lease,
                    )
                )
        return jobs

    def disable(self, job: Job, reason: str) -> None:
        """Makes the job's webhook inactive for ``reason`` and its pending deliveries dead, unsent
        (a manager may replay them after re-activating it); releases the job's lease."""
        now = self._clock()
        webhook_id = job.delivery.webhook_id
        with self._sessions.begin() as session:
            session.execute(
                sa.update(W)
                .where(W.c.id == webhook_id)
                .values(active=False, disabled_reason=reason[:1024], last_updated_time=now)
            )
            session.execute(
                sa.update(D)
                .where(D.c.webhook_id == webhook_id, D.c.status == _PENDING)
                .values(
                    status=_DEAD,
                    leased_until=0,
                    leased_by="",
                    last_error=f"not sent: {reason}"[:1024],
                    last_updated_time=now,
                )
            )

    def prune(self, retention_ms: int) -> int:
        """Deletes the succeeded and dead deliveries last updated before ``retention_ms`` ago. The
        cursors are past their events, so they are never fanned out again."""
        cutoff = self._clock() - retention_ms
        with self._sessions.begin() as session:
            result = session.execute(
                sa.delete(D).where(D.c.status != _PENDING, D.c.last_updated_time < cutoff)
            )
            return int(cast(sa.CursorResult[Any], result).rowcount)

    def finish(self, job: Job, result: SendResult, retry_in_ms: int | None) -> bool:
        """Records an attempt: succeeded, pending again in ``retry_in_ms``, or dead (None).
        False when its claim's lease was lost (expired and claimed again): that claim records its own."""
        now = self._clock()
        if result.success:
            status, next_at = _SUCCEEDED, now
        elif retry_in_ms is None:
            status, next_at = _DEAD, now
        else:
            status, next_at = _PENDING, now + retry_in_ms
        with self._sessions.begin() as session:
            done = session.execute(
                sa.update(D)
                .where(D.c.id == job.delivery.id, D.c.leased_by == job.lease, D.c.status == _PENDING)
                .values(
                    status=status,
                    attempts=D.c.attempts + 1,
                    next_attempt_at=next_at,
                    leased_until=0,
                    leased_by="",
                    last_status_code=result.status_code,
                    last_error=result.error[:1024],
                    last_updated_time=now,
                )
            )
            return cast(sa.CursorResult[Any], done).rowcount == 1
