"""Matching rules of the sandbox: how an order meets the visible depth of one tick.

Better than OpenAlgo's analyzer, which fills whole orders at one price: here an order walks the
levels of the book, so a large order on a thin book fills partly, at several prices, and the
rest waits for later ticks. Liquidity taken on a tick is used up for that tick, so two orders on
the same tick cannot both buy the same shares.

Prices: an order that meets the book when it arrives (MARKET, a marketable LIMIT, an SL that
has just triggered) takes each level at that level's price; a LIMIT that was already resting
fills at its own limit price when the market trades through it (the price a resting order gets
at an exchange).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from decimal import Decimal

from openalgo_lab.brokers.sandbox.orders import WorkingOrder
from openalgo_lab.domain.enums import Action, PriceType
from openalgo_lab.domain.models import Depth

Fill = tuple[Decimal, int]  # (price, quantity)


@dataclass(slots=True)
class Level:
    price: Decimal
    quantity: int


@dataclass(slots=True)
class Liquidity:
    """What is left of one tick's depth, best level first on each side."""

    ltp: Decimal
    asks: list[Level]
    bids: list[Level]

    @classmethod
    def from_depth(cls, depth: Depth) -> Liquidity:
        return cls(
            ltp=depth.quote.ltp,
            asks=[Level(lvl.price, lvl.quantity) for lvl in depth.asks if lvl.quantity > 0],
            bids=[Level(lvl.price, lvl.quantity) for lvl in depth.bids if lvl.quantity > 0],
        )


def trigger_hit(order: WorkingOrder, ltp: Decimal) -> bool:
    """A buy stop fires when the price rises to its trigger, a sell stop when it falls to it."""
    if order.action is Action.BUY:
        return ltp >= order.trigger_price
    return ltp <= order.trigger_price


def take(order: WorkingOrder, liquidity: Liquidity, *, resting: bool) -> list[Fill]:
    """Consume liquidity for `order` (already triggered) and return its fills, best first.

    The order is not changed here; the caller books the fills. `resting` says the order was
    already in the book before this tick (see the module docstring for the price it gets).
    """
    kind = order.effective_type
    if kind is PriceType.MARKET:
        limit: Decimal | None = None
    elif kind is PriceType.LIMIT:
        limit = order.price
    else:  # an untriggered stop never trades
        return []
    buying = order.action is Action.BUY
    levels = liquidity.asks if buying else liquidity.bids
    remaining = order.pending_quantity
    fills: list[Fill] = []
    for level in levels:
        if remaining == 0:
            break
        price, available = level.price, level.quantity
        if available <= 0:
            continue
        if limit is not None and (price > limit if buying else price < limit):
            break
        qty = min(available, remaining)
        level.quantity = available - qty
        remaining -= qty
        fill_price = limit if (resting and limit is not None) else price
        if fills and fills[-1][0] == fill_price:
            fills[-1] = (fill_price, fills[-1][1] + qty)
        else:
            fills.append((fill_price, qty))
    return fills


class OrderBook:
    """The working orders of one instrument, indexed so a tick touches only those that can act.

    Limits sit in price-time heaps (best buy = highest price, best sell = lowest), stops in
    heaps by trigger, and orders that behave as MARKET in arrival order. A tick then pops only
    what the market has reached, so a thousand resting orders far from the price cost nothing.
    Removal is lazy: a heap entry whose order has left the book is skipped when it surfaces.
    """

    def __init__(self) -> None:
        self._orders: dict[str, WorkingOrder] = {}
        self._markets: dict[str, WorkingOrder] = {}
        self._buys: list[tuple[Decimal, int, str]] = []
        self._sells: list[tuple[Decimal, int, str]] = []
        self._buy_stops: list[tuple[Decimal, int, str]] = []
        self._sell_stops: list[tuple[Decimal, int, str]] = []
        self._entry: dict[str, int] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, orderid: str) -> bool:
        return orderid in self._orders

    def add(self, order: WorkingOrder) -> None:
        """(Re-)file an order under what it behaves as now; re-filing loses time priority."""
        self._seq += 1
        seq = self._seq
        oid = order.orderid
        self._orders[oid] = order
        self._entry[oid] = seq
        self._markets.pop(oid, None)
        kind = order.effective_type
        buying = order.action is Action.BUY
        if kind is PriceType.MARKET:
            self._markets[oid] = order
        elif kind is PriceType.LIMIT:
            if buying:
                heapq.heappush(self._buys, (-order.price, seq, oid))
            else:
                heapq.heappush(self._sells, (order.price, seq, oid))
        elif buying:
            heapq.heappush(self._buy_stops, (order.trigger_price, seq, oid))
        else:
            heapq.heappush(self._sell_stops, (-order.trigger_price, seq, oid))

    def remove(self, orderid: str) -> None:
        self._orders.pop(orderid, None)
        self._markets.pop(orderid, None)
        self._entry.pop(orderid, None)

    def _top(self, heap: list[tuple[Decimal, int, str]]) -> WorkingOrder | None:
        while heap:
            _, seq, oid = heap[0]
            if self._entry.get(oid) == seq:
                return self._orders[oid]
            heapq.heappop(heap)  # stale: cancelled, filled or re-filed
        return None

    def triggered(self, ltp: Decimal) -> list[WorkingOrder]:
        """Pop every stop whose trigger the last price has reached, oldest trigger first."""
        fired: list[WorkingOrder] = []
        # buy stops are keyed by trigger (fire when ltp >= trigger), sell stops by -trigger
        # (fire when ltp <= trigger): in both heaps the next to fire is on top.
        for heap, sign in ((self._buy_stops, 1), (self._sell_stops, -1)):
            while (top := self._top(heap)) is not None and heap[0][0] <= ltp * sign:
                heapq.heappop(heap)
                self._entry.pop(top.orderid, None)
                fired.append(top)
        return fired

    def markets(self) -> list[WorkingOrder]:
        return list(self._markets.values())

    def best_buy(self) -> WorkingOrder | None:
        return self._top(self._buys)

    def best_sell(self) -> WorkingOrder | None:
        return self._top(self._sells)

    def orders(self) -> list[WorkingOrder]:
        return list(self._orders.values())
