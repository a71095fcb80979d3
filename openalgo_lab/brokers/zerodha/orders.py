"""Placing, modifying and cancelling orders at Kite, without ever losing or doubling one.

A write is sent once. When its answer is lost (timeout, dropped connection, a 5xx or a body
that is not Kite's envelope) the order may or may not exist, so instead of re-sending we look
for it: every order carries a Kite tag derived from our idempotency key (`mapping.kite_tag`),
and the order book is read (a safe, retried read) until the tag shows up or a few reads agree
it is not there:

* found: the placement succeeded; its order id is returned as if the answer had arrived;
* absent from a readable book: `OrderNotPlaced`, a clear refusal (nothing to undo);
* the book cannot be read either: `KiteUnavailable` (a `BrokerError`), i.e. the outcome is
  still unknown; the engine keeps the journal entry in flight and settles it later through
  the same tag.

Modify and cancel are checked the same way against the order's own state after a lost answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from openalgo_lab.brokers.zerodha import mapping
from openalgo_lab.brokers.zerodha.books import Books
from openalgo_lab.brokers.zerodha.http import KiteHttp, KiteRateLimited, KiteUnavailable
from openalgo_lab.domain.enums import OrderStatus
from openalgo_lab.domain.errors import (
    BrokerError,
    InvalidOrderState,
    NotFoundError,
    OrderRejected,
)
from openalgo_lab.domain.models import Order, OrderModification, OrderRequest

log = logging.getLogger(__name__)

# Seconds between the reads that look for an order whose placement answer was lost.
RECONCILE_DELAYS: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)


class OrderNotPlaced(OrderRejected):
    """The placement failed and Kite's order book confirms no order was created."""

    http_status = 502


class KiteOrders:
    def __init__(
        self,
        http: KiteHttp,
        books: Books,
        *,
        clock: Callable[[], datetime],
        variety: Callable[[OrderRequest], str] | None = None,
        reconcile_delays: Sequence[float] = RECONCILE_DELAYS,
    ) -> None:
        self.http = http
        self.books = books
        self.clock = clock
        self._variety = variety or (lambda _request: "regular")
        self.reconcile_delays = tuple(reconcile_delays)

    # -- place -----------------------------------------------------------------------------
    async def place(self, request: OrderRequest) -> Order:
        instrument = self.books.symbols.instrument(request.exchange, request.symbol)
        form = mapping.order_form(request, instrument, request.tag)
        variety = self._variety(request)
        self.books.memory.tag_sent(request.tag)
        try:
            data = await self.http.send("POST", f"/orders/{variety}", form)
        except KiteRateLimited as err:
            raise OrderNotPlaced(f"order not placed: {err.message}; retry shortly") from None
        except KiteUnavailable as err:
            if not err.outcome_unknown:
                raise OrderNotPlaced(f"order not placed: {err.message}") from None
            found = await self.find_by_tag(request.tag, cause=err.message)
            log.warning(
                "order tagged %s: placement answer lost (%s); found at Kite as %s",
                form.get("tag", "-"),
                err.message,
                found.orderid,
            )
            self.books.memory.remember(found.orderid, request.strategy, request.tag)
            return self.books.memory.restore(found)
        orderid = _order_id(data)
        self.books.memory.remember(orderid, request.strategy, request.tag)
        now = self.clock()
        return Order(
            orderid=orderid,
            symbol=request.symbol,
            exchange=request.exchange,
            action=request.action,
            quantity=request.quantity,
            pricetype=request.pricetype,
            product=request.product,
            price=request.price,
            trigger_price=request.trigger_price,
            status=OrderStatus.OPEN,
            filled_quantity=0,
            average_price=Decimal(0),
            placed_at=now,
            updated_at=now,
            strategy=request.strategy,
            disclosed_quantity=request.disclosed_quantity,
            tag=request.tag,
        )

    async def find_by_tag(self, tag: str, *, cause: str) -> Order:
        """The order carrying our `tag`, after a placement whose answer was lost."""
        if not tag:
            raise KiteUnavailable(f"order outcome unknown: {cause}; it has no tag to look it up by")
        wanted = mapping.kite_tag(tag)
        last_error = ""
        readable = False
        for delay in self.reconcile_delays:
            if delay:
                await asyncio.sleep(delay)
            try:
                orders = await self.books.orders()
            except BrokerError as err:
                last_error = err.message
                continue
            readable = True
            for order in orders:
                if order.tag in (tag, wanted):
                    return order
        if readable:
            raise OrderNotPlaced(
                f"order not placed: {cause}; Kite's order book has no order tagged {wanted}"
            )
        raise KiteUnavailable(
            f"order outcome unknown: {cause}, and Kite's order book cannot be read "
            f"({last_error}); the order is reconciled by its tag {wanted} once Kite answers"
        )

    # -- modify and cancel -----------------------------------------------------------------
    async def _current(self, orderid: str) -> tuple[Order, str]:
        order, row = await self.books.latest(orderid)  # NotFoundError for unknown ids
        variety = str(row.get("variety") or "regular")
        return order, variety if variety in mapping.VARIETIES else "regular"

    async def modify(self, orderid: str, change: OrderModification) -> Order:
        current, variety = await self._current(orderid)
        if current.status.is_terminal:
            raise InvalidOrderState(
                f"Order {orderid} is already {current.status.value} and cannot be modified"
            )
        form = mapping.modify_form(current, change)
        try:
            await self.http.send("PUT", f"/orders/{variety}/{orderid}", form)
        except KiteRateLimited as err:
            raise OrderRejected(f"order not modified: {err.message}; retry shortly") from None
        except KiteUnavailable as err:
            after = await self._read_after(orderid, err)
            if _matches(after, form):
                return after
            raise KiteUnavailable(
                f"modification of order {orderid} not confirmed: {err.message}; the order "
                f"is {after.status.wire} with quantity {after.quantity} at {after.price}"
            ) from None
        return await self.books.order(orderid)

    async def cancel(self, orderid: str) -> Order:
        current, variety = await self._current(orderid)
        if current.status.is_terminal:
            raise InvalidOrderState(
                f"Order {orderid} is already {current.status.value} and cannot be cancelled"
            )
        try:
            await self.http.send("DELETE", f"/orders/{variety}/{orderid}", {})
        except KiteRateLimited as err:
            raise OrderRejected(f"order not cancelled: {err.message}; retry shortly") from None
        except KiteUnavailable as err:
            after = await self._read_after(orderid, err)
            if after.status is OrderStatus.CANCELLED:
                return after
            raise KiteUnavailable(
                f"cancellation of order {orderid} not confirmed: {err.message}; "
                f"the order is {after.status.wire}"
            ) from None
        return await self.books.order(orderid)

    async def _read_after(self, orderid: str, err: KiteUnavailable) -> Order:
        try:
            return await self.books.order(orderid)
        except (BrokerError, NotFoundError) as read_err:
            raise KiteUnavailable(
                f"outcome of the change to order {orderid} unknown: {err.message}; "
                f"and the order cannot be read ({read_err.message})"
            ) from None


def _order_id(data: Any) -> str:
    if not isinstance(data, Mapping) or not str(data.get("order_id") or "").strip():
        raise KiteUnavailable("Kite accepted the order but its answer has no order_id")
    return str(data["order_id"]).strip()


def _matches(order: Order, form: Mapping[str, str]) -> bool:
    """Whether an order shows the values a modification asked for."""
    if str(order.quantity) != form["quantity"]:
        return False
    if mapping.PRICETYPE_TO_KITE[order.pricetype] != form["order_type"]:
        return False
    return form["price"] == "0" or mapping.kite_price(order.price) == form["price"]
