"""The served model of ``modelreg serve`` (modelreg.serving.slot) against a real tracking server
(in-process) and a real registry process (stopped and started at will), with scikit-learn models
logged and registered through the client: pinned loads, swaps when an alias or a stage moves
(leases in flight keep their version), refused versions, swaps under continuous predictions,
offline starts from the cache, and catching up after the registry comes back."""

from __future__ import annotations

import contextlib
import gc
import json
import signal
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression

import modelreg
from modelreg import sklearn as modelreg_sklearn
from modelreg.exceptions import AlreadyExists
from modelreg.models import infer_signature
from modelreg.serving.slot import ModelSlot, ServingLoadError, SlotEvent
from modelreg_server.db import create_db_engine, upgrade
from registry_service.store import MIGRATIONS_DIR
from tests.conftest import Backend
from tests.servers import RegistryProcess, running_tracking

WAIT_SECONDS = 90.0  # generous bound of every wait: a condition not met by then fails the test
FEATURES = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.5, 0.25, 0.125]})


@dataclass
class Stack:
    tracking: str
    registry: RegistryProcess
    database_url: str
    root: Path


@pytest.fixture
def stack(backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Tracking in-process on SQLite, the registry as a process on ``backend`` (heartbeats every
    0.2 s so a stopped slot's watch ends quickly), a cache of the test's own, and calls to an
    unreachable service given up after 1 s instead of a minute."""
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MODELREG_RETRY_SECONDS", "1")
    engine = create_db_engine(backend.url)
    upgrade(engine, MIGRATIONS_DIR)
    engine.dispose()
    with running_tracking(tmp_path) as (tracking, _artifacts):
        registry = RegistryProcess(
            backend.url,
            tmp_path,
            env={"MODELREG_TRACKING_TARGET": tracking, "MODELREG_WATCH_HEARTBEAT_SECONDS": "0.2"},
        )
        registry.start()
        try:
            yield Stack(tracking, registry, backend.url, tmp_path)
        finally:
            registry.stop(signal.SIGKILL)


@pytest.fixture
def client(stack: Stack) -> Iterator[modelreg.Client]:
    with modelreg.Client(stack.tracking, stack.registry.target) as c:
        yield c


class Events:
    """The slot's events, collected from its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[SlotEvent] = []

    def __call__(self, event: SlotEvent) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: str) -> list[SlotEvent]:
        with self._lock:
            return [event for event in self.events if event.kind == kind]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {WAIT_SECONDS} s: {what}")
        time.sleep(0.05)


def constant_model(value: float) -> DummyRegressor:
    """A model whose every prediction is ``value``: which version answered is visible."""
    return DummyRegressor(strategy="constant", constant=value).fit(FEATURES, [value] * len(FEATURES))


def register(client: modelreg.Client, name: str, model: object, **save: object) -> int:
    """Saves ``model`` with an input example, logs it under a new run and registers it."""
    experiment = client.get_experiment_by_name("serving")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("serving")
    run_id = client.create_run(experiment_id).info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "model"
        save.setdefault("input_example", FEATURES)
        modelreg_sklearn.save_model(model, local, **save)  # type: ignore[arg-type]
        client.log_artifacts(run_id, str(local), "model")
    with contextlib.suppress(AlreadyExists):
        client.create_registered_model(name)
    return int(client.create_model_version(name, f"runs:/{run_id}/model", run_id).version)


def broken_model() -> LinearRegression:
    return LinearRegression().fit(FEATURES, [1.0, 2.0, 3.0])


def register_broken(client: modelreg.Client, name: str) -> int:
    """A version whose prediction on its own input example raises: the example (and the signature
    recorded from it) has a column the model was not fitted on."""
    example = FEATURES.assign(c=1.0)
    return register(client, name, broken_model(), input_example=example, signature=infer_signature(example))


def predicted(slot: ModelSlot) -> tuple[int | None, float]:
    with slot.lease() as loaded:
        return loaded.version, float(loaded.model.predict(FEATURES)[0])


@pytest.fixture
def name() -> str:
    return f"served-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def slots() -> Iterator[Callable[..., ModelSlot]]:
    """Makes slots (with fast retries of a watch that gave up) and stops each at the end."""
    made: list[ModelSlot] = []

    def make(uri: str, client: modelreg.Client, events: Events) -> ModelSlot:
        slot = ModelSlot(uri, client, on_event=events, follow_retry_seconds=0.2)
        made.append(slot)
        return slot

    yield make
    for slot in made:
        slot.stop()


def champion_of_two(
    client: modelreg.Client, name: str, slots: Callable[..., ModelSlot], events: Events
) -> ModelSlot:
    """Versions 1 and 2 (predicting 1.0 and 2.0), ``champion`` on 1, and a started slot of
    ``models:/name@champion`` that follows the registry."""
    register(client, name, constant_model(1.0))
    register(client, name, constant_model(2.0))
    client.set_registered_model_alias(name, "champion", 1)
    slot = slots(f"models:/{name}@champion", client, events)
    slot.start()
    wait_for(lambda: slot.following, "the slot follows the registry")
    return slot


def test_a_pinned_version_is_loaded_checked_and_not_followed(
    client: modelreg.Client, name: str, slots: Callable[..., ModelSlot]
) -> None:
    register(client, name, constant_model(1.0))
    register(client, name, constant_model(2.0))
    events = Events()
    slot = slots(f"models:/{name}/1", client, events)
    slot.start()
    assert predicted(slot) == (1, 1.0)
    loaded = slot.current
    assert loaded is not None and loaded.signature is not None
    metadata = loaded.metadata
    assert metadata["served_uri"] == f"models:/{name}/1"
    assert metadata["model_uri"] == f"models:/{name}/1"
    assert metadata["checks"] == {"signature": "present", "input_example": "predicted"}
    assert metadata["from_cache_offline"] is False
    assert set(metadata["files"]) >= {"modelreg-model.json", "model.skops", "input_example.json"}
    assert metadata["signature"]["inputs"][0]["name"] == "a"
    json.dumps(metadata)  # JSON-able, for GET /metadata
    assert [(e.kind, e.version) for e in events.events] == [("loaded", 1)]
    assert not slot.follows and not slot.following


def test_a_model_without_an_input_example_skips_that_check(
    client: modelreg.Client, name: str, slots: Callable[..., ModelSlot]
) -> None:
    register(client, name, constant_model(7.0), input_example=None)
    slot = slots(f"models:/{name}/latest", client, Events())
    slot.start()
    assert slot.current is not None
    assert slot.current.metadata["checks"] == {"signature": "absent", "input_example": "not stored"}
    assert predicted(slot) == (1, 7.0)


def test_nothing_to_serve_is_one_clear_error(client: modelreg.Client, name: str) -> None:
    with pytest.raises(ServingLoadError, match="cannot resolve"):
        ModelSlot(f"models:/{name}@champion", client).start()
    register_broken(client, name)
    with pytest.raises(ServingLoadError, match="prediction on its input example failed") as caught:
        ModelSlot(f"models:/{name}/1", client).start()
    assert "\n" not in str(caught.value)
    with pytest.raises(ServingLoadError, match="invalid model URI"):
        ModelSlot("models:/no/such/thing", client)


def test_an_alias_move_swaps_while_leases_keep_the_old_version(
    client: modelreg.Client, name: str, slots: Callable[..., ModelSlot]
) -> None:
    events = Events()
    slot = champion_of_two(client, name, slots, events)
    with slot.lease() as old:
        old_model = weakref.ref(old.model)
        client.set_registered_model_alias(name, "champion", 2)
        wait_for(lambda: slot.current is not None and slot.current.version == 2, "version 2 served")
        assert (old.version, float(old.model.predict(FEATURES)[0])) == (1, 1.0)
        with slot.lease() as new:
            assert (new.version, float(new.model.predict(FEATURES)[0])) == (2, 2.0)
            assert slot.in_flight() == {1: 1, 2: 1}
        del old
    wait_for(lambda: len(events.of("swapped")) == 1, "the swap reported")
    gc.collect()
    assert old_model() is None, "the old version is still referenced after its last lease ended"
    assert slot.in_flight() == {2: 0}
    swapped = events.of("swapped")
    assert [(e.version, e.previous) for e in swapped] == [(2, 1)]
    assert swapped[0].seconds is not None and swapped[0].seconds >= 0


def test_a_broken_version_is_refused_once_and_the_old_one_stays(
    client: modelreg.Client, name: str, slots: Callable[..., ModelSlot], stack: Stack
) -> None:
    register(client, name, constant_model(1.0))
    broken = register_broken(client, name)
    tampered = register(client, name, constant_model(3.0))
    fixed = register(client, name, constant_model(4.0))
    # The stored bytes of the third version change after registration: its digests fail.
    run_id = client.get_model_version(name, tampered).run_id
    [stored] = [p for p in (stack.root / "artifacts").rglob("model.skops") if run_id in p.as_posix()]
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes() + b"tampered")
    client.set_registered_model_alias(name, "champion", 1)
    events = Events()
    slot = slots(f"models:/{name}@champion", client, events)
    slot.start()
    wait_for(lambda: slot.following, "the slot follows the registry")

    client.set_registered_model_alias(name, "champion", broken)
    wait_for(lambda: len(events.of("load_failed")) == 1, "the broken version refused")
    [failed] = events.of("load_failed")
    assert failed.version == broken and "prediction on its input example failed" in failed.detail
    assert predicted(slot) == (1, 1.0)
    assert slot.failed_versions == {broken}
    # Another event of the model while the target stays on the refused version: not tried again.
    client.set_registered_model_alias(name, "other", 1)

    client.set_registered_model_alias(name, "champion", tampered)
    wait_for(lambda: len(events.of("load_failed")) == 2, "the tampered version refused")
    assert events.of("load_failed")[1].version == tampered
    assert "sha256" in events.of("load_failed")[1].detail or "damaged" in events.of("load_failed")[1].detail
    assert predicted(slot) == (1, 1.0)

    client.set_registered_model_alias(name, "champion", fixed)
    wait_for(lambda: slot.current is not None and slot.current.version == fixed, "the fixed version served")
    wait_for(lambda: len(events.of("swapped")) == 1, "the swap reported")
    assert [e.version for e in events.of("load_failed")] == [broken, tampered]
    assert [(e.version, e.previous) for e in events.of("swapped")] == [(fixed, 1)]
    assert predicted(slot) == (fixed, 4.0)


