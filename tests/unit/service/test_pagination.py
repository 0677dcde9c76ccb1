from __future__ import annotations

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
