"""The history of a name that was deleted and created again, through the real client and CLI against
both real servers with access control on, on each database backend: the current model's events by
default, the earlier (deleted) models' too on request, each event naming its model; an admin's
request only, as the earlier models' grants went with them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from modelreg import exceptions
from modelreg.cli import main
from modelreg.entities import ModelEvent
from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.registry.v1.registry_pb2_grpc import RegistryServiceStub
from tests.conftest import Backend
from tests.integration.access.conftest import BOOTSTRAP, SecuredServices, auth_settings
from tests.servers import Services, running_registry, running_tracking


@pytest.fixture
def secured(
    backend: Backend, database_url_factory: Callable[[str], str], tmp_path: Path
) -> Iterator[SecuredServices]:
    """Both services on the backend under test, access control on, everyone reading by default."""
    auth = auth_settings(tmp_path)
    with (
        running_tracking(tmp_path, database_url_factory(backend.name), auth) as (tracking, artifact_root),
        running_registry(tmp_path, tracking, backend.url, auth) as registry,
    ):
        yield SecuredServices(Services(tracking, registry, artifact_root))


def _reused(secured: SecuredServices, admin: str) -> str:
    """A name whose first model (two versions, one in Staging) was deleted, then created again by
    ``reader-owner`` with one version: the reader holds MANAGE on the current model only."""
    name = f"reused-{uuid.uuid4().hex[:8]}"
    with secured.client(admin) as client:
        client.create_registered_model(name)
        client.create_model_version(name, "s3://bucket/first/1")
        client.create_model_version(name, "s3://bucket/first/2")
        client.transition_model_version_stage(name, 1, "Staging")
        client.delete_registered_model(name)
    with secured.client(secured.user_token("reader-owner")) as owner:
        owner.create_registered_model(name)
        owner.create_model_version(name, "s3://bucket/second/1")
    return name


def _actions(events: list[ModelEvent]) -> list[tuple[int, str]]:
    return [(e.version, e.action) for e in events]


def test_the_earlier_models_of_a_name_are_listed_on_request(
    secured: SecuredServices, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = secured.user_token("history-admin", admin=True)
    name = _reused(secured, admin)
    with secured.client(admin) as client:
        current = client.get_model_history(name)
        assert _actions(current) == [(0, "MODEL_CREATED"), (1, "VERSION_CREATED")]
        everything = client.get_model_history(name, include_deleted=True)
        first_model = [(1, "VERSION_CREATED"), (2, "VERSION_CREATED"), (1, "STAGE_TRANSITIONED")]
        assert _actions(everything) == [
            (0, "MODEL_CREATED"),
            *first_model,
            (0, "MODEL_DELETED"),
            (0, "MODEL_CREATED"),
            (1, "VERSION_CREATED"),
        ]
        # Oldest first across both models, which the events tell apart.
        assert [e.event_id for e in everything] == sorted(e.event_id for e in everything)
        earlier, later = everything[:5], everything[5:]
        assert len({e.model_id for e in earlier}) == len({e.model_id for e in later}) == 1
        assert earlier[0].model_id != later[0].model_id == current[0].model_id != 0
        # One version's events of every model of the name.
        version_1 = client.get_model_history(name, 1, include_deleted=True)
        assert [(e.model_id, e.action) for e in version_1] == [
            (earlier[0].model_id, "VERSION_CREATED"),
            (earlier[0].model_id, "STAGE_TRANSITIONED"),
            (later[0].model_id, "VERSION_CREATED"),
        ]

    # Pages run across the models, and a page token belongs to the query it came from.
    channel = grpc.insecure_channel(secured.services.registry)
    stub = RegistryServiceStub(channel)
    metadata = (("authorization", f"Bearer {admin}"),)
    paged, tokens, token = [], [], ""
    while True:
        request = rpb.ListModelEventsRequest(name=name, page_size=2, page_token=token, include_deleted=True)
        page = stub.ListModelEvents(request, metadata=metadata, timeout=10)
        paged.extend(e.event_id for e in page.events)
        if not (token := page.next_page_token):
            break
        tokens.append(token)
    assert paged == [e.event_id for e in everything]
    with pytest.raises(grpc.RpcError) as mismatched:
        stub.ListModelEvents(
            rpb.ListModelEventsRequest(name=name, page_size=2, page_token=tokens[0]),
            metadata=metadata,
            timeout=10,
        )
    assert mismatched.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    channel.close()

    # The CLI: --all adds a MODEL column once the list spans more than one model.
    monkeypatch.setenv("MODELREG_TOKEN", admin)
    targets = ["--tracking-uri", secured.services.tracking, "--registry-uri", secured.services.registry]
    assert main([*targets, "history", name, "--all", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["model_id"], e["action"]) for e in listed] == [(e.model_id, e.action) for e in everything]
    assert main([*targets, "history", name, "--all"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["TIME", "MODEL", "VERSION"]
    assert len(table) == 1 + len(everything)
    assert main([*targets, "history", name]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "MODEL" not in table[0].split() and len(table) == 1 + len(current)


def test_only_an_admin_lists_the_earlier_models(secured: SecuredServices) -> None:
    """The earlier model's grants died with it: even the current model's owner (MANAGE) is refused
    its events, by name; the current model's events need READ as before."""
    admin = secured.user_token("history-admin", admin=True)
    name = _reused(secured, admin)
    for user in ("reader-owner", "reader-other"):
        with secured.client(secured.user_token(user)) as client:
            assert _actions(client.get_model_history(name)) == [(0, "MODEL_CREATED"), (1, "VERSION_CREATED")]
            with pytest.raises(exceptions.PermissionDenied) as denied:
                client.get_model_history(name, include_deleted=True)
            assert denied.value.reason == "PERMISSION_DENIED"
            assert dict(denied.value.metadata) == {
                "permission": "ADMIN",
                "resource": f"registered_models/{name}",
            }
            assert name in str(denied.value)
    with secured.client(BOOTSTRAP) as bootstrap:
        assert len(bootstrap.get_model_history(name, include_deleted=True)) == 7
    # A name with no current model lists its deleted models' events as before, to any reader.
    with secured.client(admin) as client:
        client.delete_registered_model(name)
    with secured.client(secured.user_token("reader-other")) as client:
        assert len(client.get_model_history(name)) == 8
