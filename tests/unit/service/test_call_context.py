"""The actor, request id and idempotency key a call carries: bounded, and unable to change how a
record reads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelreg_server.context import CallContext, require_bounded
from modelreg_server.errors import InvalidArgumentError
from modelreg_server.idempotency import KEY_COLUMN_LENGTH, MAX_KEY_LENGTH, WriteKey

CONTROLS = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]] + ["\u2028", "\u2029", "\u202e", "\u2066"]


@given(st.text(max_size=20), st.sampled_from(CONTROLS), st.text(max_size=20))
def test_an_actor_with_a_control_character_is_refused(before: str, control: str, after: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        require_bounded(CallContext(actor=before + control + after, request_id="req-1"))
    assert (refused.value.reason, refused.value.metadata["field"]) == ("INVALID_METADATA", "x-modelreg-actor")


@pytest.mark.parametrize("request_id", ["", "a b", "req\u00e9", "req\n1", "x" * 129])
def test_a_request_id_must_be_a_visible_ascii_token(request_id: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        require_bounded(CallContext(actor="alice", request_id=request_id))
    assert refused.value.metadata["field"] == "x-request-id"


def test_ordinary_actors_and_ids_pass() -> None:
    for actor in ("alice", "Jane Doe", "svc:ci@example.org", "名前"):
        require_bounded(CallContext(actor=actor, request_id="0b7c5e1a-4f1e-4d0e-9b1a-2f7f6c1d9e3a"))


@given(st.text(max_size=140))
def test_an_idempotency_key_is_a_bounded_visible_ascii_token(key: str) -> None:
    call = CallContext(actor="alice", request_id="req-1", write=WriteKey(key, "CreateRun", ""))
    token = 0 < len(key) <= MAX_KEY_LENGTH and all("\x21" <= c <= "\x7e" for c in key)
    if token:
        require_bounded(call)
        return
    with pytest.raises(InvalidArgumentError) as refused:
        require_bounded(call)
    assert (refused.value.reason, refused.value.metadata["field"]) == (
        "INVALID_METADATA",
        "x-modelreg-idempotency-key",
    )


def test_a_stream_part_has_its_own_key_and_digest() -> None:
    write = WriteKey("k" * MAX_KEY_LENGTH, "LogMetrics", "")
    first, again, other = (
        write.part(0, "run", [1.0]),
        write.part(0, "run", [1.0]),
        write.part(0, "run", [2.0]),
    )
    assert first == again and first.digest != other.digest
    assert write.part(12345, "run").key == f"{write.key}/12345"
    assert len(write.part(10**9, "run").key) <= KEY_COLUMN_LENGTH
