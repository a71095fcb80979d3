"""Ticks for the embedded transport: the server feed's own poller and payloads, in-process.

The server's feed runs one `QuoteHub` per engine: it polls the union of what subscribers
want from each account's data broker and builds each changed tick once (`tick_frame`). The
embedded transport runs the same hub on its engine's loop, so a `tick` event is the same
dict, produced at the same cadence, whether the Client is embedded or remote. The hub and the
payload builders live in the server extension's package; they are imported from there
(lazily, only when ticks are asked for) rather than copied.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from openalgo_lab.client.ticks import TickStream, tick_event
from openalgo_lab.domain.enums import Exchange

if TYPE_CHECKING:
    from openalgo_lab.engine.engine import Engine
    from openalgo_lab.engine.quote_feed import Listener, QuoteHub, Stream

log = logging.getLogger(__name__)


class EmbeddedTicks:
    """Tick subscriptions on one engine. Every method runs on the engine's loop."""

    def __init__(self, engine: Engine) -> None:
        from openalgo_lab.engine.quote_feed import QuoteHub, tick_frame

        self._engine = engine
        self._hub: QuoteHub = QuoteHub(lambda name: engine.account(name).data_broker, tick_frame)

    def add(
        self,
        account: str | None,
        streams: Sequence[TickStream],
        callback: Callable[[str, Any], None],
    ) -> Listener:
        from openalgo_lab.engine.quote_feed import Listener, Stream

        wanted = {Stream(Exchange(s.exchange), s.symbol, s.mode): s for s in streams}

        def deliver(stream: Stream, text: str) -> None:
            request = wanted.get(stream)
            if request is None:
                return
            try:
                callback("tick", tick_event(request, json.loads(text)["data"]))
            except Exception:
                log.exception("a tick callback raised")

        listener = Listener(self._engine.account(account).name, deliver)
        self._hub.add(listener, wanted)
        return listener

    def remove(self, listener: Listener) -> None:
        self._hub.remove(listener)

    async def close(self) -> None:
        await self._hub.close()
