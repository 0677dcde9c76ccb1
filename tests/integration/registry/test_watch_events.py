"""WatchModelEvents through a real registry and the real client: filters, bad input, the bound on
watchers, and the stream's maximum length, which the client's iterator resumes across."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg import RegistryClient
from modelreg.entities import ModelEvent
from modelreg.exceptions import InvalidArgument, ModelregError, NotFound
from modelreg.registry.v1 import registry_pb2 as pb
from modelreg.registry.v1 import registry_pb2_grpc
from modelreg_server.errors import InvalidArgumentError
from modelreg_server.event_log import encode_cursor
from registry_service import config as registry_config
from registry_service import server as registry_server
from registry_service.domain.watch import WatchLimits, decode_cursor
from tests.conftest import Backend
from tests.integration.errors.conftest import Answer, _answer

MAX_WATCHERS = 3
# Bounds the tests' waits for events that should arrive at once; never reached when they pass.
GUARD_SECONDS = 60


@dataclass
class Registry:
    target: str
    client: RegistryClient
    stub: registry_pb2_grpc.RegistryServiceStub


def _serve(database_url: str, limits: WatchLimits) -> Iterator[Registry]:
    server, port = registry_server.create_server(
        registry_config.Settings(
            host="127.0.0.1", port=0, database_url=database_url, tracking_target="127.0.0.1:9", watch=limits
        )
    )
    server.start()
    target = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(target)
    client = RegistryClient(target)
    try:
        yield Registry(target, client, registry_pb2_grpc.RegistryServiceStub(channel))
    finally:
        client.close()
        channel.close()
        server.stop(None).wait()


@pytest.fixture
def registry(backend: Backend) -> Iterator[Registry]:
    yield from _serve(
        backend.url, WatchLimits(max_watchers=MAX_WATCHERS, max_seconds=600, heartbeat_seconds=0.2)
    )


def _collect(watch: Iterator[ModelEvent], count: int) -> Callable[[], list[ModelEvent]]:
    """Reads ``count`` events from ``watch`` on a thread; the returned call waits for them."""
    got: list[ModelEvent] = []

    def read() -> None:
        for event in watch:
            got.append(event)
            if len(got) == count:
                return

    thread = threading.Thread(target=read, daemon=True)
    thread.start()

    def result() -> list[ModelEvent]:
        thread.join(GUARD_SECONDS)
        return got

    return result


def _history(client: RegistryClient, name: str) -> list[ModelEvent]:
    return list(client.list_model_events(name))


def _key(event: ModelEvent) -> tuple[int, str, int, str, str, str]:
    return (event.event_id, event.name, event.version, event.action, event.from_value, event.to_value)


def _writes(client: RegistryClient, name: str) -> None:
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, "s3://bucket/model")
    client.transition_model_version_stage(name, 1, "Staging")
    client.transition_model_version_stage(name, 1, "Production")
    client.transition_model_version_stage(name, 2, "Production", archive_existing_versions=True)
    client.set_registered_model_alias(name, "champion", 2)
    client.set_registered_model_alias(name, "challenger", 3)
    client.set_registered_model_alias(name, "champion", 3)
    client.delete_registered_model_alias(name, "champion")
    client.set_registered_model_tag(name, "team", "search")
    client.update_model_version(name, 3, "the third")


def test_watchers_receive_the_model_events_filtered_in_order(registry: Registry) -> None:
    client, name, other = registry.client, f"w-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    live = client.watch_model_events(name=None)  # every model, from now: follows the feed
    _writes(client, name)
    _writes(client, other)
    history = _history(client, name)
    everything = sorted(history + _history(client, other), key=lambda event: event.event_id)
    live_events = _collect(live, len(everything))()
    live.close()
    assert [_key(e) for e in live_events] == [_key(e) for e in everything]
    assert all(event.cursor for event in live_events)

    cases: dict[str, tuple[dict[str, object], Callable[[ModelEvent], bool]]] = {
        "model": ({}, lambda e: True),
        "actions": (
            {"actions": ["STAGE_TRANSITIONED", "alias_moved"]},
            lambda e: e.action in ("STAGE_TRANSITIONED", "ALIAS_MOVED"),
        ),
        "stages": (
            {"stages": ["production"]},
            lambda e: e.action == "STAGE_TRANSITIONED" and "Production" in (e.from_value, e.to_value),
        ),
        "aliases": (
            {"aliases": ["champion"]},
            lambda e: (
                (e.action, e.to_value if e.action == "ALIAS_SET" else e.from_value)
                in {("ALIAS_SET", "champion"), ("ALIAS_DELETED", "champion")}
                or (e.action == "ALIAS_MOVED" and e.comment == "champion")
            ),
        ),
    }
    for label, (arguments, wanted) in cases.items():
        expected = [e for e in history if wanted(e)]
        assert expected, label
        watch = client.watch_model_events(name, from_beginning=True, **arguments)  # type: ignore[arg-type]
        got = _collect(watch, len(expected))()
        watch.close()
        assert [_key(e) for e in got] == [_key(e) for e in expected], label
    # Resuming after the last event of the model: the next one is the next write, nothing before.
    rest = client.watch_model_events(name, cursor=history[-1].cursor or live_events[-1].cursor)
    client.set_registered_model_tag(other, "mark", "other")
    client.set_registered_model_tag(name, "mark", "this")
    after = _collect(rest, 1)()
    rest.close()
    assert [(e.action, e.from_value, e.to_value) for e in after] == [("MODEL_TAG_SET", "mark", "this")]


def test_a_watch_ends_with_the_deletion_of_its_model(registry: Registry) -> None:
    client, name = registry.client, f"d-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    watch = client.watch_model_events(name)
    got: list[ModelEvent] = []
    client.create_model_version(name, "s3://bucket/model")
    client.delete_registered_model(name)
    with pytest.raises(NotFound) as raised:
        got.extend(watch)
    assert raised.value.reason == "REGISTERED_MODEL_NOT_FOUND"
    assert [e.action for e in got] == ["VERSION_CREATED", "MODEL_DELETED"]


def _watch_error(stub: registry_pb2_grpc.RegistryServiceStub, request: pb.WatchModelEventsRequest) -> Answer:
    with pytest.raises(grpc.RpcError) as raised:
        next(iter(stub.WatchModelEvents(request, timeout=10)))
    return _answer(raised.value)


def test_bad_input_is_refused_with_its_reason(registry: Registry) -> None:
    name = f"b-{uuid.uuid4().hex[:8]}"
    registry.client.create_registered_model(name)
    ahead = encode_cursor(10**9)
    cases = {
        "malformed cursor": (pb.WatchModelEventsRequest(cursor="not-a-cursor"), "INVALID_CURSOR", "cursor"),
        "cursor ahead": (pb.WatchModelEventsRequest(cursor=ahead), "CURSOR_AHEAD", "cursor"),
        "cursor and from_beginning": (
            pb.WatchModelEventsRequest(cursor=encode_cursor(0), from_beginning=True),
            "INVALID_CURSOR",
            "cursor",
        ),
        "unknown action": (pb.WatchModelEventsRequest(actions=[999]), "INVALID_ACTION", "actions"),  # type: ignore[list-item]
        "negative action": (pb.WatchModelEventsRequest(actions=[-1]), "INVALID_ACTION", "actions"),  # type: ignore[list-item]
        "unspecified action": (
            pb.WatchModelEventsRequest(actions=[pb.EVENT_ACTION_UNSPECIFIED]),
            "INVALID_ACTION",
            "actions",
        ),
        "stage": (pb.WatchModelEventsRequest(stages=["Prod"]), "INVALID_STAGE", "stages"),
        "too many stages": (pb.WatchModelEventsRequest(stages=["None"] * 5), "TOO_MANY_FILTERS", "stages"),
        "name": (pb.WatchModelEventsRequest(name="a/b"), "INVALID_NAME", "name"),
    }
    for label, (request, reason, field) in cases.items():
        assert _watch_error(registry.stub, request) == Answer(
            grpc.StatusCode.INVALID_ARGUMENT, reason, field
        ), label
    missing = pb.WatchModelEventsRequest(name=f"missing-{uuid.uuid4().hex[:8]}")
    assert _watch_error(registry.stub, missing).reason == "REGISTERED_MODEL_NOT_FOUND"
    # The client checks action names itself, and raises the server's errors at once.
    with pytest.raises(InvalidArgument, match="not an event action"):
        registry.client.watch_model_events(name, actions=["SOMETHING"])
    with pytest.raises(InvalidArgument) as raised:
        registry.client.watch_model_events(name, cursor="garbage")
    assert raised.value.reason == "INVALID_CURSOR"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_only_cursors_the_service_wrote_are_accepted(text: str) -> None:
    try:
        position = decode_cursor(text, False)
    except InvalidArgumentError as exc:
        assert (exc.reason, exc.metadata) == ("INVALID_CURSOR", {"field": "cursor"})
        return
    assert position is None if text == "" else encode_cursor(position) == text


def test_watchers_are_bounded_apart_from_the_stream_slots(registry: Registry) -> None:
    streams = [
        registry.stub.WatchModelEvents(pb.WatchModelEventsRequest(), timeout=60) for _ in range(MAX_WATCHERS)
    ]
    try:
        for stream in streams:
            assert next(stream).cursor  # the first heartbeat: the watch runs
        refused = _watch_error(registry.stub, pb.WatchModelEventsRequest())
        assert (refused.code, refused.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_WATCHERS")
        # Unary calls still have their workers.
        registry.client.create_registered_model(f"u-{uuid.uuid4().hex[:8]}")
    finally:
        for stream in streams:
            stream.cancel()


def test_a_watch_ends_ok_at_its_maximum_length_and_the_client_resumes(backend: Backend) -> None:
    for registry in _serve(backend.url, WatchLimits(max_watchers=4, max_seconds=0.5, heartbeat_seconds=0.1)):
        name = f"m-{uuid.uuid4().hex[:8]}"
        registry.client.create_registered_model(name)
        raw = list(registry.stub.WatchModelEvents(pb.WatchModelEventsRequest(name=name), timeout=30))
        assert raw and not raw[-1].HasField("event") and raw[-1].cursor  # OK, after a last heartbeat
        watch = registry.client.watch_model_events(name)
        got = _collect(watch, 6)
        for number in range(6):
            registry.client.set_registered_model_tag(name, "step", str(number))
            if number in (1, 3):
                # Past the stream's length: the iterator has to resume to see the next write.
                reconnects = watch.reconnects
                while watch.reconnects == reconnects:
                    threading.Event().wait(0.05)
        events = got()
        assert [e.to_value for e in events] == [str(n) for n in range(6)]
        assert watch.reconnects >= 2


def test_errors_not_worth_retrying_are_raised_at_once(registry: Registry) -> None:
    with pytest.raises(ModelregError) as raised:
        registry.client.watch_model_events(f"none-{uuid.uuid4().hex[:8]}")
    assert raised.value.code == "NOT_FOUND"
