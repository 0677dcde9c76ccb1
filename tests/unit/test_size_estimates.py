"""The page-size estimates of both services' listings never undercount: for any entity, the
estimate is at least what the entity takes in its listing's response, as the servicer converts
it. A page is cut by the estimates (modelreg_server.pagination), so an undercount per row is how a
page outgrows its budget and then the message limit."""

from __future__ import annotations

import dataclasses
import enum
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.access.v1 import access_pb2 as apb
from modelreg.registry.v1 import registry_pb2 as pb
from modelreg.tracking.v1 import tracking_pb2 as tpb
from modelreg_server.access import service as access
from modelreg_server.access import servicer as access_convert
from modelreg_server.access.entities import AccessEvent, Token, User
from modelreg_server.validation import INT64_MAX, INT64_MIN
from registry_service import lineage_codec
from registry_service.api import convert
from registry_service.domain import rules
from registry_service.domain.entities import (
    FileDigest,
    GateResult,
    LineageRecord,
    ModelEvent,
    ModelVersion,
    RegisteredModel,
)
from tracking_service.api import converters
from tracking_service.domain import rules as tracking_rules
from tracking_service.domain.entities import (
    Experiment,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
)

T = TypeVar("T")

# Short text of any letters, or one letter repeated up to past 16 KiB of UTF-8 (a length prefix
# of three bytes): the framing grows with the text.
texts = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda letter, count: letter * count, st.characters(exclude_categories=["Cs"]), st.integers(0, 20_000)
    ),
)
ints = st.integers(INT64_MIN, INT64_MAX)
text_maps = st.dictionaries(texts, texts, max_size=4)
# The strategy of a dataclass field by its annotation; the other fields are given explicitly.
_BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "str": texts,
    "bool": st.booleans(),
    "int": ints,
    "float": st.floats(),
    "str | None": st.none() | texts,
    "int | None": st.none() | ints,
    "Mapping[str, str]": text_maps,
    "Mapping[str, int]": st.dictionaries(texts, ints, max_size=4),
    "Mapping[str, float]": st.dictionaries(texts, st.floats(), max_size=4),
    "tuple[str, ...]": st.lists(texts, max_size=4).map(tuple),
}
# A user's groups: up to the 100 a user may have.
groups = st.lists(texts, max_size=100).map(tuple)


def entities(cls: type[T], **given: st.SearchStrategy[Any]) -> st.SearchStrategy[T]:
    """Instances of dataclass ``cls``: enums of any member, the fields ``given`` from their
    strategies, every other field by its type."""
    fields = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        kind = getattr(sys.modules[cls.__module__], str(field.type), None)
        if field.name in given:
            fields[field.name] = given[field.name]
        elif isinstance(kind, type) and issubclass(kind, enum.Enum):
            fields[field.name] = st.sampled_from(kind)
        else:
            fields[field.name] = _BY_TYPE[str(field.type)]
    return st.builds(cls, **fields)


def _few(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[tuple[T, ...]]:
    return st.lists(strategy, max_size=4).map(tuple)


files = _few(entities(FileDigest))
lineages = entities(LineageRecord, files=files).map(lineage_codec.encode)
versions = entities(ModelVersion, lineage=st.none() | lineages)
models = entities(RegisteredModel, latest_versions=_few(versions))
events = entities(ModelEvent, gate_results=_few(entities(GateResult)))
experiments = entities(Experiment)
metrics = entities(Metric)
runs = st.builds(
    Run, entities(RunInfo), entities(RunData, metrics=_few(metrics), params=_few(entities(Param)))
)


def _version_page(case: tuple[ModelVersion, bool]) -> Message:
    response = pb.SearchModelVersionsResponse()
    convert.add_model_version(response.model_versions, case[0], with_lineage=case[1])
    return response


# Per listing: its entities, the estimate of one, and the response holding just that one.
CASES: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], int], Callable[[Any], Message]]] = {
    "SearchModelVersions": (
        st.tuples(versions, st.booleans()),
        lambda c: rules.version_bytes(*c),
        _version_page,
    ),
    "SearchRegisteredModels": (
        models,
        rules.model_bytes,
        lambda m: pb.SearchRegisteredModelsResponse(registered_models=[convert.registered_model(m)]),
    ),
    "ListModelEvents": (
        events,
        rules.event_bytes,
        lambda e: pb.ListModelEventsResponse(events=[convert.model_event(e)]),
    ),
    "SearchExperiments": (
        experiments,
        tracking_rules.experiment_bytes,
        lambda e: tpb.SearchExperimentsResponse(experiments=[converters.experiment_to_proto(e)]),
    ),
    "SearchRuns": (
        runs,
        tracking_rules.run_bytes,
        lambda r: tpb.SearchRunsResponse(runs=converters.runs_to_proto([r])),
    ),
    "ListUsers": (
        entities(User, groups=groups),
        access.user_bytes,
        lambda u: apb.ListUsersResponse(users=[access_convert.user_pb(u)]),
    ),
    "ListTokens": (
        entities(Token),
        access.token_bytes,
        lambda t: apb.ListTokensResponse(tokens=[access_convert.token_pb(t)]),
    ),
    "ListAccessEvents": (
        entities(AccessEvent),
        access.event_bytes,
        lambda e: apb.ListAccessEventsResponse(events=[access_convert.event_pb(e)]),
    ),
    "GetMetricHistory": (
        metrics,
        lambda m: tracking_rules.metric_bytes(m.key),
        lambda m: tpb.GetMetricHistoryResponse(metrics=[converters.metric_to_proto(m)]),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_an_estimate_covers_its_entity_in_a_page(
    case: tuple[st.SearchStrategy[Any], Callable[[Any], int], Callable[[Any], Message]], data: st.DataObject
) -> None:
    entities, estimate, page = case
    entity = data.draw(entities)
    assert estimate(entity) >= page(entity).ByteSize()
