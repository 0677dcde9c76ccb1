"""Who may subscribe, see and change webhooks, with access control on (no default level)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest

from modelreg.access_client import AccessClient
from modelreg.exceptions import NotFound, PermissionDenied, Unauthenticated
from modelreg.registry_client import RegistryClient
from modelreg_server.access.policy import Level
from tests.integration.access.conftest import BOOTSTRAP, auth_settings
from tests.integration.webhooks.conftest import Receiver, new_model, running_registry, settled

URL = "http://127.0.0.1:9/hook"  # nothing listens: deliveries fail, none leaves the host
T = TypeVar("T")


def _eventually(call: Callable[[], T]) -> T:
    """The call's answer once a grant just changed reaches the registry's access cache (0.5 s)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return call()
        except PermissionDenied:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass(frozen=True)
class Secured:
    target: str

    def client(self, token: str = "") -> RegistryClient:
        return RegistryClient(self.target, token=token)

    def user(self, name: str, *, admin: bool = False) -> RegistryClient:
        with AccessClient(self.target, token=BOOTSTRAP) as access:
            access.create_user(name, admin=admin)
            return self.client(access.create_token(name).secret)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    root = tmp_path_factory.mktemp("webhooks-secured")
    with running_registry(f"sqlite:///{root / 'registry.db'}", auth_settings(root, Level.NONE)) as target:
        yield Secured(target)


def test_no_token_is_unauthenticated(secured: Secured) -> None:
    with secured.client() as anonymous, pytest.raises(Unauthenticated):
        list(anonymous.list_webhooks())


def test_manage_on_the_model_is_needed_and_listing_shows_only_what_one_manages(secured: Secured) -> None:
    owner, editor, admin = secured.user("mona"), secured.user("eddie"), secured.user("ada", admin=True)
    model = new_model(owner)  # the creator holds MANAGE
    owner.set_registered_model_permission(model, "EDIT", user="eddie")

    with pytest.raises(PermissionDenied) as denied:
        editor.create_webhook(URL, model_name=model)
    assert denied.value.metadata["permission"] == "MANAGE"
    mine = owner.create_webhook(URL, model_name=model).webhook
    assert mine.created_by == "mona"

    with pytest.raises(PermissionDenied):
        owner.create_webhook(URL)  # registry-wide: admins only
    everywhere = admin.create_webhook(URL).webhook

    for call in (
        lambda: editor.get_webhook(mine.id),
        lambda: editor.delete_webhook(mine.id),
        lambda: editor.rotate_webhook_secret(mine.id),
        lambda: list(editor.list_webhook_deliveries(mine.id)),
        lambda: owner.get_webhook(everywhere.id),
        lambda: owner.update_webhook(everywhere.id, active=False),
    ):
        with pytest.raises(PermissionDenied):
            call()
    with pytest.raises(NotFound):
        owner.get_webhook("wh_000000000000000000000000")

    assert [w.id for w in owner.list_webhooks()] == [mine.id]
    assert list(editor.list_webhooks()) == []
    listed = {w.id for w in admin.list_webhooks()}
    assert {mine.id, everywhere.id} <= listed
    # A MANAGE grant given later makes the webhook the grantee's to manage.
    owner.set_registered_model_permission(model, "MANAGE", user="eddie")
    assert _eventually(lambda: editor.get_webhook(mine.id)).id == mine.id
    assert [w.id for w in editor.list_webhooks()] == [mine.id]
    editor.delete_webhook(mine.id)
    with pytest.raises(NotFound):
        owner.get_webhook(mine.id)


def test_a_deleted_models_webhook_is_left_to_admins(secured: Secured) -> None:
    owner, admin = secured.user("olga"), secured.user("root", admin=True)
    model = new_model(owner)
    hook = owner.create_webhook(URL, model_name=model).webhook
    owner.delete_registered_model(model)
    with pytest.raises(PermissionDenied):
        owner.get_webhook(hook.id)
    assert admin.get_webhook(hook.id).model_name == ""
    # The model's last event still went to it (here to a port nobody listens on: dead).
    [delivery] = settled(admin, hook.id, 1)
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("dead", 3, 0)


def _denied(call: Callable[[], object]) -> None:
    """Waits until ``call`` is refused (a revoked grant reaches the access cache in 0.5 s)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            call()
        except PermissionDenied:
            return
        assert time.monotonic() < deadline, "the grant was never revoked"
        time.sleep(0.05)


def test_a_subscriber_who_lost_manage_receives_nothing_more(secured: Secured, receiver: Receiver) -> None:
    owner, eddie = secured.user("rita"), secured.user("ron")
    model = new_model(owner)
    owner.set_registered_model_permission(model, "MANAGE", user="ron")
    _eventually(lambda: eddie.get_registered_model(model))
    hook = eddie.create_webhook(receiver.url, model_name=model, event_types=["VERSION_CREATED"]).webhook
    owner.delete_registered_model_permission(model, user="ron")
    _denied(lambda: eddie.get_registered_model(model))

    owner.create_model_version(model, "s3://bucket/confidential")
    [delivery] = settled(owner, hook.id, 1)
    assert delivery.status == "dead" and delivery.attempts == 0
    assert delivery.last_error.startswith("not sent: 'ron' who created it lost access")
    assert receiver.requests == []
    disabled = owner.get_webhook(hook.id)
    assert not disabled.active and "'ron' who created it lost access" in disabled.disabled_reason
    assert [w.disabled_reason for w in owner.list_webhooks() if w.id == hook.id] == [disabled.disabled_reason]

    # A manager re-activates it: deliveries go on under the manager's access.
    again = owner.update_webhook(hook.id, active=True)
    assert (again.active, again.disabled_reason, again.created_by) == (True, "", "rita")
    owner.create_model_version(model, "s3://bucket/public")
    [request] = receiver.wait_for(lambda seen: len(seen) >= 1)
    assert b"s3://bucket/public" in request.body or b'"version":2' in request.body


def test_the_url_is_looked_at_only_once_the_caller_may_subscribe(secured: Secured) -> None:
    """Otherwise anyone could learn what internal names resolve to from the refusals."""
    owner, stranger = secured.user("uma"), secured.user("sam")
    model = new_model(owner)
    hook = owner.create_webhook(URL, model_name=model).webhook
    for call in (
        lambda: stranger.create_webhook("https://localhost/x", model_name=model),
        lambda: stranger.create_webhook("https://localhost/x"),
        lambda: stranger.update_webhook(hook.id, url="https://localhost/x"),
    ):
        with pytest.raises(PermissionDenied):
            call()


def test_the_bootstrap_admins_registry_wide_webhook_keeps_receiving(
    secured: Secured, receiver: Receiver
) -> None:
    owner = secured.user("bea")
    with secured.client(BOOTSTRAP) as bootstrap:
        hook = bootstrap.create_webhook(receiver.url, event_types=["MODEL_CREATED"]).webhook
        model = new_model(owner)
        receiver.wait_for(lambda seen: any(model.encode() in r.body for r in seen))
        assert bootstrap.get_webhook(hook.id).active
        bootstrap.delete_webhook(hook.id)
