"""Order and trade events for a remote Client, from the feed's order updates and the books.

OpenAlgo's feed pushes `order_update` frames (the order-book row) but no trades, and nothing
at all while the socket is down. The embedded transport hands out an `order` event per order
change and a `trade` event per fill (their book rows plus `account`); this tracker produces
the same from what a remote server offers:

* an `order_update` frame is an `order` event;
* a rise in an order's `filled_quantity` (or, where rows carry no fill counts, the order
  becoming complete) means fills: the trade book is read and each trade not seen before
  (by `tradeid`) is a `trade` event, in the book's order;
* after (re)connecting, the order book is compared with the last rows seen: a changed or new
  order is an `order` event (its latest row), so nothing is missed while the socket was down
  or still opening. Frames older than such a row (less filled, or working after it finished)
  are dropped rather than delivered out of order.

It holds no I/O: the feed gives it frames and books and delivers what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
Event = tuple[str, JSON]
FRAME_FIELDS = ("type", "user_id", "mode", "broker")  # the frame's envelope, not the row's
TERMINAL = frozenset({"complete", "cancelled", "rejected"})


def order_row_of(frame: Mapping[str, Any]) -> JSON:
    """The order-book row inside an `order_update` frame."""
    return {k: v for k, v in frame.items() if k not in FRAME_FIELDS}


def filled(row: Mapping[str, Any]) -> int:
    try:
        return int(row.get("filled_quantity") or 0)
    except (TypeError, ValueError):
        return 0


def status(row: Mapping[str, Any]) -> str:
    return str(row.get("order_status", "")).lower()


def filled_since(row: Mapping[str, Any], known: Mapping[str, Any] | None) -> bool:
    """Whether `row` shows fills that `known` (the order's previous row) did not: more
    `filled_quantity`, or newly complete (for servers whose rows carry no fill counts)."""
    if known is None:
        return filled(row) > 0 or status(row) == "complete"
    return filled(row) > filled(known) or (status(row) == "complete" != status(known))


def progress(row: Mapping[str, Any]) -> tuple[bool, int]:
    """How far an order has come; rows of one order never go backwards in it."""
    return status(row) in TERMINAL, filled(row)


def trade_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """A trade's identity: its `tradeid`, else (for servers without one) all its fields."""
    if row.get("tradeid"):
        return ("id", str(row["tradeid"]))
    return tuple(sorted((k, str(v)) for k, v in row.items()))


@dataclass
class OrderTracker:
    """What one account's event stream has seen. Not thread-safe: the feed's loop owns it."""

    account: str = ""
    ready: bool = False  # a baseline was taken: only changes after it are events
    rows: dict[str, JSON] = field(default_factory=dict)
    from_book: set[str] = field(default_factory=set)  # orders whose last row came from a book
    trades_seen: set[tuple[Any, ...]] = field(default_factory=set)

    def baseline(self, orders: Iterable[Mapping[str, Any]], trades: Iterable[JSON]) -> None:
        """The state when the subscriber arrived: none of it is an event."""
        self.rows = {str(r.get("orderid")): dict(r) for r in orders}
        self.from_book = set(self.rows)
        self.trades_seen = {trade_key(t) for t in trades}
        self.ready = True

    def reset(self) -> None:
        self.ready = False
        self.rows.clear()
        self.from_book.clear()
        self.trades_seen.clear()

    def on_frame(self, frame: Mapping[str, Any]) -> tuple[list[Event], bool]:
        """An `order_update` frame: its `order` event (unless stale) and whether fills
        happened (the trade book should then be read)."""
        row = order_row_of(frame)
        orderid = str(row.get("orderid", ""))
        account = str(frame.get("user_id") or self.account)
        known = self.rows.get(orderid)
        if known is not None and orderid in self.from_book:
            if progress(row) < progress(known) or row == known:
                return [], False  # already delivered through a later book row
            self.from_book.discard(orderid)
        fills = filled_since(row, known)
        self.rows[orderid] = row
        return [("order", {**row, "account": account})], fills

    def on_order_book(self, orders: Iterable[Mapping[str, Any]]) -> tuple[list[Event], bool]:
        """The order book read after (re)connecting: every row that changed since last seen."""
        events: list[Event] = []
        fills = False
        for raw in orders:
            row = dict(raw)
            orderid = str(row.get("orderid", ""))
            known = self.rows.get(orderid)
            if known is not None and (row == known or progress(row) < progress(known)):
                continue
            fills = fills or filled_since(row, known)
            self.rows[orderid] = row
            self.from_book.add(orderid)
            events.append(("order", {**row, "account": self.account}))
        return events, fills

    def on_trade_book(self, trades: Iterable[Mapping[str, Any]]) -> list[Event]:
        """Every trade not seen before, in the book's order."""
        events: list[Event] = []
        for raw in trades:
            key = trade_key(raw)
            if key in self.trades_seen:
                continue
            self.trades_seen.add(key)
            events.append(("trade", {**raw, "account": self.account}))
        return events
