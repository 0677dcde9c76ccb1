"""Promotion gates through the real client against both real servers: refusals name the clause
and the values, holder comparisons, checks on files, events carry the results."""

from __future__ import annotations

import pytest

from modelreg import exceptions
from tests.integration.gates.conftest import SIGNED_MLMODEL, Registry


def _refusal(call: object) -> exceptions.FailedPrecondition:
    with pytest.raises(exceptions.FailedPrecondition) as error:
        call()  # type: ignore[operator]
    return error.value


def test_a_failing_condition_refuses_the_stage_and_names_the_clause_and_values(gated: Registry) -> None:
    name = gated.model()
    version = gated.version(name, 13.4)
    manager = gated.client("manage")
    manager.set_promotion_gate(name, "Production", "metrics.rmse < 12 and tags.validated = 'true'")
    error = _refusal(lambda: manager.transition_model_version_stage(name, version.version, "Production"))
    assert error.reason == "PROMOTION_GATE_FAILED"
    assert "metrics.rmse < 12 failed: 13.4 is not < 12" in error.message
    assert error.metadata == {"clause": "metrics.rmse < 12", "left": "13.4", "right": "12"}
    assert manager.get_model_version(name, version.version).current_stage == "None"
    refused = manager.get_model_history(name)[-1]
    assert (refused.action, refused.version, refused.to_value) == (
        "PROMOTION_REFUSED",
        int(version.version),
        "Production",
    )
    assert [(r.clause, r.passed) for r in refused.gate_results] == [
        ("metrics.rmse < 12", False),
        ("tags.validated = 'true'", False),
    ]


def test_a_passing_gate_promotes_and_the_event_carries_its_results(gated: Registry) -> None:
    name = gated.model()
    version = gated.version(name, 11.0, run_tags={"validated": "true"})
    manager = gated.client("manage")
    manager.set_promotion_gate(name, "Production", "metrics.rmse < 12 and tags.validated = 'true'")
    assert (
        manager.transition_model_version_stage(name, version.version, "Production").current_stage
        == "Production"
    )
    event = next(e for e in manager.get_model_history(name) if e.action == "STAGE_TRANSITIONED")
    assert [(r.clause, r.passed, r.left, r.right) for r in event.gate_results] == [
        ("metrics.rmse < 12", True, "11", "12"),
        ("tags.validated = 'true'", True, "'true'", "'true'"),
    ]
    assert (event.approver, event.gate_overridden) == ("", False)


def test_tags_clauses_read_the_runs_tags_and_version_tags_clauses_the_versions(gated: Registry) -> None:
    name = gated.model()
    version = gated.version(name, 1.0, run_tags={"validated": "false"})
    manager, editor = gated.client("manage"), gated.client("edit")
    manager.set_promotion_gate(name, "Staging", "tags.validated = 'true'")
    editor.set_model_version_tag(name, version.version, "validated", "true")  # EDIT holders may
    error = _refusal(lambda: editor.transition_model_version_stage(name, version.version, "Staging"))
    assert (error.metadata["left"], error.metadata["right"]) == ("'false'", "'true'")
    manager.set_promotion_gate(name, "Staging", "version_tags.validated = 'true'")
    assert editor.transition_model_version_stage(name, version.version, "Staging").current_stage == "Staging"


def test_an_alias_gate_refuses_setting_the_alias(gated: Registry) -> None:
    name = gated.model()
    bad = gated.version(name, 20.0)
    manager = gated.client("manage")
    manager.set_promotion_gate(name, "@champion", "metrics.rmse < 12")
    error = _refusal(lambda: manager.set_registered_model_alias(name, "champion", bad.version))
    assert error.metadata["clause"] == "metrics.rmse < 12"
    with pytest.raises(exceptions.NotFound):
        manager.get_model_version_by_alias(name, "champion")
    good = gated.version(name, 5.0)
    manager.set_registered_model_alias(name, "champion", good.version)
    assert manager.get_model_version_by_alias(name, "champion").version == good.version


