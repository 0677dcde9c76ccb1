"""Authentication on every RPC of both services: API tokens, the bootstrap admin, revocation."""

from __future__ import annotations

import string
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg import exceptions
from modelreg.access_client import AccessClient
from modelreg.entities import Metric
from tests.integration.access.conftest import BOOTSTRAP, SecuredServices


def test_a_call_without_credentials_is_unauthenticated_on_both_services(secured: SecuredServices) -> None:
    with secured.client(None) as anonymous:
        with pytest.raises(exceptions.Unauthenticated) as tracking_error:
            anonymous.create_experiment("nobody-may")
        with pytest.raises(exceptions.Unauthenticated) as registry_error:
            anonymous.create_registered_model("nobody-may")
    assert tracking_error.value.reason == registry_error.value.reason == "MISSING_CREDENTIALS"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Basic dXNlcjpwYXNz", "MALFORMED_CREDENTIALS"),
        ("Bearer", "MALFORMED_CREDENTIALS"),
        ("Bearer mrt_000000000000_" + "A" * 43, "INVALID_TOKEN"),
        ("Bearer mrt_short", "INVALID_TOKEN"),
        ("Bearer not-a-token", "INVALID_TOKEN"),
        ("Bearer a.b.c", "INVALID_TOKEN"),
    ],
)
def test_malformed_or_unknown_credentials_are_refused_with_a_reason(
    secured: SecuredServices, header: str, reason: str
) -> None:
    with grpc.insecure_channel(secured.services.tracking) as channel:
        call = channel.unary_unary("/modelreg.tracking.v1.TrackingService/GetExperiment")
        with pytest.raises(grpc.RpcError) as error:
            call(b"", metadata=(("authorization", header),), timeout=5)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason in str(exceptions.from_rpc_error(error.value).reason)


def test_health_needs_no_credentials(secured: SecuredServices) -> None:
    with grpc.insecure_channel(secured.services.registry) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_a_token_authenticates_its_user_and_the_history_records_them(secured: SecuredServices) -> None:
    token = secured.user_token("tara")
    with AccessClient(secured.services.tracking, token=token) as access:
        me = access.whoami()
    assert (me.name, me.admin, me.authenticated_by) == ("tara", False, "token")
    with secured.client(token) as tara:
        tara.create_registered_model("tara-model")
        events = list(tara.registry.list_model_events("tara-model"))
    assert [e.actor for e in events] == ["tara"]


