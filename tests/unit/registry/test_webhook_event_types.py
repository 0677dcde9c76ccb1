"""The webhook type of every history action: a version's events are model_version.*, the rest the
model's; serving reports keep their SERVING_ prefix, as stage events keep STAGE_."""

from __future__ import annotations

import json

from registry_service.domain.entities import EventAction, ModelEvent
from registry_service.domain.webhooks import event_body, event_type


def test_serving_reports_are_events_of_the_version() -> None:
    assert event_type(EventAction.SERVING_LOADED) == "model_version.serving_loaded"
    assert event_type(EventAction.SERVING_LOAD_FAILED) == "model_version.serving_load_failed"
    assert event_type(EventAction.STAGE_TRANSITIONED) == "model_version.stage_transitioned"
    assert event_type(EventAction.VERSION_CREATED) == "model_version.created"


def test_every_action_has_a_distinct_type() -> None:
    types = [event_type(action) for action in EventAction]
    assert len(set(types)) == len(types)
    assert all(t.startswith(("model_version.", "registered_model.")) for t in types)


def test_a_serving_report_body_carries_instance_and_detail() -> None:
    event = ModelEvent(
        7, "prices", 3, EventAction.SERVING_LOAD_FAILED, "", "pod-1", "svc", 1_700_000_000_000, "digest", 2
    )
    data = json.loads(event_body(event))["data"]
    assert (data["action"], data["version"], data["to"], data["comment"], data["actor"]) == (
        "SERVING_LOAD_FAILED",
        3,
        "pod-1",
        "digest",
        "svc",
    )
