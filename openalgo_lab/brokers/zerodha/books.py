"""The account's books from Kite, in OpenAlgo's shapes: orders, trades, positions (net),
holdings and funds (from margins).

Kite knows nothing of OpenAlgo's strategies or our long request tags, so `OrderMemory` keeps
what we sent with each order (strategy by order id, our tag by Kite's tag) and the books put
them back on the way out. After a restart the memory is empty: orders then carry Kite's tag
(which `mapping.kite_tag` can recompute from ours) and no strategy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from openalgo_lab.brokers.zerodha import mapping
from openalgo_lab.brokers.zerodha.http import KiteHttp, KiteRefused
from openalgo_lab.domain.errors import BrokerError, NotFoundError
from openalgo_lab.domain.models import Funds, Holding, Order, Position, Trade

# Kite's answer to `GET /orders/{id}` for an id it does not know.
_UNKNOWN_ORDER = ("couldn't find", "could not find", "not found", "invalid order")


@dataclass
class OrderMemory:
    """What we know about our own orders that Kite does not keep."""

    strategies: dict[str, str] = field(default_factory=dict)  # order id -> strategy
    tags: dict[str, str] = field(default_factory=dict)  # Kite tag -> our tag
    sent: set[str] = field(default_factory=set)  # our tags of orders sent by this process

    def remember(self, orderid: str, strategy: str, tag: str) -> None:
        if strategy:
            self.strategies[orderid] = strategy
        if tag:
            self.tags[mapping.kite_tag(tag)] = tag

    def tag_sent(self, tag: str) -> None:
        """Before the order goes out: a late answer can then still be matched."""
        if tag:
            self.tags[mapping.kite_tag(tag)] = tag
            self.sent.add(tag)

    def is_ours(self, order: Order) -> bool:
        """Whether this process sent the order (known by the tag it carries)."""
        return bool(order.tag) and order.tag in self.sent

    def restore(self, order: Order) -> Order:
        strategy = self.strategies.get(order.orderid, order.strategy)
        tag = self.tags.get(order.tag, order.tag)
        if strategy == order.strategy and tag == order.tag:
            return order
        return replace(order, strategy=strategy, tag=tag)

    def restore_trade(self, trade: Trade) -> Trade:
        strategy = self.strategies.get(trade.orderid, trade.strategy)
        return trade if strategy == trade.strategy else replace(trade, strategy=strategy)


class Books:
    """Read-only views of the account at Kite."""

    def __init__(
        self, http: KiteHttp, symbols: mapping.SymbolResolver, memory: OrderMemory
    ) -> None:
        self.http = http
        self.symbols = symbols
        self.memory = memory

    def order_from_row(self, row: Mapping[str, Any]) -> Order:
        return self.memory.restore(mapping.parse_order(row, self.symbols))

    async def orders(self) -> list[Order]:
        rows = _rows(await self.http.get("/orders"), "orders")
        orders = [self.order_from_row(row) for row in rows]
        return sorted(orders, key=lambda o: o.placed_at)

    async def order(self, orderid: str) -> Order:
        """The latest state of one order."""
        order, _ = await self.latest(orderid)
        return order

    async def latest(self, orderid: str) -> tuple[Order, Mapping[str, Any]]:
        """One order's latest state and Kite's row of it (`GET /orders/{id}` lists every
        state the order passed through, oldest first)."""
        if not orderid.isdigit():
            raise NotFoundError(f"Order {orderid} not found")
        try:
            history = _rows(await self.http.get(f"/orders/{orderid}"), "order history")
        except (KiteRefused, NotFoundError) as err:
            if isinstance(err, NotFoundError) or any(
                s in err.message.lower() for s in _UNKNOWN_ORDER
            ):
                raise NotFoundError(f"Order {orderid} not found") from None
            raise
        if not history:
            raise NotFoundError(f"Order {orderid} not found")
        return self.order_from_row(history[-1]), history[-1]

    async def trades(self) -> list[Trade]:
        rows = _rows(await self.http.get("/trades"), "trades")
        trades = [self.memory.restore_trade(mapping.parse_trade(r, self.symbols)) for r in rows]
        return sorted(trades, key=lambda t: t.timestamp)

    async def positions(self) -> list[Position]:
        data = await self.http.get("/portfolio/positions")
        if not isinstance(data, Mapping):
            raise BrokerError("Kite's positions answer is not an object")
        return [mapping.parse_position(r, self.symbols) for r in _rows(data.get("net"), "net")]

    async def holdings(self) -> list[Holding]:
        rows = _rows(await self.http.get("/portfolio/holdings"), "holdings")
        return [mapping.parse_holding(r, self.symbols) for r in rows]

    async def funds(self) -> Funds:
        data = await self.http.get("/user/margins")
        if not isinstance(data, Mapping):
            raise BrokerError("Kite's margins answer is not an object")
        return mapping.parse_funds(data)


def _rows(data: Any, what: str) -> Sequence[Mapping[str, Any]]:
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(r, Mapping) for r in data):
        raise BrokerError(f"Kite's {what} answer is not a list of rows")
    return data
