"""The remote Client's live feed: one WebSocket to `{url}/ws` (OpenAlgo's protocol) carrying
order updates and ticks, with reconnection.

Where it runs: on the event loop of the thread that first subscribed when that loop is
running (a Jupyter kernel runs Tornado's asyncio loop on its main thread, so callbacks run
there, between cells, and may update widgets directly), otherwise on a private loop in a
daemon thread (scripts, tests). Callbacks therefore never run concurrently with each other.

What it guarantees: it connects when the first subscriber arrives, authenticates with the
Client's credentials (a fresh session token on every connection), subscribes to what its
subscribers want, and after any disconnection (a server restart, say) reconnects with
capped exponential backoff and subscribes again. Events missed while it was down are
recovered from the books (`order_events`). A callback that raises is logged and the feed
carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tornado.websocket import WebSocketClientConnection, websocket_connect

from openalgo_lab.client.credentials import CredentialsError
from openalgo_lab.client.order_events import OrderTracker
from openalgo_lab.client.ticks import TickStream, tick_event
from openalgo_lab.domain.enums import FeedMode

if TYPE_CHECKING:
    from openalgo_lab.client.remote import RemoteTransport

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Callback = Callable[[str, Any], None]
ORDER_TOPICS = frozenset({"order", "trade"})
CONNECT_TIMEOUT = 5.0
AUTH_TIMEOUT = 10.0
PING_INTERVAL = 20.0  # keep-alive pings; a silent dead peer is noticed within about 40 s
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 5.0
CLOSE_TIMEOUT = 5.0


class FeedRefused(Exception):
    """The server refused the feed's authentication; `str()` is its message."""


