"""Matching-engine throughput, in process. Two figures:

* **sandbox end to end**: order events per second through `SandboxExchange`: validation,
  session and margin checks, matching, and the exact accounting of every fill (position,
  contract-note charges, margin), with an event listener attached. An "order event" is one
  thing that happens to an order: accepted, filled (each fill), modified, cancelled.
* **matching core**: the same kinds of events through the per-instrument `OrderBook` and the
  depth-walking `take` alone (orders filed, crossed by ticks, filled, cancelled), without the
  account. This is the cost of matching itself.

    python -m bench.bench_matching [--orders N]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from openalgo_lab.brokers.sandbox.account import Account
from openalgo_lab.brokers.sandbox.exchange import SandboxExchange
from openalgo_lab.brokers.sandbox.matching import Level, Liquidity, OrderBook, take
from openalgo_lab.brokers.sandbox.orders import WorkingOrder
from openalgo_lab.domain.calendar import MarketCalendar, MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.domain.enums import (
    Action,
    Exchange,
    InstrumentType,
    Interval,
    OrderStatus,
    PriceType,
    Product,
)
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


def run_sandbox(n_orders: int) -> None:
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
    print("sandbox end to end (validation, margin, matching, accounting, events)")
    print(f"  orders placed        {n_orders}")
    print(f"  order events         {events}")
    print(f"  elapsed              {elapsed:.3f} s")
    print(f"  order events/s       {events / elapsed:,.0f}")
    print(f"  orders/s             {n_orders / elapsed:,.0f}")


def run_core(n_orders: int) -> None:
    """Resting limits on both sides of 1000.00; every 10th order a tick sweeps the book."""
    inst = Instrument("SYM", Exchange.NSE, "S", InstrumentType.EQ, "1", D("0.05"))
    at = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    book = OrderBook()
    orders = []
    for i in range(n_orders):
        action = Action.BUY if i % 2 else Action.SELL
        offset = D("0.05") * (i % 20 + 1)
        price = D(1000) - offset if action is Action.BUY else D(1000) + offset
        orders.append(
            WorkingOrder(
                str(i),
                inst,
                action,
                10,
                PriceType.LIMIT,
                Product.MIS,
                price,
                D(0),
                OrderStatus.OPEN,
                at,
                at,
            )
        )
    events = 0
    start = time.perf_counter()
    for i, order in enumerate(orders):
        book.add(order)
        events += 1
        if i % 3 == 2:  # a third are cancelled
            book.remove(order.orderid)
            events += 1
        if i % 10 == 9:  # a tick trades through the top of both sides
            liquidity = Liquidity(
                D(1000),
                # sellers below and buyers above the resting orders: the tick crosses them
                [Level(D(1000) - D("0.05") * k, 30) for k in range(5, 0, -1)],
                [Level(D(1000) + D("0.05") * k, 30) for k in range(5, 0, -1)],
            )
            for best in (book.best_buy, book.best_sell):
                while (top := best()) is not None:
                    fills = take(top, liquidity, resting=True)
                    if not fills:
                        break
                    for price, qty in fills:
                        top.record_fill(qty, price, at)
                        events += 1
                    if top.pending_quantity:
                        break
                    book.remove(top.orderid)
    elapsed = time.perf_counter() - start
    print("matching core (OrderBook + take + fills, no accounting)")
    print(f"  orders filed         {n_orders}")
    print(f"  order events         {events}")
    print(f"  elapsed              {elapsed:.3f} s")
    print(f"  order events/s       {events / elapsed:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=50_000)
    args = parser.parse_args()
    run_sandbox(args.orders)
    run_core(args.orders * 4)


if __name__ == "__main__":
    main()
