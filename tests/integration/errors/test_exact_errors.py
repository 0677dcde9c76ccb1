"""Input that used to come back INTERNAL, or differently from one backend to another, is refused
with the same status, reason and field on SQLite, PostgreSQL and MySQL/MariaDB, through both real
servers; and LIKE / ILIKE select the same rows on all three."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from modelreg.access.v1 import access_pb2 as apb
from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.tracking.v1 import tracking_pb2 as tpb
from modelreg.wire import quote
from modelreg_server.filters import MAX_PATTERN_LENGTH
from tests.conftest import BACKEND_PARAMS
from tests.integration.errors.conftest import ACCESS, REGISTRY, TRACKING, Answer, Stack, running_stack

INVALID = grpc.StatusCode.INVALID_ARGUMENT
HUGE = 2**70
NUL = "a\x00b"
# Names of runs and models for the LIKE test.
LIKE_NAMES = ["back\\slash", "back%", "back\\%", "back\\", "Back_x", "backslash"]


@dataclass(frozen=True)
class World:
    """A backend's servers and what the test made there: model X with version 1, a run with two
    points of metric m, and a page token of each paged RPC, as the server wrote it."""

    stack: Stack
    run_id: str
    experiment_id: str
    tokens: dict[str, str]

    def token(self, method: str, offset: str) -> str:
        """The page token ``method`` wrote, with its offset replaced by the JSON text ``offset``."""
        query = json.loads(base64.urlsafe_b64decode(self.tokens[method]))["q"]
        return base64.urlsafe_b64encode(f'{{"o":{offset},"q":"{query}"}}'.encode()).decode()


def _populate(stack: Stack) -> World:
    experiment_id = stack.ok(
        TRACKING + "CreateExperiment", tpb.CreateExperimentRequest(name="e"), tpb.CreateExperimentResponse
    ).experiment.experiment_id
    for name in LIKE_NAMES:
        run = tpb.CreateRunRequest(experiment_id=experiment_id, run_name=name)
        run_id = stack.ok(TRACKING + "CreateRun", run, tpb.CreateRunResponse).run.info.run_id
    for step in range(2):
        point = tpb.Metric(key="m", value=1.0, timestamp=1, step=step)
        stack.ok(
            TRACKING + "LogMetric", tpb.LogMetricRequest(run_id=run_id, metric=point), tpb.LogMetricResponse
        )
    for name in ["X", *LIKE_NAMES]:
        model = rpb.CreateRegisteredModelRequest(name=name)
        stack.ok(REGISTRY + "CreateRegisteredModel", model, rpb.CreateRegisteredModelResponse)
    version = rpb.CreateModelVersionRequest(name="X", source="s3://bucket/x")
    stack.ok(REGISTRY + "CreateModelVersion", version, rpb.CreateModelVersionResponse)
    for user in ("u1", "u2"):
        stack.ok(ACCESS + "CreateUser", apb.CreateUserRequest(name=user), apb.CreateUserResponse)
    tokens = {
        "SearchRuns": stack.ok(
            TRACKING + "SearchRuns",
            tpb.SearchRunsRequest(experiment_ids=[experiment_id], page_size=1),
            tpb.SearchRunsResponse,
        ).next_page_token,
        "GetMetricHistory": stack.ok(
            TRACKING + "GetMetricHistory",
            tpb.GetMetricHistoryRequest(run_id=run_id, metric_key="m", page_size=1),
            tpb.GetMetricHistoryResponse,
        ).next_page_token,
        "SearchExperiments": stack.ok(
            TRACKING + "SearchExperiments",
            tpb.SearchExperimentsRequest(page_size=1),
            tpb.SearchExperimentsResponse,
        ).next_page_token,
        "SearchRegisteredModels": stack.ok(
            REGISTRY + "SearchRegisteredModels",
            rpb.SearchRegisteredModelsRequest(page_size=1),
            rpb.SearchRegisteredModelsResponse,
        ).next_page_token,
        "ListModelEvents": stack.ok(
            REGISTRY + "ListModelEvents",
            rpb.ListModelEventsRequest(name="X", page_size=1),
            rpb.ListModelEventsResponse,
        ).next_page_token,
        "ListAccessEvents": stack.ok(
            ACCESS + "ListAccessEvents",
            apb.ListAccessEventsRequest(page_size=1),
            apb.ListAccessEventsResponse,
        ).next_page_token,
    }
    assert all(tokens.values())
    return World(stack, run_id, experiment_id, tokens)


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_stack(request.param, tmp_path_factory.mktemp(request.param)) as stack:
        yield _populate(stack)


# --- refusals ------------------------------------------------------------------------------------


def _filter_cases() -> dict[str, tuple[str, Callable[[World], Message]]]:
    """Filters over a limit or out of range, each sent to the search it breaks."""

    def models(text: str) -> Callable[[World], Message]:
        return lambda w: rpb.SearchRegisteredModelsRequest(filter=text)

    def versions(text: str) -> Callable[[World], Message]:
        return lambda w: rpb.SearchModelVersionsRequest(filter=text)

    def runs(text: str) -> Callable[[World], Message]:
        return lambda w: tpb.SearchRunsRequest(experiment_ids=[w.experiment_id], filter=text)

    many_values = ", ".join(f"'{i}'" for i in range(70_000))
    return {
        "1,001 clauses, models": (
            REGISTRY + "SearchRegisteredModels",
            models(" AND ".join(["name = 'x'"] * 1_001)),
        ),
        "1,001 clauses, runs": (TRACKING + "SearchRuns", runs(" AND ".join(["params.p = 'x'"] * 1_001))),
        "version beyond int64": (REGISTRY + "SearchModelVersions", versions(f"version = {HUGE}")),
        "quoted version beyond int64": (
            REGISTRY + "SearchModelVersions",
            versions(f"version_number IN (1, '{HUGE}')"),
        ),
        "IN list of 70,000 values": (TRACKING + "SearchRuns", runs(f"tags.t IN ({many_values})")),
        "LIKE pattern of 60 kB, models": (
            REGISTRY + "SearchRegisteredModels",
            models(f"name LIKE '{'a' * 60_000}'"),
        ),
        "LIKE pattern of 20,000 '*', models": (
            REGISTRY + "SearchRegisteredModels",
            models(f"name LIKE '{'*' * 20_000}'"),
        ),
        "ILIKE pattern of 60 kB, versions": (
            REGISTRY + "SearchModelVersions",
            versions(f"name ILIKE '{'a' * 60_000}'"),
        ),
        "LIKE pattern of 60 kB, runs": (
            TRACKING + "SearchRuns",
            runs(f"attributes.run_name LIKE '{'a' * 60_000}'"),
        ),
        "LIKE pattern one over the limit": (
            REGISTRY + "SearchRegisteredModels",
            models(f"name LIKE '{'%' * (MAX_PATTERN_LENGTH + 1)}'"),
        ),
        "NUL in a filter value": (REGISTRY + "SearchModelVersions", versions(f"name = '{NUL}'")),
    }


def _uri(uri: str) -> tuple[str, Callable[[World], Message]]:
    return REGISTRY + "ResolveModelUri", lambda w: rpb.ResolveModelUriRequest(uri=uri)


URI_CASES = {
    "version 2**70": _uri(f"models:/X/{HUGE}"),
    "version 2**63": _uri(f"models:/X/{2**63}"),
    "version of 5,000 digits": _uri("models:/X/" + "9" * 5_000),
    "superscript two": _uri("models:/X/²"),
    "Arabic-Indic three": _uri("models:/X/٣"),  # read as version 3 before
    "version 0": _uri("models:/X/0"),
    "NUL in the name": _uri(f"models:/{NUL}/1"),
    "NUL in the alias": _uri(f"models:/X@{NUL}"),
    "name over 250 characters": _uri(f"models:/{'n' * 251}/1"),
}

PAGED = {
    "SearchRuns": lambda w, token: tpb.SearchRunsRequest(experiment_ids=[w.experiment_id], page_size=1, page_token=token),
    "GetMetricHistory": lambda w, token: tpb.GetMetricHistoryRequest(run_id=w.run_id, metric_key="m", page_size=1, page_token=token),
    "SearchExperiments": lambda w, token: tpb.SearchExperimentsRequest(page_size=1, page_token=token),
    "SearchRegisteredModels": lambda w, token: rpb.SearchRegisteredModelsRequest(page_size=1, page_token=token),
    "ListModelEvents": lambda w, token: rpb.ListModelEventsRequest(name="X", page_size=1, page_token=token),
    "ListAccessEvents": lambda w, token: apb.ListAccessEventsRequest(page_size=1, page_token=token),
}  # fmt: skip
_SERVICE_OF = {
    "SearchRuns": TRACKING,
    "GetMetricHistory": TRACKING,
    "SearchExperiments": TRACKING,
    "ListAccessEvents": ACCESS,
}
BAD_OFFSETS = {
    "2**70": str(HUGE),
    "2**63": str(2**63),
    "Infinity": "Infinity",
    "NaN": "NaN",
    "1e400": "1e400",
    "-1": "-1",
    "true": "true",
    "'3'": '"3"',
}


def _nul_cases() -> dict[str, tuple[str, Callable[[World], Message], str, str]]:
    """A NUL in one string field of each kind, with the reason and field it is refused with."""
    return {
        "run id to register from": (
            REGISTRY + "CreateModelVersion",
            lambda w: rpb.CreateModelVersionRequest(name="X", source="s3://b/k", run_id=NUL),
            "INVALID_RUN_ID",
            "run_id",
        ),
        "run id implied by the source": (
            REGISTRY + "CreateModelVersion",
            lambda w: rpb.CreateModelVersionRequest(name="X", source=f"runs:/{NUL}/model"),
            "INVALID_SOURCE",
            "source",
        ),
        "version file path": (
            REGISTRY + "DownloadModelVersionFile",
            lambda w: rpb.DownloadModelVersionFileRequest(name="X", version=1, path=NUL),
            "INVALID_PATH",
            "path",
        ),
        "stage to look up": (
            REGISTRY + "GetLatestVersions",
            lambda w: rpb.GetLatestVersionsRequest(name="X", stages=[NUL]),
            "INVALID_STAGE",
            "stages",
        ),
        "stage comment": (
            REGISTRY + "TransitionModelVersionStage",
            lambda w: rpb.TransitionModelVersionStageRequest(
                name="X", version=1, stage="Staging", comment=NUL
            ),
            "INVALID_DESCRIPTION",
            "comment",
        ),
        "alias to read": (
            REGISTRY + "GetModelVersionByAlias",
            lambda w: rpb.GetModelVersionByAliasRequest(name="X", alias=NUL),
            "INVALID_ALIAS",
            "alias",
        ),
        "model tag key": (
            REGISTRY + "SetModelVersionTag",
            lambda w: rpb.SetModelVersionTagRequest(name="X", version=1, key=NUL, value="v"),
            "INVALID_TAG",
            "tag key",
        ),
        "order_by": (
            TRACKING + "SearchExperiments",
            lambda w: tpb.SearchExperimentsRequest(order_by=[f"name{NUL}"]),
            "INVALID_ORDER_BY",
            "order_by",
        ),
        "run name": (
            TRACKING + "UpdateRun",
            lambda w: tpb.UpdateRunRequest(run_id=w.run_id, run_name=NUL),
            "INVALID_NAME",
            "run_name",
        ),
        "metric key": (
            TRACKING + "LogMetric",
            lambda w: tpb.LogMetricRequest(
                run_id=w.run_id, metric=tpb.Metric(key=NUL, value=1.0, timestamp=1)
            ),
            "INVALID_METRIC",
            "metric key",
        ),
        "batch tag": (
            TRACKING + "LogBatch",
            lambda w: tpb.LogBatchRequest(run_id=w.run_id, tags={"k": NUL}),
            "INVALID_TAG",
            "tags['k']",
        ),
        "artifact path": (
            TRACKING + "ListArtifacts",
            lambda w: tpb.ListArtifactsRequest(run_id=w.run_id, path=NUL),
            "INVALID_ARTIFACT_PATH",
            "path",
        ),
        "token id": (
            ACCESS + "RevokeToken",
            lambda w: apb.RevokeTokenRequest(id=NUL),
            "INVALID_TOKEN_ID",
            "id",
        ),
        "user whose tokens to list": (
            ACCESS + "ListTokens",
            lambda w: apb.ListTokensRequest(user=NUL),
            "INVALID_USER_NAME",
            "user",
        ),
    }


def _cases() -> list[Any]:  # pytest.param values
    cases = [
        pytest.param(method, request, (INVALID, "INVALID_FILTER", "filter"), id=f"filter: {name}")
        for name, (method, request) in _filter_cases().items()
    ]
    cases += [
        pytest.param(method, request, (INVALID, "INVALID_MODEL_URI", "uri"), id=f"uri: {name}")
        for name, (method, request) in URI_CASES.items()
    ]
    cases += [
        pytest.param(
            _SERVICE_OF.get(paged, REGISTRY) + paged,
            lambda w, paged=paged, offset=offset: PAGED[paged](w, w.token(paged, offset)),
            (INVALID, "INVALID_PAGE_TOKEN", "page_token"),
            id=f"page token: {paged} offset {label}",
        )
        for paged in PAGED
        for label, offset in BAD_OFFSETS.items()
    ]
    deep = base64.urlsafe_b64encode(b"[" * 100_000).decode()
    cases.append(
        pytest.param(
            REGISTRY + "SearchRegisteredModels",
            lambda w: rpb.SearchRegisteredModelsRequest(page_token=deep),
            (INVALID, "INVALID_PAGE_TOKEN", "page_token"),
            id="page token: 100,000 nested arrays",
        )
    )
    cases += [
        pytest.param(method, request, (INVALID, reason, field), id=f"NUL: {name}")
        for name, (method, request, reason, field) in _nul_cases().items()
    ]
    cases.append(
        pytest.param(
            REGISTRY + "GetLatestVersions",
            lambda w: rpb.GetLatestVersionsRequest(name="X", stages=["s" * 60_000]),
            (INVALID, "INVALID_STAGE", "stages"),
            id="a 60 kB stage (the message echoed it whole: RESOURCE_EXHAUSTED without a reason)",
        )
    )
    return cases


@pytest.mark.parametrize(("method", "request_for", "expected"), _cases())
def test_input_is_refused_exactly_on_every_backend(
    world: World,
    method: str,
    request_for: Callable[[World], Message],
    expected: tuple[grpc.StatusCode, str, str],
) -> None:
    assert world.stack.call(method, request_for(world)) == Answer(*expected)


@pytest.mark.parametrize("digest", [NUL, "f" * 60_000], ids=["NUL", "60 kB"])
def test_a_malformed_expected_digest_is_refused_before_the_upload(world: World, digest: str) -> None:
    """It was compared only after the bytes arrived: a sealed path answered ARTIFACT_SEALED, and
    a mismatch echoed the digest whole (RESOURCE_EXHAUSTED without a reason for a long one)."""
    metadata = tpb.UploadArtifactMetadata(run_id=world.run_id, path="model/file", expected_sha256=digest)
    upload = tpb.UploadArtifactRequest(metadata=metadata)
    answer = world.stack.call(TRACKING + "UploadArtifact", upload, client_streams=True)
    assert answer == Answer(INVALID, "INVALID_SHA256", "expected_sha256")


def test_the_largest_offset_and_pattern_are_served(world: World) -> None:
    """The limits refuse only what is beyond them."""
    last = world.token("SearchRegisteredModels", str(2**63 - 1))
    at_the_end = rpb.SearchRegisteredModelsRequest(page_size=1, page_token=last)
    assert world.stack.call(REGISTRY + "SearchRegisteredModels", at_the_end) == Answer(grpc.StatusCode.OK)
    longest = rpb.SearchRegisteredModelsRequest(filter=f"name LIKE '{'%' * MAX_PATTERN_LENGTH}'")
    found = world.stack.ok(REGISTRY + "SearchRegisteredModels", longest, rpb.SearchRegisteredModelsResponse)
    assert len(found.registered_models) == 1 + len(LIKE_NAMES)
    assert world.stack.call(
        REGISTRY + "ResolveModelUri", rpb.ResolveModelUriRequest(uri=f"models:/X/{2**63 - 1}")
    ) == Answer(grpc.StatusCode.NOT_FOUND, "MODEL_VERSION_NOT_FOUND")
    assert world.stack.call(
        REGISTRY + "ResolveModelUri", rpb.ResolveModelUriRequest(uri="models:/X/01")
    ) == Answer(grpc.StatusCode.OK)


# --- LIKE ----------------------------------------------------------------------------------------

# Patterns in the filter grammar's terms (before quoting) and the names they select: "\\" is a
# literal backslash, "\\%" a literal percent sign, and a trailing backslash a literal one.
LIKE_CASES = [
    ("back\\\\%", "LIKE", ["back\\", "back\\%", "back\\slash"]),
    ("back\\%", "LIKE", ["back%"]),
    ("back\\", "LIKE", ["back\\"]),
    ("back\\\\", "LIKE", ["back\\"]),
    ("back%", "LIKE", ["back%", "back\\", "back\\%", "back\\slash", "backslash"]),
    ("back_x", "LIKE", []),
    ("back_x", "ILIKE", ["Back_x"]),
    ("BACK\\\\%", "ILIKE", ["back\\", "back\\%", "back\\slash"]),
    ("%\\_%", "LIKE", ["Back_x"]),
    ("%*%", "LIKE", []),
    ("back[s]lash", "LIKE", []),
]


@pytest.mark.parametrize(("pattern", "op", "names"), LIKE_CASES, ids=[f"{op} {p}" for p, op, _ in LIKE_CASES])
def test_like_selects_the_same_rows_on_every_backend(
    world: World, pattern: str, op: str, names: list[str]
) -> None:
    models = rpb.SearchRegisteredModelsRequest(filter=f"name {op} {quote(pattern)}")
    found = world.stack.ok(REGISTRY + "SearchRegisteredModels", models, rpb.SearchRegisteredModelsResponse)
    assert sorted(m.name for m in found.registered_models) == names
    runs = tpb.SearchRunsRequest(
        experiment_ids=[world.experiment_id], filter=f"attributes.run_name {op} {quote(pattern)}"
    )
    found_runs = world.stack.ok(TRACKING + "SearchRuns", runs, tpb.SearchRunsResponse)
    assert sorted(r.info.run_name for r in found_runs.runs) == names