class LoopHost:
    """The loop the feed runs on: the caller's running loop, else a private daemon thread's."""

    def __init__(self) -> None:
        try:
            self.loop = asyncio.get_running_loop()
            self.thread: threading.Thread | None = None
        except RuntimeError:
            self.loop = asyncio.new_event_loop()
            self.thread = threading.Thread(
                target=self.loop.run_forever, name="openalgo-lab-feed", daemon=True
            )
            self.thread.start()

    @property
    def private(self) -> bool:
        return self.thread is not None

    def in_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the loop, from any thread."""
        if self.loop.is_closed():
            log.warning("the feed's event loop is closed; the feed is not running")
            return
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        if self.thread is None or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not threading.current_thread():
            self.thread.join(timeout=CLOSE_TIMEOUT)
            if not self.thread.is_alive():
                self.loop.close()


@dataclass(eq=False)
class Listener:
    callback: Callback
    topics: frozenset[str] | None = None  # event listeners: None means every topic
    streams: frozenset[TickStream] = field(default_factory=frozenset)  # tick listeners

    def wants(self, topic: str) -> bool:
        return self.topics is None or topic in self.topics


@dataclass
class FeedStatus:
    """What a dashboard may show about the feed."""

    connected: bool
    connections: int  # successful connections so far (reconnects = connections - 1)
    last_error: str


class Feed:
    def __init__(self, transport: RemoteTransport) -> None:
        self._transport = transport
        self._url = transport.feed_url
        self._host = LoopHost()
        self._lock = threading.Lock()  # guards the listener tables (any thread)
        self._ids = itertools.count(1)
        self._events: dict[int, Listener] = {}
        self._ticks: dict[int, Listener] = {}
        # loop-side state
        self._tracker = OrderTracker()
        self._ws: WebSocketClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._trade_task: asyncio.Task[None] | None = None
        self._trade_sync_due = False
        self._wake: asyncio.Event | None = None
        self._orders_on = False
        self._sent: set[TickStream] = set()
        self._closed = False
        self._connections = 0
        self._last_error = ""

    @property
    def status(self) -> FeedStatus:
        return FeedStatus(self._ws is not None, self._connections, self._last_error)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def on_private_loop(self) -> bool:
        return self._host.private

    # -- subscribers (any thread) ---------------------------------------------------------------
    def subscribe_events(self, callback: Callback, topics: set[str] | None) -> Callable[[], None]:
        listener = Listener(callback, frozenset(topics) if topics is not None else None)
        with self._lock:
            first = listener.topics is None or bool(listener.topics & ORDER_TOPICS)
            first = first and not self._wants_orders()
            ident = next(self._ids)
            self._events[ident] = listener
        baseline = self._read_books() if first else None
        self._host.call(self._changed, baseline)
        return self._remover(self._events, ident)

    def subscribe_ticks(
        self, callback: Callback, streams: Sequence[TickStream]
    ) -> Callable[[], None]:
        listener = Listener(callback, streams=frozenset(streams))
        with self._lock:
            ident = next(self._ids)
            self._ticks[ident] = listener
        self._host.call(self._changed, None)
        return self._remover(self._ticks, ident)

    def _remover(self, table: dict[int, Listener], ident: int) -> Callable[[], None]:
        def unsubscribe() -> None:
            with self._lock:
                removed = table.pop(ident, None)
            if removed is not None and not self._closed:
                self._host.call(self._changed, None)

        return unsubscribe

    def _wants_orders(self) -> bool:
        return any(
            listener.topics is None or listener.topics & ORDER_TOPICS
            for listener in self._events.values()
        )

    def _wanted_streams(self) -> set[TickStream]:
        with self._lock:
            return {s for listener in self._ticks.values() for s in listener.streams}

    def _read_books(self) -> tuple[list[JSON], list[JSON]] | None:
        """Today's orders and trades (blocking REST calls), or None when unavailable."""
        status, orders = self._transport.call("orderbook", {})
        if status != 200 or orders.get("status") != "success":
            log.info("feed: order book unavailable (%s)", orders.get("message"))
            return None
        status, trades = self._transport.call("tradebook", {})
        if status != 200 or trades.get("status") != "success":
            log.info("feed: trade book unavailable (%s)", trades.get("message"))
            return None
        order_rows = (orders.get("data") or {}).get("orders") or []
        return list(order_rows), list(trades.get("data") or [])

    # -- the loop side --------------------------------------------------------------------------
    def _changed(self, baseline: tuple[list[JSON], list[JSON]] | None) -> None:
        """Subscribers changed: take the baseline, start or wake the connection, and tell the
        server (when connected) what is now wanted."""
        if self._closed:
            return
        with self._lock:
            wants_orders = self._wants_orders()
        if baseline is not None and wants_orders and not self._tracker.ready:
            self._tracker.baseline(*baseline)
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="openalgo-feed")
        self._wake.set()
        if self._ws is not None:
            self._sync_subscriptions(self._ws)
        elif not wants_orders:
            self._tracker.reset()

    def _sync_subscriptions(self, ws: WebSocketClientConnection) -> None:
        with self._lock:
            wants_orders = self._wants_orders()
        if wants_orders and not self._orders_on:
            self._send(ws, {"action": "subscribe_orders"})
            self._orders_on = True
        elif not wants_orders and self._orders_on:
            self._send(ws, {"action": "unsubscribe_orders"})
            self._orders_on = False
            self._tracker.reset()
        wanted = self._wanted_streams()
        for mode, streams in by_mode(wanted - self._sent).items():
            symbols = [{"exchange": s.exchange, "symbol": s.symbol} for s in streams]
            self._send(ws, {"action": "subscribe", "symbols": symbols, "mode": int(mode)})
        gone = self._sent - wanted
        if gone:
            self._send(ws, {"action": "unsubscribe", "symbols": [s.wire() for s in gone]})
        self._sent = wanted

    def _send(self, ws: WebSocketClientConnection, message: JSON) -> None:
        try:
            ws.write_message(json.dumps(message))
        except Exception as err:  # closed under us: the reconnect will resend everything
            log.debug("feed: send failed: %s", err)

    async def _run(self) -> None:
        """Connect, serve, and reconnect with capped exponential backoff until closed."""
        failures = 0
        while not self._closed:
            served = await self._connect_once(failures)
            if self.closed:
                return
            failures = 0 if served else failures + 1
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2**failures) * random.uniform(0.8, 1.2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing(), delay)

    async def _connect_once(self, failures: int) -> bool:
        """One connection, served until it ends; True when it got as far as authenticating."""
        try:
            ws = await websocket_connect(
                self._url,
                connect_timeout=CONNECT_TIMEOUT,
                ping_interval=PING_INTERVAL,
                ping_timeout=PING_INTERVAL,
            )
        except Exception as err:
            self._note_failure(f"cannot connect to {self._url}: {err}", failures)
            return False
        try:
            await self._serve(ws)
        except FeedRefused as err:
            self._note_failure(f"the server refused the feed: {err}", failures)
        except CredentialsError as err:
            self._note_failure(str(err), failures)
        except TimeoutError:
            self._note_failure("no answer to authenticate in time", failures)
        except Exception as err:  # closed streams, protocol errors: reconnect
            self._note_failure(f"feed connection failed: {err!r}", failures)
        finally:
            served = self._ws is not None
            self._ws = None
            ws.close()
        return served

    async def _closing(self) -> None:
        """Returns once the feed is closed (the backoff sleep waits on it)."""
        assert self._wake is not None
        while not self._closed:
            self._wake.clear()
            await self._wake.wait()

    def _note_failure(self, message: str, failures: int) -> None:
        self._last_error = message
        level = logging.WARNING if failures in (0, 5) else logging.DEBUG
        log.log(level, "OpenAlgo feed: %s; retrying", message)

    async def _serve(self, ws: WebSocketClientConnection) -> None:
        """Authenticate, subscribe, then handle frames until the socket closes."""
        account = await self._authenticate(ws)
        self._tracker.account = account or self._tracker.account
        self._ws = ws
        self._connections += 1
        self._last_error = ""
        self._orders_on = False
        self._sent = set()
        self._sync_subscriptions(ws)
        while True:
            raw = await ws.read_message()
            if raw is None:
                reason = ws.close_reason or "closed by the server"
                self._last_error = f"disconnected ({ws.close_code}: {reason})"
                log.info("OpenAlgo feed: %s; reconnecting", self._last_error)
                return
            await self._on_frame(raw)

    async def _authenticate(self, ws: WebSocketClientConnection) -> str:
        message = await asyncio.to_thread(self._transport.credentials.feed_auth)
        await ws.write_message(json.dumps(message))
        async with asyncio.timeout(AUTH_TIMEOUT):
            while True:
                raw = await ws.read_message()
                if raw is None:
                    raise FeedRefused(ws.close_reason or "closed before authenticating")
                frame = parse_frame(raw)
                if frame.get("type") == "auth" and frame.get("status") == "success":
                    return str(frame.get("user_id") or "")
                if frame.get("status") == "error":
                    raise FeedRefused(str(frame.get("message", "authentication failed")))

    async def _on_frame(self, raw: str | bytes) -> None:
        frame = parse_frame(raw)
        kind = frame.get("type")
        if kind == "market_data":
            self._on_tick(frame)
        elif kind == "order_update":
            if not self._tracker.ready:
                return  # no baseline yet: it is taken when the subscription is acknowledged
            events, fills = self._tracker.on_frame(frame)
            self._deliver(events)
            if fills:
                self._sync_trades()
        elif kind == "subscribe_orders" and frame.get("status") == "success":
            await self._catch_up()
        elif kind == "subscribe" and frame.get("status") != "success":
            failed = [s for s in frame.get("subscriptions") or [] if s.get("status") != "success"]
            for entry in failed:
                log.warning(
                    "OpenAlgo feed: no ticks for %s:%s: %s",
                    entry.get("exchange"),
                    entry.get("symbol"),
                    entry.get("message", "refused"),
                )
        elif frame.get("status") == "error":
            log.warning("OpenAlgo feed: %s", frame.get("message"))

    async def _catch_up(self) -> None:
        """After subscribing to orders: take the baseline, or deliver what changed meanwhile.
        Frames wait until this is done, so none overtakes the books' rows."""
        books = await asyncio.to_thread(self._read_books)
        if books is None:
            return
        orders, trades = books
        if not self._tracker.ready:
            self._tracker.baseline(orders, trades)
            return
        events, _ = self._tracker.on_order_book(orders)
        self._deliver(events)
        self._deliver(self._tracker.on_trade_book(trades))

    def _sync_trades(self) -> None:
        """Read the trade book soon; requests made meanwhile share one read."""
        self._trade_sync_due = True
        if self._trade_task is None or self._trade_task.done():
            self._trade_task = asyncio.get_running_loop().create_task(self._trade_sync())

    async def _trade_sync(self) -> None:
        while self._trade_sync_due and not self._closed:
            self._trade_sync_due = False
            status, body = await asyncio.to_thread(self._transport.call, "tradebook", {})
            if status != 200 or body.get("status") != "success":
                log.warning("OpenAlgo feed: trade book unavailable: %s", body.get("message"))
                return
            if self._tracker.ready:
                self._deliver(self._tracker.on_trade_book(body.get("data") or []))

    def _on_tick(self, frame: JSON) -> None:
        try:
            stream = TickStream(
                str(frame.get("exchange", "")).upper(),
                str(frame.get("symbol", "")).upper(),
                FeedMode.parse(frame.get("mode")),
            )
        except ValueError:
            return
        data = frame.get("data")
        if not isinstance(data, dict):
            return
        event = tick_event(stream, data)
        with self._lock:
            listeners = [lst for lst in self._ticks.values() if stream in lst.streams]
        for listener in listeners:
            call_safely(listener.callback, "tick", event)

    def _deliver(self, events: Iterable[tuple[str, JSON]]) -> None:
        for topic, data in events:
            with self._lock:
                listeners = [lst for lst in self._events.values() if lst.wants(topic)]
            for listener in listeners:
                call_safely(listener.callback, topic, data)

    # -- closing --------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the feed: no callback runs after this returns (on the private loop)."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            self._events.clear()
            self._ticks.clear()
        if self._host.loop.is_closed():
            return
        if self._host.in_loop_thread():
            self._host.loop.create_task(self._shutdown())
            return
        done: Future[None] = asyncio.run_coroutine_threadsafe(self._shutdown(), self._host.loop)
        with contextlib.suppress(Exception):
            done.result(CLOSE_TIMEOUT)
        self._host.stop()

    async def _shutdown(self) -> None:
        if self._wake is not None:
            self._wake.set()
        tasks = [t for t in (self._task, self._trade_task) if t is not None]
        for task in tasks:
            task.cancel()
        if self._ws is not None:
            self._ws.close()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._host.private:
            asyncio.get_running_loop().call_soon(self._host.loop.stop)


def parse_frame(raw: str | bytes) -> JSON:
    try:
        frame = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return frame if isinstance(frame, dict) else {}


def by_mode(streams: Iterable[TickStream]) -> dict[FeedMode, list[TickStream]]:
    grouped: dict[FeedMode, list[TickStream]] = {}
    for stream in sorted(streams, key=lambda s: (s.mode, s.exchange, s.symbol)):
        grouped.setdefault(stream.mode, []).append(stream)
    return grouped


def call_safely(callback: Callback, topic: str, data: Any) -> None:
    """Run a subscriber's callback; its exception is logged, never the feed's problem."""
    try:
        callback(topic, data)
    except Exception:
        log.exception("OpenAlgo feed: a %s callback raised", topic)
