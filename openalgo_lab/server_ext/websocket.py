"""`{base_url}openalgo/ws`: OpenAlgo's market-data and order-update WebSocket, on Jupyter.

OpenAlgo serves this feed from a separate proxy on port 8765; here it shares the Jupyter
server so one process and one API key serve both REST and streaming (the official client
reaches it with `ws_url=`). The protocol follows OpenAlgo's server code, not its docs
(reference §12 item 1): `authenticate` with the API key (or `token`, a short-lived session
token from `tokens`), `subscribe` in the 1.0.x (`symbol`/`exchange`) and 2.x
(`symbols: [...]`) shapes, and ticks sent as
`{"type": "market_data", ..., "mode": <int>}` because the client picks its callback by that
int.

Like the REST routes, the socket skips Jupyter's token (outside callers cannot send one) and
requires an OpenAlgo API key instead, checked by the same `Gate`.

Ticks come from `engine.quote_feed`: one poller per account for all connections, each changed tick
built and encoded once and handed to every subscriber. Every connection has its own writer and
its own bounded outbox that keeps only the newest tick per stream, so a slow reader loses
stale ticks (counted) and never delays anyone else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from openalgo_lab.domain.enums import Exchange, FeedMode
from openalgo_lab.domain.models import OrderEvent
from openalgo_lab.engine.events import Subscription
from openalgo_lab.engine.quote_feed import DEPTH_LEVELS, Listener, Stream
from openalgo_lab.engine.views import order_row
from openalgo_lab.server_ext.auth import Principal, Refusal
from openalgo_lab.server_ext.tokens import signing_secret, verify_token

if TYPE_CHECKING:
    from openalgo_lab.engine.accounts import TradingAccount
    from openalgo_lab.server_ext.app import OpenAlgoLabApp, Services

log = logging.getLogger(__name__)

JSON = dict[str, Any]
ROUTE = r"/openalgo/+ws/?"
AUTH_GRACE_SECONDS = 15.0  # OpenAlgo's WS_AUTH_GRACE_SECONDS
AUTH_CLOSE_CODE = 4401  # OpenAlgo closes unauthenticated sockets with this code
UNAVAILABLE_CLOSE_CODE = 1013  # "try again later": the engine is not running
OUTBOX_LIMIT = 1024  # OpenAlgo's WS_MAX_QUEUE: messages waiting per client
ORDER_QUEUE_LIMIT = 1000  # order events buffered between the bus and the outbox
MAX_SUBSCRIPTIONS = 1000  # OpenAlgo's MAX_SYMBOLS_PER_WEBSOCKET


class ProtocolError(Exception):
    """A request the protocol refuses as a whole, answered with OpenAlgo's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_mode(value: object) -> FeedMode:
    """The request's mode, or OpenAlgo's INVALID_MODE error."""
    try:
        return FeedMode.parse(value)
    except ValueError:
        raise ProtocolError(
            "INVALID_MODE", f"Invalid mode {value!r}; use 1/LTP, 2/Quote or 3/Depth"
        ) from None


def error_message(code: str, message: str, request_id: object = None) -> JSON:
    """OpenAlgo's error frame: no `type`, so clients waiting for an ack ignore it."""
    body: JSON = {"status": "error", "code": code, "message": message}
    if request_id is not None:
        body["request_id"] = request_id
    return body


