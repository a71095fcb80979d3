"""Time sources. The sandbox never calls `datetime.now()` directly, so a test or a replay can
drive a whole trading day in milliseconds with a `ManualClock`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime) -> None:
        at = at.astimezone(UTC)
        if at < self._now:
            raise ValueError(f"time cannot go backwards ({at} < {self._now})")
        self._now = at

    def advance(self, delta: timedelta) -> datetime:
        self.set(self._now + delta)
        return self._now
