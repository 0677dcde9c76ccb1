"""Per-experiment permissions in TrackingService and SqlTrackingStore (every backend): who needs a
lookup, what is cached, the creator's grant, and searches restricted in SQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from modelreg_server.access.policy import AccessPolicy, Grantee, Level, Principal, Subject, TtlCache
from modelreg_server.context import CallContext
from modelreg_server.errors import ServiceError
from tracking_service.artifacts import FileArtifactStore
from tracking_service.domain.entities import Metric, NewGrant, ViewType
from tracking_service.domain.service import LEVEL_CACHE_SECONDS, TrackingService
from tracking_service.store import TrackingStore
from tracking_service.store.sql import SqlTrackingStore

OWNER = CallContext("olga", "req-1", Principal("olga"))
READER = CallContext("rick", "req-2", Principal("rick", frozenset({"team-x"})))
SERVICE = CallContext("bot", "req-3", Principal("bot", service=True))


class CountingStore:
    """The real store, counting the permission lookups that reach it."""

    def __init__(self, store: SqlTrackingStore) -> None:
        self._store = store
        self.lookups = 0

    def access(self, *args: Any, **kwargs: Any) -> Any:
        self.lookups += 1
        return self._store.access(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _service(store: SqlTrackingStore, tmp_path: Path, **policy: Any) -> tuple[TrackingService, CountingStore]:
    counting = CountingStore(store)
    artifacts = FileArtifactStore(tmp_path / "artifacts")
    service = TrackingService(
        cast(TrackingStore, counting), artifacts, [(tmp_path / "artifacts").as_uri()], AccessPolicy(**policy)
    )
    return service, counting


def _reason(call: Any) -> tuple[str, dict[str, str]]:
    with pytest.raises(ServiceError) as caught:
        call()
    return caught.value.reason, caught.value.metadata


def test_reads_at_the_default_level_look_nothing_up_and_writes_look_up_once_per_half_second(
    store: SqlTrackingStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, counting = _service(store, tmp_path)
    now = [0.0]
    monkeypatch.setattr(service, "_levels", TtlCache(LEVEL_CACHE_SECONDS, clock=lambda: now[0]))
    experiment = service.create_experiment(OWNER, "olga-exp")
    run_id = service.create_run(OWNER, experiment.experiment_id).info.run_id
    counting.lookups = 0
    service.get_run(READER, run_id)
    service.search_runs(READER, [], "", [], ViewType.ACTIVE_ONLY, 0, "")
    service.get_experiment(READER, experiment.experiment_id)
    assert counting.lookups == 0
    service.set_experiment_permission(OWNER, experiment.experiment_id, "", "team-x", "EDIT")
    counting.lookups = 0
    for step in range(20):
        service.log_metric(READER, run_id, Metric("loss", 0.1, 1, step))
    assert counting.lookups == 1
    now[0] += LEVEL_CACHE_SECONDS + 0.01
    service.log_metric(READER, run_id, Metric("loss", 0.1, 1, 20))
    assert counting.lookups == 2


def test_a_grant_removed_in_this_process_is_refused_at_once(store: SqlTrackingStore, tmp_path: Path) -> None:
    service, _ = _service(store, tmp_path)
    experiment_id = service.create_experiment(OWNER, "olga-exp").experiment_id
    run_id = service.create_run(OWNER, experiment_id).info.run_id
    service.set_experiment_permission(OWNER, experiment_id, "rick", "", "EDIT")
    service.set_tag(READER, run_id, "k", "v")  # the level is cached now
    service.delete_experiment_permission(OWNER, experiment_id, "rick", "")
    assert _reason(lambda: service.set_tag(READER, run_id, "k", "v")) == (
        "PERMISSION_DENIED",
        {"permission": "EDIT", "resource": f"experiments/{experiment_id}"},
    )


def test_the_creator_is_granted_the_creator_level_with_its_event(
    store: SqlTrackingStore, tmp_path: Path
) -> None:
    service, _ = _service(store, tmp_path)
    experiment_id = service.create_experiment(OWNER, "olga-exp").experiment_id
    grants, events = service.list_experiment_permissions(OWNER, experiment_id)
    assert [(g.subject, g.level, g.granted_by) for g in grants] == [
        (Subject("user", "olga"), Level.MANAGE, "olga")
    ]
    assert [(v.action, v.actor, v.request_id) for v in events] == [("SET", "olga", "req-1")]
    nobody, _ = _service(store, tmp_path, creator_level=Level.NONE)
    assert nobody.list_experiment_permissions(
        OWNER, nobody.create_experiment(OWNER, "bare").experiment_id
    ) == (
        [],
        [],
    )
    bootstrap = CallContext(
        "bootstrap-admin", "r", Principal("bootstrap-admin", admin=True, authenticated_by="bootstrap")
    )
    assert (
        service.list_experiment_permissions(
            OWNER, service.create_experiment(bootstrap, "boot").experiment_id
        )[0]
        == []
    )
    # access control off: no principal, nobody to grant
    assert (
        service.list_experiment_permissions(
            OWNER, service.create_experiment(CallContext("a", "r"), "off").experiment_id
        )[0]
        == []
    )


def test_a_service_principal_reads_but_neither_creates_nor_writes(
    store: SqlTrackingStore, tmp_path: Path
) -> None:
    service, counting = _service(store, tmp_path, default_level=Level.NONE)
    run_id = service.create_run(OWNER, service.create_experiment(OWNER, "e").experiment_id).info.run_id
    counting.lookups = 0
    service.get_run(SERVICE, run_id)
    assert counting.lookups == 0
    assert _reason(lambda: service.create_experiment(SERVICE, "bot-exp"))[0] == "PERMISSION_DENIED"
    assert (
        _reason(lambda: service.log_metric(SERVICE, run_id, Metric("m", 1.0, 1)))[1]["permission"] == "EDIT"
    )


def test_unknown_ids_stay_not_found_for_a_caller_needing_a_lookup(
    store: SqlTrackingStore, tmp_path: Path
) -> None:
    service, _ = _service(store, tmp_path, default_level=Level.NONE)
    assert _reason(lambda: service.get_experiment(READER, "4242"))[0] == "EXPERIMENT_NOT_FOUND"
    assert _reason(lambda: service.get_run(READER, "f" * 32))[0] == "RUN_NOT_FOUND"
    assert _reason(lambda: service.list_artifacts(READER, "f" * 32))[0] == "RUN_NOT_FOUND"


def test_deleting_an_experiment_takes_its_grants_but_not_their_history(
    store: SqlTrackingStore, engine: Engine
) -> None:
    experiment_id = int(store.create_experiment("gone", "", {}).experiment_id)
    store.set_permission(experiment_id, NewGrant(Subject("group", "g"), Level.READ, OWNER))
    with engine.begin() as connection:  # experiments are only soft-deleted; a purge removes the row
        connection.execute(
            sa.text("DELETE FROM experiments WHERE experiment_id = :id"), {"id": experiment_id}
        )
        assert connection.execute(sa.text("SELECT count(*) FROM experiment_permissions")).scalar() == 0
        assert connection.execute(sa.text("SELECT count(*) FROM experiment_permission_events")).scalar() == 1


# Nothing written to disk (.hypothesis/), no per-example deadline on a busy machine.
PROPERTY: dict[str, Any] = {
    "database": None,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
    "max_examples": 25,
}
SUBJECTS = [
    Subject("user", "u"),
    Subject("user", "U"),
    Subject("user", "other"),
    Subject("group", "g1"),
    Subject("group", "g2"),
]
EXPERIMENTS = 6


def test_restricted_searches_and_lookups_match_the_grants(store: SqlTrackingStore, engine: Engine) -> None:
    """Random grants and callers: search_experiments and search_runs return exactly the readable
    experiments (and their runs) on every page, and access() the highest grant."""
    ids = [int(store.create_experiment(f"e{i}", "", {}).experiment_id) for i in range(EXPERIMENTS)]
    runs = {i: store.create_run(i, "r", 0, {}, None).info.run_id for i in ids}

    @settings(**PROPERTY)
    @given(
        grants=st.dictionaries(
            st.tuples(st.sampled_from(ids), st.sampled_from(SUBJECTS)), st.sampled_from(list(Level)[1:])
        ),
        groups=st.sets(st.sampled_from(["g1", "g2", "g3"])),
        page_size=st.integers(1, 4),
    )
    def check(grants: dict[tuple[int, Subject], Level], groups: set[str], page_size: int) -> None:
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM experiment_permissions"))
        for (experiment_id, subject), level in grants.items():
            store.set_permission(experiment_id, NewGrant(subject, level, OWNER))
        caller = Grantee("u", tuple(sorted(groups)))
        held = {
            i: max(
                (
                    level
                    for (e, s), level in grants.items()
                    if e == i and (s == Subject("user", "u") or (s.kind == "group" and s.name in groups))
                ),
                default=None,
            )
            for i in ids
        }
        readable = {i for i, level in held.items() if level is not None}
        found_experiments: set[int] = set()
        found_runs: set[str] = set()
        for offset in range(0, EXPERIMENTS + 2, page_size):
            found_experiments |= {
                int(x.experiment_id)
                for x in store.search_experiments([], [], ViewType.ALL, page_size, offset, caller)
            }
            found_runs |= {
                r.info.run_id for r in store.search_runs([], [], [], ViewType.ALL, page_size, offset, caller)
            }
        assert found_experiments == readable
        assert found_runs == {runs[i] for i in readable}
        for i in ids:
            assert store.access(caller, experiment_id=i) == store.access(caller, run_id=runs[i])
            access = store.access(caller, experiment_id=i)
            assert access is not None and (access.experiment_id, access.granted) == (i, held[i])

    check()
