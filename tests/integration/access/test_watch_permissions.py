"""Who may watch the registry's events: READ on the model watched; every model only for callers
who read every model without a grant; a grant revoked during a watch ends it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest

from modelreg import exceptions
from modelreg.entities import ModelEvent
from registry_service.domain.service import ACCESS_CACHE_SECONDS
from tests.integration.access.conftest import BOOTSTRAP, SecuredServices


def _model(services: SecuredServices) -> str:
    name = f"watched-{uuid.uuid4().hex[:8]}"
    services.client(BOOTSTRAP).registry.create_registered_model(name)
    return name


def test_a_watch_needs_credentials_and_read_on_the_model(private: SecuredServices) -> None:
    name = _model(private)
    with pytest.raises(exceptions.Unauthenticated):
        private.client(None).registry.watch_model_events(name)
    reader = f"reader-{uuid.uuid4().hex[:6]}"
    token = private.user_token(reader)
    with pytest.raises(exceptions.PermissionDenied) as denied:
        private.client(token).registry.watch_model_events(name)
    assert (denied.value.reason, denied.value.metadata["permission"]) == ("PERMISSION_DENIED", "READ")
    private.client(BOOTSTRAP).registry.set_registered_model_permission(name, "READ", user=reader)
    time.sleep(ACCESS_CACHE_SECONDS)  # the denial above is cached that long
    watch = private.client(token).registry.watch_model_events(name)
    private.client(BOOTSTRAP).registry.set_registered_model_tag(name, "k", "v")
    assert next(watch).action == "MODEL_TAG_SET"
    watch.close()


def test_watching_every_model_needs_read_on_all_of_them(
    private: SecuredServices, secured: SecuredServices
) -> None:
    token = private.user_token(f"user-{uuid.uuid4().hex[:6]}")
    with pytest.raises(exceptions.PermissionDenied) as denied:
        private.client(token).registry.watch_model_events()
    assert "watch one model by name" in str(denied.value)
    # An admin may; so may anyone where every user reads every model by default.
    private.client(BOOTSTRAP).registry.watch_model_events().close()
    secured.client(secured.user_token(f"user-{uuid.uuid4().hex[:6]}")).registry.watch_model_events().close()


def _wait_until(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.02)


def test_a_revoked_grant_ends_the_watch(private: SecuredServices) -> None:
    name = _model(private)
    reader = f"reader-{uuid.uuid4().hex[:6]}"
    token = private.user_token(reader)
    admin = private.client(BOOTSTRAP).registry
    admin.set_registered_model_permission(name, "READ", user=reader)
    # From the first event, so the watch sees "before" however late its thread connects.
    watch = private.client(token).registry.watch_model_events(name, from_beginning=True)
    got: list[ModelEvent] = []
    failure: list[BaseException] = []

    def read() -> None:
        try:
            got.extend(watch)
        except exceptions.ModelregError as exc:
            failure.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    admin.set_registered_model_tag(name, "before", "revocation")
    # Revoke only once the watch has read "before": the stream is connected and following.
    _wait_until(lambda: any(event.from_value == "before" for event in got) or not thread.is_alive())
    admin.delete_registered_model_permission(name, user=reader)
    # Writes after the revocation: the watch ends with PERMISSION_DENIED before sending any once
    # the cached grant (0.5 s) has expired; until then it may still send them.
    while thread.is_alive():
        admin.set_registered_model_tag(name, "after", "revocation")
        thread.join(0.2)
    assert [type(exc) for exc in failure] == [exceptions.PermissionDenied]
    seen = [event.from_value for event in got]
    assert "before" in seen
    # After it only the revocation and "after" tags sent until the cached grant expired.
    assert set(seen[seen.index("before") + 1 :]) <= {"after", "reader", f"user:{reader}"}
