"""Per-call timing: where an API request spends its time (parse, risk, journal, broker).

`Engine.call` puts a fresh dict in `PHASES` for the call; code on the call's path adds the
seconds it spends in a named phase with `phase(...)` or `record(...)`. A context variable, so
concurrent calls never mix, and tasks a call spawns (basket legs) add to the same dict.
Outside a call (`PHASES` unset) recording is a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

PHASES: ContextVar[dict[str, float] | None] = ContextVar("openalgo_lab_phases", default=None)


def record(name: str, seconds: float) -> None:
    """Add `seconds` to phase `name` of the current call, if any."""
    phases = PHASES.get()
    if phases is not None:
        phases[name] = phases.get(name, 0.0) + seconds


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as (part of) phase `name` of the current call."""
    start = time.perf_counter()
    try:
        yield
    finally:
        record(name, time.perf_counter() - start)