def test_five_swaps_and_a_rollback_under_continuous_predictions(
    client: modelreg.Client, name: str, slots: Callable[..., ModelSlot]
) -> None:
    versions = [register(client, name, constant_model(float(n))) for n in range(1, 7)]
    client.transition_model_version_stage(name, versions[0], "Production")
    events = Events()
    slot = slots(f"models:/{name}/Production", client, events)
    slot.start()
    wait_for(lambda: slot.following, "the slot follows the registry")
    failures: list[str] = []
    answered: set[int | None] = set()
    count = 0
    done = threading.Event()

    def predict_continuously() -> None:
        nonlocal count
        while not done.is_set():
            try:
                version, value = predicted(slot)
                if value != float(version or 0):
                    failures.append(f"version {version} predicted {value}")
                answered.add(version)
                count += 1
            except Exception as exc:
                failures.append(repr(exc))

    worker = threading.Thread(target=predict_continuously)
    worker.start()
    try:
        wait_for(lambda: 1 in answered, "a prediction answered by version 1")
        for version in versions[1:]:
            client.transition_model_version_stage(name, version, "Production")
            wait_for(lambda v=version: slot.current is not None and slot.current.version == v, f"v{version}")
            wait_for(lambda v=version: v in answered, f"a prediction answered by version {version}")
        client.rollback_stage(name, "Production")
        wait_for(lambda: slot.current is not None and slot.current.version == 5, "rolled back to version 5")
        wait_for(lambda: len(events.of("swapped")) == 6, "every swap reported")
    finally:
        done.set()
        worker.join()
    assert failures == []
    assert count > 0 and answered == set(versions)
    assert [(e.version, e.previous) for e in events.of("swapped")] == [
        (2, 1),
        (3, 2),
        (4, 3),
        (5, 4),
        (6, 5),
        (5, 6),
    ]
    assert events.of("load_failed") == []


