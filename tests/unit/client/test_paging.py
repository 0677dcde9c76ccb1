"""Pager: pages on its own, honours max_results and hands back the resume token."""

from __future__ import annotations

from modelreg._grpc import Pager, parse_target


class FakeListing:
    """Serves 0..n-1 in pages of at most ``limit``; tokens are the next offset."""

    def __init__(self, n: int, limit: int) -> None:
        self.n, self.limit = n, limit
        self.calls: list[tuple[str, int]] = []

    def __call__(self, token: str, size: int) -> tuple[list[int], str]:
        self.calls.append((token, size))
        start = int(token or 0)
        end = min(self.n, start + min(size or self.limit, self.limit))
        return list(range(start, end)), str(end) if end < self.n else ""


def test_iterates_every_page_lazily() -> None:
    listing = FakeListing(10, 4)
    pager = Pager(listing)
    assert listing.calls == []  # nothing is fetched before iteration
    assert list(pager) == list(range(10))
    assert listing.calls == [("", 0), ("4", 0), ("8", 0)]
    assert pager.token is None


def test_max_results_stops_and_resumes() -> None:
    listing = FakeListing(10, 4)
    first = Pager(listing, max_results=6)
    assert list(first) == list(range(6))
    assert first.token == "6"
    rest = Pager(listing, page_token=first.token)
    assert list(rest) == list(range(6, 10))
    assert rest.token is None


def test_max_results_beyond_the_end() -> None:
    pager = Pager(FakeListing(3, 100), max_results=50)
    assert list(pager) == [0, 1, 2]
    assert pager.token is None


def test_targets() -> None:
    assert parse_target("grpc://h:1") == ("h:1", False)
    assert parse_target("grpcs://h:1/") == ("h:1", True)
    assert parse_target("localhost:50051") == ("localhost:50051", False)
