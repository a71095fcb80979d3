"""Live prices for the sandbox: paper trading that matches against another broker's quotes.

OpenAlgo's analyzer fills paper orders at live prices from the connected broker. `LiveMarket`
does the same for the sandbox: it is a `MarketData` whose depth comes from any `Broker`'s
`quotes()` (the Zerodha adapter, another sandbox, anything that speaks the protocol), polled in
the background for the instruments the sandbox has asked about, never faster than a set number
of calls per second (Kite allows one quote call a second) and in batches (Kite takes 500
instruments a call).

What the sandbox sees:

* the source's last quote as the tick: LTP, bid/ask, day OHLC, volume, OI as the broker sent
  them; five levels a side built from the top of book (the top quantity at each level, one tick
  apart), because `quotes()` carries no deeper book;
* the same `Depth` object until a different quote arrives, so the exchange offers each quote's
  liquidity once: a resting order cannot fill again and again on one stale print;
* no made-up price: an instrument the source has not quoted yet raises `LivePriceUnavailable`
  (an order is refused, nothing is placed), unless a `fallback` market was given. The first
  order for an instrument primes it with one immediate fetch (`prime`), within the same rate.

When the source fails (the broker's daily session expired, the network is down) the last prices
stay, `last_error` says why, and polling goes on with a growing pause (up to `MAX_BACKOFF`), so
the sandbox recovers by itself once the source does. The last prices keep serving resting
orders, positions and settlement, but a *new* order (or a modification) is refused once its
instrument's price has gone unconfirmed by the source for more than `max_age` seconds (after
one fresh fetch is tried): a market order must not fill at a price from before the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from openalgo_lab.brokers.base import Broker, InstrumentKey
from openalgo_lab.brokers.sandbox.market import LEVELS, MarketData
from openalgo_lab.domain.enums import Interval
from openalgo_lab.domain.errors import NotFoundError, OpenAlgoError, OrderRejected, ValidationError
from openalgo_lab.domain.models import Candle, Depth, DepthLevel, Instrument, Quote
from openalgo_lab.instruments.master import MasterContract

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 1.0  # seconds between polling rounds
DEFAULT_CALLS_PER_SECOND = 1.0  # Kite's quote limit
DEFAULT_BATCH_SIZE = 500  # instruments per quotes() call (Kite's /quote maximum)
MAX_BACKOFF = 30.0  # longest pause between rounds while the source keeps failing
DEFAULT_MAX_AGE = 30.0  # seconds a price may go unconfirmed before new orders are refused
_FALLBACK_TICK = Decimal("0.05")


class LivePriceUnavailable(OrderRejected):
    """No live price for this instrument yet: the order is refused rather than filled at a
    made-up price."""


@dataclass(frozen=True, slots=True)
class LiveQuote:
    """The latest quote of one instrument, as a book, and when it arrived (monotonic)."""

    depth: Depth
    received: float


def synthetic_book(instrument: Instrument, quote: Quote, spread_ticks: int = 1) -> Depth:
    """Five levels a side around the quote's bid/ask, on the instrument's tick grid.

    A quote without a bid or ask (indices, an empty side) gets one `spread_ticks` away from the
    LTP; a crossed or locked quote is opened to one tick. Quantities repeat the top of book
    (or one lot when the broker sent none)."""
    tick = instrument.tick_size if instrument.tick_size > 0 else _FALLBACK_TICK
    lot = max(instrument.lotsize, 1)
    gap = tick * spread_ticks
    bid = quote.bid if quote.bid > 0 else max(quote.ltp - gap, tick)
    ask = quote.ask if quote.ask > 0 else max(quote.ltp, bid) + gap
    if ask <= bid:
        ask = bid + tick
    bid_qty = quote.bid_qty if quote.bid_qty > 0 else lot
    ask_qty = quote.ask_qty if quote.ask_qty > 0 else lot
    bids = tuple(
        DepthLevel(bid - tick * i, bid_qty) if bid - tick * i > 0 else DepthLevel(Decimal(0), 0, 0)
        for i in range(LEVELS)
    )
    asks = tuple(DepthLevel(ask + tick * i, ask_qty) for i in range(LEVELS))
    top = replace(
        quote,
        symbol=instrument.symbol,
        exchange=instrument.exchange,
        bid=bid,
        ask=ask,
        bid_qty=bid_qty,
        ask_qty=ask_qty,
    )
    return Depth(top, bids, asks)


class _Gate:
    """At most `rate` source calls per second, across polling and priming."""

    def __init__(self, rate: float, timer: Callable[[], float]) -> None:
        self.spacing = 1.0 / rate
        self.timer = timer
        self._last = -math.inf
        self._lock: asyncio.Lock | None = None

    async def turn(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            wait = self._last + self.spacing - self.timer()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last = self.timer()


class LiveMarket(MarketData):
    """The sandbox's market, following `source`'s quotes (see the module docstring)."""

    def __init__(
        self,
        source: Broker,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        calls_per_second: float = DEFAULT_CALLS_PER_SECOND,
        batch_size: int = DEFAULT_BATCH_SIZE,
        spread_ticks: int = 1,
        max_age: float = DEFAULT_MAX_AGE,
        fallback: MarketData | None = None,
        master: MasterContract | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if poll_interval <= 0:
            raise ValidationError("poll_interval", "must be a positive number of seconds")
        if calls_per_second <= 0:
            raise ValidationError("calls_per_second", "must be positive")
        if batch_size < 1:
            raise ValidationError("batch_size", "must be at least 1")
        if spread_ticks < 1:
            raise ValidationError("spread_ticks", "must be at least 1")
        if max_age <= 0:
            raise ValidationError("max_age", "must be a positive number of seconds")
        self.source = source
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.spread_ticks = spread_ticks
        self.max_age = max_age
        self.fallback = fallback
        self.master = master  # to find a derivative's underlying, which settles it at expiry
        self.timer = timer
        self.calls = 0  # quotes() calls made
        self.failures = 0  # quotes() calls that failed
        self.last_error: str | None = None
        self._gate = _Gate(calls_per_second, timer)
        self._watched: dict[InstrumentKey, Instrument] = {}
        self._latest: dict[InstrumentKey, LiveQuote] = {}
        self._confirmed: dict[InstrumentKey, float] = {}  # when the source last sent the key
        self._task: asyncio.Task[None] | None = None

    # -- MarketData ---------------------------------------------------------------------------
    def depth(self, instrument: Instrument, at: datetime) -> Depth:
        self.watch([instrument])
        latest = self._latest.get(instrument.key)
        if latest is not None:
            return latest.depth
        if self.fallback is not None:
            return self.fallback.depth(instrument, at)
        reason = f" (last error: {self.last_error})" if self.last_error else ""
        raise LivePriceUnavailable(
            f"No live price for {instrument.exchange}:{instrument.symbol} from "
            f"{self.source.name} yet{reason}"
        )

    def check_fresh(self, key: InstrumentKey) -> None:
        """Refuse a new order on a price the source has not confirmed for `max_age` seconds
        (the sandbox broker asks before it places or modifies one)."""
        age = self.age(key)
        if age is None or age <= self.max_age:
            return
        reason = f"; last error: {self.last_error}" if self.last_error else ""
        raise LivePriceUnavailable(
            f"The live price of {key[0]}:{key[1]} from {self.source.name} is {age:.1f} s old "
            f"(orders need one under {self.max_age:g} s){reason}"
        )

    def candles(
        self, instrument: Instrument, interval: Interval, start: datetime, end: datetime
    ) -> list[Candle]:
        """Quotes make no history: the fallback's candles, if any (the sandbox broker asks the
        source's `history()` itself while it follows live prices)."""
        if self.fallback is not None:
            return self.fallback.candles(instrument, interval, start, end)
        raise NotFoundError(f"No candles in the live market; ask {self.source.name} for history")

    # -- what to follow -----------------------------------------------------------------------
    def watch(self, instruments: Iterable[Instrument]) -> None:
        """Follow these instruments (and an option's or future's underlying) from now on."""
        for inst in instruments:
            if inst.key not in self._watched:
                self._watched[inst.key] = inst
            if inst.underlying and inst.underlying_exchange and self.master is not None:
                underlying = self.master.find(inst.underlying_exchange, inst.underlying)
                if underlying is not None:
                    self._watched.setdefault(underlying.key, underlying)

    @property
    def watched(self) -> list[InstrumentKey]:
        return list(self._watched)

    def latest(self, key: InstrumentKey) -> LiveQuote | None:
        return self._latest.get(key)

    def age(self, key: InstrumentKey) -> float | None:
        """Seconds since the source last sent a quote for `key`, changed or not (None:
        never)."""
        confirmed = self._confirmed.get(key)
        return None if confirmed is None else self.timer() - confirmed

    def stale(self, key: InstrumentKey) -> bool:
        age = self.age(key)
        return age is not None and age > self.max_age

    # -- fetching -----------------------------------------------------------------------------
    async def prime(self, instruments: Sequence[Instrument]) -> None:
        """Fetch now, once, whichever of `instruments` has no live price yet or a stale one."""
        self.watch(instruments)
        missing = [i.key for i in instruments if i.key not in self._latest or self.stale(i.key)]
        if missing:
            await self.refresh(missing)

    async def refresh(self, keys: Sequence[InstrumentKey] | None = None) -> bool:
        """One round over `keys` (default: everything watched), batch by batch, each call
        waiting its turn under the rate limit. False if the source failed (prices kept)."""
        wanted = list(self._watched) if keys is None else list(keys)
        for start in range(0, len(wanted), self.batch_size):
            batch = wanted[start : start + self.batch_size]
            await self._gate.turn()
            self.calls += 1
            try:
                quotes = await self.source.quotes(batch)
            except OpenAlgoError as error:
                self._failed(f"{type(error).__name__}: {error.message}")
                return False
            self._store(quotes)
        self.last_error = None
        return True

    def _failed(self, reason: str) -> None:
        self.failures += 1
        self.last_error = reason
        log.warning("live prices from %s: %s", self.source.name, reason)

    def _store(self, quotes: dict[InstrumentKey, Quote]) -> None:
        now = self.timer()
        for key, quote in quotes.items():
            inst = self._watched.get(key)
            if inst is None:
                continue  # not asked for
            self._confirmed[key] = now
            previous = self._latest.get(key)
            if previous is not None and _same_print(previous.depth.quote, quote):
                continue  # the same print: keep the book (and what orders took of it)
            self._latest[key] = LiveQuote(synthetic_book(inst, quote, self.spread_ticks), now)

    # -- background polling ---------------------------------------------------------------------
    def start(self) -> None:
        """Poll in the background on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="sandbox-live-prices")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _poll(self) -> None:
        pause = self.poll_interval
        while True:
            ok = False
            try:
                ok = not self._watched or await self.refresh()
            except Exception as error:  # never let the poller die: prices would freeze silently
                self._failed(f"{type(error).__name__}: {error}")
                log.exception("live price poll failed")
            pause = self.poll_interval if ok else min(pause * 2, MAX_BACKOFF)
            await asyncio.sleep(pause)


def _same_print(shown: Quote, fresh: Quote) -> bool:
    """Whether `fresh` is the quote already shown (compared on what the source sent)."""
    return (
        shown.ltp == fresh.ltp
        and shown.timestamp == fresh.timestamp
        and shown.volume == fresh.volume
        and (fresh.bid <= 0 or shown.bid == fresh.bid)
        and (fresh.ask <= 0 or shown.ask == fresh.ask)
    )


__all__ = ["LiveMarket", "LivePriceUnavailable", "LiveQuote", "synthetic_book"]
