"""Run an engine inside this process for the Client (scripts, tests, standalone Voila).

The engine lives on its own event loop in a daemon thread, so the Client's methods stay plain
synchronous calls that work the same in a notebook (which already runs a loop), a script or a
test, while the sandbox keeps matching in the background.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

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
        self._run(engine.start())
        # a notebook rarely calls close(): stop the engine cleanly (journal, history, lock)
        atexit.register(self.close)

    def _run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(CALL_TIMEOUT)

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
                try:
                    callback(event.topic, event_json(event))
                except Exception:  # a bad callback must not kill the pump
                    import logging

                    logging.getLogger(__name__).exception("event callback failed")

        task = asyncio.run_coroutine_threadsafe(pump(), self._loop)

        def unsubscribe() -> None:
            self.engine.events.unsubscribe(sub)
            task.cancel()

        return unsubscribe

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._run(self.engine.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


def event_json(event: Event) -> Any:
    """An engine event as the Client hands it out, the same over every transport: an
    `order` is the order-book row of the order, a `trade` the trade-book row."""
    data = event.data
    if isinstance(data, OrderEvent):
        return {**order_row(data.order), "account": event.account}
    if isinstance(data, Trade):
        return {**trade_row(data), "account": event.account}
    return data