@pytest.mark.parametrize(("rmse", "passes"), [(9.0, True), (10.05, True), (10.2, False)])
def test_holder_comparison(gated: Registry, rmse: float, passes: bool) -> None:
    name = gated.model()
    holder = gated.version(name, 10.0)
    candidate = gated.version(name, rmse)
    manager = gated.client("manage")
    manager.set_promotion_gate(name, "Production", "metrics.rmse <= holder.metrics.rmse * 1.01")
    # No holder yet: the holder clause passes.
    manager.transition_model_version_stage(name, holder.version, "Production")
    first = next(e for e in manager.get_model_history(name) if e.action == "STAGE_TRANSITIONED")
    assert first.gate_results[0].passed and "no version ever held Production" in first.gate_results[0].message
    if passes:
        manager.transition_model_version_stage(name, candidate.version, "Production")
        assert manager.get_latest_versions(name, ["Production"])[0].version == candidate.version
    else:
        error = _refusal(
            lambda: manager.transition_model_version_stage(name, candidate.version, "Production")
        )
        assert error.metadata == {
            "clause": "metrics.rmse <= holder.metrics.rmse * 1.01",
            "left": "10.2",
            "right": "10.1",
        }
        assert manager.get_latest_versions(name, ["Production"])[0].version == holder.version


def test_signature_and_digest_checks(gated: Registry) -> None:
    name = gated.model()
    unsigned = gated.version(name, 1.0, signed=False)
    signed = gated.version(name, 1.0)
    bare = gated.client("admin").create_model_version(name, "s3://bucket/bare")
    manager = gated.client("manage")
    manager.set_promotion_gate(name, "Staging", "", require_signature=True, require_digests=True)
    error = _refusal(lambda: manager.transition_model_version_stage(name, unsigned.version, "Staging"))
    assert error.metadata["clause"] == "require_signature"
    error = _refusal(lambda: manager.transition_model_version_stage(name, bare.version, "Staging"))
    assert error.metadata["clause"] == "require_digests"
    assert manager.transition_model_version_stage(name, signed.version, "Staging").current_stage == "Staging"
    event = [e for e in manager.get_model_history(name) if e.action == "STAGE_TRANSITIONED"][-1]
    assert [r.clause for r in event.gate_results] == ["require_digests", "require_signature"]


def test_require_signature_reads_the_mlmodel_as_yaml_within_its_cap(gated: Registry) -> None:
    name = gated.model()
    empty = gated.version(name, 1.0, mlmodel="flavors: {}\nsignature: ''\n")
    quoted = gated.version(name, 1.0, mlmodel="flavors: {}\nnote: |\n  signature:\n    inputs: x\n")
    padding = "# " + "x" * 1024 * 1024 + "\n"
    oversized = gated.version(name, 1.0, mlmodel=SIGNED_MLMODEL + padding)
    manager = gated.client("manage")
    manager.set_promotion_gate(name, "Staging", "", require_signature=True)
    for version in (empty, quoted, oversized):
        error = _refusal(lambda v=version.version: manager.transition_model_version_stage(name, v, "Staging"))
        assert (error.metadata["clause"], error.metadata["left"]) == ("require_signature", "no signature")


