"""Run an engine inside this process for the Client (scripts, tests, standalone Voila).

The engine lives on its own event loop in a daemon thread, so the Client's methods stay plain
synchronous calls that work the same in a notebook (which already runs a loop), a script or a
test, while the sandbox keeps matching in the background. Subscribers' callbacks run on a
third thread (`dispatch`), so a callback may call the Client.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from openalgo_lab.client.approvals import ApprovalQueue, EmbeddedQueue
from openalgo_lab.client.dispatch import CallbackThread
from openalgo_lab.client.embedded_ticks import EmbeddedTicks
from openalgo_lab.client.ticks import TickStream
from openalgo_lab.domain.models import OrderEvent, Trade
from openalgo_lab.engine.engine import Engine
from openalgo_lab.engine.events import Event
from openalgo_lab.engine.views import order_row, trade_row

JSON = dict[str, Any]
CALL_TIMEOUT = 60.0


class EmbeddedTransport:
    def __init__(self, engine: Engine, *, account: str | None = None) -> None:
        self.engine = engine
        self.account = account
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="openalgo-lab-engine", daemon=True
        )
        self._thread.start()
        self._closed = False
        self._ticks: EmbeddedTicks | None = None
        self._callbacks = CallbackThread()
        self._run(engine.start())
        # a notebook rarely calls close(): stop the engine cleanly (journal, history, lock)
        atexit.register(self.close)

    def _run(self, coro: Any) -> Any:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("The embedded Client cannot be called from the engine's thread")
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(CALL_TIMEOUT)

    def approvals(self) -> ApprovalQueue:
        return EmbeddedQueue(self.engine, self._run)

    def call(self, action: str, payload: Mapping[str, Any]) -> tuple[int, JSON]:
        if self._closed:
            return 503, {"status": "error", "message": "The embedded engine is closed"}
        key = str(payload.get("idempotency_key", "")) if isinstance(payload, Mapping) else ""
        reply = self._run(
            self.engine.call(action, payload, account=self.account, idempotency_key=key)
        )
        return reply.status, reply.body

    def subscribe(
        self, callback: Callable[[str, Any], None], topics: set[str] | None
    ) -> Callable[[], None]:
        sub = self.engine.events.subscribe(topics)

        async def pump() -> None:
            async for event in sub:
                if self.account is not None and event.account != self.account:
                    continue
                self._callbacks.put(callback, event.topic, event_json(event))

        task = asyncio.run_coroutine_threadsafe(pump(), self._loop)

        def unsubscribe() -> None:
            self.engine.events.unsubscribe(sub)
            task.cancel()

        return unsubscribe

    def subscribe_ticks(
        self, callback: Callable[[str, Any], None], streams: Sequence[TickStream]
    ) -> Callable[[], None]:
        """`tick` events for `streams`, from the server feed's poller run on this engine."""
        if self._closed:
            raise RuntimeError("The embedded engine is closed")

        async def add() -> Any:
            if self._ticks is None:
                self._ticks = EmbeddedTicks(self.engine)
            return self._ticks.add(self.account, streams, self._on_callback_thread(callback))

        listener = self._run(add())

        async def remove() -> None:
            if self._ticks is not None:
                self._ticks.remove(listener)

        def unsubscribe() -> None:
            if not self._closed:
                self._run(remove())

        return unsubscribe

    def _on_callback_thread(
        self, callback: Callable[[str, Any], None]
    ) -> Callable[[str, Any], None]:
        def hand_over(topic: str, data: Any) -> None:
            self._callbacks.put(callback, topic, data)

        return hand_over

    def __repr__(self) -> str:
        return f"EmbeddedTransport(data_dir={str(self.engine.settings.data_dir)!r})"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        if self._ticks is not None:
            self._run(self._ticks.close())
        self._run(self.engine.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._callbacks.close()


def event_json(event: Event) -> Any:
    """An engine event as the Client hands it out, the same over every transport: an
    `order` is the order-book row of the order, a `trade` the trade-book row."""
    data = event.data
    if isinstance(data, OrderEvent):
        return {**order_row(data.order), "account": event.account}
    if isinstance(data, Trade):
        return {**trade_row(data), "account": event.account}
    return data
