"""A sandbox saved mid-day and restored into a new exchange carries on exactly as the original."""

from __future__ import annotations

import json
from decimal import Decimal

from openalgo_lab.brokers.sandbox import persist
from openalgo_lab.brokers.sandbox.account import Account
from openalgo_lab.brokers.sandbox.exchange import SandboxExchange
from openalgo_lab.domain import Action, OrderRequest, PriceType, Product
from openalgo_lab.domain.calendar import MarketCalendar, MarketHours
from openalgo_lab.domain.clock import ManualClock
from tests.sandbox_support import NIFTY_FUT, RELIANCE, SBIN, at_ist, make_exchange, tick

D = Decimal


def books(ex: SandboxExchange) -> tuple[object, ...]:
    return (ex.orders(), ex.trades(), ex.positions(), ex.holdings(), ex.funds())


def test_snapshot_round_trip_continues_identically() -> None:
    ex, market, clock = make_exchange(at_ist("2026-11-25", "10:00"), hours=MarketHours.EXCHANGE)
    market.set(SBIN, "800", [("800", 100)], [("799.95", 100)])
    ex.place(OrderRequest("SBIN", SBIN.exchange, Action.BUY, 10, product=Product.CNC))
    tick(clock, ex)
    # next day: the delivery buy is a holding; a partly filled order and resting orders stand
    clock.set(at_ist("2026-11-26", "09:30"))
    ex.step()
    market.set(RELIANCE, "1500", [("1500.05", 30)], [("1500", 100)])
    ex.place(OrderRequest("RELIANCE", RELIANCE.exchange, Action.BUY, 100, product=Product.MIS))
    ex.place(
        OrderRequest(
            "RELIANCE",
            RELIANCE.exchange,
            Action.SELL,
            10,
            PriceType.LIMIT,
            Product.MIS,
            D("1510"),
        )
    )
    ex.place(
        OrderRequest(
            NIFTY_FUT.symbol,
            NIFTY_FUT.exchange,
            Action.BUY,
            65,
            PriceType.SL_M,
            Product.NRML,
            trigger_price=D("110"),
        )
    )
    saved = json.loads(json.dumps(persist.dump(ex)))

    restored = SandboxExchange(
        ex.master,
        market,
        clock=ManualClock(clock.now()),
        calendar=MarketCalendar(hours=MarketHours.EXCHANGE),
        account=Account(),
    )
    persist.load(restored, saved)
    assert books(restored) == books(ex)
    assert restored.account.note is not None and ex.account.note is not None
    assert restored.account.note.total == ex.account.note.total

    # the same market afterwards: both fill the same way
    market.set(RELIANCE, "1511", [("1511", 500)], [("1510.50", 500)])
    market.set(NIFTY_FUT, "111", [("111", 650)], [("110.95", 650)])
    for exchange in (ex, restored):
        exchange.clock.set(at_ist("2026-11-26", "10:00"))  # type: ignore[attr-defined]
        exchange.step()
    assert books(restored) == books(ex)
    assert restored.account.charges_total == ex.account.charges_total
