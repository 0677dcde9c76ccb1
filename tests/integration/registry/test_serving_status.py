"""ReportServingStatus through the real client against both real servers with access control on,
on each database backend: the event it writes (the caller as actor), where it shows up (history,
watches), its errors (NOT_FOUND, INVALID_ARGUMENT naming the field), who may report (READ) and
how often (a bound per caller and model)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg import exceptions
from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.registry.v1.registry_pb2_grpc import RegistryServiceStub
from modelreg_server.access.policy import Level
from registry_service.domain.rules import (
    MAX_SERVING_DETAIL_LENGTH,
    MAX_SERVING_INSTANCE_LENGTH,
    SERVING_REPORTS_PER_MINUTE,
)
from tests.conftest import Backend
from tests.integration.access.conftest import BOOTSTRAP, SecuredServices, auth_settings
from tests.servers import Services, running_registry, running_tracking

REPORTS_PER_MINUTE = 5


@contextmanager
def _secured(
    backend: Backend, database_url_factory: Callable[[str], str], tmp_path: Path, reports_per_minute: int
) -> Iterator[SecuredServices]:
    """Both services on the backend under test, access control on, no default level: a user
    reads only the models they are granted."""
    auth = auth_settings(tmp_path, Level.NONE)
    with (
        running_tracking(tmp_path, database_url_factory(backend.name), auth) as (tracking, artifact_root),
        running_registry(
            tmp_path, tracking, backend.url, auth, serving_reports_per_minute=reports_per_minute
        ) as registry,
    ):
        yield SecuredServices(Services(tracking, registry, artifact_root))


@pytest.fixture
def private(
    backend: Backend,
    database_url_factory: Callable[[str], str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[SecuredServices]:
    """The services of ``_secured``; a test parametrizes the bound on reports indirectly."""
    per_minute = getattr(request, "param", SERVING_REPORTS_PER_MINUTE)
    with _secured(backend, database_url_factory, tmp_path, per_minute) as services:
        yield services


def _model(services: SecuredServices, versions: int = 1) -> str:
    """A model created by an admin, with bare-source versions."""
    name = f"served-{uuid.uuid4().hex[:8]}"
    with services.client(BOOTSTRAP) as admin:
        admin.create_registered_model(name)
        for i in range(versions):
            admin.create_model_version(name, f"s3://bucket/{name}/{i}")
    return name


def _reader(services: SecuredServices, name: str, user: str = "server-pod") -> str:
    """A token of ``user``, granted READ (only) on ``name``."""
    token = services.user_token(user)
    with services.client(BOOTSTRAP) as admin:
        admin.set_registered_model_permission(name, "READ", user=user)
    return token


def test_a_report_writes_an_event_with_the_caller_as_actor(private: SecuredServices) -> None:
    name = _model(private, versions=2)
    with private.client(_reader(private, name)) as reader:
        before = reader.get_registered_model(name).last_updated_timestamp
        loaded = reader.report_serving_status(
            name, 2, loaded=True, detail="models:/x@champion -> version 2", instance="pod-7f9c"
        )
        failed = reader.report_serving_status(name, 1, loaded=False, detail="digest mismatch: model.skops")
        history = reader.get_model_history(name)
        # A report changes nothing of the model.
        assert reader.get_registered_model(name).last_updated_timestamp == before
    assert (loaded.action, loaded.version, loaded.to_value, loaded.comment, loaded.actor) == (
        "SERVING_LOADED",
        2,
        "pod-7f9c",
        "models:/x@champion -> version 2",
        "server-pod",
    )
    assert (failed.action, failed.version, failed.to_value, failed.actor) == (
        "SERVING_LOAD_FAILED",
        1,
        "",
        "server-pod",
    )
    # The response is the event as the history holds it.
    assert [e for e in history if e.action.startswith("SERVING_")] == [loaded, failed]


def test_a_report_reaches_a_watch_filtered_by_its_action(private: SecuredServices) -> None:
    name = _model(private)
    with private.client(_reader(private, name, "watching-pod")) as reader:
        reader.report_serving_status(name, 1, loaded=True)
        reported = reader.report_serving_status(name, 1, loaded=False, detail="signature mismatch")
        watch = reader.watch_model_events(name, actions=["SERVING_LOAD_FAILED"], from_beginning=True)
        try:
            seen = next(iter(watch))
        finally:
            watch.close()
    assert (seen.event_id, seen.action, seen.comment) == (
        reported.event_id,
        "SERVING_LOAD_FAILED",
        reported.comment,
    )


def test_the_actor_header_cannot_name_the_reporter(private: SecuredServices) -> None:
    name = _model(private)
    token = _reader(private, name, "honest-pod")
    stub = RegistryServiceStub(grpc.insecure_channel(private.services.registry))
    request = rpb.ReportServingStatusRequest(name=name, version=1, outcome=rpb.SERVING_OUTCOME_LOADED)
    response = stub.ReportServingStatus(
        request,
        timeout=10,
        metadata=(("authorization", f"Bearer {token}"), ("x-modelreg-actor", "someone-else")),
    )
    assert response.event.actor == "honest-pod"


@pytest.mark.parametrize("private", [REPORTS_PER_MINUTE], indirect=True)
def test_a_reader_reporting_past_the_bound_is_refused_and_writes_nothing(private: SecuredServices) -> None:
    """A READ token cannot fill the history (and its watches and webhooks) with reports."""
    name = _model(private)
    with private.client(_reader(private, name, "chatty-pod")) as reader:
        sent = [
            reader.report_serving_status(name, 1, loaded=True, instance=f"pod-{i}")
            for i in range(REPORTS_PER_MINUTE)
        ]
        with pytest.raises(exceptions.ResourceExhausted) as refused:
            reader.report_serving_status(name, 1, loaded=False, detail="one too many")
    assert refused.value.reason == "TOO_MANY_SERVING_REPORTS"
    assert refused.value.metadata == {"field": "name", "limit": str(REPORTS_PER_MINUTE)}
    assert "'chatty-pod'" in refused.value.message
    with private.client(BOOTSTRAP) as admin:
        admin.report_serving_status(name, 1, loaded=True, instance="admin-pod")  # another caller's own bound
        reports = [e for e in admin.get_model_history(name) if e.action.startswith("SERVING_")]
    assert [e.event_id for e in reports[:-1]] == [e.event_id for e in sent]
    assert reports[-1].to_value == "admin-pod"


def test_a_missing_version_or_model_is_not_found(private: SecuredServices) -> None:
    name = _model(private)
    with private.client(BOOTSTRAP) as admin:
        with pytest.raises(exceptions.NotFound) as version:
            admin.report_serving_status(name, 2, loaded=True)
        admin.delete_model_version(name, 1)
        with pytest.raises(exceptions.NotFound) as deleted:
            admin.report_serving_status(name, 1, loaded=True)
        with pytest.raises(exceptions.NotFound) as model:
            admin.report_serving_status(f"{name}-missing", 1, loaded=True)
    assert (version.value.reason, deleted.value.reason) == ("MODEL_VERSION_NOT_FOUND",) * 2
    assert model.value.reason == "REGISTERED_MODEL_NOT_FOUND"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("detail", "x" * (MAX_SERVING_DETAIL_LENGTH + 1), "INVALID_DETAIL"),
        ("detail", "loaded\nversion 3", "INVALID_DETAIL"),
        ("detail", "ok\u202eevil", "INVALID_DETAIL"),
        ("instance", "p" * (MAX_SERVING_INSTANCE_LENGTH + 1), "INVALID_INSTANCE"),
        ("instance", "pod\x00-1", "INVALID_INSTANCE"),
        ("instance", "pod\r-1", "INVALID_INSTANCE"),
    ],
)
def test_bad_text_is_invalid_argument_naming_its_field(
    private: SecuredServices, field: str, value: str, reason: str
) -> None:
    name = _model(private)
    with private.client(BOOTSTRAP) as admin:
        with pytest.raises(exceptions.InvalidArgument) as error:
            admin.report_serving_status(name, 1, loaded=True, **{field: value})
        assert not [e for e in admin.get_model_history(name) if e.action.startswith("SERVING_")]
    assert (error.value.reason, error.value.metadata["field"]) == (reason, field)


def test_text_at_its_limits_is_recorded_whole(private: SecuredServices) -> None:
    name = _model(private)
    detail, instance = "d" * MAX_SERVING_DETAIL_LENGTH, "i" * MAX_SERVING_INSTANCE_LENGTH
    with private.client(BOOTSTRAP) as admin:
        event = admin.report_serving_status(name, 1, loaded=False, detail=detail, instance=instance)
        stored = admin.get_model_history(name, 1)[-1]
    assert (event.comment, event.to_value) == (detail, instance) == (stored.comment, stored.to_value)


def test_an_unspecified_outcome_or_bad_version_is_invalid_argument(private: SecuredServices) -> None:
    name = _model(private)
    stub = RegistryServiceStub(grpc.insecure_channel(private.services.registry))
    auth = (("authorization", f"Bearer {BOOTSTRAP}"),)
    for request, reason, field in [  # what the client cannot send
        (rpb.ReportServingStatusRequest(name=name, version=1), "INVALID_OUTCOME", "outcome"),
        (
            rpb.ReportServingStatusRequest(name=name, version=1, outcome=99),  # type: ignore[arg-type]
            "INVALID_OUTCOME",
            "outcome",
        ),
        (
            rpb.ReportServingStatusRequest(name=name, version=0, outcome=rpb.SERVING_OUTCOME_LOADED),
            "INVALID_VERSION",
            "version",
        ),
    ]:
        with pytest.raises(grpc.RpcError) as error:
            stub.ReportServingStatus(request, timeout=10, metadata=auth)
        status = rpc_status.from_call(error.value)  # type: ignore[arg-type]
        assert status is not None and len(status.details) == 1
        info = error_details_pb2.ErrorInfo()
        assert status.details[0].Unpack(info)
        assert (error.value.code(), info.reason, info.metadata["field"]) == (  # type: ignore[attr-defined]
            grpc.StatusCode.INVALID_ARGUMENT,
            reason,
            field,
        )


def test_reporting_needs_a_token_and_read_on_the_model(private: SecuredServices) -> None:
    name = _model(private)
    with private.client(None) as anonymous, pytest.raises(exceptions.Unauthenticated):
        anonymous.report_serving_status(name, 1, loaded=True)
    ungranted = private.client(private.user_token("ungranted-pod"))
    with ungranted, pytest.raises(exceptions.PermissionDenied) as denied:
        ungranted.report_serving_status(name, 1, loaded=True)
    assert (denied.value.metadata["permission"], denied.value.metadata["resource"]) == (
        "READ",
        f"registered_models/{name}",
    )
    with private.client(_reader(private, name, "granted-pod")) as granted:
        assert granted.report_serving_status(name, 1, loaded=True).actor == "granted-pod"
    with private.client(BOOTSTRAP) as admin:
        actors = [e.actor for e in admin.get_model_history(name) if e.action.startswith("SERVING_")]
    assert actors == ["granted-pod"]


_SHARED_MODEL = "served-by-hypothesis"


@pytest.fixture
def shared_model(private: SecuredServices) -> None:
    with private.client(BOOTSTRAP) as admin:
        admin.create_registered_model(_SHARED_MODEL)
        admin.create_model_version(_SHARED_MODEL, "s3://bucket/shared/1")


@pytest.mark.usefixtures("shared_model")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(detail=st.text(max_size=40), instance=st.text(max_size=20))
def test_any_text_is_recorded_as_sent_or_refused_naming_its_field(
    private: SecuredServices, detail: str, instance: str
) -> None:
    """Whatever the text, the answer is the event holding it exactly, or INVALID_ARGUMENT for
    one of the two fields: never another error."""
    with private.client(BOOTSTRAP) as admin:
        try:
            event = admin.report_serving_status(
                _SHARED_MODEL, 1, loaded=True, detail=detail, instance=instance
            )
        except exceptions.InvalidArgument as error:
            assert error.reason in {"INVALID_DETAIL", "INVALID_INSTANCE"}
            assert error.metadata["field"] == error.reason.removeprefix("INVALID_").lower()
            return
    assert (event.comment, event.to_value) == (detail, instance)


def test_a_retried_report_is_written_once_and_answered_with_the_same_event(private: SecuredServices) -> None:
    name = _model(private)
    stub = RegistryServiceStub(grpc.insecure_channel(private.services.registry))
    request = rpb.ReportServingStatusRequest(
        name=name, version=1, outcome=rpb.SERVING_OUTCOME_LOADED, detail="first try", instance="pod-1"
    )
    metadata = (("authorization", f"Bearer {BOOTSTRAP}"), ("x-modelreg-idempotency-key", uuid.uuid4().hex))
    first = stub.ReportServingStatus(request, timeout=10, metadata=metadata).event
    again = stub.ReportServingStatus(request, timeout=10, metadata=metadata).event
    assert again == first
    with private.client(BOOTSTRAP) as admin:
        reports = [e for e in admin.get_model_history(name) if e.action.startswith("SERVING_")]
    assert [e.event_id for e in reports] == [first.event_id]
