"""Hot swap through the real `modelreg serve` command: a subprocess following ``models:/Name@champion``
on real tracking and registry services, a client thread posting /invocations over loopback HTTP
without pause while the alias moves (five moves and a rollback), and a version refused by its check
while requests continue."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import modelreg
from modelreg.entities import ModelEvent
from tests.integration.serving.test_cli_serve import serve, wait_ready
from tests.integration.serving.test_slot import FEATURES, constant_model, register, register_broken, wait_for
from tests.servers import Services

BODY = {"dataframe_split": FEATURES.head(1).to_dict(orient="split")}


@dataclass(frozen=True)
class Answer:
    version: str | None  # the x-modelreg-model-version header; None when the request failed
    prediction: float | None
    status: int  # 0: the request raised
    received: float  # time.monotonic() when the answer (or the failure) came back
    error: str = ""


@dataclass
class Caller:
    """A thread posting /invocations one after another (one keep-alive connection), recording every answer."""

    url: str
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.done.is_set():
                try:
                    response = http.post("/invocations", json=BODY)
                    prediction = (
                        float(response.json()["predictions"][0]) if response.status_code == 200 else None
                    )
                    answer = Answer(
                        response.headers.get("x-modelreg-model-version"),
                        prediction,
                        response.status_code,
                        time.monotonic(),
                        "" if response.status_code == 200 else response.text,
                    )
                except Exception as exc:  # every failure counts, whatever it is
                    answer = Answer(None, None, 0, time.monotonic(), repr(exc))
                with self.lock:
                    self.answers.append(answer)

    def snapshot(self) -> list[Answer]:
        with self.lock:
            return list(self.answers)

    def count(self) -> int:
        with self.lock:
            return len(self.answers)

    def first_of(self, version: int, since: int) -> int | None:
        """The index of the first answer from ``version`` among the answers from index ``since`` on."""
        answers = self.snapshot()
        return next((i for i in range(since, len(answers)) if answers[i].version == str(version)), None)


def failures(answers: list[Answer]) -> list[Answer]:
    return [a for a in answers if a.status != 200]


def runs(answers: list[Answer]) -> list[str | None]:
    """The header sequence with consecutive repeats collapsed: one entry per version served in turn."""
    collapsed: list[str | None] = []
    for answer in answers:
        if not collapsed or collapsed[-1] != answer.version:
            collapsed.append(answer.version)
    return collapsed


@pytest.fixture
def client(services: Services) -> Iterator[modelreg.Client]:
    with modelreg.Client(services.tracking, services.registry) as c:
        yield c


@pytest.fixture
def name() -> str:
    return f"swapped-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def serving_champion(services: Services, tmp_path: Path, name: str) -> Iterator[Caller]:
    """`modelreg serve models:/name@champion` following the registry, and a caller thread posting to it;
    both stopped on exit (the process with SIGTERM, killed if it does not end)."""
    process, url, log = serve(services, tmp_path, f"models:/{name}@champion")
    caller = Caller(url)
    thread = threading.Thread(target=caller.run, name="invocations", daemon=True)
    try:
        wait_ready(process, url, log)
        wait_for(lambda: bool(httpx.get(f"{url}/health").json()["following"]), "the server follows the alias")
        thread.start()
        yield caller
    finally:
        caller.done.set()
        if thread.is_alive():
            thread.join(60)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    assert not thread.is_alive()


def load_failures(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "modelreg_serving_load_failures_total"
    )


def test_five_alias_moves_and_a_rollback_under_continuous_requests(
    services: Services,
    client: modelreg.Client,
    name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Version n predicts n: the answer itself names the version, besides the header.
    versions = [register(client, name, constant_model(float(n))) for n in (1, 2, 3)]
    assert versions == [1, 2, 3]
    client.set_registered_model_alias(name, "champion", 1)
    moves = [2, 3, 1, 2, 3]
    rollback = 2  # the alias back to the version it was on before the last move
    timeline: list[tuple[str, float, int]] = []
    with serving_champion(services, tmp_path, name) as caller:
        wait_for(lambda: caller.first_of(1, 0) is not None, "an answer from version 1")
        for label, version in [*((f"move to {v}", v) for v in moves), (f"rollback to {rollback}", rollback)]:
            since = caller.count()
            client.set_registered_model_alias(name, "champion", version)
            moved = time.monotonic()
            wait_for(lambda v=version, s=since: caller.first_of(v, s) is not None, f"{label}: an answer")
            first = caller.first_of(version, since)
            assert first is not None
            timeline.append((label, caller.snapshot()[first].received - moved, first - since))
        # A few more answers after the last move: still the version rolled back to.
        settled = caller.count()
        wait_for(lambda: caller.count() >= settled + 20, "answers after the rollback")
    answers = caller.snapshot()

    assert failures(answers) == []
    assert runs(answers) == [str(v) for v in [1, *moves, rollback]], "a swap missed, reordered or undone"
    mixed = [a for a in answers if a.prediction != float(a.version or "nan")]
    assert mixed == [], "an answer's prediction is not the version in its header"
    with capsys.disabled():
        print(f"\n[hot swap over HTTP] {len(answers)} requests, 0 failed; alias move -> first answer:")
        for label, seconds, count in timeline:
            print(f"  {label:<13} {seconds * 1000:8.1f} ms  ({count} answered by the old version meanwhile)")


def test_a_version_failing_its_check_is_refused_while_requests_continue(
    services: Services,
    client: modelreg.Client,
    name: str,
    tmp_path: Path,
) -> None:
    assert register(client, name, constant_model(1.0)) == 1
    broken = register_broken(client, name)
    fixed = register(client, name, constant_model(3.0))
    client.set_registered_model_alias(name, "champion", 1)

    def refusals() -> list[ModelEvent]:
        events = client.registry.list_model_events(name, broken)
        return [e for e in events if e.action == "SERVING_LOAD_FAILED"]

    with serving_champion(services, tmp_path, name) as caller:
        wait_for(lambda: caller.first_of(1, 0) is not None, "an answer from version 1")
        assert load_failures(caller.url) == 0
        client.set_registered_model_alias(name, "champion", broken)
        wait_for(lambda: load_failures(caller.url) >= 1, "the load failure counted on /metrics")
        wait_for(lambda: bool(refusals()), "SERVING_LOAD_FAILED in the model's history")
        refused = caller.count()
        wait_for(lambda: caller.count() >= refused + 20, "answers after the refusal")
        after_refusal = caller.snapshot()[refused:]
        # Still following: the next good version is served.
        since = caller.count()
        client.set_registered_model_alias(name, "champion", fixed)
        wait_for(lambda: caller.first_of(fixed, since) is not None, "an answer from the fixed version")
        assert load_failures(caller.url) == 1, "the refused version was tried again"
    answers = caller.snapshot()

    assert failures(answers) == []
    assert {a.version for a in after_refusal} == {"1"}
    assert runs(answers) == ["1", str(fixed)]
    assert all(a.prediction == float(a.version or "nan") for a in answers)
    [event] = refusals()
    assert event.version == broken
    assert "prediction on its input example failed" in event.comment
