"""Memoisation bounded in memory as well as in entries.

A search's parsed filter and its built statement are worth keeping when the same search comes
again (a dashboard, a pager), but a filter can be as large as the filter limits allow (65,536
characters, 5,000 values): the parsed filter and the statement of one such search held about
0.45 MiB together (tracemalloc: 18 MiB after 40 distinct ones), and ``lru_cache(256)`` kept 256 of
each. The caches here keep small calls only, the ones that repeat; a large one is computed every
time, which costs little beside running it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

P = ParamSpec("P")
R = TypeVar("R")


def cache_small(maxsize: int, small: Callable[P, bool]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """``functools.lru_cache(maxsize)`` for the calls ``small`` accepts (its arguments must be
    hashable); the others call the function uncached and keep nothing."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        cached = cast(Callable[P, R], functools.lru_cache(maxsize=maxsize)(function))

        @functools.wraps(function)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return cached(*args, **kwargs) if small(*args, **kwargs) else function(*args, **kwargs)

        return call

    return decorate
