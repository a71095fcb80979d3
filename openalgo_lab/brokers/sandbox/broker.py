"""`SandboxBroker`: the embedded default broker, the sandbox exchange behind the async protocol.

A background task steps the exchange on a fixed period so resting orders fill as the simulated
market moves; the same task feeds live ticks to `stream()` subscribers. Order events reach
`order_events()` consumers through bounded queues: a consumer that stops reading loses the
oldest events (counted in `dropped_events`), it never blocks matching.

`follow(source)` switches the market to another broker's live quotes (`live.LiveMarket`), as
OpenAlgo's analyzer does on a connected account: orders then fill at the source's prices and
history comes from the source; `unfollow()` returns to the simulation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from decimal import Decimal

from openalgo_lab.brokers.base import Broker, InstrumentKey
from openalgo_lab.brokers.sandbox.account import DEFAULT_CAPITAL, Account
from openalgo_lab.brokers.sandbox.charges import ChargeRates
from openalgo_lab.brokers.sandbox.exchange import SandboxExchange
from openalgo_lab.brokers.sandbox.live import DEFAULT_CALLS_PER_SECOND, DEFAULT_MAX_AGE, LiveMarket
from openalgo_lab.brokers.sandbox.margin import MarginRules
from openalgo_lab.brokers.sandbox.market import MarketData, SimulatedMarket
from openalgo_lab.domain.calendar import MarketCalendar
from openalgo_lab.domain.clock import Clock, SystemClock
from openalgo_lab.domain.enums import Exchange, Interval
from openalgo_lab.domain.errors import NotFoundError
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
from openalgo_lab.instruments.master import MasterContract
from openalgo_lab.instruments.sample import reference_prices, sample_master

EVENT_QUEUE_SIZE = 10_000
log = logging.getLogger(__name__)


class SandboxBroker:
    """Paper trading on a simulated (or replayed) market; no account or network needed."""

    name = "sandbox"

    def __init__(
        self,
        *,
        master: MasterContract | None = None,
        market: MarketData | None = None,
        clock: Clock | None = None,
        calendar: MarketCalendar | None = None,
        capital: Decimal = DEFAULT_CAPITAL,
        rates: ChargeRates | None = None,
        margin_rules: MarginRules | None = None,
        seed: int = 0,
        step_interval: float = 0.25,
        today: date | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.calendar = calendar or MarketCalendar.from_env()
        self.master = master or sample_master(today)
        self.market = market or SimulatedMarket(
            reference_prices(), seed=seed, calendar=self.calendar
        )
        self.exchange = SandboxExchange(
            self.master,
            self.market,
            clock=self.clock,
            calendar=self.calendar,
            account=Account(capital=capital, rates=rates, margin_rules=margin_rules),
        )
        self.step_interval = step_interval
        self.dropped_events = 0
        self._queues: set[asyncio.Queue[OrderEvent]] = set()
        self._task: asyncio.Task[None] | None = None
        self._simulated: MarketData | None = None  # the market to return to after `follow`
        self.exchange.subscribe(self._publish)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Begin stepping the market in the background (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="sandbox-matching")
        if self.live is not None:
            self.live.start()

    async def stop(self) -> None:
        if self.live is not None:
            await self.live.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                self.exchange.step()
            except Exception:  # a bad tick must not stop matching for every other order
                log.exception("sandbox step failed")
            await asyncio.sleep(self.step_interval)

    # -- live prices ------------------------------------------------------------------------
    @property
    def live(self) -> LiveMarket | None:
        """The live market while following another broker's prices."""
        return self.market if isinstance(self.market, LiveMarket) else None

    async def follow(
        self,
        source: Broker,
        *,
        poll_interval: float = 1.0,
        calls_per_second: float = DEFAULT_CALLS_PER_SECOND,
        batch_size: int = 500,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> LiveMarket:
        """From now on match against `source`'s quotes, polled in the background at most
        `calls_per_second` times a second. Working orders stay and fill at live prices; new
        orders are refused on a price the source has not confirmed for `max_age` seconds."""
        await self.unfollow()
        live = LiveMarket(
            source,
            poll_interval=poll_interval,
            calls_per_second=calls_per_second,
            batch_size=batch_size,
            max_age=max_age,
            master=self.master,
        )
        live.watch(self._instruments_in_use())
        self._simulated = self.market
        self.market = live
        self.exchange.use_market(live)
        if self._task is not None and not self._task.done():
            live.start()
        return live

    def _instruments_in_use(self) -> list[Instrument]:
        """Instruments of working orders and open positions: what must keep a price."""
        keys = {(o.exchange, o.symbol) for o in self.exchange.orders() if o.status.is_working}
        keys |= {(p.exchange, p.symbol) for p in self.exchange.positions() if p.quantity}
        return [i for e, s in sorted(keys) if (i := self.master.find(e, s)) is not None]

    async def unfollow(self) -> None:
        """Back to the simulated (or replayed) market."""
        live = self.live
        if live is None or self._simulated is None:
            return
        await live.stop()
        self.market = self._simulated
        self.exchange.use_market(self._simulated)
        self._simulated = None

    async def _prime(self, keys: Sequence[InstrumentKey]) -> None:
        """While following, fetch a live price for instruments that have none, or a stale one."""
        live = self.live
        if live is None:
            return
        instruments = [i for e, s in keys if (i := self.master.find(e, s)) is not None]
        await live.prime(instruments)

    def _publish(self, event: OrderEvent) -> None:
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                self.dropped_events += 1
            queue.put_nowait(event)

    # -- orders -----------------------------------------------------------------------------
    async def place_order(self, request: OrderRequest) -> Order:
        await self._fresh_price((request.exchange, request.symbol))
        return self.exchange.place(request)

    async def modify_order(self, orderid: str, change: OrderModification) -> Order:
        if self.live is not None:
            order = self.exchange.order(orderid)
            await self._fresh_price((order.exchange, order.symbol))
        return self.exchange.modify(orderid, change)

    async def _fresh_price(self, key: InstrumentKey) -> None:
        """While following live prices, an order trades only on a recent one: fetched now
        if missing or stale, refused if the source still cannot confirm it."""
        live = self.live
        if live is None:
            return
        await self._prime([key])
        live.check_fresh(key)

    async def cancel_order(self, orderid: str) -> Order:
        return self.exchange.cancel(orderid)

    async def cancel_all_orders(self) -> tuple[list[str], list[str]]:
        return self.exchange.cancel_all()

    async def close_all_positions(self) -> list[Order]:
        return self.exchange.close_all()

    # -- books ------------------------------------------------------------------------------
    async def orders(self) -> list[Order]:
        return self.exchange.orders()

    async def order(self, orderid: str) -> Order:
        return self.exchange.order(orderid)

    async def trades(self) -> list[Trade]:
        return self.exchange.trades()

    async def positions(self) -> list[Position]:
        return self.exchange.positions()

    async def holdings(self) -> list[Holding]:
        return self.exchange.holdings()

    async def funds(self) -> Funds:
        return self.exchange.funds()

    # -- market data ------------------------------------------------------------------------
    def _instrument(self, exchange: Exchange, symbol: str) -> Instrument:
        found = self.master.find(exchange, symbol)
        if found is None:
            raise NotFoundError(f"Symbol {symbol} not found on {exchange}")
        return found

    async def quote(self, exchange: Exchange, symbol: str) -> Quote:
        await self._prime([(exchange, symbol)])
        return self.exchange.tick(self._instrument(exchange, symbol)).depth.quote

    async def quotes(self, keys: Sequence[InstrumentKey]) -> dict[InstrumentKey, Quote]:
        out: dict[InstrumentKey, Quote] = {}
        await self._prime(keys)
        for exchange, symbol in keys:
            inst = self.master.find(exchange, symbol)
            if inst is not None:
                out[(exchange, symbol)] = self.exchange.tick(inst).depth.quote
        return out

    async def depth(self, exchange: Exchange, symbol: str) -> Depth:
        await self._prime([(exchange, symbol)])
        return self.exchange.tick(self._instrument(exchange, symbol)).depth

    async def history(
        self,
        exchange: Exchange,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
    ) -> list[Candle]:
        inst = self._instrument(exchange, symbol)
        if self.live is not None:
            return await self.live.source.history(exchange, symbol, interval, start, end)
        end = min(end, self.clock.now())
        return self.market.candles(inst, interval, start, end)

    def intervals(self) -> list[Interval]:
        return list(Interval)

    async def stream(self, keys: Sequence[InstrumentKey]) -> AsyncIterator[Tick]:
        instruments = [self._instrument(e, s) for e, s in keys]
        await self._prime(keys)
        while True:
            for inst in instruments:
                yield Tick(self.exchange.tick(inst).depth)
            await asyncio.sleep(self.step_interval)

    async def order_events(self) -> AsyncIterator[OrderEvent]:
        queue: asyncio.Queue[OrderEvent] = asyncio.Queue(EVENT_QUEUE_SIZE)
        self._queues.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.discard(queue)

    async def master_contract(self) -> list[Instrument]:
        return list(self.master)


__all__ = ["SandboxBroker"]
