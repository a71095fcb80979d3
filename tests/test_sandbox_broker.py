"""The sandbox broker end to end on the simulated market, through the async Broker protocol."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from openalgo_lab.brokers.base import Broker
from openalgo_lab.brokers.registry import available_brokers, load_broker
from openalgo_lab.brokers.sandbox.broker import SandboxBroker
from openalgo_lab.domain import (
    Action,
    Exchange,
    Interval,
    NotFoundError,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    PriceType,
    Product,
)
from openalgo_lab.domain.calendar import MarketCalendar, MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.instruments.sample import sample_master
from tests.sandbox_support import at_ist

DAY = "2026-11-25"


def make_broker() -> tuple[SandboxBroker, ManualClock]:
    clock = ManualClock(at_ist(DAY, "10:00"))
    broker = SandboxBroker(
        master=sample_master(clock.now().date()),
        clock=clock,
        calendar=MarketCalendar(hours=MarketHours.EXCHANGE),
        seed=7,
    )
    return broker, clock


def test_registry_discovers_the_sandbox() -> None:
    assert "sandbox" in available_brokers()
    assert load_broker("sandbox") is SandboxBroker
    with pytest.raises(NotFoundError, match="not installed"):
        load_broker("nope")


def test_sandbox_satisfies_the_protocol() -> None:
    broker, _ = make_broker()
    assert isinstance(broker, Broker)


def test_resting_limit_fills_as_the_simulated_market_moves() -> None:
    async def scenario() -> None:
        broker, clock = make_broker()
        events: list[OrderEvent] = []

        async def collect() -> None:
            async for event in broker.order_events():
                events.append(event)

        collector = asyncio.create_task(collect())
        await asyncio.sleep(0)
        quote = await broker.quote(Exchange.NSE, "RELIANCE")
        assert quote.bid <= quote.ltp <= quote.ask
        limit = quote.ltp - Decimal("0.50")
        placed = await broker.place_order(
            OrderRequest(
                "RELIANCE", Exchange.NSE, Action.BUY, 10, PriceType.LIMIT, Product.MIS, limit
            )
        )
        assert placed.status is OrderStatus.OPEN
        status = placed.status
        for _ in range(4 * 60 * 60):  # up to four hours of one-second ticks
            clock.advance(timedelta(seconds=1))
            broker.exchange.step()
            status = (await broker.order(placed.orderid)).status
            if status is OrderStatus.COMPLETE:
                break
        assert status is OrderStatus.COMPLETE
        (trade,) = await broker.trades()
        assert trade.price == limit  # a resting limit fills at its price
        (position,) = await broker.positions()
        assert position.quantity == 10 and position.average_price == limit
        funds = await broker.funds()
        assert funds.utiliseddebits == (limit * 10 / 5).quantize(Decimal("0.01"))
        await asyncio.sleep(0)
        assert [e.order.status for e in events][-1] is OrderStatus.COMPLETE
        assert events[-1].trade is not None
        collector.cancel()

    asyncio.run(scenario())


def test_history_agrees_with_quotes() -> None:
    async def scenario() -> None:
        broker, clock = make_broker()
        start = at_ist(DAY, "09:15")
        candles = await broker.history(Exchange.NSE, "SBIN", Interval.M1, start, clock.now())
        assert len(candles) == 45  # 09:15 .. 09:59
        quote = await broker.quote(Exchange.NSE, "SBIN")
        assert quote.high >= max(c.high for c in candles)
        assert quote.low <= min(c.low for c in candles)

    asyncio.run(scenario())


def test_unknown_symbol_is_not_found() -> None:
    broker, _ = make_broker()
    with pytest.raises(NotFoundError, match="NOPE"):
        asyncio.run(broker.quote(Exchange.NSE, "NOPE"))
