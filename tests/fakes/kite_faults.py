"""What can go wrong between a Kite client and Kite, on demand: injected faults and rate limits.

A fault rule matches `"METHOD /path"` with a regular expression (so `"/orders"` matches every
order route and `"^POST /orders/"` only placement) and fires for the next `times` matching
requests. Kinds:

* `timeout`: hold the request without processing it, past the client's timeout, then answer 504;
* `5xx`: 503 NetworkException (Kite's "OMS unreachable"); `500` GeneralException;
  `502` DataException;
* `429`: 429 "Too many requests";
* `malformed`: 200 with a JSON content type and a truncated body;
* `html`: 502 with an HTML page, as a proxy in front of Kite answers;
* `lost`: the request is processed (an order is placed) and the connection is dropped before
  any answer, so the client cannot know and must reconcile, e.g. by the order's `tag`.

Rate limits are Kite's published ones, per API key: orders 10/s and 200/min, quotes 1/s,
historical 3/s, everything else 10/s.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

FAULT_KINDS = ("timeout", "5xx", "500", "502", "429", "malformed", "html", "lost")

RATE_LIMITS: dict[str, tuple[tuple[int, float], ...]] = {
    "orders": ((10, 1.0), (200, 60.0)),
    "quote": ((1, 1.0),),
    "historical": ((3, 1.0),),
    "other": ((10, 1.0),),
}


@dataclass
class FaultRule:
    pattern: re.Pattern[str]
    kind: str
    remaining: int


class Faults:
    """The pending fault rules; the first live rule that matches a request fires."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, route_regex: str, kind: str, times: int) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        pattern = re.compile(route_regex)  # a bad pattern fails here, in the test's thread
        with self._lock:
            self._rules.append(FaultRule(pattern, kind, times))

    def take(self, method: str, path: str) -> str | None:
        """The kind of fault this request gets, if any (consuming one use of the rule)."""
        line = f"{method} {path}"
        with self._lock:
            for rule in self._rules:
                if rule.remaining > 0 and rule.pattern.search(line):
                    rule.remaining -= 1
                    return rule.kind
            self._rules = [r for r in self._rules if r.remaining > 0]
        return None

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pending(self) -> int:
        with self._lock:
            return sum(r.remaining for r in self._rules)


def rate_class(method: str, path: str) -> str:
    if path.startswith("/orders") and method != "GET":
        return "orders"
    if path.startswith("/quote"):
        return "quote"
    if path.startswith("/instruments/historical/"):
        return "historical"
    return "other"


@dataclass
class RateLimiter:
    """Sliding windows per class; a refused request does not count against the window."""

    enabled: bool = True
    clock: Callable[[], float] = time.monotonic
    _hits: dict[tuple[str, float], deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, method: str, path: str) -> bool:
        if not self.enabled:
            return True
        kind = rate_class(method, path)
        now = self.clock()
        with self._lock:
            windows = []
            for limit, seconds in RATE_LIMITS[kind]:
                hits = self._hits.setdefault((kind, seconds), deque())
                while hits and now - hits[0] >= seconds:
                    hits.popleft()
                if len(hits) >= limit:
                    return False
                windows.append(hits)
            for hits in windows:
                hits.append(now)
            return True

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()
