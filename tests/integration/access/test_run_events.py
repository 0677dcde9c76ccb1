"""The runs' lifecycle log through the tracking service and the client, with access control on:
what a caller lists is what it may read, decided in the query, and a cursor resumes exactly."""

from __future__ import annotations

import pytest

import modelreg
from modelreg import exceptions
from modelreg.tracking.v1 import tracking_pb2 as pb
from tests.integration.access.conftest import SecuredServices


def _actions(client: modelreg.Client, experiment_id: str, cursor: str = "") -> list[tuple[str, str]]:
    return [
        (event.run_id, event.action) for event in client.list_run_events(experiment_id, cursor=cursor).events
    ]


def test_lifecycle_events_follow_each_change_and_resume_after_a_cursor(private: SecuredServices) -> None:
    with private.client(private.user_token("nora")) as nora:
        experiment_id = nora.create_experiment("nora-events")
        done, crashed = (nora.create_run(experiment_id).info.run_id for _ in range(2))
        nora.set_terminated(done)
        start = nora.list_run_events(experiment_id).next_cursor
        nora.set_terminated(crashed, "FAILED")
        nora.delete_run(done)
        nora.delete_experiment(experiment_id)
        nora.restore_experiment(experiment_id)
        assert _actions(nora, experiment_id) == [
            (done, "FINISHED"),
            (crashed, "FAILED"),
            (done, "DELETED"),
            (crashed, "DELETED"),
            (crashed, "RESTORED"),
        ]
        assert _actions(nora, experiment_id, start) == _actions(nora, experiment_id)[1:]
        page = nora.list_run_events(experiment_id, run_id=done, actions=["deleted"])
        assert [(event.action, event.actor) for event in page.events] == [("DELETED", "nora")]
        assert nora.list_run_events(experiment_id, cursor=page.next_cursor, run_id=done).events == ()
        last = nora.list_run_events(experiment_id).next_cursor
        assert nora.list_run_events(experiment_id, cursor=last).next_cursor == last


def test_a_caller_lists_only_the_events_of_experiments_it_may_read(private: SecuredServices) -> None:
    with private.client(private.user_token("olive")) as olive:
        experiment_id = olive.create_experiment("olive-events")
        run_id = olive.create_run(experiment_id).info.run_id
        olive.set_terminated(run_id)
        assert (run_id, "FINISHED") in [(e.run_id, e.action) for e in olive.list_run_events().events]
    with private.client(private.user_token("peter")) as peter:
        assert run_id not in {event.run_id for event in peter.list_run_events(max_results=1_000).events}
        for call in (
            lambda: peter.list_run_events(experiment_id),
            lambda: peter.list_run_events(run_id=run_id),
        ):
            with pytest.raises(exceptions.PermissionDenied):
                call()
    with private.client(None) as anonymous, pytest.raises(exceptions.Unauthenticated):
        anonymous.list_run_events()


@pytest.mark.parametrize(
    ("arguments", "reason", "field"),
    [
        ({"cursor": "5"}, "INVALID_CURSOR", "cursor"),
        ({"cursor": "v1.-1"}, "INVALID_CURSOR", "cursor"),
        ({"cursor": "v1.99999999999999999999"}, "INVALID_CURSOR", "cursor"),
        ({"cursor": "v1.9223372036854775807"}, "CURSOR_AHEAD", "cursor"),
        ({"max_results": -1}, "INVALID_PAGE_SIZE", "page_size"),
        ({"experiment_ids": ["x"]}, "INVALID_EXPERIMENT_ID", "experiment_ids"),
        ({"experiment_ids": [str(i) for i in range(101)]}, "INVALID_EXPERIMENT_ID", "experiment_ids"),
    ],
)
def test_bad_requests_name_their_field(
    secured: SecuredServices, arguments: dict[str, object], reason: str, field: str
) -> None:
    with (
        secured.client(secured.user_token("quinn", admin=True)) as quinn,
        pytest.raises(exceptions.InvalidArgument) as error,
    ):
        quinn.list_run_events(**arguments)  # type: ignore[arg-type]
    assert (error.value.reason, error.value.metadata.get("field")) == (reason, field)


def test_an_unknown_action_number_is_invalid_argument(secured: SecuredServices) -> None:
    with (
        secured.client(secured.user_token("rita", admin=True)) as rita,
        pytest.raises(exceptions.InvalidArgument) as error,
    ):
        rita.tracking._rpc.unary(rita.tracking._stub.ListRunEvents, pb.ListRunEventsRequest(actions=[42]))
    assert (error.value.reason, error.value.metadata.get("field")) == ("INVALID_EVENT_ACTION", "actions")