def test_rollback_obeys_the_gate_and_an_admin_override_is_recorded(gated: Registry) -> None:
    name = gated.model()
    old = gated.version(name, 30.0)
    new = gated.version(name, 5.0)
    manager, admin = gated.client("manage"), gated.client("admin")
    manager.transition_model_version_stage(name, old.version, "Production")
    manager.transition_model_version_stage(name, new.version, "Production")
    manager.set_promotion_gate(name, "Production", "metrics.rmse < 12")
    error = _refusal(lambda: manager.rollback_stage(name, "Production"))
    assert error.metadata == {"clause": "metrics.rmse < 12", "left": "30", "right": "12"}
    assert manager.get_latest_versions(name, ["Production"])[0].version == new.version
    with pytest.raises(exceptions.PermissionDenied):
        manager.rollback_stage(name, "Production", override_gates=True)
    assert (
        admin.rollback_stage(name, "Production", "incident", override_gates=True).restored.version
        == old.version
    )
    rolled = next(e for e in manager.get_model_history(name) if e.action == "STAGE_ROLLED_BACK")
    assert rolled.gate_overridden
    assert [(r.clause, r.passed) for r in rolled.gate_results] == [("metrics.rmse < 12", False)]


def test_a_stage_without_gate_and_archiving_are_not_gated(gated: Registry) -> None:
    name = gated.model()
    version = gated.version(name, 50.0)
    manager = gated.client("manage")
    manager.set_promotion_gate(name, "Production", "metrics.rmse < 12")
    manager.transition_model_version_stage(name, version.version, "Staging")
    manager.transition_model_version_stage(name, version.version, "Archived")
    assert all(not e.gate_results for e in manager.get_model_history(name))


def test_gates_are_listed_replaced_and_deleted_with_events(gated: Registry) -> None:
    name = gated.model()
    manager = gated.client("manage")
    manager.set_promotion_gate(name, "production", "metrics.rmse < 12")
    manager.set_promotion_gate(name, "Production", "metrics.rmse < 10", approvals_required=1)
    manager.set_promotion_gate(name, "@champion", "")
    gates = manager.get_promotion_gates(name)
    assert [(g.target, g.condition, g.approvals_required, g.updated_by) for g in gates] == [
        ("@champion", "", 0, "manage"),
        ("Production", "metrics.rmse < 10", 1, "manage"),
    ]
    manager.delete_promotion_gate(name, "@champion")
    with pytest.raises(exceptions.NotFound) as missing:
        manager.delete_promotion_gate(name, "@champion")
    assert missing.value.reason == "GATE_NOT_FOUND"
    actions = [(e.action, e.to_value or e.from_value) for e in manager.get_model_history(name)]
    assert actions[-4:] == [
        ("GATE_SET", "Production"),
        ("GATE_SET", "Production"),
        ("GATE_SET", "@champion"),
        ("GATE_DELETED", "@champion"),
    ]


@pytest.mark.parametrize(
    ("target", "condition", "reason", "field", "position"),
    [
        ("Production", "metrics.rmse < ", "INVALID_GATE_CONDITION", "condition", "15"),
        ("Production", "metrics.rmse < 12 or tags.a = 'b'", "INVALID_GATE_CONDITION", "condition", "18"),
        ("Production", "metrics.rmse < holder.metrics", "INVALID_GATE_CONDITION", "condition", "15"),
        ("Production", "x" * 4097, "INVALID_GATE_CONDITION", "condition", "4096"),
        # Clauses that could never pass: sides of different kinds, a key no key can be, a key
        # holding a bidirectional override or a control character.
        (
            "Production",
            "metrics.a < 1 and metrics.rmse < holder.tags.x",
            "INVALID_GATE_CONDITION",
            "condition",
            "18",
        ),
        ("Production", "tags.`" + "k" * 251 + "` = 'a'", "INVALID_GATE_CONDITION", "condition", "0"),
        (
            "Production",
            "metrics.a < 1 and tags.`a\u202eb` = 'x'",
            "INVALID_GATE_CONDITION",
            "condition",
            "18",
        ),
        ("Production", "tags.`b\x07` = 'x'", "INVALID_GATE_CONDITION", "condition", "0"),
        ("Archived", "", "INVALID_TARGET", "target", None),
        ("@1", "", "INVALID_ALIAS", "alias", None),
    ],
)
def test_bad_gates_are_invalid_argument(
    gated: Registry, target: str, condition: str, reason: str, field: str, position: str | None
) -> None:
    name = gated.model()
    with pytest.raises(exceptions.InvalidArgument) as error:
        gated.client("manage").set_promotion_gate(name, target, condition)
    assert error.value.reason == reason
    assert error.value.metadata.get("field") == field
    assert error.value.metadata.get("position") == position


