"""Ticks as OpenAlgo's feed frames, and one quote poller per account that fans them out.

The frames (`market_data` with an int `mode`, the fields the official clients read) are the
wire format of the server's WebSocket and the payload of the Client's tick subscriptions, so
both build them here. Polling per subscriber would multiply the broker's work and the JSON
encoding by the number of subscribers and leave each one's ticks up to a whole interval late;
`QuoteHub` runs one task per account that fetches the union of what its listeners want, builds
each changed tick once, encodes it once and hands the same text to every listener at once.
Polls are aligned to the wall clock's interval grid, so a market that moves on whole seconds
(the sandbox) is read a few milliseconds after it moves; the interval widens when a poll is
expensive, so a large union never turns the poller into a busy loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openalgo_lab.domain.enums import Exchange, FeedMode
from openalgo_lab.domain.models import Depth, DepthLevel, Quote

if TYPE_CHECKING:
    from openalgo_lab.brokers.base import Broker

JSON = dict[str, Any]
DEPTH_LEVELS = 5


@dataclass(frozen=True, slots=True)
class Stream:
    """One subscription: an instrument at a mode. Also the outbox's conflation key."""

    exchange: Exchange
    symbol: str
    mode: FeedMode


# -- tick payloads ------------------------------------------------------------
def epoch_ms(quote: Quote) -> int:
    return int(quote.timestamp.timestamp() * 1000)


def ltp_data(quote: Quote) -> JSON:
    """What mode 1 carries: the client needs `ltp`, and keeps `timestamp` with it."""
    stamp = epoch_ms(quote)
    return {
        "symbol": quote.symbol,
        "exchange": quote.exchange.value,
        "ltp": float(quote.ltp),
        "ltt": stamp,
        "timestamp": stamp,
    }


def quote_fields(quote: Quote) -> JSON:
    """Mode 2 adds the day's statistics under the names the 1.0.x client copies (it puts 0
    in for any it misses); `close` is the previous close, as in OpenAlgo's feed."""
    ltp, prev = float(quote.ltp), float(quote.prev_close)
    change = ltp - prev if prev else 0.0
    return {
        "open": float(quote.open),
        "high": float(quote.high),
        "low": float(quote.low),
        "close": prev,
        "volume": int(quote.volume),
        "oi": int(quote.oi),
        "last_quantity": int(quote.ltq),
        "last_trade_quantity": int(quote.ltq),
        "bid": float(quote.bid),
        "ask": float(quote.ask),
        "change": round(change, 4),
        "change_percent": round(change / prev * 100, 4) if prev else 0.0,
    }


def depth_side(levels: Iterable[DepthLevel]) -> list[JSON]:
    """Exactly five levels: the client indexes them without checking the length."""
    rows = [
        {"price": float(lv.price), "quantity": int(lv.quantity), "orders": int(lv.orders)}
        for lv in levels
    ][:DEPTH_LEVELS]
    rows += [{"price": 0.0, "quantity": 0, "orders": 0}] * (DEPTH_LEVELS - len(rows))
    return rows


def tick_frame(stream: Stream, quote: Quote, depth: Depth | None) -> tuple[JSON, JSON]:
    """The `data` of a tick (what decides whether it changed) and the whole frame to send."""
    data = tick_data(stream.mode, quote, depth)
    frame = {
        "type": "market_data",
        "symbol": stream.symbol,
        "exchange": stream.exchange.value,
        "mode": int(stream.mode),
        "data": data,
    }
    return data, frame


def tick_data(mode: FeedMode, quote: Quote, depth: Depth | None) -> JSON:
    """The `data` of one tick for a subscriber at `mode` (higher modes include lower ones)."""
    data = ltp_data(quote)
    if mode >= FeedMode.QUOTE:
        data.update(quote_fields(quote))
    if mode is FeedMode.DEPTH and depth is not None:
        data["total_buy_quantity"] = depth.totalbuyqty
        data["total_sell_quantity"] = depth.totalsellqty
        data["depth"] = {"buy": depth_side(depth.bids), "sell": depth_side(depth.asks)}
    return data


# -- the fan-out --------------------------------------------------------------
log = logging.getLogger(__name__)

MIN_INTERVAL = 0.05  # seconds between polls when polling is cheap
COST_FACTOR = 10  # a poll may take at most 1/COST_FACTOR of the interval
ALIGN_SLACK = 0.002  # read just after the grid point, once the market has moved

Fetched = dict[tuple[Exchange, str], tuple[Quote, Depth | None]]
Deliver = Callable[[Stream, str], None]


@dataclass(eq=False)
class Listener:
    """One connection as the hub sees it: its account, its streams, where ticks go."""

    account: str
    deliver: Deliver
    streams: set[Stream] = field(default_factory=set)


