"""IndexedRouter tries only the routes that could match a path; it must choose what Starlette's
router, trying every route in turn, would choose: the same route, the same 405, the same 404."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Message

from mlflow_gateway.app import IndexedRouter, create_app
from mlflow_gateway.settings import GatewaySettings

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def app() -> Starlette:
    # Never connects: the clients' channels are lazy, and no request here reaches a service.
    return create_app(GatewaySettings(port=0, tracking_uri="127.0.0.1:9", registry_uri="127.0.0.1:9"))


@pytest.fixture(scope="module")
def router() -> IndexedRouter:
    indexed = app().router
    assert isinstance(indexed, IndexedRouter)
    return indexed


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


@settings(deadline=None)  # each example takes about a millisecond; a loaded machine stalls some
@given(
    template=st.sampled_from(["{p}", "{p}/", "{p}/{x}", "{x}{p}", "{p}{x}", "/api/2.0/{x}", "/{x}"]),
    index=st.integers(min_value=0),
    extra=st.text(st.sampled_from("ab/-{}%.09m\n"), max_size=12),
    method=st.sampled_from(METHODS),
)
def test_any_path_is_routed_as_by_trying_each_route(
    router: IndexedRouter, template: str, index: int, extra: str, method: str
) -> None:
    paths = route_paths(router)
    path = template.format(p=paths[index % len(paths)], x=extra)
    assert chosen(router.candidates(path), path, method) == chosen(router.routes, path, method)


# (method, path) served without a service: a route, its 405, a 404, a 501, a handler's own 400,
# a path with a trailing newline, a path parameter.
REQUESTS = [
    ("GET", "/health"),
    ("GET", "/version"),
    ("PUT", "/health"),
    ("GET", "/api/3.0/mlflow/server-info"),
    ("POST", "/api/2.0/mlflow/server-info"),
    ("GET", "/api/2.0/mlflow/runs/get"),
    ("GET", "/api/2.0/mlflow/runs/get/"),
    ("GET", "/api/2.0/mlflow/runs/get\n"),
    ("GET", "/api/2.0/mlflow/no-such-endpoint"),
    ("POST", "/api/2.0/mlflow/traces"),
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/not-a-run/artifacts/f"),
    ("DELETE", "/ajax-api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/f"),
    ("GET", "/ajax-api/2.0/mlflow/logged-models/not-an-id"),
]


async def answer(served: Starlette, method: str, path: str, root_path: str) -> tuple[int, bytes]:
    """The status and body ``served`` answers, called as uvicorn calls it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", b"endpoint")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 5000),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await served(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("root_path", ["", "/behind-a-proxy"])
def test_requests_are_answered_as_by_starlettes_router(root_path: str) -> None:
    indexed, plain = app(), app()
    plain.router = Router(list(plain.router.routes), redirect_slashes=False)

    async def answers(served: Starlette) -> list[tuple[int, bytes]]:
        return [await answer(served, method, path, root_path) for method, path in REQUESTS]

    given_by_index = asyncio.run(answers(indexed))
    assert given_by_index == asyncio.run(answers(plain))
    if not root_path:
        assert {status for status, _ in given_by_index} == {200, 400, 404, 405, 501}
