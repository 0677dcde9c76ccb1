"""What one run, experiment, registered model or version may hold is capped (README, "Limits"):
a write past a cap is RESOURCE_EXHAUSTED with the cap's reason, field and limit, keeps nothing,
and is refused alike on every backend; setting a key again is not a new key. Before the caps, a
run with 1,500 params failed GetRun and a version with 1,100 tags failed ResolveModelUri, for
everyone, with RESOURCE_EXHAUSTED from the transport."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from modelreg.entities import Metric, Param, RunTag
from modelreg.exceptions import ModelregError, ResourceExhausted
from registry_service.domain import rules as registry_rules
from tests.conftest import BACKEND_PARAMS
from tests.integration.limits.conftest import BIG, Stack, refused
from tracking_service.domain import rules

pytestmark = pytest.mark.parametrize("backend", BACKEND_PARAMS, indirect=True)
EXHAUSTED = "RESOURCE_EXHAUSTED"


def _params(start: int, count: int, value: str = "v") -> list[Param]:
    return [Param(f"p{i}", value) for i in range(start, start + count)]


def test_params_past_the_cap_are_refused_and_get_run_keeps_working(stack: Stack) -> None:
    run_id = stack.tracking.create_run("0").info.run_id
    value = "v" * 900  # 1,000 of them stay under the run's bytes cap
    for start in range(0, rules.MAX_RUN_PARAMS, rules.MAX_BATCH_PARAMS):
        stack.tracking.log_batch(run_id, params=_params(start, rules.MAX_BATCH_PARAMS, value))
    with pytest.raises(ModelregError) as error:
        # One new param among known ones: the whole batch is refused.
        stack.tracking.log_batch(run_id, params=[*_params(0, 50, value), Param("one-more", value)])
    assert refused(error) == (EXHAUSTED, "TOO_MANY_PARAMS", "params", "1000")
    stack.tracking.log_batch(run_id, params=_params(0, 100, value))  # known keys, same values
    run = stack.tracking.get_run(run_id)
    assert len(run.data.params) == rules.MAX_RUN_PARAMS
    assert "one-more" not in run.data.params


def test_a_cap_error_is_resource_exhausted_for_the_caller(stack: Stack) -> None:
    run_id = stack.tracking.create_run("0").info.run_id
    for start in range(0, rules.MAX_RUN_PARAMS, rules.MAX_BATCH_PARAMS):
        stack.tracking.log_batch(run_id, params=_params(start, rules.MAX_BATCH_PARAMS))
    with pytest.raises(ResourceExhausted) as error:  # the 1,001st param
        stack.tracking.log_param(run_id, "one-more", "v")
    assert refused(error) == (EXHAUSTED, "TOO_MANY_PARAMS", "params", "1000")


def test_a_run_past_its_bytes_is_refused_whole(stack: Stack) -> None:
    run_id = stack.tracking.create_run("0").info.run_id
    stack.tracking.log_batch(run_id, params=_params(0, 100, "v" * 6000))
    with pytest.raises(ModelregError) as error:  # 1.2 MB of params and tags in all
        stack.tracking.log_batch(
            run_id,
            params=_params(100, 100, "v" * 6000),
            tags=[RunTag("t", "x")],
            metrics=[Metric("m", 1.0, 1, 0)],
        )
    assert refused(error) == (EXHAUSTED, "RUN_TOO_LARGE", "params and tags", str(rules.MAX_RUN_DATA_BYTES))
    run = stack.tracking.get_run(run_id)
    assert (len(run.data.params), run.data.tags, run.data.metrics) == (100, {}, {})


def test_new_run_tags_count_as_utf8_bytes(stack: Stack) -> None:
    # 100 tags of 8,000 four-byte characters: 3.2 MB, though each tag is within its length.
    tags = {f"t{i}": "\N{GRINNING FACE}" * 8000 for i in range(100)}
    with pytest.raises(ModelregError) as error:
        stack.tracking.create_run("0", tags=tags)
    assert refused(error)[:2] == (EXHAUSTED, "RUN_TOO_LARGE")
    assert list(stack.tracking.search_runs(["0"])) == []


def test_setting_a_tag_again_is_not_a_new_tag(stack: Stack) -> None:
    run_id = stack.tracking.create_run("0").info.run_id
    # 131 tags of 8,004 bytes: 1,048,524, 52 bytes under the run's cap.
    for start in range(0, 131, 10):
        batch = range(start, min(start + 10, 131))
        stack.tracking.log_batch(run_id, tags=[RunTag(f"t{i:03}", BIG) for i in batch])
    for _ in range(3):
        stack.tracking.set_tag(run_id, "t000", BIG)
    with pytest.raises(ModelregError) as error:
        stack.tracking.set_tag(run_id, "t131", BIG)
    assert refused(error)[:3] == (EXHAUSTED, "RUN_TOO_LARGE", "tags")
    stack.tracking.delete_tag(run_id, "t000")
    stack.tracking.set_tag(run_id, "t131", BIG)  # room again
    assert len(stack.tracking.get_run(run_id).data.tags) == 131


def test_metric_keys_are_capped_only_when_new(stack: Stack) -> None:
    run_id = stack.tracking.create_run("0").info.run_id
    stack.tracking.log_batch(run_id, metrics=[Metric(f"m{i}", 1.0, 1, 0) for i in range(1000)])
    with pytest.raises(ModelregError) as error:
        stack.tracking.log_batch(run_id, metrics=[Metric("m0", 2.0, 2, 1), Metric("new", 1.0, 1, 0)])
    assert refused(error) == (EXHAUSTED, "TOO_MANY_METRICS", "metrics", "1000")
    assert [m.value for m in stack.tracking.get_metric_history(run_id, "m0")] == [1.0]
    stack.tracking.log_batch(run_id, metrics=[Metric("m0", 2.0, 2, 1)])  # a known key
    assert len(stack.tracking.get_run(run_id).data.metrics) == 1000


def test_experiment_tags_are_capped(stack: Stack) -> None:
    tags = {f"t{i:03}": BIG for i in range(100)}
    experiment_id = stack.tracking.create_experiment("e", tags=tags).experiment_id
    for i in range(100, 131):
        stack.tracking.set_experiment_tag(experiment_id, f"t{i:03}", BIG)
    stack.tracking.set_experiment_tag(experiment_id, "t000", BIG)
    with pytest.raises(ModelregError) as error:
        stack.tracking.set_experiment_tag(experiment_id, "t131", BIG)
    assert refused(error) == (EXHAUSTED, "EXPERIMENT_TOO_LARGE", "tags", str(rules.MAX_EXPERIMENT_TAG_BYTES))
    assert len(stack.tracking.get_experiment(experiment_id).tags) == 131


def test_concurrent_writers_cannot_both_take_the_last_place(stack: Stack) -> None:
    run_id = stack.tracking.create_run("0").info.run_id
    room = rules.MAX_RUN_TAGS - 1  # one place left
    for start in range(0, room, rules.MAX_BATCH_TAGS):
        batch = range(start, min(start + rules.MAX_BATCH_TAGS, room))
        stack.tracking.log_batch(run_id, tags=[RunTag(f"t{i}", "v") for i in batch])
    outcomes: list[str] = []

    def write(i: int) -> None:
        try:
            stack.tracking.set_tag(run_id, f"racer{i}", "v")
            outcomes.append("ok")
        except ModelregError as error:
            outcomes.append(error.reason)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["TOO_MANY_TAGS"] * 7 + ["ok"]
    assert len(stack.tracking.get_run(run_id).data.tags) == rules.MAX_RUN_TAGS


def test_version_tags_past_the_cap_are_refused_and_resolve_keeps_working(stack: Stack) -> None:
    stack.registry.create_registered_model("m")
    tags = {f"t{i}": "v" for i in range(registry_rules.MAX_VERSION_TAGS)}
    with pytest.raises(ModelregError) as error:
        stack.registry.create_model_version("m", "s3://bucket/m", tags={**tags, "one-more": "v"})
    assert refused(error) == (EXHAUSTED, "TOO_MANY_TAGS", "tags", "1000")
    stack.registry.create_model_version("m", "s3://bucket/m", tags=tags)
    stack.registry.set_model_version_tag("m", 1, "t0", "again")
    with pytest.raises(ModelregError) as error:
        stack.registry.set_model_version_tag("m", 1, "one-more", "v")
    assert refused(error) == (EXHAUSTED, "TOO_MANY_TAGS", "tags", "1000")
    resolved = stack.registry.resolve_model_uri("models:/m/1")
    assert len(resolved.tags) == 1000 and resolved.tags["t0"] == "again"


def test_version_and_model_tag_bytes_are_capped(stack: Stack) -> None:
    stack.registry.create_registered_model("m", tags={f"t{i:02}": BIG for i in range(32)})
    stack.registry.create_model_version("m", "s3://bucket/m", tags={f"t{i:02}": BIG for i in range(32)})
    for set_tag, reason in (
        (lambda: stack.registry.set_registered_model_tag("m", "t32", BIG), "MODEL_TOO_LARGE"),
        (lambda: stack.registry.set_model_version_tag("m", 1, "t32", BIG), "VERSION_TOO_LARGE"),
    ):
        with pytest.raises(ModelregError) as error:
            set_tag()
        assert refused(error) == (EXHAUSTED, reason, "tags", str(256 * 1024))
    model = stack.registry.get_registered_model("m")
    assert (len(model.tags), len(model.latest_versions[0].tags)) == (32, 32)


def test_aliases_are_capped(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_rules, "MAX_MODEL_ALIASES", 3)  # the servers run in this process
    stack.registry.create_registered_model("m")
    stack.registry.create_model_version("m", "s3://bucket/m")
    stack.registry.create_model_version("m", "s3://bucket/m")
    for alias in ("a", "b", "c"):
        stack.registry.set_registered_model_alias("m", alias, 1)
    stack.registry.set_registered_model_alias("m", "a", 2)  # a move is not a new alias
    with pytest.raises(ModelregError) as error:
        stack.registry.set_registered_model_alias("m", "d", 1)
    assert refused(error) == (EXHAUSTED, "TOO_MANY_ALIASES", "alias", "3")
    assert stack.registry.get_registered_model("m").aliases == {"a": 2, "b": 1, "c": 1}


def test_artifact_files_are_capped(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(rules, "MAX_RUN_ARTIFACTS", 3)  # the servers run in this process
    monkeypatch.setattr(rules, "MAX_RUN_ARTIFACT_PATH_BYTES", 22)
    run_id = stack.tracking.create_run("0").info.run_id
    local = tmp_path / "f.txt"
    local.write_text("x")
    for directory in ("a", "b", "c"):  # 7 bytes of path each
        stack.tracking.log_artifact(run_id, local, directory)
    stack.tracking.log_artifact(run_id, local, "a")  # a path uploaded again takes no new place
    with pytest.raises(ModelregError) as error:
        stack.tracking.log_artifact(run_id, local, "d")
    assert refused(error) == (EXHAUSTED, "TOO_MANY_ARTIFACTS", "path", "3")
    monkeypatch.setattr(rules, "MAX_RUN_ARTIFACTS", 10)
    with pytest.raises(ModelregError) as error:
        stack.tracking.log_artifact(run_id, local, "long")  # 10 bytes: 31 in all
    assert refused(error) == (EXHAUSTED, "ARTIFACTS_TOO_LARGE", "path", "22")
    listed = stack.tracking.list_artifacts(run_id, recursive=True)
    assert [f.path for f in listed] == ["a/f.txt", "b/f.txt", "c/f.txt"]
