"""Matching-engine throughput: order events per second through `SandboxExchange`, in process.

An "order event" is one thing the engine does to an order: accept it, fill it (each fill),
modify it or cancel it. The run mixes what a busy strategy sends: marketable orders that walk
the book, limits that rest and later fill on a tick, modifications and cancellations.

    python -m bench.bench_matching [--orders N]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from openalgo_lab.brokers.sandbox.account import Account
from openalgo_lab.brokers.sandbox.exchange import SandboxExchange
from openalgo_lab.domain.calendar import MarketCalendar, MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.domain.enums import Action, Exchange, InstrumentType, Interval, PriceType
from openalgo_lab.domain.models import (
    Candle,
    Depth,
    DepthLevel,
    Instrument,
    OrderEvent,
    OrderModification,
    OrderRequest,
    Quote,
)
from openalgo_lab.instruments.master import MasterContract

D = Decimal


class FlatBook:
    """A fixed deep book around 1000.00 for every instrument: measures the engine, not a model."""

    def __init__(self) -> None:
        now = datetime.now(UTC)
        self._depth: dict[tuple[Exchange, str], Depth] = {}
        self._now = now

    def depth(self, instrument: Instrument, at: datetime) -> Depth:
        found = self._depth.get(instrument.key)
        if found is None:
            mid = D(1000)
            tick = instrument.tick_size
            bids = tuple(DepthLevel(mid - tick * i, 500) for i in range(1, 6))
            asks = tuple(DepthLevel(mid + tick * i, 500) for i in range(0, 5))
            quote = Quote(
                instrument.symbol,
                instrument.exchange,
                mid,
                bids[0].price,
                asks[0].price,
                mid,
                mid,
                mid,
                mid,
                0,
                0,
                self._now,
            )
            found = self._depth[instrument.key] = Depth(quote, bids, asks)
        return found

    def candles(
        self, instrument: Instrument, interval: Interval, start: datetime, end: datetime
    ) -> list[Candle]:
        return []


def run(n_orders: int) -> None:
    instruments = [
        Instrument(f"SYM{i}", Exchange.NSE, f"S{i}", InstrumentType.EQ, str(i), D("0.05"))
        for i in range(50)
    ]
    clock = ManualClock(datetime(2026, 11, 25, 5, 0, tzinfo=UTC))
    exchange = SandboxExchange(
        MasterContract(instruments),
        FlatBook(),
        clock=clock,
        calendar=MarketCalendar(hours=MarketHours.ALWAYS),
        account=Account(capital=D(10) ** 12),
    )
    events = 0

    def count(_: OrderEvent) -> None:
        nonlocal events
        events += 1

    exchange.subscribe(count)
    requests = []
    for i in range(n_orders):
        inst = instruments[i % len(instruments)]
        kind = i % 4
        action = Action.BUY if i % 2 else Action.SELL
        if kind == 0:  # marketable: walks one or two levels
            req = OrderRequest(inst.symbol, inst.exchange, action, 600)
        else:  # resting limit two ticks away
            price = D(1000) - D("0.10") if action is Action.BUY else D(1000) + D("0.20")
            req = OrderRequest(inst.symbol, inst.exchange, action, 10, PriceType.LIMIT, price=price)
        requests.append((kind, req))
    start = time.perf_counter()
    for i, (kind, req) in enumerate(requests):
        placed = exchange.place(req)
        if kind == 2:
            exchange.modify(placed.orderid, OrderModification(price=req.price - D("0.05")))
        elif kind == 3:
            exchange.cancel(placed.orderid)
        if i % 1000 == 999:  # a tick every thousand orders: resting orders may now fill
            clock.advance(timedelta(milliseconds=100))
            exchange.step()
    elapsed = time.perf_counter() - start
    print(f"orders placed        {n_orders}")
    print(f"order events         {events}")
    print(f"elapsed              {elapsed:.3f} s")
    print(f"order events/s       {events / elapsed:,.0f}")
    print(f"orders/s             {n_orders / elapsed:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=50_000)
    args = parser.parse_args()
    run(args.orders)


if __name__ == "__main__":
    main()