# -- the outbox ----------------------------------------------------------------------------------
@dataclass
class Outbox:
    """One client's outgoing messages, bounded, with ticks conflated per stream.

    Replies and order updates keep their order and go first; a tick replaces the pending
    tick of its stream (`conflated`). When full, the oldest pending tick goes first, a reply
    only when no tick is left (`dropped`). Putting never waits, so the pollers and the event
    bus never wait for a slow socket.
    """

    limit: int = OUTBOX_LIMIT
    dropped: int = 0
    conflated: int = 0
    close_after: tuple[int, str] | None = None  # close once the replies before it are sent
    _messages: deque[JSON] = field(default_factory=deque)
    _ticks: OrderedDict[Stream, str] = field(default_factory=OrderedDict)  # encoded once
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def __len__(self) -> int:
        return len(self._messages) + len(self._ticks)

    def put(self, message: JSON) -> None:
        self._make_room()
        self._messages.append(message)
        self._ready.set()

    def put_tick(self, stream: Stream, message: str) -> None:
        if stream in self._ticks:
            self._ticks[stream] = message
            self.conflated += 1
            return
        self._make_room()
        self._ticks[stream] = message
        self._ready.set()

    def discard(self, streams: Iterable[Stream]) -> None:
        """Forget pending ticks of streams just unsubscribed: none may follow the ack."""
        for stream in streams:
            self._ticks.pop(stream, None)

    def close(self, code: int, reason: str) -> None:
        self.close_after = (code, reason)
        self._ready.set()

    async def get(self) -> JSON | str | None:
        """The next message; None once a requested close is due."""
        while not self and self.close_after is None:
            self._ready.clear()
            await self._ready.wait()
        if self._messages:
            return self._messages.popleft()
        if self.close_after is not None:
            return None
        return self._ticks.popitem(last=False)[1]

    def _make_room(self) -> None:
        while len(self) >= self.limit:
            self.dropped += 1
            if self._ticks:
                self._ticks.popitem(last=False)
            else:
                self._messages.popleft()


# -- the connection ------------------------------------------------------------------------------
@dataclass
class Session:
    """An authenticated connection's state: who it is and what it listens to."""

    principal: Principal
    listener: Listener
    streams: dict[Stream, None] = field(default_factory=dict)  # ordered set
    orders: Subscription | None = None

    @property
    def account(self) -> str:
        return self.principal.account


