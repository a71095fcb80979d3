"""The feed's fan-out: one poll per account, each changed tick encoded once for everyone."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

from openalgo_lab.domain.calendar import IST, MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.domain.enums import Exchange, FeedMode
from openalgo_lab.engine.engine import Engine
from openalgo_lab.engine.quote_feed import Listener, QuoteHub, Stream, tick_frame
from openalgo_lab.engine.settings import EngineSettings

NOW = datetime(2026, 11, 25, 11, 0, tzinfo=IST)
SBIN = Stream(Exchange.NSE, "SBIN", FeedMode.LTP)
SBIN_DEPTH = Stream(Exchange.NSE, "SBIN", FeedMode.DEPTH)
INFY = Stream(Exchange.NSE, "INFY", FeedMode.QUOTE)


class Inbox:
    def __init__(self) -> None:
        self.got: list[tuple[Stream, str]] = []

    def __call__(self, stream: Stream, text: str) -> None:
        self.got.append((stream, text))


async def settle(hub: QuoteHub, polls: int) -> None:
    """Wait until the hub has polled `polls` times in all (bounded)."""
    for _ in range(400):
        if hub.polls >= polls:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"hub polled {hub.polls} times, wanted {polls}")


def hub_for(tmp_path: Path) -> tuple[ManualClock, QuoteHub]:
    clock = ManualClock(NOW)
    engine = Engine(EngineSettings(data_dir=tmp_path, market_hours=MarketHours.ALWAYS), clock=clock)
    hub = QuoteHub(lambda account: engine.account(account).data_broker, tick_frame)
    return clock, hub


def test_one_poll_serves_every_listener_with_the_same_text(tmp_path: Path) -> None:
    clock, hub = hub_for(tmp_path)

    async def run() -> None:
        a, b = Inbox(), Inbox()
        la, lb = Listener("default", a), Listener("default", b)
        hub.add(la, [SBIN, INFY])
        hub.add(lb, [SBIN, SBIN_DEPTH])
        await settle(hub, 2)
        # each stream's first tick reaches its subscribers once, as the same encoded text
        assert sorted(s.symbol + str(int(s.mode)) for s, _ in a.got) == ["INFY2", "SBIN1"]
        assert {s for s, _ in b.got} == {SBIN, SBIN_DEPTH}
        sbin_a = next(t for s, t in a.got if s == SBIN)
        sbin_b = next(t for s, t in b.got if s == SBIN)
        assert sbin_a is sbin_b
        frame = json.loads(next(t for s, t in b.got if s == SBIN_DEPTH))
        assert frame["type"] == "market_data" and frame["mode"] == 3
        assert len(frame["data"]["depth"]["buy"]) == 5
        # nothing moves while the clock stands still: no duplicate ticks
        before = (len(a.got), len(b.got))
        await settle(hub, hub.polls + 2)
        assert (len(a.got), len(b.got)) == before
        # the market moves: every stream changes once more
        clock.advance(timedelta(seconds=1))
        hub._feeds["default"].wake.set()
        await settle(hub, hub.polls + 1)
        assert len(a.got) == before[0] + 2 and len(b.got) == before[1] + 2
        await hub.close()

    asyncio.run(run())


def test_late_subscriber_gets_the_latest_tick_at_once(tmp_path: Path) -> None:
    _clock, hub = hub_for(tmp_path)

    async def run() -> None:
        first, late = Inbox(), Inbox()
        hub.add(Listener("default", first), [SBIN])
        await settle(hub, 1)
        hub.add(Listener("default", late), [SBIN])
        assert late.got == first.got  # delivered inside add(), before any poll
        await hub.close()

    asyncio.run(run())


def test_remove_stops_ticks_and_the_last_listener_stops_the_poller(tmp_path: Path) -> None:
    clock, hub = hub_for(tmp_path)

    async def run() -> None:
        a, b = Inbox(), Inbox()
        la, lb = Listener("default", a), Listener("default", b)
        hub.add(la, [SBIN, INFY])
        hub.add(lb, [SBIN])
        await settle(hub, 1)
        hub.remove(la, [SBIN])
        assert la.streams == {INFY}
        count_a, count_b = len(a.got), len(b.got)
        clock.advance(timedelta(seconds=1))
        hub._feeds["default"].wake.set()
        await settle(hub, hub.polls + 1)
        assert [s for s, _ in a.got[count_a:]] == [INFY]
        assert [s for s, _ in b.got[count_b:]] == [SBIN]
        task = hub._feeds["default"].task
        hub.remove(la)
        hub.remove(lb)
        assert "default" not in hub._feeds
        assert task is not None
        await asyncio.wait([task], timeout=1)
        assert task.cancelled()

    asyncio.run(run())


def test_broker_failure_is_counted_and_the_feed_goes_on(tmp_path: Path) -> None:
    _clock, hub = hub_for(tmp_path)

    async def run() -> None:
        inbox = Inbox()
        hub.add(Listener("nobody", inbox), [SBIN])  # no such account: every poll fails
        await settle(hub, 2)
        assert hub.failures >= 2 and inbox.got == []
        await hub.close()

    asyncio.run(run())