def test_an_alias_gate_compares_with_the_version_the_alias_points_to(gated: Registry) -> None:
    name = gated.model()
    champion, worse, better = (int(gated.version(name, rmse).version) for rmse in (10.0, 11.0, 9.0))
    manager = gated.client("manage")
    manager.set_registered_model_alias(name, "champion", champion)
    manager.set_promotion_gate(name, "@champion", "metrics.rmse < holder.metrics.rmse")
    error = _refusal(lambda: manager.set_registered_model_alias(name, "champion", worse))
    assert error.metadata == {"clause": "metrics.rmse < holder.metrics.rmse", "left": "11", "right": "10"}
    manager.set_registered_model_alias(name, "champion", better)
    moved = [e for e in manager.get_model_history(name) if e.action == "ALIAS_MOVED"][-1]
    assert (moved.from_value, moved.to_value) == (str(champion), str(better))
    assert [(r.left, r.right, r.passed) for r in moved.gate_results] == [("9", "10", True)]


def test_an_admin_override_of_a_transition_is_recorded_with_the_results(gated: Registry) -> None:
    name = gated.model()
    version = gated.version(name, 40.0)
    manager, admin = gated.client("manage"), gated.client("admin")
    manager.set_promotion_gate(name, "Staging", "metrics.rmse < 12", approvals_required=1)
    with pytest.raises(exceptions.PermissionDenied):
        manager.transition_model_version_stage(name, version.version, "Staging", override_gates=True)
    admin.transition_model_version_stage(
        name, version.version, "Staging", comment="hotfix", override_gates=True
    )
    event = [e for e in manager.get_model_history(name) if e.action == "STAGE_TRANSITIONED"][-1]
    assert (event.gate_overridden, event.approver, event.comment) == (True, "", "hotfix")
    assert [(r.clause, r.passed, r.left) for r in event.gate_results] == [("metrics.rmse < 12", False, "40")]


def test_an_emptied_stage_compares_with_its_last_holder(gated: Registry) -> None:
    name = gated.model()
    good, bad = gated.version(name, 1.0), gated.version(name, 50.0)
    gated.client("manage").set_promotion_gate(name, "Staging", "metrics.rmse <= holder.metrics.rmse")
    editor = gated.client("edit")
    editor.transition_model_version_stage(name, good.version, "Staging")
    editor.transition_model_version_stage(name, good.version, "Archived")  # not gated
    error = _refusal(lambda: editor.transition_model_version_stage(name, bad.version, "Staging"))
    assert (error.metadata["left"], error.metadata["right"]) == ("50", "1")
    refused = editor.get_model_history(name)[-1]
    assert (refused.action, refused.from_value) == ("PROMOTION_REFUSED", good.version)
    gated.client("admin").delete_model_version(name, good.version)  # no live version ever held it
    assert editor.transition_model_version_stage(name, bad.version, "Staging").current_stage == "Staging"


def test_a_deleted_alias_compares_with_the_version_it_last_pointed_to(gated: Registry) -> None:
    name = gated.model()
    good, bad = gated.version(name, 1.0), gated.version(name, 50.0)
    gated.client("manage").set_promotion_gate(name, "@champion", "metrics.rmse <= holder.metrics.rmse")
    editor = gated.client("edit")
    editor.set_registered_model_alias(name, "champion", good.version)
    editor.delete_registered_model_alias(name, "champion")  # not gated
    error = _refusal(lambda: editor.set_registered_model_alias(name, "champion", bad.version))
    assert (error.metadata["left"], error.metadata["right"]) == ("50", "1")
    assert "champion" not in editor.get_registered_model(name).aliases
