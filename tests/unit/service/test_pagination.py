from __future__ import annotations

import base64

import pytest

from modelreg_server.errors import InvalidArgumentError
from modelreg_server.pagination import fingerprint, parse_page


def test_zero_page_size_takes_the_default_and_large_sizes_are_clamped() -> None:
    query = fingerprint("runs", "metrics.rmse < 1")
    assert parse_page(0, "", default=100, maximum=1000, query=query).size == 100
    assert parse_page(5000, "", default=100, maximum=1000, query=query).size == 1000


def test_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        parse_page(-1, "", default=100, maximum=1000, query="q")
    assert info.value.reason == "INVALID_PAGE_SIZE"
    assert info.value.metadata["field"] == "page_size"


def test_token_walks_forward_and_ends_with_empty_token() -> None:
    query = fingerprint("a")
    first = parse_page(10, "", default=100, maximum=1000, query=query)
    token = first.next_token(returned=10, has_more=True)
    second = parse_page(10, token, default=100, maximum=1000, query=query)
    assert second.offset == 10
    assert second.next_token(returned=3, has_more=False) == ""


@pytest.mark.parametrize("token", ["not-base64!!", "eyJ4IjogMX0=", "bnVsbA=="])
def test_malformed_token_is_invalid(token: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        parse_page(10, token, default=100, maximum=1000, query="q")
    assert info.value.reason == "INVALID_PAGE_TOKEN"


@pytest.mark.parametrize("offset", ["Infinity", "NaN", "1e400", str(2**63), str(2**70), "true", '"3"', "1.0"])
def test_a_token_offset_that_is_no_int64_is_invalid(offset: str) -> None:
    """Each of these was INTERNAL (a failed conversion, or a query past BIGINT) or read as 1 or 3."""
    token = base64.urlsafe_b64encode(f'{{"o":{offset},"q":"q"}}'.encode()).decode()
    with pytest.raises(InvalidArgumentError) as info:
        parse_page(10, token, default=100, maximum=1000, query="q")
    assert (info.value.reason, info.value.metadata["field"]) == ("INVALID_PAGE_TOKEN", "page_token")


def test_a_deeply_nested_or_long_token_is_invalid() -> None:
    for token in (base64.urlsafe_b64encode(b"[" * 100_000).decode(), "A" * 10_000):
        with pytest.raises(InvalidArgumentError) as info:
            parse_page(10, token, default=100, maximum=1000, query="q")
        assert info.value.reason == "INVALID_PAGE_TOKEN"
    largest = base64.urlsafe_b64encode(f'{{"o":{2**63 - 1},"q":"q"}}'.encode()).decode()
    assert parse_page(10, largest, default=100, maximum=1000, query="q").offset == 2**63 - 1


def test_token_of_another_query_is_refused() -> None:
    token = parse_page(10, "", default=100, maximum=1000, query=fingerprint("a")).next_token(10, True)
    with pytest.raises(InvalidArgumentError) as info:
        parse_page(10, token, default=100, maximum=1000, query=fingerprint("b"))
    assert info.value.reason == "INVALID_PAGE_TOKEN"


def test_split_uses_the_extra_row_only_to_tell_whether_a_page_follows() -> None:
    page = parse_page(3, "", default=100, maximum=1000, query="q")
    assert page.fetch_limit == 4
    items, token = page.split(["a", "b", "c", "d"])
    assert list(items) == ["a", "b", "c"]
    assert parse_page(3, token, default=100, maximum=1000, query="q").offset == 3
    assert page.split(["a", "b", "c"]) == (["a", "b", "c"], "")
