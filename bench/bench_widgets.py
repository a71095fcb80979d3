"""Widgets: how fast a fill shows in the books, and how a 5,000-order book behaves.

1. Fill latency (target: a widget reflects a fill within 100 ms of the engine's event). An
   embedded engine fills MARKET orders; the time runs from the sandbox exchange's fill event
   (on the engine's thread, before the event bus) to the moment the order book's HTML shows
   the order as complete and the trade book's HTML shows the trade (a trait observer fires
   when the widget's value is set, i.e. when the update is sent to the browser). Measured
   twice: updates applied directly (a script), and marshalled to an IOLoop on the main
   thread, the way they are in a kernel.
2. A book of 5,000 orders: building the panel (snapshot + one page), the size of what is sent
   to the browser, an incremental update by orderid on and off the shown page, a page flip,
   a status filter over all rows, and 5,000 live events applied one by one.

    python -m bench.bench_widgets [--fills N] [--orders N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tornado.ioloop import IOLoop

import openalgo_lab
from openalgo_lab.client.api import Client
from openalgo_lab.domain.enums import OrderStatus
from openalgo_lab.domain.models import OrderEvent
from openalgo_lab.widgets import OrderBook, TradeBook
from openalgo_lab.widgets._ui import UiDispatcher

SYMBOLS = ("SBIN", "INFY", "RELIANCE", "ITC", "TCS", "LT", "HDFCBANK", "ICICIBANK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def summary(label: str, values_ms: list[float]) -> str:
    return (
        f"{label:<34} p50 {statistics.median(values_ms):7.2f} ms   p99 {pct(values_ms, 0.99):7.2f}"
        f" ms   max {max(values_ms):7.2f} ms   (n={len(values_ms)})"
    )


class FillClock:
    """When the engine filled each order (the sandbox exchange's event, engine thread), and
    when each widget first showed it."""

    def __init__(self, client: Client) -> None:
        engine = client._transport.engine  # type: ignore[attr-defined]
        exchange = engine.account().sandbox.exchange
        self.filled: dict[str, float] = {}
        self.shown: dict[str, dict[str, float]] = {"orders": {}, "trades": {}}
        self._unsubscribe = exchange.subscribe(self._on_event)

    def _on_event(self, event: OrderEvent) -> None:
        if event.order.status is OrderStatus.COMPLETE:
            self.filled.setdefault(event.order.orderid, time.perf_counter())

    def watch(self, name: str, widget: Any, seen: Callable[[str, str], bool]) -> None:
        def changed(change: dict[str, Any]) -> None:
            now = time.perf_counter()
            shown = self.shown[name]
            for orderid in list(self.filled):
                if orderid not in shown and seen(change["new"], orderid):
                    shown[orderid] = now

        widget.observe(changed, names="value")

    def latencies(self, name: str) -> list[float]:
        shown = self.shown[name]
        return [(shown[o] - self.filled[o]) * 1000 for o in shown if o in self.filled]

    def close(self) -> None:
        self._unsubscribe()


def order_seen(html: str, orderid: str) -> bool:
    return f'oal-row-complete" data-key="{orderid}"' in html


def trade_seen(html: str, orderid: str) -> bool:
    return f"<td>{orderid}</td>" in html


def place(client: Client, i: int) -> None:
    body = client.placeorder(
        strategy="bench",
        symbol=SYMBOLS[i % len(SYMBOLS)],
        exchange="NSE",
        action="BUY" if i % 2 else "SELL",
        quantity=1,
    )
    if body.get("status") != "success":
        raise RuntimeError(body)


def fills_direct(client: Client, n: int) -> FillClock:
    clock = FillClock(client)
    ui = UiDispatcher(None)
    orders, trades = OrderBook(client, ui=ui), TradeBook(client, ui=ui)
    clock.watch("orders", orders.table.html, order_seen)
    clock.watch("trades", trades.table.html, trade_seen)
    for i in range(n):
        place(client, i)
        time.sleep(0.01)
    deadline = time.monotonic() + 10
    while len(clock.shown["trades"]) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    orders.close()
    trades.close()
    clock.close()
    return clock


def fills_marshalled(client: Client, n: int) -> FillClock:
    """The kernel's arrangement: widget updates run on an IOLoop on the main thread; orders
    come from another thread (as from a webhook or a strategy)."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    loop = IOLoop.current()
    ui = UiDispatcher(loop, threading.main_thread())
    clock = FillClock(client)
    orders, trades = OrderBook(client, ui=ui), TradeBook(client, ui=ui)
    clock.watch("orders", orders.table.html, order_seen)
    clock.watch("trades", trades.table.html, trade_seen)

    def feed() -> None:
        for i in range(n):
            place(client, i)
            time.sleep(0.01)

    async def run() -> None:
        await asyncio.get_running_loop().run_in_executor(None, feed)
        deadline = time.monotonic() + 10
        while len(clock.shown["trades"]) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    loop.run_sync(run)
    orders.close()
    trades.close()
    clock.close()
    loop.close(all_fds=False)
    asyncio.set_event_loop(None)
    return clock


def report_fills(label: str, clock: FillClock, n: int) -> None:
    for name in ("orders", "trades"):
        values = clock.latencies(name)
        if len(values) < n:
            print(f"{label} {name}: only {len(values)} of {n} fills shown")
        if values:
            print(summary(f"{label}, {name} book", values))


def big_book(client: Client, n: int) -> None:
    started = time.perf_counter()
    for _ in range(n // 100):
        body = client.splitorder(
            strategy="bench", symbol="ITC", exchange="NSE", action="BUY", quantity=100, splitsize=1
        )
        if body.get("status") != "success":
            raise RuntimeError(body)
    print(f"{'placing the orders':<34} {time.perf_counter() - started:7.2f} s ({n:,} orders)")
    ui = UiDispatcher(None)
    t0 = time.perf_counter()
    book = OrderBook(client, ui=ui, page_size=50)
    build = time.perf_counter() - t0
    html = book.table.html.value
    label = f"OrderBook(client), {n:,} orders"
    print(f"{label:<34} {build * 1000:7.1f} ms (snapshot + one page)")
    rows = html.count('<tr class="oal-row')
    total = len(book.table.store)
    print(f"{'sent to the browser':<34} {len(html):7,} bytes, {rows} rows of {total:,}")
    rows_all = book.table.store.rows()
    on_page = rows_all[-1]  # newest: on the first page
    off_page = rows_all[0]  # oldest: on the last page
    for label, row in (("update on the page", on_page), ("update off the page", off_page)):
        times = []
        for k in range(500):
            changed = {**row, "rejection_reason": f"r{k}"}
            t0 = time.perf_counter()
            book.apply(changed)
            times.append((time.perf_counter() - t0) * 1000)
        print(summary(f"{label}", times))
    t0 = time.perf_counter()
    book.table.go(50)
    flip = time.perf_counter() - t0
    t0 = time.perf_counter()
    book.filter.value = "complete"
    filtered = time.perf_counter() - t0
    book.filter.value = "all"
    print(f"{'page flip':<34} {flip * 1000:7.2f} ms")
    print(f"{'status filter over all rows':<34} {filtered * 1000:7.2f} ms")
    book.close()

    # the same book built live: every order arrives as an event
    live = OrderBook(client, ui=ui, page_size=50)
    live.table.store.replace([])
    live._working.clear()
    t0 = time.perf_counter()
    for row in rows_all:
        live.apply({**row})
    burst = time.perf_counter() - t0
    print(
        f"{f'{len(rows_all):,} events applied one by one':<34} {burst * 1000:7.1f} ms "
        f"({burst / len(rows_all) * 1e6:.0f} µs per event, rendered each time)"
    )
    live.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fills", type=int, default=200)
    parser.add_argument("--orders", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        client = openalgo_lab.connect(
            embedded=True, data_dir=Path(tmp) / "fills", market_hours="always"
        )
        try:
            report_fills("direct", fills_direct(client, args.fills), args.fills)
            report_fills("kernel loop", fills_marshalled(client, args.fills), args.fills)
        finally:
            client.close()
        client = openalgo_lab.connect(
            embedded=True, data_dir=Path(tmp) / "book", market_hours="always"
        )
        try:
            big_book(client, args.orders)
        finally:
            client.close()


if __name__ == "__main__":
    main()