class FeedSocket(ExtensionHandlerMixin, WebSocketHandler):
    """One client of the feed: authenticate, subscribe, receive ticks and order updates."""

    outbox: Outbox
    session: Session | None
    _tasks: dict[str, asyncio.Task[None]]
    _deadline: object | None  # the IOLoop handle of the authentication deadline
    _closing: bool

    def check_origin(self, origin: str) -> bool:
        """No cookie authenticates this socket, only the API key in the first message, so
        there is no ambient credential another origin could borrow."""
        return True

    @property
    def lab(self) -> OpenAlgoLabApp:
        return cast("OpenAlgoLabApp", self.extensionapp)

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self, *args: str, **kwargs: str) -> None:
        self.outbox = Outbox()
        self.session = None
        self._tasks = {}
        self._closing = False
        self._spawn("writer", self._write_loop())
        self._deadline = IOLoop.current().call_later(AUTH_GRACE_SECONDS, self._auth_timeout)
        if self.lab.services is None:
            message = f"OpenAlgo Lab is not available: {self.lab.startup_error}"
            self._finish(error_message("SERVICE_UNAVAILABLE", message), UNAVAILABLE_CLOSE_CODE)

    def on_close(self) -> None:
        """Cancel everything this connection started; nothing outlives the socket."""
        self._closing = True
        if self._deadline is not None:
            IOLoop.current().remove_timeout(self._deadline)
            self._deadline = None
        self._stop_orders()
        services = self.lab.services
        if self.session is not None and services is not None:
            services.feed.remove(self.session.listener)
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        if self.outbox.dropped or self.outbox.conflated:
            log.debug(
                "feed client closed; %d messages dropped, %d ticks conflated",
                self.outbox.dropped,
                self.outbox.conflated,
            )

    def _spawn(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        self._tasks[name] = asyncio.create_task(work, name=f"openalgo-ws-{name}")

    def _auth_timeout(self) -> None:
        self._deadline = None
        if self.session is None and not self._closing:
            self._finish(
                error_message("AUTHENTICATION_ERROR", "Authentication timeout"), AUTH_CLOSE_CODE
            )

    def _finish(self, message: JSON, code: int) -> None:
        """Send `message`, then close with `code` once the outbox has drained up to it."""
        self.outbox.put(message)
        self.outbox.close(code, str(message["message"])[:120])

    async def _write_loop(self) -> None:
        """The only writer of this socket; waits for this client alone."""
        while True:
            message = await self.outbox.get()
            if message is None:
                self._closing = True
                code, reason = self.outbox.close_after or (AUTH_CLOSE_CODE, "")
                self.close(code, reason)
                return
            try:
                text = message if isinstance(message, str) else json.dumps(message)
                await self.write_message(text)
            except WebSocketClosedError:
                return

    # -- dispatch --------------------------------------------------------------------------------
    async def on_message(self, message: str | bytes) -> None:
        """One request at a time (Tornado waits for this coroutine before the next message)."""
        if self._closing:
            return
        request = parse_request(message)
        if isinstance(request, str):
            self.outbox.put(error_message("INVALID_PARAMETERS", request))
            return
        action = str(request.get("action") or request.get("type") or "").strip().lower()
        request_id = request.get("request_id")
        try:
            await self._dispatch(action, request)
        except ProtocolError as err:
            self.outbox.put(error_message(err.code, err.message, request_id))

    async def _dispatch(self, action: str, request: JSON) -> None:
        if action in ("authenticate", "auth"):
            await self._authenticate(request)
            return
        if action == "ping":
            self.outbox.put(pong(request))
            return
        if action not in SESSION_ACTIONS:
            raise ProtocolError("INVALID_ACTION", f"Unknown action {action!r}")
        session = self.session
        if session is None:
            raise ProtocolError("NOT_AUTHENTICATED", "Authenticate first")
        if action == "subscribe":
            self._subscribe(session, request)
        elif action == "unsubscribe":
            self._unsubscribe(session, request)
        elif action == "unsubscribe_all":
            self._unsubscribe_all(session, request)
        elif action == "subscribe_orders":
            self._subscribe_orders(session, request)
        elif action == "unsubscribe_orders":
            self._stop_orders()
            self.outbox.put(ack("unsubscribe_orders", "Unsubscribed from order updates", request))

    # -- authentication --------------------------------------------------------------------------
    async def _authenticate(self, request: JSON) -> None:
        services = self._services()
        key = request.get("api_key") or request.get("apikey")
        token = request.get("token")
        address = self.request.remote_ip or ""
        outcome: Principal | Refusal
        if token and not key:
            secret = signing_secret(services.pepper)
            outcome = services.gate.authenticate_token(
                str(token), address, lambda t: verify_token(secret, t)
            )
        else:
            outcome = await services.gate.authenticate(str(key) if key else None, address)
        if isinstance(outcome, Refusal):
            failure = error_message("AUTHENTICATION_ERROR", outcome.message)
            if self.session is None:
                self._finish(failure, AUTH_CLOSE_CODE)
            else:
                self.outbox.put(failure)
            return
        if self.session is not None and self.session.account != outcome.account:
            raise ProtocolError(
                "INVALID_PARAMETERS",
                f"This connection is already authenticated for account {self.session.account!r}",
            )
        account = self._account(services, outcome.account)
        if self.session is None:
            self.session = Session(outcome, Listener(outcome.account, self.outbox.put_tick))
        if self._deadline is not None:
            IOLoop.current().remove_timeout(self._deadline)
            self._deadline = None
        self.outbox.put(
            {
                "type": "auth",
                "status": "success",
                "message": "Authentication successful",
                "broker": account.broker_name,
                "user_id": outcome.account,
                "supported_features": {"ltp": True, "quote": True, "depth": True},
            }
        )

    def _services(self) -> Services:
        services = self.lab.services
        if services is None:
            raise ProtocolError(
                "SERVICE_UNAVAILABLE", f"OpenAlgo Lab is not available: {self.lab.startup_error}"
            )
        return services

    def _account(self, services: Services, name: str) -> TradingAccount:
        try:
            return services.engine.account(name)
        except Exception as err:
            raise ProtocolError("BROKER_ERROR", str(err)) from None

    # -- market data -----------------------------------------------------------------------------
    def _subscribe(self, session: Session, request: JSON) -> None:
        services = self._services()
        broker = self._account(services, session.account).broker_name
        default_mode = parse_mode(request.get("mode", FeedMode.QUOTE))
        entries = requested_entries(request)
        modes = [parse_mode(e["mode"]) if "mode" in e else default_mode for e in entries]
        results: list[JSON] = []
        added: list[Stream] = []
        for entry, mode in zip(entries, modes, strict=True):
            stream, problem = self._stream(services, entry, mode)
            if stream is not None and stream not in session.streams:
                if len(session.streams) >= MAX_SUBSCRIPTIONS:
                    problem = f"At most {MAX_SUBSCRIPTIONS} subscriptions per connection"
                else:
                    session.streams[stream] = None
                    added.append(stream)
            results.append(subscription_result(entry, mode, broker, problem))
        ok = sum(1 for r in results if r["status"] == "success")
        status = "success" if ok == len(results) else "partial" if ok else "error"
        reply = {
            "type": "subscribe",
            "status": status,
            "subscriptions": results,
            "message": "Subscription processing complete",
            "broker": broker,
        }
        self.outbox.put(with_request_id(reply, request))
        services.feed.add(session.listener, added)  # after the ack: ticks follow it

    def _stream(
        self, services: Services, entry: JSON, mode: FeedMode
    ) -> tuple[Stream | None, str | None]:
        """The stream an entry names, or why it names none."""
        symbol = str(entry.get("symbol") or "").strip().upper()
        raw_exchange = str(entry.get("exchange") or "").strip().upper()
        if not symbol or not raw_exchange:
            return None, "symbol and exchange are required"
        try:
            exchange = Exchange(raw_exchange)
        except ValueError:
            return None, f"Unknown exchange {raw_exchange}"
        if services.engine.master.find(exchange, symbol) is None:
            return None, f"Symbol {symbol} not found on {exchange.value}"
        return Stream(exchange, symbol, mode), None

    def _unsubscribe(self, session: Session, request: JSON) -> None:
        top_mode = parse_mode(request["mode"]) if "mode" in request else None
        results: list[JSON] = []
        removed: list[Stream] = []
        for entry in requested_entries(request):
            mode = parse_mode(entry["mode"]) if "mode" in entry else top_mode
            symbol = str(entry.get("symbol") or "").strip().upper()
            exchange = str(entry.get("exchange") or "").strip().upper()
            matches = [
                s
                for s in session.streams
                if s.symbol == symbol
                and s.exchange.value == exchange
                and (mode is None or s.mode is mode)
            ]
            removed += matches
            result: JSON = {"symbol": symbol, "exchange": exchange, "status": "success"}
            if not matches:
                result.update(status="error", message="Not subscribed")
            results.append(result)
        self._drop_streams(session, removed)
        ok = sum(1 for r in results if r["status"] == "success")
        status = "success" if ok == len(results) else "partial" if ok else "error"
        reply = {
            "type": "unsubscribe",
            "status": status,
            "subscriptions": results,
            "message": "Unsubscription processing complete",
        }
        self.outbox.put(with_request_id(reply, request))

    def _unsubscribe_all(self, session: Session, request: JSON) -> None:
        count = len(session.streams)
        self._drop_streams(session, list(session.streams))
        reply = {
            "type": "unsubscribe",
            "status": "success",
            "message": f"Unsubscribed from {count} subscriptions",
        }
        self.outbox.put(with_request_id(reply, request))

    def _drop_streams(self, session: Session, streams: list[Stream]) -> None:
        for stream in streams:
            session.streams.pop(stream, None)
        services = self.lab.services
        if services is not None:
            services.feed.remove(session.listener, streams)
        self.outbox.discard(streams)

    # -- order updates ---------------------------------------------------------------------------
    def _subscribe_orders(self, session: Session, request: JSON) -> None:
        services = self._services()
        if session.orders is None:
            session.orders = services.engine.events.subscribe(
                {"order"}, queue_size=ORDER_QUEUE_LIMIT
            )
            self._spawn("orders", self._forward_orders(services, session, session.orders))
        self.outbox.put(ack("subscribe_orders", "Subscribed to order updates", request))

    async def _forward_orders(
        self, services: Services, session: Session, subscription: Subscription
    ) -> None:
        async for event in subscription:
            if event.account != session.account or not isinstance(event.data, OrderEvent):
                continue
            account = services.engine.accounts.get(event.account)
            if account is not None:
                self.outbox.put(order_update(account, event.data))

    def _stop_orders(self) -> None:
        session = self.session
        if session is None or session.orders is None:
            return
        services = self.lab.services
        if services is not None:
            services.engine.events.unsubscribe(session.orders)
        session.orders = None
        task = self._tasks.pop("orders", None)
        if task is not None:
            task.cancel()


SESSION_ACTIONS = frozenset(
    {"subscribe", "unsubscribe", "unsubscribe_all", "subscribe_orders", "unsubscribe_orders"}
)


def parse_request(message: str | bytes) -> JSON | str:
    """The request object, or why the frame is not one."""
    try:
        parsed = json.loads(message)
    except (ValueError, UnicodeDecodeError):
        return "Invalid JSON message"
    if not isinstance(parsed, dict):
        return "A message must be a JSON object"
    return parsed


def requested_entries(request: JSON) -> list[JSON]:
    """2.x's `symbols: [...]`, else 1.0.x's single `symbol`/`exchange` (OpenAlgo's fallback)."""
    symbols = request.get("symbols")
    if symbols is None:
        if "symbol" not in request and "exchange" not in request:
            raise ProtocolError("INVALID_PARAMETERS", "Give symbols: [...] or symbol and exchange")
        return [{k: request[k] for k in ("symbol", "exchange") if k in request}]
    if not isinstance(symbols, list) or not symbols:
        raise ProtocolError("INVALID_PARAMETERS", "symbols must be a non-empty list")
    if not all(isinstance(entry, dict) for entry in symbols):
        raise ProtocolError("INVALID_PARAMETERS", "every entry of symbols must be an object")
    return cast("list[JSON]", symbols)


def subscription_result(entry: JSON, mode: FeedMode, broker: str, problem: str | None) -> JSON:
    result: JSON = {
        "symbol": str(entry.get("symbol") or "").upper(),
        "exchange": str(entry.get("exchange") or "").upper(),
        "status": "success" if problem is None else "error",
        "mode": mode.label,
        "depth": DEPTH_LEVELS,
        "broker": broker,
    }
    if problem is not None:
        result["message"] = problem
    return result


def order_update(account: TradingAccount, event: OrderEvent) -> JSON:
    """OpenAlgo's `order_update` frame: the orderbook row plus who and where."""
    return {
        "type": "order_update",
        "user_id": account.name,
        "mode": account.mode,
        "broker": account.broker_name,
        **order_row(event.order),
    }


def pong(request: JSON) -> JSON:
    reply: JSON = {
        "type": "pong",
        "status": "success",
        "server_timestamp": int(time.time() * 1000),
    }
    if "timestamp" in request:
        reply["client_timestamp"] = request["timestamp"]
    if "_pingId" in request:
        reply["_pingId"] = request["_pingId"]
    return reply


def ack(kind: str, message: str, request: JSON) -> JSON:
    return with_request_id({"type": kind, "status": "success", "message": message}, request)


def with_request_id(reply: JSON, request: JSON) -> JSON:
    if request.get("request_id") is not None:
        reply["request_id"] = request["request_id"]
    return reply


def websocket_handlers() -> list[tuple[str, type]]:
    return [(ROUTE, FeedSocket)]
