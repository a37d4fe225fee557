"""Timing with plain ``time.perf_counter`` loops: warm up, repeat, keep the best and the median.

Every figure is the time of one call averaged over a whole pass of a loop (over distinct
inputs where the benchmark has them), so the clock's resolution and the call overhead of one
``perf_counter()`` do not matter. A pass is repeated until it lasts at least ``min_time``
seconds, then the whole measurement is repeated ``repeats`` times: the best run is the figure
least disturbed by the rest of the machine, the median says how noisy it was. The garbage
collector is off while the clock runs, as in :mod:`timeit`.
"""

from __future__ import annotations

import gc
import math
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds per call: the best and the median of ``repeats`` runs."""

    best: float
    median: float
    items: int
    repeats: int
    passes: int = 1

    @property
    def rate(self) -> float:
        """Calls per second at the best time."""
        return 1.0 / self.best if self.best > 0 else math.inf

    @property
    def best_us(self) -> float:
        return self.best * 1e6

    @property
    def median_us(self) -> float:
        return self.median * 1e6

    def to_json(self) -> dict[str, Any]:
        return {
            "best_s": self.best,
            "median_s": self.median,
            "rate_per_s": self.rate,
            "items": self.items,
            "repeats": self.repeats,
            "passes": self.passes,
        }


@contextmanager
def gc_paused() -> Iterator[None]:
    """Switch the garbage collector off for the duration (and back on if it was on)."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class Case:
    """A function and the distinct inputs it is timed over, one call per input."""

    fn: Callable[[Any], object]
    items: Sequence[Any]


def interleaved(
    cases: Mapping[str, Case], *, repeats: int, min_time: float = 0.0
) -> dict[str, Timing]:
    """Time every case ``repeats`` times, taking turns, so that they share the machine's moods.

    On a shared or throttled machine a slow spell lasts seconds; timing case A fully before
    case B would put it in one case's figures only and skew their ratio. Taking turns spreads
    it over all cases, and the best of the repeats drops it.
    """
    passes: dict[str, int] = {}
    for name, case in cases.items():
        if not case.items:
            raise ValueError(f"{name}: nothing to time")
        start = perf_counter()
        for item in case.items:  # warm-up pass, also sizes the timed runs
            case.fn(item)
        first = perf_counter() - start
        passes[name] = max(1, math.ceil(min_time / first)) if first > 0 else 1000
    samples: dict[str, list[float]] = {name: [] for name in cases}
    with gc_paused():
        for _ in range(repeats):
            for name, case in cases.items():
                fn, items = case.fn, case.items
                start = perf_counter()
                for _ in range(passes[name]):
                    for item in items:
                        fn(item)
                elapsed = perf_counter() - start
                samples[name].append(elapsed / (passes[name] * len(items)))
    return {
        name: Timing(
            min(samples[name]),
            statistics.median(samples[name]),
            len(cases[name].items),
            repeats,
            passes[name],
        )
        for name in cases
    }


def per_item(
    fn: Callable[[T], object],
    items: Sequence[T],
    *,
    repeats: int,
    min_time: float = 0.0,
) -> Timing:
    """Time ``fn(item)`` over all of ``items``; return the seconds per call.

    One untimed pass warms caches first. ``min_time`` makes a timed run loop over ``items``
    as many times as it takes to last that long, for calls too short to time one pass of.
    """
    return interleaved({"": Case(fn, items)}, repeats=repeats, min_time=min_time)[""]


def once(fn: Callable[[], R], *, repeats: int) -> tuple[Timing, R]:
    """Time single calls of a slow ``fn`` (no warm-up: ``fn`` is assumed to take long).

    Returns the timing and what the last call returned, so that slow work is not repeated
    just to get its result.
    """
    samples: list[float] = []
    with gc_paused():
        for _ in range(repeats):
            start = perf_counter()
            result = fn()
            samples.append(perf_counter() - start)
    return Timing(min(samples), statistics.median(samples), 1, repeats), result