def test_offline_start_from_the_cache_for_pinned_and_alias_uris(
    client: modelreg.Client, name: str, slots: Callable[..., ModelSlot], stack: Stack
) -> None:
    register(client, name, constant_model(1.0))
    register(client, name, constant_model(2.0))
    register(client, name, constant_model(3.0))
    client.set_registered_model_alias(name, "champion", 2)
    for uri in (f"models:/{name}/1", f"models:/{name}@champion"):
        first = slots(uri, client, Events())
        first.start()
        first.stop()
    stack.registry.stop()

    pinned_events, alias_events = Events(), Events()
    pinned = slots(f"models:/{name}/1", client, pinned_events)
    pinned.start()
    assert predicted(pinned) == (1, 1.0)
    [offline] = pinned_events.of("offline_start")
    assert offline.version == 1 and f"version 1 of {name}" in offline.detail and "cache" in offline.detail
    assert pinned.current is not None and pinned.current.metadata["from_cache_offline"] is True
    # Version 2 was served through the alias: its pinned URI starts offline too.
    version_two = slots(f"models:/{name}/2", client, Events())
    version_two.start()
    assert predicted(version_two) == (2, 2.0)

    alias = slots(f"models:/{name}@champion", client, alias_events)
    alias.start()
    assert predicted(alias) == (2, 2.0)
    assert [e.kind for e in alias_events.events] == ["offline_start"]
    assert not alias.following

    # Never served: nothing recorded, nothing to serve.
    with pytest.raises(ServingLoadError, match="unreachable"):
        ModelSlot(f"models:/{name}/3", client).start()

    # The registry returns: the alias slot follows again, and moves with the alias.
    stack.registry.start()
    wait_for(lambda: bool(alias_events.of("follow_restored")), "the alias slot follows the registry again")
    assert [e.kind for e in alias_events.events][:2] == ["offline_start", "follow_restored"]
    wait_for(
        lambda: alias.current is not None and alias.current.metadata["from_cache_offline"] is False,
        "the registry confirms the cached version",
    )
    client.set_registered_model_alias(name, "champion", 3)
    wait_for(lambda: alias.current is not None and alias.current.version == 3, "version 3 served")
    assert predicted(alias) == (3, 3.0)


