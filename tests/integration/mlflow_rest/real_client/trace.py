"""Which endpoints a client calls: an ASGI middleware recording every request the endpoint answers,
its path reduced to a template (ids and file paths replaced by placeholders), and the recorded
trace files under ``traces/`` it is compared with.

A trace is the sorted set of ``METHOD /path-template`` lines of one script run by one client
version, with a ``METHOD /path-template -> status ERROR_CODE`` line for each kind of error answer:
a new client release that calls an endpoint the old one did not, or an endpoint that answers a
new error, shows up as a diff.
``MODELREG_UPDATE_TRACES=1`` writes the files instead of comparing them.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRACES = Path(__file__).resolve().parents[1] / "traces"
UPDATE_ENV = "MODELREG_UPDATE_TRACES"
# The proxy's file routes: <experiment id>/<run id>/artifacts/<file path> after this prefix.
_ARTIFACT_PREFIX = re.compile(r"^(/(?:ajax-)?api/2\.0/mlflow-artifacts/artifacts)/(.+)$")
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_MODEL_ID = re.compile(r"m-[0-9a-f]+")
_NUMBER = re.compile(r"[0-9]+")
_ERROR_BODY_BYTES = 600


def path_template(path: str) -> str:
    """``path`` with run ids, LoggedModel ids, experiment ids and artifact file paths replaced."""
    artifact = _ARTIFACT_PREFIX.match(path)
    if artifact:
        prefix, rest = artifact.groups()
        parts = rest.split("/", 3)
        names = ["{experiment_id}" if _NUMBER.fullmatch(parts[0]) else parts[0]]
        names += [_placeholder(part) for part in parts[1:3]]
        if len(parts) == 4:
            names.append("{path}")
        return "/".join([prefix, *names])
    return "/".join(_placeholder(part) for part in path.split("/"))


def _placeholder(segment: str) -> str:
    if _RUN_ID.fullmatch(segment):
        return "{run_id}"
    if _MODEL_ID.fullmatch(segment):
        return "{model_id}"
    if _NUMBER.fullmatch(segment):
        return "{id}"
    return segment


@dataclass(frozen=True)
class Request:
    method: str
    template: str
    status: int
    error: str  # the start of the response body when the status is 4xx or 5xx

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def error_code(self) -> str:
        """MLflow's ``error_code`` of an error answer ("" when the body is not MLflow's error JSON)."""
        try:
            code = json.loads(self.error).get("error_code", "")
        except (ValueError, AttributeError):
            return ""
        return code if isinstance(code, str) else ""

    def __str__(self) -> str:
        return f"{self.endpoint} -> {self.status} {self.error}".rstrip()


class Recorder:
    """Records the requests an app answers; :meth:`wrap` is ``running_in_thread``'s ``wrap``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[Request] = []

    def take(self) -> list[Request]:
        """The requests recorded since the last call, in the order they were answered."""
        with self._lock:
            taken, self._requests = self._requests, []
        return taken

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            status = 0
            body = bytearray()

            async def sending(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                elif message["type"] == "http.response.body" and status >= 400:
                    body.extend(message.get("body", b"")[: _ERROR_BODY_BYTES - len(body)])
                await send(message)

            try:
                await app(scope, receive, sending)
            finally:
                request = Request(
                    scope["method"],
                    path_template(scope["path"]),
                    status or 500,  # no answer started: the server answers 500 for the app
                    body.decode(errors="replace"),
                )
                with self._lock:
                    self._requests.append(request)

        return recorded


def trace_lines(requests: list[Request]) -> list[str]:
    """The endpoints called, and each error answered with its status and MLflow error code."""
    endpoints = {request.endpoint for request in requests}
    errors = {f"{r.endpoint} -> {r.status} {r.error_code}".rstrip() for r in requests if r.status >= 400}
    return sorted(endpoints | errors)


def counts(requests: list[Request]) -> str:
    """Requests per endpoint, for failure messages."""
    return "\n".join(
        f"{n:4d}  {endpoint}" for endpoint, n in sorted(Counter(r.endpoint for r in requests).items())
    )


def check_trace(name: str, client_version: str, requests: list[Request]) -> None:
    """Compares the endpoints of ``requests`` with traces/<name>.txt (or writes it, see the module)."""
    path = TRACES / f"{name}.txt"
    lines = trace_lines(requests)
    header = (
        f"# {name}: the endpoints called and the errors answered (recorded with mlflow {client_version}:"
        f" {len(requests)} requests to {len({r.endpoint for r in requests})} endpoints)"
    )
    if os.environ.get(UPDATE_ENV) == "1":
        TRACES.mkdir(exist_ok=True)
        path.write_text("\n".join([header, *lines]) + "\n")
        return
    if not path.exists():
        raise AssertionError(f"no recorded trace {path}; record it with {UPDATE_ENV}=1")
    recorded = path.read_text().splitlines()
    expected = [line for line in recorded if line and not line.startswith("#")]
    if lines != expected:
        diff = "\n".join(difflib.unified_diff(expected, lines, "recorded", "now", lineterm=""))
        raise AssertionError(
            f"{name}: the client calls other endpoints than recorded in {path.name}\n"
            f"({recorded[0] if recorded else ''}; now mlflow {client_version}; {UPDATE_ENV}=1 records):\n"
            f"{diff}\nrequests per endpoint now:\n{counts(requests)}"
        )
