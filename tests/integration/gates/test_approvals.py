"""Two-person approvals and the authorization of every gate and approval call, through the real
client against both real servers."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from modelreg import exceptions
from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.registry.v1.registry_pb2_grpc import RegistryServiceStub
from modelreg_server.pagination import RESPONSE_BYTE_BUDGET
from registry_service.domain.gates import REQUESTS_PAGE_MAX
from tests.integration.gates.conftest import Registry


def _gated_with_approval(gated: Registry) -> tuple[str, int]:
    name = gated.model()
    version = gated.version(name, 1.0)
    gated.client("manage").set_promotion_gate(name, "Production", "metrics.rmse < 12", approvals_required=1)
    return name, int(version.version)


def test_a_promotion_needs_an_approval_by_another_manager_and_consumes_it(gated: Registry) -> None:
    name, version = _gated_with_approval(gated)
    editor, manager, other = gated.client("edit"), gated.client("manage"), gated.client("manage2")
    gated.client("admin").set_registered_model_protection(name, production=False)
    with pytest.raises(exceptions.FailedPrecondition) as refused:
        editor.transition_model_version_stage(name, version, "Production")
    assert refused.value.reason == "APPROVAL_REQUIRED"
    request = editor.request_promotion_approval(name, version, "Production", "ready")
    assert (request.status, request.requested_by) == ("PENDING", "edit")
    with pytest.raises(exceptions.FailedPrecondition):  # pending is not approved
        editor.transition_model_version_stage(name, version, "Production")
    approved = manager.approve_promotion(name, request.request_id, "looks good")
    assert (approved.status, approved.decided_by) == ("APPROVED", "manage")
    with pytest.raises(exceptions.FailedPrecondition):  # decided once
        other.reject_promotion(name, request.request_id)
    editor.transition_model_version_stage(name, version, "Production")
    event = [e for e in manager.get_model_history(name) if e.action == "STAGE_TRANSITIONED"][-1]
    assert (event.approver, event.version) == ("manage", version)
    assert [r.status for r in manager.list_approval_requests(name)] == ["CONSUMED"]
    # Consumed: the next promotion of the same version needs a new approval.
    editor.transition_model_version_stage(name, version, "Archived")
    with pytest.raises(exceptions.FailedPrecondition) as again:
        editor.transition_model_version_stage(name, version, "Production")
    assert again.value.reason == "APPROVAL_REQUIRED"
    actions = [e.action for e in manager.get_model_history(name)]
    assert "APPROVAL_REQUESTED" in actions and "APPROVAL_GRANTED" in actions


def test_self_approval_is_refused(gated: Registry) -> None:
    name, version = _gated_with_approval(gated)
    manager = gated.client("manage")
    request = manager.request_promotion_approval(name, version, "Production")
    with pytest.raises(exceptions.PermissionDenied) as error:
        manager.approve_promotion(name, request.request_id)
    assert error.value.reason == "SELF_APPROVAL"
    assert manager.list_approval_requests(name, "pending")[0].request_id == request.request_id


def test_an_approval_is_for_its_version_and_target_only(gated: Registry) -> None:
    name, version = _gated_with_approval(gated)
    other_version = gated.version(name, 1.0).version
    manager, other = gated.client("manage"), gated.client("manage2")
    request = manager.request_promotion_approval(name, version, "Production")
    other.approve_promotion(name, request.request_id)
    with pytest.raises(exceptions.FailedPrecondition) as wrong:
        manager.transition_model_version_stage(name, other_version, "Production")
    assert wrong.value.reason == "APPROVAL_REQUIRED"
    staged = manager.request_promotion_approval(name, version, "Staging")
    other.approve_promotion(name, staged.request_id)
    manager.transition_model_version_stage(name, version, "Production")
    assert {(r.target, r.status) for r in manager.list_approval_requests(name)} == {
        ("Production", "CONSUMED"),
        ("Staging", "APPROVED"),
    }


def test_a_rejected_or_expired_request_does_not_count(gated: Registry) -> None:
    name, version = _gated_with_approval(gated)
    manager, other = gated.client("manage"), gated.client("manage2")
    rejected = manager.request_promotion_approval(name, version, "Production")
    assert other.reject_promotion(name, rejected.request_id, "no").status == "REJECTED"
    with pytest.raises(exceptions.FailedPrecondition):
        manager.transition_model_version_stage(name, version, "Production")
    approved = manager.request_promotion_approval(name, version, "Production")
    other.approve_promotion(name, approved.request_id)
    pending = manager.request_promotion_approval(name, version, "Production")
    gated.expire_requests()
    with pytest.raises(exceptions.FailedPrecondition) as expired:
        manager.transition_model_version_stage(name, version, "Production")
    assert expired.value.reason == "APPROVAL_REQUIRED"
    with pytest.raises(exceptions.FailedPrecondition) as late:
        other.approve_promotion(name, pending.request_id)
    assert late.value.reason == "APPROVAL_NOT_PENDING"
    assert [r.request_id for r in manager.list_approval_requests(name, "EXPIRED")] == [
        pending.request_id,
        approved.request_id,
    ]


def _calls(gated: Registry, name: str, version: int, request_id: int) -> dict[str, Callable[[str], object]]:
    """Each new call, made as a user; the level it needs."""
    return {
        "set_gate": lambda user: gated.client(user).set_promotion_gate(name, "@champion", "metrics.rmse < 1"),
        "get_gates": lambda user: gated.client(user).get_promotion_gates(name),
        "delete_gate": lambda user: gated.client(user).delete_promotion_gate(name, "@challenger"),
        "request": lambda user: gated.client(user).request_promotion_approval(name, version, "Production"),
        "approve": lambda user: gated.client(user).approve_promotion(name, request_id),
        "reject": lambda user: gated.client(user).reject_promotion(name, request_id),
        "list": lambda user: gated.client(user).list_approval_requests(name),
    }


NEEDS = {
    "set_gate": "MANAGE",
    "get_gates": "READ",
    "delete_gate": "MANAGE",
    "request": "EDIT",
    "approve": "MANAGE",
    "reject": "MANAGE",
    "list": "READ",
}
_RANK = {"none": 0, "read": 1, "edit": 2, "manage2": 3}


@pytest.mark.parametrize("call", sorted(NEEDS))
def test_every_call_is_authorized_by_level(gated: Registry, call: str) -> None:
    name, version = _gated_with_approval(gated)
    request = gated.client("manage").request_promotion_approval(name, version, "Production")
    gated.client("manage").set_promotion_gate(name, "@challenger", "")  # no approvals: MANAGE deletes it
    calls = _calls(gated, name, version, request.request_id)
    with pytest.raises(exceptions.Unauthenticated):
        calls[call]("anonymous")
    need = {"READ": 1, "EDIT": 2, "MANAGE": 3}[NEEDS[call]]
    for user, rank in _RANK.items():
        if rank < need:
            with pytest.raises(exceptions.PermissionDenied):
                calls[call](user)
    calls[call]("manage2")  # MANAGE may do each (and is not the requester)


def test_a_request_names_an_existing_version_and_a_gateable_target(gated: Registry) -> None:
    name, version = _gated_with_approval(gated)
    manager = gated.client("manage")
    with pytest.raises(exceptions.NotFound) as missing:
        manager.request_promotion_approval(name, version + 10, "Production")
    assert missing.value.reason == "MODEL_VERSION_NOT_FOUND"
    with pytest.raises(exceptions.InvalidArgument) as bad:
        manager.request_promotion_approval(name, version, "Archived")
    assert bad.value.metadata == {"field": "target"}
    with pytest.raises(exceptions.NotFound) as unknown:
        gated.client("manage2").approve_promotion(name, 999_999)
    assert unknown.value.reason == "APPROVAL_REQUEST_NOT_FOUND"
    requested = manager.request_promotion_approval(name, version, "Production", "why")
    event = manager.get_model_history(name)[-1]
    assert (event.action, event.from_value, event.to_value, event.comment) == (
        "APPROVAL_REQUESTED",
        str(requested.request_id),
        "Production",
        "why",
    )


def test_an_alias_gate_with_approval(gated: Registry) -> None:
    name = gated.model()
    version = int(gated.version(name, 1.0).version)
    manager, other = gated.client("manage"), gated.client("manage2")
    manager.set_promotion_gate(name, "@champion", "", approvals_required=1)
    with pytest.raises(exceptions.FailedPrecondition) as refused:
        manager.set_registered_model_alias(name, "champion", version)
    assert refused.value.reason == "APPROVAL_REQUIRED"
    request = manager.request_promotion_approval(name, version, "@champion")
    other.approve_promotion(name, request.request_id)
    manager.set_registered_model_alias(name, "champion", version)
    event = next(e for e in manager.get_model_history(name) if e.action == "ALIAS_SET")
    assert event.approver == "manage2"
    assert manager.list_approval_requests(name)[0].status == "CONSUMED"


def test_dropping_a_required_approval_needs_an_admin(gated: Registry) -> None:
    name, version = _gated_with_approval(gated)
    manager, admin = gated.client("manage"), gated.client("admin")
    for weaken in (
        lambda: manager.set_promotion_gate(name, "Production", "metrics.rmse < 12", approvals_required=0),
        lambda: manager.delete_promotion_gate(name, "Production"),
    ):
        with pytest.raises(exceptions.PermissionDenied) as error:
            weaken()
        assert (error.value.reason, error.value.metadata["permission"]) == ("PERMISSION_DENIED", "ADMIN")
        assert "two-person rule" in error.value.message and "Production" in error.value.message
    assert [g.approvals_required for g in manager.get_promotion_gates(name)] == [1]
    with pytest.raises(exceptions.FailedPrecondition):
        manager.transition_model_version_stage(name, version, "Production")
    # Strengthening or keeping the rule stays MANAGE; an admin may lower or delete.
    manager.set_promotion_gate(name, "Production", "metrics.rmse < 11", approvals_required=1)
    manager.set_promotion_gate(name, "Staging", "", approvals_required=1)
    admin.set_promotion_gate(name, "Production", "metrics.rmse < 11", approvals_required=0)
    admin.delete_promotion_gate(name, "Staging")
    assert [(g.target, g.approvals_required) for g in manager.get_promotion_gates(name)] == [
        ("Production", 0)
    ]


def test_the_approver_may_not_also_promote(gated: Registry) -> None:
    name, version = _gated_with_approval(gated)
    gated.client("admin").set_registered_model_protection(name, production=False)
    manager, other = gated.client("manage"), gated.client("manage2")
    request = gated.client("edit").request_promotion_approval(name, version, "Production")  # a CI bot
    manager.approve_promotion(name, request.request_id)
    with pytest.raises(exceptions.PermissionDenied) as error:
        manager.transition_model_version_stage(name, version, "Production")
    assert error.value.reason == "SELF_APPROVAL"
    assert "must differ from the approver" in error.value.message
    assert manager.list_approval_requests(name)[0].status == "APPROVED"  # not consumed
    assert manager.get_model_history(name)[-1].action == "PROMOTION_REFUSED"
    other.transition_model_version_stage(name, version, "Production")
    event = [e for e in manager.get_model_history(name) if e.action == "STAGE_TRANSITIONED"][-1]
    assert (event.approver, event.actor) == ("manage", "manage2")
    assert manager.list_approval_requests(name)[0].status == "CONSUMED"


def test_an_approval_decided_before_the_gate_changed_does_not_count(gated: Registry) -> None:
    name = gated.model()
    version = int(gated.version(name, 1.0).version)
    editor, manager, other = gated.client("edit"), gated.client("manage"), gated.client("manage2")
    early = editor.request_promotion_approval(name, version, "Staging", "before any gate")
    manager.approve_promotion(name, early.request_id)
    gate = other.set_promotion_gate(name, "Staging", "", approvals_required=1)
    with pytest.raises(exceptions.FailedPrecondition) as error:
        editor.transition_model_version_stage(name, version, "Staging")
    assert error.value.reason == "APPROVAL_REQUIRED"
    assert f"approval {early.request_id} predates the gate's change at" in error.value.message
    fresh = editor.request_promotion_approval(name, version, "Staging")
    manager.approve_promotion(name, fresh.request_id)
    assert manager.get_promotion_gates(name)[0].updated_time == gate.updated_time
    other.set_promotion_gate(name, "Staging", "metrics.rmse < 5", approvals_required=1)  # changed again
    with pytest.raises(exceptions.FailedPrecondition):
        editor.transition_model_version_stage(name, version, "Staging")
    again = editor.request_promotion_approval(name, version, "Staging")
    manager.approve_promotion(name, again.request_id)
    editor.transition_model_version_stage(name, version, "Staging")
    statuses = {r.request_id: r.status for r in manager.list_approval_requests(name)}
    assert statuses == {
        early.request_id: "APPROVED",
        fresh.request_id: "APPROVED",
        again.request_id: "CONSUMED",
    }


def test_requests_with_the_largest_comments_are_listed_in_pages(gated: Registry) -> None:
    name = gated.model()
    version = int(gated.version(name, 1.0).version)
    editor = gated.client("edit")
    comment = "\U0001f600" * 65_536  # 256 kB: 40 of them pass the 8 MiB message limit
    made = [
        editor.request_promotion_approval(name, version, "Staging", comment).request_id for _ in range(40)
    ]
    with grpc.insecure_channel(gated.registry) as channel:
        response = RegistryServiceStub(channel).ListApprovalRequests(
            rpb.ListApprovalRequestsRequest(name=name, page_size=REQUESTS_PAGE_MAX),
            metadata=[("authorization", f"Bearer {gated.tokens['edit']}")],
        )
    assert 0 < len(response.requests) < 40 and response.next_page_token
    assert response.ByteSize() <= RESPONSE_BYTE_BUDGET
    reader = gated.client("read")
    listed = reader.list_approval_requests(name, "pending")  # every page
    assert [r.request_id for r in listed] == made[::-1]
    assert all(r.comment == comment for r in listed)
    assert [r.request_id for r in reader.registry.list_approval_requests(name, max_results=2)] == made[:-3:-1]
