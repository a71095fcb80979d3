"""Order updates from Kite as `OrderEvent`s: the order book polled, changes detected.

Kite pushes order updates to a registered postback URL and over its WebSocket; neither reaches
a notebook on a laptop. Polling works everywhere: while someone listens to `events()`, the
order book is read every `interval` seconds and each order whose state changed since the last
read becomes an event; when filled quantities grew, the trade book is read once and each new
fill becomes an event carrying its trade. A postback (`feed`) goes through the same change
detection, so an update seen both ways is published once.

The first read of this adapter is the baseline: orders already in the book are not
replayed (a restart must not report the day's fills twice), except those this process sent
(known by order id or tag), whose answer may have raced the first read, and those the engine
resumes after a restart (`resume`): their state at the first read is news, and only their
fills not recorded before the restart are, so a fill made while we were down is not lost.

Read errors (an expired login, Kite unavailable) are logged once per kind and polling
continues at a slower pace; a listener never sees an exception from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from openalgo_lab.domain.errors import BrokerSessionExpired, OpenAlgoError
from openalgo_lab.domain.models import Order, OrderEvent, Trade

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
DEFAULT_INTERVAL = 1.0
MAX_BACKOFF = 5.0  # seconds between reads while Kite keeps failing
LOGGED_OUT_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class _Seen:
    """The parts of an order whose change is an update."""

    status: str
    filled: int
    quantity: int
    price: str
    trigger: str
    pricetype: str

    @classmethod
    def of(cls, order: Order) -> _Seen:
        return cls(
            order.status.value,
            order.filled_quantity,
            order.quantity,
            str(order.price),
            str(order.trigger_price),
            order.pricetype.value,
        )


class OrderUpdates:
    def __init__(
        self,
        fetch_orders: Callable[[], Awaitable[list[Order]]],
        fetch_trades: Callable[[], Awaitable[list[Trade]]],
        *,
        interval: float = DEFAULT_INTERVAL,
        ours: Callable[[Order], bool] | None = None,
    ) -> None:
        self._fetch_orders = fetch_orders
        self._is_ours = ours
        self._fetch_trades = fetch_trades
        self.interval = interval
        self._seen: dict[str, _Seen] = {}
        self._latest: dict[str, Order] = {}
        self._accounted: dict[str, int] = {}  # filled quantity matched by trades seen
        self._pending: set[str] = set()  # orders with fills not yet seen in the trade book
        self._ours: set[str] = set()  # orders placed here and not seen in a read yet
        self._resumed: dict[str, dict[str, int]] = {}  # order id -> fills known before restart
        self._trades: set[str] = set()
        self._baseline = False
        self._queues: set[asyncio.Queue[OrderEvent]] = set()
        self._task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None
        self.dropped_events = 0
        self.polls = 0
        self.last_error = ""

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    # -- listeners -------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[OrderEvent]:
        queue: asyncio.Queue[OrderEvent] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        self._ensure_polling()
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.discard(queue)
            if not self._queues:
                await self.stop()

    def _ensure_polling(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="kite-order-updates")

    async def stop(self) -> None:
        """Stop polling. What was read so far is kept: the next listener gets what changed
        since (a fill made in between is news), not a fresh baseline that would swallow it."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _placed_here(self, order: Order) -> bool:
        return (
            order.orderid in self._ours
            or order.orderid in self._resumed
            or (self._is_ours is not None and self._is_ours(order))
        )

    def track(self, orderid: str) -> None:
        """An order this adapter placed: news even if the first read (the baseline) is the
        first to see it."""
        self._ours.add(orderid)

    def resume(self, orderid: str, known_fills: Mapping[str, int]) -> None:
        """An order placed before a restart and still open then, with the fills already
        recorded for it (trade id -> quantity): its state at the first read is published,
        and of its fills only the others, so one made while we were down is not lost and
        none is recorded twice."""
        self._resumed[orderid] = dict(known_fills)

    def _publish(self, event: OrderEvent) -> None:
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                self.dropped_events += 1
            queue.put_nowait(event)

    # -- polling ---------------------------------------------------------------------------
    async def _run(self) -> None:
        delay = self.interval
        while True:
            try:
                await self.poll()
                if self.last_error:
                    log.info("Kite order updates are flowing again")
                self.last_error = ""
                delay = self.interval
            except asyncio.CancelledError:
                raise
            except Exception as err:
                message = err.message if isinstance(err, OpenAlgoError) else repr(err)
                if message != self.last_error:
                    log.warning("reading Kite's order book for updates failed: %s", message)
                self.last_error = message
                if isinstance(err, BrokerSessionExpired):
                    # checked locally until someone logs in: cheap, and a fresh login
                    # should bring updates back at once
                    delay = max(self.interval, LOGGED_OUT_INTERVAL)
                else:
                    delay = min(MAX_BACKOFF, max(delay * 2, self.interval))
            await asyncio.sleep(delay)

    async def poll(self) -> list[OrderEvent]:
        """Read the order book once and publish what changed; returns the events."""
        orders = await self._fetch_orders()
        async with self._guard():
            self.polls += 1
            if not self._baseline:
                old = [o for o in orders if not self._placed_here(o)]
                self._seen = {o.orderid: _Seen.of(o) for o in old}
                self._latest = {o.orderid: o for o in old}
                self._accounted = {o.orderid: o.filled_quantity for o in old}
                self._trades = set()
                for orderid, known in self._resumed.items():
                    self._accounted[orderid] = sum(known.values())
                    self._trades |= known.keys()
                self._pending = set()
                self._baseline = True
                # fills of today so far are not news either (but those of our new orders are)
                if any(o.filled_quantity for o in old):
                    self._trades |= {
                        t.tradeid for t in await self._fetch_trades() if t.orderid in self._seen
                    }
            return await self._changes(orders)

    async def feed(self, order: Order) -> list[OrderEvent]:
        """An order update pushed by Kite (a postback): published if it is news."""
        async with self._guard():
            return await self._changes([order])

    async def _changes(self, orders: list[Order]) -> list[OrderEvent]:
        changed: list[Order] = []
        for order in orders:
            self._ours.discard(order.orderid)
            self._resumed.pop(order.orderid, None)
            now = _Seen.of(order)
            if self._seen.get(order.orderid) == now:
                continue
            self._seen[order.orderid] = now
            self._latest[order.orderid] = order
            changed.append(order)
            if order.filled_quantity > self._accounted.get(order.orderid, 0):
                self._pending.add(order.orderid)
        fills = await self._new_fills() if self._pending else {}
        events: list[OrderEvent] = []
        for order in changed:
            trades = fills.pop(order.orderid, [])
            events += [OrderEvent(order, trade) for trade in trades]
            if not trades:
                events.append(OrderEvent(order))
        # fills that reached the trade book after their order's change was published
        for orderid, trades in fills.items():
            events += [OrderEvent(self._latest[orderid], trade) for trade in trades]
        for event in events:
            self._publish(event)
        return events

    async def _new_fills(self) -> dict[str, list[Trade]]:
        """New trades of the orders whose fills are not all accounted for yet. A fill the
        trade book does not show yet is looked for again on the next poll."""
        found: dict[str, list[Trade]] = {}
        for trade in await self._fetch_trades():
            if trade.orderid not in self._pending or trade.tradeid in self._trades:
                continue
            self._trades.add(trade.tradeid)
            self._accounted[trade.orderid] = self._accounted.get(trade.orderid, 0) + trade.quantity
            found.setdefault(trade.orderid, []).append(trade)
        self._pending = {
            oid
            for oid in self._pending
            if self._accounted.get(oid, 0) < self._latest[oid].filled_quantity
        }
        return found
