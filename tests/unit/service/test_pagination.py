from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    items, token = page.split(["a", "b", "c", "d"], len)
    assert list(items) == ["a", "b", "c"]
    assert parse_page(3, token, default=100, maximum=1000, query="q").offset == 3
    assert page.split(["a", "b", "c"], len) == (["a", "b", "c"], "")


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=50), max_size=60),
    page_size=st.integers(min_value=1, max_value=20),
    budget=st.integers(min_value=1, max_value=120),
)
def test_pages_cut_by_bytes_return_every_row_once_in_order(
    sizes: list[int], page_size: int, budget: int
) -> None:
    """Paging through rows of any sizes, as a service does (fetch_limit rows from the offset):
    every row comes exactly once, in order; a page stays within the budget unless it holds one
    row, and never holds more than page_size rows."""
    rows = list(enumerate(sizes))
    seen: list[tuple[int, int]] = []
    token = ""
    while True:
        page = parse_page(page_size, token, default=10, maximum=20, query="q")
        fetched = rows[page.offset : page.offset + page.fetch_limit]
        items, token = page.split(fetched, lambda row: row[1], budget)
        assert 1 <= len(items) <= page_size or not rows
        assert len(items) == 1 or sum(size for _, size in items) <= budget
        seen.extend(items)
        if not token:
            break
    assert seen == rows


@given(
    count=st.integers(min_value=0, max_value=60),
    size=st.integers(min_value=0, max_value=50),
    page_size=st.integers(min_value=1, max_value=20),
    budget=st.integers(min_value=1, max_value=120),
)
def test_rows_of_one_size_are_cut_as_rows_sized_one_by_one(
    count: int, size: int, page_size: int, budget: int
) -> None:
    page = parse_page(page_size, "", default=10, maximum=20, query="q")
    rows = list(range(count))[: page.fetch_limit]
    assert page.split(rows, size, budget) == page.split(rows, lambda _: size, budget)
