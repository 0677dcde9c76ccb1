"""Listings over entities that are bloated but within their caps: each page stays within the
response byte budget, ending early with a token that resumes after its last row, and the client's
iterators return every row exactly once. Before, one listing response held every row of the page
(12 runs of 100 8-kB tags: 9.6 MB) and failed over the 8 MiB message limit, for every caller."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from google.protobuf.message import Message

from modelreg.cli import main
from modelreg.entities import Metric, RunTag
from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.tracking.v1 import tracking_pb2 as tpb
from modelreg_server.pagination import RESPONSE_BYTE_BUDGET
from registry_service.domain.service import EVENTS_PAGE_MAX, MODELS_PAGE_MAX, VERSIONS_PAGE_MAX
from tests.conftest import BACKEND_PARAMS
from tests.integration.limits.conftest import BIG, Stack
from tracking_service.domain import rules

pytestmark = pytest.mark.parametrize("backend", BACKEND_PARAMS, indirect=True)
# 32 tags of 8 kB: as much as a registered model or a version may hold (256 KiB).
FULL_TAGS = {f"t{i:02}": BIG for i in range(32)}
# The longest metric key: a history point takes ~280 bytes on the wire.
LONG_KEY = "k" * 250


@dataclass(frozen=True)
class Listing:
    """How to fill a backend with bloated entities (returns their ids), list them all through the
    client, and ask for one page of the largest size through a raw stub (rows, token, response)."""

    populate: Callable[[Stack], list[str]]
    list_all: Callable[[Stack], list[str]]
    first_page: Callable[[Stack], tuple[int, str, Message]]


def _runs(stack: Stack) -> list[str]:
    experiment_id = stack.tracking.create_experiment("bloated").experiment_id
    ids = []
    for _ in range(12):
        run_id = stack.tracking.create_run(experiment_id).info.run_id
        stack.tracking.log_batch(run_id, tags=[RunTag(f"t{i:03}", BIG) for i in range(100)])
        ids.append(run_id)
    return ids


def _runs_page(stack: Stack) -> tuple[int, str, Message]:
    experiment_id = stack.tracking.get_experiment_by_name("bloated").experiment_id
    request = tpb.SearchRunsRequest(experiment_ids=[experiment_id], page_size=rules.SEARCH_PAGE_MAX)
    response = stack.tracking_stub.SearchRuns(request)
    return len(response.runs), response.next_page_token, response


def _experiments(stack: Stack) -> list[str]:
    tags = {f"t{i:03}": BIG for i in range(100)}
    return [stack.tracking.create_experiment(f"e{i}", tags=tags).experiment_id for i in range(11)]


def _experiments_page(stack: Stack) -> tuple[int, str, Message]:
    response = stack.tracking_stub.SearchExperiments(
        tpb.SearchExperimentsRequest(filter="name LIKE 'e%'", page_size=rules.SEARCH_PAGE_MAX)
    )
    return len(response.experiments), response.next_page_token, response


def _history(stack: Stack) -> list[str]:
    run_id = stack.tracking.create_run("0", run_name="history").info.run_id
    points = [Metric(LONG_KEY, float(step), 1, step) for step in range(32_000)]
    stack.tracking.log_metrics_stream((run_id, points[i : i + 10_000]) for i in range(0, len(points), 10_000))
    return [str(step) for step in range(32_000)]


def _history_run(stack: Stack) -> str:
    return next(
        iter(stack.tracking.search_runs(["0"], filter_string="attributes.run_name = 'history'"))
    ).info.run_id


def _history_page(stack: Stack) -> tuple[int, str, Message]:
    request = tpb.GetMetricHistoryRequest(
        run_id=_history_run(stack), metric_key=LONG_KEY, page_size=rules.HISTORY_PAGE_MAX
    )
    response = stack.tracking_stub.GetMetricHistory(request)
    return len(response.metrics), response.next_page_token, response


def _versions(stack: Stack) -> list[str]:
    stack.registry.create_registered_model("bloated")
    return [
        str(stack.registry.create_model_version("bloated", "s3://bucket/m", tags=FULL_TAGS).version)
        for _ in range(40)
    ]


def _versions_page(stack: Stack) -> tuple[int, str, Message]:
    request = rpb.SearchModelVersionsRequest(filter="name = 'bloated'", page_size=VERSIONS_PAGE_MAX)
    response = stack.registry_stub.SearchModelVersions(request)
    return len(response.model_versions), response.next_page_token, response


def _models(stack: Stack) -> list[str]:
    names = [f"bloated-{i:02}" for i in range(20)]
    for name in names:  # 512 KiB each: its tags and its latest version's
        stack.registry.create_registered_model(name, tags=FULL_TAGS)
        stack.registry.create_model_version(name, "s3://bucket/m", tags=FULL_TAGS)
    return names


def _models_page(stack: Stack) -> tuple[int, str, Message]:
    request = rpb.SearchRegisteredModelsRequest(filter="name LIKE 'bloated-%'", page_size=MODELS_PAGE_MAX)
    response = stack.registry_stub.SearchRegisteredModels(request)
    return len(response.registered_models), response.next_page_token, response


def _events(stack: Stack) -> list[str]:
    stack.registry.create_registered_model("history")
    stack.registry.create_model_version("history", "s3://bucket/m")
    # Long comments (up to 65,536 characters are allowed; MySQL's TEXT stores 65,535 bytes).
    comment = "c" * 60_000
    for i in range(150):
        stage = "Staging" if i % 2 else "Production"
        stack.registry.transition_model_version_stage("history", 1, stage, comment=comment)
    ids, token = [], ""
    while True:  # one event per page: well within any budget
        request = rpb.ListModelEventsRequest(name="history", page_size=1, page_token=token)
        response = stack.registry_stub.ListModelEvents(request)
        ids += [str(event.event_id) for event in response.events]
        if not (token := response.next_page_token):
            return ids


def _events_page(stack: Stack) -> tuple[int, str, Message]:
    response = stack.registry_stub.ListModelEvents(
        rpb.ListModelEventsRequest(name="history", page_size=EVENTS_PAGE_MAX)
    )
    return len(response.events), response.next_page_token, response


LISTINGS = {
    "SearchRuns": Listing(
        _runs,
        lambda stack: [
            run.info.run_id
            for run in stack.tracking.search_runs(
                [stack.tracking.get_experiment_by_name("bloated").experiment_id]
            )
        ],
        _runs_page,
    ),
    "SearchExperiments": Listing(
        _experiments,
        lambda stack: [
            e.experiment_id for e in stack.tracking.search_experiments(filter_string="name LIKE 'e%'")
        ],
        _experiments_page,
    ),
    "GetMetricHistory": Listing(
        _history,
        lambda stack: [str(m.step) for m in stack.tracking.get_metric_history(_history_run(stack), LONG_KEY)],
        _history_page,
    ),
    "SearchModelVersions": Listing(
        _versions,
        lambda stack: [str(v.version) for v in stack.registry.search_model_versions("name = 'bloated'")],
        _versions_page,
    ),
    "SearchRegisteredModels": Listing(
        _models,
        lambda stack: [m.name for m in stack.registry.search_registered_models("name LIKE 'bloated-%'")],
        _models_page,
    ),
    "ListModelEvents": Listing(
        _events,
        lambda stack: [str(event.event_id) for event in stack.registry.list_model_events("history")],
        _events_page,
    ),
}


@pytest.mark.parametrize("listing", LISTINGS.values(), ids=LISTINGS.keys())
def test_listing_pages_stay_within_the_byte_budget_and_return_every_row_once(
    stack: Stack, listing: Listing
) -> None:
    expected = listing.populate(stack)
    rows, token, response = listing.first_page(stack)
    assert 0 < rows < len(expected) and token
    assert response.ByteSize() <= RESPONSE_BYTE_BUDGET
    listed = listing.list_all(stack)
    assert sorted(listed) == sorted(expected) and len(set(listed)) == len(listed)


def test_models_list_shows_every_bloated_model(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    names = _models(stack)
    tracking, registry = stack.targets
    code = main(["models", "list", "--tracking-uri", tracking, "--registry-uri", registry, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sorted(model["name"] for model in json.loads(captured.out)) == names
