"""The contract every broker adapter fulfils.

The engine speaks only this protocol, so the sandbox and a live broker are interchangeable.
All methods are coroutines: a live adapter does network I/O and must never block the server's
event loop. Every method either returns domain values or raises a `domain.errors` exception:

* `ValidationError` / `OrderRejected` / `InsufficientFunds`: the request cannot be accepted;
  nothing was sent or changed.
* `NotFoundError`: unknown order id or instrument.
* `BrokerSessionExpired`: the broker login is gone (daily expiry); distinct from a bad API key.
* `BrokerError`: the broker failed; for an order this means the outcome may be unknown and the
  caller reconciles through `orders()` and the request's `tag`, never by re-sending.

Quantities are units (not lots); prices are `Decimal`; instants are UTC.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from openalgo_lab.domain.enums import Exchange, Interval
from openalgo_lab.domain.models import (
    Candle,
    Depth,
    Funds,
    Holding,
    Instrument,
    Order,
    OrderEvent,
    OrderModification,
    OrderRequest,
    Position,
    Quote,
    Tick,
    Trade,
)

InstrumentKey = tuple[Exchange, str]  # (exchange, OpenAlgo symbol)


@runtime_checkable
class Broker(Protocol):
    """One trading account at one broker (or the sandbox)."""

    name: str

    # -- orders ------------------------------------------------------------------------------
    async def place_order(self, request: OrderRequest) -> Order:
        """Send a new order; returns it as acknowledged (it may already be filled or rejected
        by the exchange's rules; a request the broker refuses outright raises instead)."""
        ...

    async def modify_order(self, orderid: str, change: OrderModification) -> Order:
        """Change a working order's quantity, prices or price type."""
        ...

    async def cancel_order(self, orderid: str) -> Order:
        """Cancel a working order; `InvalidOrderState` if it is already complete/cancelled."""
        ...

    async def cancel_all_orders(self) -> tuple[list[str], list[str]]:
        """Cancel every working order; returns (cancelled ids, ids that could not be)."""
        ...

    async def close_all_positions(self) -> list[Order]:
        """Square off every open position at market, each with its own product."""
        ...

    # -- books -------------------------------------------------------------------------------
    async def orders(self) -> list[Order]:
        """Today's orders, oldest first."""
        ...

    async def order(self, orderid: str) -> Order:
        """One order; `NotFoundError` if unknown."""
        ...

    async def trades(self) -> list[Trade]:
        """Today's fills, oldest first."""
        ...

    async def positions(self) -> list[Position]:
        """Net positions, closed ones (quantity 0) included."""
        ...

    async def holdings(self) -> list[Holding]: ...

    async def funds(self) -> Funds: ...

    # -- market data -------------------------------------------------------------------------
    async def quote(self, exchange: Exchange, symbol: str) -> Quote: ...

    async def quotes(self, keys: Sequence[InstrumentKey]) -> dict[InstrumentKey, Quote]:
        """Many quotes in one call where the broker can; missing symbols are left out."""
        ...

    async def depth(self, exchange: Exchange, symbol: str) -> Depth: ...

    async def history(
        self,
        exchange: Exchange,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
    ) -> list[Candle]:
        """Candles whose start lies in [start, end), oldest first."""
        ...

    def intervals(self) -> list[Interval]:
        """The history intervals this broker supports."""
        ...

    def stream(self, keys: Sequence[InstrumentKey]) -> AsyncIterator[Tick]:
        """Live ticks for `keys` until the consumer stops iterating."""
        ...

    def order_events(self) -> AsyncIterator[OrderEvent]:
        """Every order change and fill of this account, as it happens."""
        ...

    # -- reference data ----------------------------------------------------------------------
    async def master_contract(self) -> list[Instrument]:
        """The broker's instruments, normalised to OpenAlgo symbols."""
        ...
