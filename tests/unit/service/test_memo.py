"""cache_small: small calls are memoised, large ones computed every time and never kept."""

from __future__ import annotations

from modelreg_server.memo import cache_small


def test_only_small_calls_are_kept() -> None:
    calls: list[str] = []

    @cache_small(2, lambda text: len(text) <= 3)
    def parse(text: str) -> list[str]:
        calls.append(text)
        return list(text)

    assert parse("abc") == parse("abc") == ["a", "b", "c"]
    assert parse("abcd") == parse("abcd") == ["a", "b", "c", "d"]
    assert calls == ["abc", "abcd", "abcd"]
    parse("x"), parse("y"), parse("abc")  # two entries at most: "abc" was evicted
    assert calls == ["abc", "abcd", "abcd", "x", "y", "abc"]