@dataclass
class _AccountFeed:
    """The streams of one account's connections, what was last sent, and its poller."""

    by_stream: dict[Stream, set[Listener]] = field(default_factory=dict)
    last: dict[Stream, tuple[object, str]] = field(default_factory=dict)  # (data, text)
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    interval: float = MIN_INTERVAL


class QuoteHub:
    """Polls each account's data broker for its listeners' streams and fans ticks out.

    `broker_of(account)` names the account's data broker at each poll, so a login or a switch
    of source takes effect without resubscribing. Everything runs on the server's loop.
    """

    def __init__(
        self,
        broker_of: Callable[[str], Broker],
        encode: Callable[[Stream, Quote, Depth | None], tuple[object, dict[str, object]]],
        *,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self._broker_of = broker_of
        self._encode = encode
        self._min_interval = min_interval
        self._feeds: dict[str, _AccountFeed] = {}
        self.polls = 0
        self.failures = 0

    # -- listeners -------------------------------------------------------------------------
    def add(self, listener: Listener, streams: Iterable[Stream]) -> None:
        """Subscribe `listener` to `streams`: the latest tick of each now, then every change."""
        feed = self._feeds.setdefault(listener.account, _AccountFeed())
        new = False
        for stream in streams:
            listener.streams.add(stream)
            subscribers = feed.by_stream.setdefault(stream, set())
            subscribers.add(listener)
            last = feed.last.get(stream)
            if last is not None:
                listener.deliver(stream, last[1])
            else:
                new = True
        if feed.task is None or feed.task.done():
            feed.task = asyncio.create_task(
                self._run(listener.account, feed), name=f"openalgo-feed-{listener.account}"
            )
        if new:
            feed.wake.set()  # a new stream's first tick should not wait for the grid

    def remove(self, listener: Listener, streams: Iterable[Stream] | None = None) -> None:
        """Unsubscribe `listener` from `streams` (all of its streams when None)."""
        feed = self._feeds.get(listener.account)
        gone = list(listener.streams if streams is None else streams)
        for stream in gone:
            listener.streams.discard(stream)
            if feed is None:
                continue
            subscribers = feed.by_stream.get(stream)
            if subscribers is None:
                continue
            subscribers.discard(listener)
            if not subscribers:
                del feed.by_stream[stream]
                feed.last.pop(stream, None)
        if feed is not None and not feed.by_stream and feed.task is not None:
            feed.task.cancel()
            feed.task = None
            del self._feeds[listener.account]

    async def close(self) -> None:
        tasks = [f.task for f in self._feeds.values() if f.task is not None]
        self._feeds.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the poller ------------------------------------------------------------------------
    async def _run(self, account: str, feed: _AccountFeed) -> None:
        while feed.by_stream:
            delay = feed.interval - (time.time() % feed.interval) + ALIGN_SLACK
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(feed.wake.wait(), delay)
            feed.wake.clear()
            started = time.perf_counter()
            await self._poll(account, feed)
            cost = time.perf_counter() - started
            feed.interval = max(self._min_interval, cost * COST_FACTOR)

    async def _poll(self, account: str, feed: _AccountFeed) -> None:
        self.polls += 1
        wanted = top_modes(feed.by_stream)
        try:
            fetched = await fetch(self._broker_of(account), wanted)
        except Exception as err:  # a broker outage must not end the feed
            self.failures += 1
            log.debug("feed poll for %s failed: %s", account, err)
            return
        for stream, subscribers in list(feed.by_stream.items()):
            found = fetched.get((stream.exchange, stream.symbol))
            if found is None:
                continue
            data, frame = self._encode(stream, *found)
            last = feed.last.get(stream)
            if last is not None and last[0] == data:
                continue
            text = json.dumps(frame)
            feed.last[stream] = (data, text)
            for listener in list(subscribers):
                listener.deliver(stream, text)


def top_modes(streams: Iterable[Stream]) -> dict[tuple[Exchange, str], FeedMode]:
    """The highest mode wanted per instrument: one fetch serves every mode below it."""
    wanted: dict[tuple[Exchange, str], FeedMode] = {}
    for stream in streams:
        key = (stream.exchange, stream.symbol)
        current = wanted.get(key)
        wanted[key] = stream.mode if current is None else max(current, stream.mode)
    return wanted


async def fetch(broker: Broker, wanted: dict[tuple[Exchange, str], FeedMode]) -> Fetched:
    """Quotes for every instrument in one call, depth only where a stream wants depth."""
    depth_keys = [key for key, mode in wanted.items() if mode is FeedMode.DEPTH]
    quote_keys = [key for key, mode in wanted.items() if mode is not FeedMode.DEPTH]
    fetched: Fetched = {}
    if quote_keys:
        quotes = await broker.quotes(quote_keys)
        fetched.update({key: (quote, None) for key, quote in quotes.items()})
    for key in depth_keys:
        book = await broker.depth(*key)
        fetched[key] = (book.quote, book)
    return fetched