def test_offline_start_refuses_a_damaged_cache_or_record(
    client: modelreg.Client, name: str, stack: Stack
) -> None:
    register(client, name, constant_model(1.0))
    client.set_registered_model_alias(name, "champion", 1)
    first = ModelSlot(f"models:/{name}@champion", client)
    first.start()
    first.stop()
    assert first.current is not None
    stack.registry.stop()
    cache = stack.root / "cache"
    [record_file] = [
        p
        for p in (cache / "serving").glob("*.json")
        if json.loads(p.read_text())["uri"].endswith("@champion")
    ]
    record = json.loads(record_file.read_text())

    # A record that names a path outside the cache is refused, whatever its digests say.
    record_file.write_text(json.dumps({**record, "files": {"../../evil": "0" * 64}}))
    with pytest.raises(ServingLoadError, match="no earlier start recorded"):
        ModelSlot(f"models:/{name}@champion", client).start()
    record_file.write_text(json.dumps(record))

    # A cached file that no longer matches the recorded digest is not served.
    model_file = cache / "models" / record["tree_digest"] / "model.skops"
    model_file.write_bytes(model_file.read_bytes() + b"x")
    with pytest.raises(ServingLoadError, match="cannot be served"):
        ModelSlot(f"models:/{name}@champion", client).start()


def test_the_slot_catches_up_after_the_registry_restarts(
    client: modelreg.Client, name: str, slots: Callable[..., ModelSlot], stack: Stack
) -> None:
    events = Events()
    slot = champion_of_two(client, name, slots, events)
    stack.registry.stop()
    wait_for(lambda: not slot.following and bool(events.of("follow_lost")), "the slot notices the outage")
    assert predicted(slot) == (1, 1.0)  # still serving while the registry is down
    # The alias moves while the slot's registry is down, through another replica of its database.
    other = RegistryProcess(stack.database_url, stack.root, env={"MODELREG_TRACKING_TARGET": stack.tracking})
    other.start()
    try:
        with modelreg.Client(stack.tracking, other.target) as writer:
            writer.set_registered_model_alias(name, "champion", 2)
    finally:
        other.stop(signal.SIGKILL)
    assert predicted(slot) == (1, 1.0)
    stack.registry.start()
    wait_for(lambda: bool(events.of("follow_restored")), "the slot follows again")
    wait_for(lambda: slot.current is not None and slot.current.version == 2, "caught up to version 2")
    wait_for(lambda: len(events.of("swapped")) == 1, "the swap reported")
    assert [(e.version, e.previous) for e in events.of("swapped")] == [(2, 1)]
