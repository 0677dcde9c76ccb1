"""Caller input that the database itself would refuse is refused by the services first, with
INVALID_ARGUMENT and a reason, on every backend: through real servers on SQLite, PostgreSQL and
MySQL/MariaDB and the modelreg client. On PostgreSQL each of these used to fail the query and
come back INTERNAL."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

import modelreg
from modelreg.exceptions import InvalidArgument
from modelreg.registry.v1 import registry_pb2, registry_pb2_grpc
from modelreg_server.context import MAX_ACTOR_LENGTH
from tests.conftest import Backend
from tests.servers import Services, running_registry, running_tracking
from tracking_service.domain.rules import MAX_EXPERIMENT_ID


@pytest.fixture
def services(
    backend: Backend, database_url_factory: Callable[[str], str], tmp_path: Path
) -> Iterator[Services]:
    with running_tracking(tmp_path, backend.url) as (tracking, artifact_root):
        registry_url = database_url_factory(backend.name)
        with running_registry(tmp_path, tracking, registry_url) as registry:
            yield Services(tracking, registry, artifact_root)


def refused(call: Callable[[], object]) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        call()
    return caught.value


def test_nul_in_a_filter_or_order_by_is_invalid_filter(services: Services) -> None:
    with modelreg.Client(services.tracking, services.registry) as client:
        searches: dict[str, Callable[[str], object]] = {
            "runs": lambda text: client.search_runs(["0"], filter_string=text),
            "experiments": lambda text: client.search_experiments(filter_string=text),
            "models": lambda text: client.search_registered_models(filter_string=text),
            "versions": lambda text: client.search_model_versions(filter_string=text),
        }
        for name, search in searches.items():
            error = refused(lambda search=search: search("name = 'a\x00b'"))  # type: ignore[misc]
            assert (error.reason, error.metadata["field"]) == ("INVALID_FILTER", "filter"), name
        error = refused(lambda: client.search_runs(["0"], order_by=["attributes.run_name\x00"]))
        assert (error.reason, error.metadata["field"]) == ("INVALID_ORDER_BY", "order_by")


def test_experiment_ids_beyond_the_column_are_invalid(services: Services) -> None:
    too_large = str(MAX_EXPERIMENT_ID + 1)
    with modelreg.Client(services.tracking, services.registry) as client:
        for call, field in (
            (lambda: client.get_experiment(too_large), "experiment_id"),
            (lambda: client.create_run(too_large), "experiment_id"),
            (lambda: client.search_runs([too_large]), "experiment_ids"),
        ):
            error = refused(call)
            assert (error.reason, error.metadata["field"]) == ("INVALID_EXPERIMENT_ID", field)
        with pytest.raises(modelreg.exceptions.NotFound):
            client.get_experiment(str(MAX_EXPERIMENT_ID))


def test_an_over_long_actor_is_refused_and_the_longest_one_recorded(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELREG_USER", "a" * (MAX_ACTOR_LENGTH + 1))
    with modelreg.Client(services.tracking, services.registry) as client:
        error = refused(lambda: client.create_registered_model("Refused"))
        assert (error.reason, error.metadata["field"]) == ("INVALID_METADATA", "x-modelreg-actor")
    longest = "b" * MAX_ACTOR_LENGTH
    monkeypatch.setenv("MODELREG_USER", longest)
    with modelreg.Client(services.tracking, services.registry) as client:
        client.create_registered_model("Recorded")
        assert [event.actor for event in client.get_model_history("Recorded")] == [longest]
        assert client.search_registered_models(filter_string="name = 'Refused'") == []


def test_over_long_keys_to_look_up_or_delete_are_invalid_with_their_reason(services: Services) -> None:
    """The key was echoed into the error's details: 100 kB of it overflowed the 16 kB trailer
    limit, and the caller got RESOURCE_EXHAUSTED without an ErrorInfo."""
    huge = "k" * 100_000
    with modelreg.Client(services.tracking, services.registry) as client:
        run_id = client.create_run("0").info.run_id
        client.create_registered_model("Keys")
        calls: list[tuple[Callable[[], object], str, str]] = [
            (lambda: client.delete_tag(run_id, huge), "INVALID_TAG", "key"),
            (lambda: client.delete_experiment_tag("0", huge), "INVALID_TAG", "key"),
            (lambda: client.get_metric_history(run_id, huge), "INVALID_METRIC", "metric_key"),
            (lambda: client.get_experiment_by_name(huge), "INVALID_NAME", "name"),
            (lambda: client.delete_registered_model_tag("Keys", huge), "INVALID_TAG", "key"),
            (lambda: client.delete_model_version_tag("Keys", 1, huge), "INVALID_TAG", "key"),
            (lambda: client.delete_registered_model_alias("Keys", huge), "INVALID_ALIAS", "alias"),
            (lambda: client.get_model_version_by_alias("Keys", huge), "INVALID_ALIAS", "alias"),
        ]
        for call, reason, field in calls:
            error = refused(call)
            assert (error.reason, error.metadata["field"]) == (reason, field)
        # Keys within the bounds still reach the store, which says what it found.
        with pytest.raises(modelreg.exceptions.NotFound):
            client.get_model_version_by_alias("Keys", "champion")


def test_nul_in_any_string_is_invalid_on_every_backend(services: Services) -> None:
    """PostgreSQL cannot store NUL in text (each of these was INTERNAL there) while SQLite and
    MySQL stored it: now every backend refuses it before the write, naming the field."""
    nul = "a\x00b"
    with modelreg.Client(services.tracking, services.registry) as client:
        run_id = client.create_run("0").info.run_id
        client.create_registered_model("Nul")
        calls: list[tuple[Callable[[], object], str]] = [
            (lambda: client.create_experiment(nul), "INVALID_NAME"),
            (
                lambda: client.create_experiment("e", artifact_location=f"file:///tmp/{nul}"),
                "INVALID_ARTIFACT_LOCATION",
            ),
            (lambda: client.get_experiment_by_name(nul), "INVALID_NAME"),
            (lambda: client.set_tag(run_id, nul, "v"), "INVALID_TAG"),
            (lambda: client.set_tag(run_id, "k", nul), "INVALID_TAG"),
            (lambda: client.log_param(run_id, nul, "v"), "INVALID_PARAM"),
            (lambda: client.log_param(run_id, "p", nul), "INVALID_PARAM"),
            (lambda: client.create_registered_model(nul), "INVALID_NAME"),
            (lambda: client.set_registered_model_tag("Nul", "k", nul), "INVALID_TAG"),
            (lambda: client.update_registered_model("Nul", description=nul), "INVALID_DESCRIPTION"),
            (lambda: client.create_model_version("Nul", f"s3://bucket/{nul}"), "INVALID_SOURCE"),
        ]
        for call, reason in calls:
            assert refused(call).reason == reason
        assert client.get_run(run_id).data.params == {}
        assert [m.name for m in client.search_registered_models()] == ["Nul"]


# (gRPC itself refuses control characters and non-ASCII in these headers before they are sent;
# tests/unit/service/test_call_context.py covers the server's own refusal of them.)
@pytest.mark.parametrize(("header", "value"), [("x-request-id", "req 1 code=OK"), ("x-request-id", " ")])
def test_request_ids_that_would_change_how_a_record_reads_are_refused(
    services: Services, header: str, value: str
) -> None:
    with grpc.insecure_channel(services.registry) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            stub.CreateRegisteredModel(
                registry_pb2.CreateRegisteredModelRequest(name="Forged"),
                metadata=((header, value),),
                timeout=10,
            )
    refusal = modelreg.exceptions.from_rpc_error(error.value)
    assert (refusal.reason, refusal.metadata["field"]) == ("INVALID_METADATA", header)
    with modelreg.Client(services.tracking, services.registry) as client:
        assert client.search_registered_models(filter_string="name = 'Forged'") == []


def test_an_actor_with_spaces_and_equals_signs_is_one_field_of_the_call_log(
    services: Services, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELREG_USER", 'alice code=OK "x"')
    with (
        caplog.at_level(logging.INFO, logger="modelreg.calls"),
        modelreg.Client(services.tracking, services.registry) as client,
    ):
        client.create_registered_model("Spaced")
    (line,) = [r.getMessage() for r in caplog.records if "method=CreateRegisteredModel" in r.getMessage()]
    fields = re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line)
    assert [key for key, _ in fields].count("code") == 1
    assert dict(fields)["actor"] == json.dumps('alice code=OK "x"')
    assert dict(fields)["code"] == "OK"
