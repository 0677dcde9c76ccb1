"""Any request to a tracking endpoint is answered: its result, or MLflow's error JSON with a 4xx
status; never a 500."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlflow_gateway import tracking
from mlflow_gateway.endpoint import Endpoint
from tests.integration.mlflow_rest.conftest import Rest
from tests.integration.mlflow_rest.test_tracking import new_experiment, new_run

# The fields of the messages the endpoints take inside lists and objects (tags, metrics, datasets).
_NESTED_FIELDS = [
    "key",
    "value",
    "timestamp",
    "step",
    "model_id",
    "dataset",
    "tags",
    "name",
    "digest",
    "source",
    "source_type",
    "schema",
]


def _scalars(known: list[str]) -> st.SearchStrategy[Any]:
    return (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=30)
        | st.sampled_from(
            [
                *known,
                "0",
                "-1",
                str(2**63),
                "NaN",
                "Infinity",
                "FINISHED",
                "ALL",
                "m-1",
                "a/b",
                "../x",
                "{}",
                "[]",
            ]
        )
    )


def _json(known: list[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        _scalars(known),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(_NESTED_FIELDS) | st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=8,
    )


@st.composite
def requests(draw: st.DrawFn, known: list[str]) -> tuple[Endpoint, dict[str, Any]]:
    endpoint = draw(st.sampled_from(tracking.ENDPOINTS))
    fields = draw(st.lists(st.sampled_from([*endpoint.fields, "unknown"]), unique=True, max_size=6))
    return endpoint, {name: draw(_json(known)) for name in fields}


def test_no_request_to_a_tracking_endpoint_is_a_500(rest: Rest) -> None:
    experiment_id = new_experiment(rest)
    run_id = new_run(rest, experiment_id)["info"]["run_id"]
    rest.tracking.log_metric(run_id, "m", 1.0, step=1)
    known = [experiment_id, run_id, "m", "exp"]

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(request=requests(known))
    def answered(request: tuple[Endpoint, dict[str, Any]]) -> None:
        endpoint, body = request
        url = f"/api/2.0{endpoint.path}"
        if endpoint.method == "GET":  # a query string: each value as text, lists as repeated keys
            params = {
                k: [str(x) for x in v] if isinstance(v, list) else v if isinstance(v, str) else repr(v)
                for k, v in body.items()
            }
            response = rest.http.get(url, params=params)
        else:
            response = rest.http.request(endpoint.method, url, json=body)
        assert response.status_code < 500, (endpoint.method, endpoint.path, body, response.text)
        if response.status_code != 200:
            assert set(response.json()) == {"error_code", "message"}, response.text

    answered()
