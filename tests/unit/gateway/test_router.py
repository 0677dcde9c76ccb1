"""IndexedRouter tries only the routes that could match a path; it must choose what Starlette's
router, trying every route in turn, would choose: the same route, the same 405, the same 404."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import BaseRoute, Match, Route

from mlflow_gateway.app import IndexedRouter, create_app
from mlflow_gateway.settings import GatewaySettings

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@pytest.fixture(scope="module")
def router() -> IndexedRouter:
    # Never connects: the clients' channels are lazy and no request is served.
    app = create_app(GatewaySettings(port=0, tracking_uri="127.0.0.1:9", registry_uri="127.0.0.1:9"))
    assert isinstance(app.router, IndexedRouter)
    return app.router


def chosen(routes: list[BaseRoute], path: str, method: str) -> tuple[str, BaseRoute | None]:
    """Starlette's choice among ``routes``: the first full match, else the first partial (405)."""
    scope = {"type": "http", "path": path, "method": method, "root_path": ""}
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return "full", route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return ("partial", partial) if partial else ("none", None)


def route_paths(router: IndexedRouter) -> list[str]:
    return sorted({route.path for route in router.routes if isinstance(route, Route)})


def test_every_route_is_chosen_as_by_trying_each_in_turn(router: IndexedRouter) -> None:
    examples = {"{model_id}": "m-0123", "{tag_key:path}": "a/b", "{artifact_path:path}": "0/r/artifacts/x"}
    served = 0
    for template in route_paths(router):
        path = template
        for name, value in examples.items():
            path = path.replace(name, value)
        for method in METHODS:
            expected = chosen(router.routes, path, method)
            assert chosen(router.candidates(path), path, method) == expected, (method, path)
            served += expected[0] == "full"
    assert served > 200  # the examples reach the routes, not only 404s


@given(
    template=st.sampled_from(["{p}", "{p}/", "{p}/{x}", "{x}{p}", "{p}{x}", "/api/2.0/{x}", "/{x}"]),
    index=st.integers(min_value=0),
    extra=st.text(st.sampled_from("ab/-{}%.09m"), max_size=12),
    method=st.sampled_from(METHODS),
)
def test_any_path_is_routed_as_by_trying_each_route(
    router: IndexedRouter, template: str, index: int, extra: str, method: str
) -> None:
    paths = route_paths(router)
    path = template.format(p=paths[index % len(paths)], x=extra)
    assert chosen(router.candidates(path), path, method) == chosen(router.routes, path, method)
