"""The engine's in-process event bus.

Publishing never waits: each subscriber has a bounded queue, and a subscriber that falls
behind loses its oldest events (counted in `dropped`) instead of slowing the engine or the
other subscribers. Topics are plain strings: `order`, `trade`, `position`, `tick`, `journal`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    topic: str
    account: str
    data: Any


@dataclass(eq=False)
class Subscription:
    topics: frozenset[str] | None
    queue: asyncio.Queue[Event]
    dropped: int = 0

    def offer(self, event: Event) -> None:
        if self.topics is not None and event.topic not in self.topics:
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> Event:
        return await self.queue.get()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()


@dataclass
class EventBus:
    queue_size: int = 10_000
    _subscriptions: list[Subscription] = field(default_factory=list)
    published: int = 0

    def subscribe(
        self, topics: set[str] | None = None, *, queue_size: int | None = None
    ) -> Subscription:
        sub = Subscription(
            frozenset(topics) if topics is not None else None,
            asyncio.Queue(queue_size or self.queue_size),
        )
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    def publish(self, topic: str, account: str, data: Any) -> None:
        """Deliver to every subscriber now, without awaiting anything."""
        self.published += 1
        event = Event(topic, account, data)
        for sub in self._subscriptions:
            sub.offer(event)
