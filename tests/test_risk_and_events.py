"""Risk limits beyond order size (position, daily loss per account and per strategy) and the
event bus's promise that a slow subscriber never blocks the engine."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from openalgo_lab.domain.calendar import IST, MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.engine.engine import Engine
from openalgo_lab.engine.events import EventBus
from openalgo_lab.engine.settings import EngineSettings

NOW = datetime(2026, 11, 25, 11, 0, tzinfo=IST)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(
        EngineSettings(data_dir=tmp_path, market_hours=MarketHours.ALWAYS),
        clock=ManualClock(NOW),
    )


def place(engine: Engine, **kw: Any) -> Any:
    payload = {
        "strategy": "s1",
        "symbol": "SBIN",
        "exchange": "NSE",
        "action": "BUY",
        "quantity": "10",
        "product": "MIS",
        **kw,
    }
    return asyncio.run(engine.call("placeorder", payload))


def test_position_limit_blocks_growth_but_not_reduction(engine: Engine) -> None:
    engine.router.limits.max_position_quantity = 15
    assert place(engine).ok
    refused = place(engine)
    assert refused.status == 400 and "beyond the limit 15" in refused.body["message"]
    assert place(engine, action="SELL", quantity="10").ok  # reducing is always allowed


def test_daily_loss_limit_allows_only_reducing_orders(engine: Engine) -> None:
    assert place(engine, quantity="100").ok
    engine.router.limits.max_daily_loss = Decimal("0.01")  # charges alone exceed it
    refused = place(engine)
    assert refused.status == 400 and "loss today" in refused.body["message"]
    assert place(engine, action="SELL", quantity="100").ok


def test_strategy_loss_limit_is_per_strategy(engine: Engine) -> None:
    assert place(engine).ok
    assert place(engine, action="SELL").ok  # a round trip: s1 is down by its charges
    engine.router.limits.max_daily_loss_per_strategy = {"s1": Decimal("0.01")}
    refused = place(engine)
    assert refused.status == 400 and "strategy 's1'" in refused.body["message"]
    assert place(engine, strategy="s2").ok


def test_a_stalled_subscriber_loses_old_events_and_blocks_nobody() -> None:
    async def scenario() -> None:
        bus = EventBus(queue_size=10)
        stalled = bus.subscribe({"tick"})
        reader = bus.subscribe({"tick"}, queue_size=1000)
        other = bus.subscribe({"order"})
        for n in range(100):
            bus.publish("tick", "default", n)  # never awaits, whoever is behind
        assert stalled.dropped == 90 and stalled.queue.qsize() == 10
        assert [(await stalled.get()).data for _ in range(10)] == list(range(90, 100))
        assert reader.dropped == 0 and reader.queue.qsize() == 100
        assert other.queue.qsize() == 0  # topics are filtered
        bus.unsubscribe(reader)
        bus.publish("tick", "default", 100)
        assert reader.queue.qsize() == 100

    asyncio.run(scenario())