def test_the_actor_header_cannot_forge_the_recorded_actor(
    secured: SecuredServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = secured.user_token("mallory")
    monkeypatch.setenv("MODELREG_USER", "ceo@corp")
    with secured.client(token) as mallory:
        mallory.create_registered_model("forged-actor")
        events = list(mallory.registry.list_model_events("forged-actor"))
    assert [e.actor for e in events] == ["mallory"]


def test_a_revoked_token_is_refused_within_a_second(secured: SecuredServices) -> None:
    token = secured.user_token("rita")
    with secured.client(token) as rita:
        rita.search_experiments()  # cached as valid on this replica now
        with secured.access() as admin:
            token_id = token.split("_")[1]
            admin.revoke_token(token_id)
        time.sleep(1.0)
        with pytest.raises(exceptions.Unauthenticated) as error:
            rita.search_experiments()
    assert error.value.reason == "TOKEN_REVOKED"


def test_an_expired_token_is_refused(secured: SecuredServices) -> None:
    secured.user_token("eve")
    with secured.access() as admin:
        created = admin.create_token("eve", expires_in_seconds=1)
    time.sleep(1.1)
    with secured.client(created.secret) as eve, pytest.raises(exceptions.Unauthenticated) as error:
        eve.search_experiments()
    assert error.value.reason == "TOKEN_EXPIRED"


def test_a_disabled_user_is_refused(secured: SecuredServices) -> None:
    token = secured.user_token("dan")
    with secured.access() as admin:
        admin.update_user("dan", disabled=True)
    time.sleep(1.0)
    with secured.client(token) as dan, pytest.raises(exceptions.Unauthenticated) as error:
        dan.search_experiments()
    assert error.value.reason == "USER_DISABLED"


def test_only_admins_manage_users_and_the_audit_names_who_did_what(secured: SecuredServices) -> None:
    token = secured.user_token("uma")
    with AccessClient(secured.services.registry, token=token) as uma:
        with pytest.raises(exceptions.PermissionDenied) as error:
            uma.create_user("uma-friend", admin=True)
        own = uma.create_token(description="laptop")
        assert own.token.user == "uma"
        with pytest.raises(exceptions.PermissionDenied):
            uma.create_token("bootstrap-admin")
    assert error.value.metadata["permission"] == "ADMIN"
    with secured.access() as admin:
        events = list(admin.list_access_events())
    mine = [(e.actor, e.action, e.target) for e in events if "uma" in (e.actor, e.target)]
    assert ("bootstrap-admin", "USER_CREATED", "uma") in mine
    assert ("uma", "TOKEN_CREATED", own.token.id) in mine
    assert all(own.secret not in e.detail for e in events)


def test_a_user_lists_only_their_own_tokens(secured: SecuredServices) -> None:
    token = secured.user_token("lena")
    secured.user_token("other")
    with AccessClient(secured.services.registry, token=token) as lena:
        assert {t.user for t in lena.list_tokens()} == {"lena"}
        with pytest.raises(exceptions.PermissionDenied):
            lena.list_tokens("other")


def test_a_plain_user_cannot_act_on_behalf_of_another(secured: SecuredServices) -> None:
    token = secured.user_token("sam")
    with grpc.insecure_channel(secured.services.tracking) as channel:
        call = channel.unary_unary("/modelreg.access.v1.AccessService/WhoAmI")
        with pytest.raises(grpc.RpcError) as error:
            call(
                b"",
                metadata=(
                    ("authorization", f"Bearer {token}"),
                    ("x-modelreg-on-behalf-of", '{"name":"ceo","groups":[],"admin":true}'),
                ),
                timeout=5,
            )
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert exceptions.from_rpc_error(error.value).reason == "ON_BEHALF_NOT_ALLOWED"


def test_the_bootstrap_token_is_an_admin(secured: SecuredServices) -> None:
    with AccessClient(secured.services.tracking, token=BOOTSTRAP) as admin:
        me = admin.whoami()
    assert (me.name, me.admin, me.authenticated_by) == ("bootstrap-admin", True, "bootstrap")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    authorization=st.text(alphabet=string.ascii_letters + string.digits + " ._-=+/", max_size=200),
    on_behalf=st.one_of(st.none(), st.text(alphabet=string.printable.strip(), max_size=200)),
)
def test_fuzzed_headers_through_the_server_never_give_internal(
    secured: SecuredServices, authorization: str, on_behalf: str | None
) -> None:
    metadata = [("authorization", authorization)]
    if on_behalf is not None:
        metadata.append(("x-modelreg-on-behalf-of", on_behalf))
    with grpc.insecure_channel(secured.services.registry) as channel:
        call = channel.unary_unary("/modelreg.registry.v1.RegistryService/SearchRegisteredModels")
        try:
            call(b"", metadata=metadata, timeout=5)
        except grpc.RpcError as error:
            assert error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def test_a_token_revoked_while_its_metric_stream_runs_stops_the_stream(secured: SecuredServices) -> None:
    token = secured.user_token("streamer")
    with secured.client(token) as streamer:
        experiment_id = streamer.create_experiment("streamed")
        run_id = streamer.create_run(experiment_id).info.run_id

        def batches() -> Iterator[tuple[str, list[Metric]]]:
            for step in range(8):
                if step == 1:
                    with secured.access() as admin:
                        admin.revoke_token(token.split("_")[1])
                if step >= 1:
                    time.sleep(0.3)  # the stream outlives the revocation by over a second
                yield run_id, [Metric("loss", 1.0 / (step + 1), 0, step)]

        with pytest.raises(exceptions.Unauthenticated) as error:
            streamer.tracking.log_metrics_stream(batches())
    assert error.value.reason == "TOKEN_REVOKED"
    with secured.client(secured.user_token("reader")) as reader:
        assert len(list(reader.tracking.get_metric_history(run_id, "loss"))) < 8


def test_a_token_cannot_create_a_token_that_outlives_it(secured: SecuredServices) -> None:
    secured.user_token("tim")
    with secured.access() as admin:
        short = admin.create_token("tim", expires_in_seconds=600).secret
    with AccessClient(secured.services.registry, token=short) as tim:
        for forever_or_longer in (0, 3600):
            with pytest.raises(exceptions.InvalidArgument) as error:
                tim.create_token(expires_in_seconds=forever_or_longer)
            assert error.value.reason == "INVALID_EXPIRY"
        assert tim.create_token(expires_in_seconds=60).token.expires_at is not None


def _every_method() -> list[tuple[str, str, bool, bool]]:
    """(target attribute, full method, client streams, server streams) of every RPC both services
    serve, reflection included: a new RPC is covered by this test the day it is added."""
    from modelreg.access.v1 import access_pb2
    from modelreg.registry.v1 import registry_pb2
    from modelreg.tracking.v1 import tracking_pb2

    found = [("tracking", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", True, True)]
    for target, module in (("tracking", tracking_pb2), ("registry", registry_pb2), ("registry", access_pb2)):
        for service in module.DESCRIPTOR.services_by_name.values():
            found.extend(
                (target, f"/{service.full_name}/{m.name}", m.client_streaming, m.server_streaming)
                for m in service.methods
            )
    found.append(("tracking", "/modelreg.access.v1.AccessService/WhoAmI", False, False))
    return found


@pytest.mark.parametrize(("target", "method", "client_streams", "server_streams"), _every_method())
def test_every_rpc_refuses_a_caller_without_credentials(
    secured: SecuredServices, target: str, method: str, client_streams: bool, server_streams: bool
) -> None:
    with (
        grpc.insecure_channel(getattr(secured.services, target)) as channel,
        pytest.raises(grpc.RpcError) as error,
    ):
        if client_streams and server_streams:
            list(channel.stream_stream(method)(iter([b""]), timeout=5))
        elif client_streams:
            channel.stream_unary(method)(iter([b""]), timeout=5)
        elif server_streams:
            list(channel.unary_stream(method)(b"", timeout=5))
        else:
            channel.unary_unary(method)(b"", timeout=5)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED, method
