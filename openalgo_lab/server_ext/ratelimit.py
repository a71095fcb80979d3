"""Per-key request limits in OpenAlgo's three classes, and a limiter for failed key checks.

OpenAlgo limits per client address with Flask-Limiter's moving window; we limit per API key
(several strategies behind one NAT should not starve each other, and one key should not get
more by spreading over addresses) with the same `limits` library and the same limit syntax,
so `"10 per second;40 per minute"` from an OpenAlgo `.env` works unchanged.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from openalgo_lab.engine.actions.registry import RateClass

DEFAULT_LIMITS: Mapping[RateClass, str] = {
    RateClass.ORDER: "10 per second",
    RateClass.SMART_ORDER: "10 per second",
    RateClass.API: "50 per second",
}
LIMIT_ENV: Mapping[RateClass, str] = {
    RateClass.ORDER: "OPENALGO_LAB_ORDER_RATE_LIMIT",
    RateClass.SMART_ORDER: "OPENALGO_LAB_SMART_ORDER_RATE_LIMIT",
    RateClass.API: "OPENALGO_LAB_API_RATE_LIMIT",
}
OFF = "off"
RATE_LIMITED_MESSAGE = "Rate limit exceeded. Please slow down your requests."


def limit_from_env(rate: RateClass) -> str:
    """The configured limit text for a class: its environment variable, else OpenAlgo's."""
    return os.environ.get(LIMIT_ENV[rate], "").strip() or DEFAULT_LIMITS[rate]


def parse_limit(text: str) -> tuple[RateLimitItem, ...]:
    """`"10 per second"`, `"10/second;40/minute"`, or `off` (no limit: an empty tuple)."""
    text = text.strip()
    if text.lower() == OFF:
        return ()
    try:
        return tuple(parse_many(text))
    except ValueError:
        raise ValueError(
            f"rate limit {text!r} is not understood; write e.g. '10 per second', "
            "'10 per second;40 per minute' or 'off'"
        ) from None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a request may go ahead, and if not, after how many whole seconds to retry."""

    allowed: bool
    retry_after: int = 0


ALLOWED = Verdict(True)


class Limiter:
    """Moving-window limits for named buckets, in memory (one server process owns the keys)."""

    def __init__(self) -> None:
        self._storage = MemoryStorage()
        self._strategy = MovingWindowRateLimiter(self._storage)

    def test(self, items: tuple[RateLimitItem, ...], *identity: str) -> Verdict:
        """Would one more hit pass every item? Counts nothing."""
        for item in items:
            if not self._strategy.test(item, *identity):
                return Verdict(False, self._retry_after(items, identity))
        return ALLOWED

    def hit(self, items: tuple[RateLimitItem, ...], *identity: str) -> Verdict:
        """Count a request against every item, unless one of them is already exhausted (a
        refused request must not use up the other windows)."""
        verdict = self.test(items, *identity)
        if verdict.allowed:
            for item in items:
                self._strategy.hit(item, *identity)
        return verdict

    def _retry_after(self, items: tuple[RateLimitItem, ...], identity: tuple[str, ...]) -> int:
        now = time.time()
        waits = [
            self._strategy.get_window_stats(item, *identity).reset_time - now
            for item in items
            if not self._strategy.test(item, *identity)
        ]
        return max(1, math.ceil(max(waits, default=1.0)))


class RateLimits:
    """OpenAlgo's per-class limits, counted per API key."""

    def __init__(self, limits: Mapping[RateClass, str]) -> None:
        self._items = {
            rate: parse_limit(limits.get(rate, DEFAULT_LIMITS[rate])) for rate in RateClass
        }
        self._limiter = Limiter()

    def hit(self, rate: RateClass, key_id: str) -> Verdict:
        items = self._items[rate]
        if not items:
            return ALLOWED
        return self._limiter.hit(items, rate.value, key_id)


class FailureThrottle:
    """Counts failed key checks per client address; past the limit, that address is refused
    before any bcrypt work, which bounds both guessing and the CPU a bad caller can burn."""

    def __init__(self, limit: str = "10 per minute") -> None:
        self._items = parse_limit(limit)
        self._limiter = Limiter()

    def check(self, address: str) -> Verdict:
        if not self._items:
            return ALLOWED
        return self._limiter.test(self._items, "bad-key", address)

    def failed(self, address: str) -> None:
        if self._items:
            self._limiter.hit(self._items, "bad-key", address)
