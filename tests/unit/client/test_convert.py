"""Generated messages → entities, and client-side argument checks."""

from __future__ import annotations

import math

import pytest

from modelreg import _convert as conv
from modelreg import entities as e
from modelreg.exceptions import InvalidArgument
from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.registry_client import version_number
from modelreg.tracking.v1 import tracking_pb2 as tpb


def test_run_conversion_reads_like_mlflow() -> None:
    message = tpb.Run(
        info=tpb.RunInfo(
            run_id="a" * 32,
            experiment_id="3",
            run_name="r",
            status=tpb.RUN_STATUS_FAILED,
            start_time=10,
            end_time=0,
            artifact_uri="file:///x",
            lifecycle_stage=tpb.LIFECYCLE_STAGE_DELETED,
        ),
        data=tpb.RunData(
            metrics=[tpb.Metric(key="loss", value=math.inf, timestamp=5, step=2)],
            params=[tpb.Param(key="alpha", value="0.5")],
            tags={"team": "x"},
        ),
    )
    run = conv.run(message)
    assert run.info.status == "FAILED"
    assert run.info.end_time is None  # 0 on the wire means "not ended"
    assert run.info.parent_run_id is None
    assert run.info.lifecycle_stage == "deleted"
    assert run.info.run_uuid == "a" * 32
    assert run.data == e.RunData(metrics={"loss": math.inf}, params={"alpha": "0.5"}, tags={"team": "x"})


def test_model_version_conversion() -> None:
    message = rpb.ModelVersion(
        name="M",
        version=3,
        creation_time=1,
        last_updated_time=2,
        current_stage=rpb.STAGE_PRODUCTION,
        source="runs:/abc/model",
        run_id="abc",
        status=rpb.MODEL_VERSION_STATUS_READY,
        tags={"k": "v"},
        aliases=["champion"],
        lineage=rpb.Lineage(
            run_id="abc",
            params={"a": "1"},
            metrics={"rmse": 0.5},
            files=[rpb.FileDigest(path="f", size=3, sha256="d")],
        ),
        user_id="ana",
    )
    mv = conv.model_version(message)
    assert (mv.version, mv.current_stage, mv.status, mv.run_id) == (3, "Production", "READY", "abc")
    assert mv.aliases == ["champion"]
    assert mv.lineage is not None
    assert mv.lineage.files == (e.FileDigest(path="f", size=3, sha256="d"),)
    assert mv.lineage.metrics == {"rmse": 0.5}


def test_model_version_without_run_or_lineage() -> None:
    mv = conv.model_version(rpb.ModelVersion(name="M", version=1, current_stage=rpb.STAGE_NONE))
    assert (mv.run_id, mv.lineage, mv.current_stage) == (None, None, "None")


def test_registered_model_and_event_conversion() -> None:
    rm = conv.registered_model(
        rpb.RegisteredModel(name="M", aliases=[rpb.Alias(alias="champion", version=2)], latest_versions=[])
    )
    assert rm.aliases == {"champion": 2}
    event = conv.model_event(rpb.ModelEvent(event_id=1, action=rpb.EVENT_ACTION_STAGE_TRANSITIONED))
    assert event.action == "STAGE_TRANSITIONED"


def test_enum_arguments() -> None:
    assert conv.run_status_to_proto("finished") == tpb.RUN_STATUS_FINISHED
    assert conv.view_type_to_proto("ALL") == tpb.VIEW_TYPE_ALL
    assert conv.view_type_to_proto(2) == tpb.VIEW_TYPE_DELETED_ONLY
    with pytest.raises(ValueError):
        conv.run_status_to_proto("DONE")
    with pytest.raises(ValueError):
        conv.view_type_to_proto(7)


def test_version_numbers_accept_ints_and_strings() -> None:
    assert version_number(3) == 3
    assert version_number("3") == 3
    for bad in ("x", 0, "-1", True):
        with pytest.raises(InvalidArgument) as info:
            version_number(bad)  # type: ignore[arg-type]
        assert info.value.reason == "INVALID_VERSION"
