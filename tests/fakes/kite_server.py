"""A local Kite Connect v3 server for tests: Kite's routes, envelopes, errors, limits and faults.

    fake = KiteFake(api_key="kite_key", api_secret="kite_secret", user_id="AB1234")
    base_url = fake.start()                     # http://127.0.0.1:PORT, own thread and loop
    kite = KiteConnect("kite_key", root=base_url)
    kite.generate_session(fake.request_token(), api_secret="kite_secret")
    fake.set_ltp("NSE", "SBIN", Decimal("812.35"))
    fake.fail_next("^POST /orders/", "lost")    # placed, answer dropped
    fake.stop()

What the server checks, as Kite does: `X-Kite-Version: 3` on every call, `Authorization:
token api_key:access_token` on every call but the login exchange, logout and the instrument dump;
form-encoded bodies for POST/PUT, query strings for GET/DELETE. Answers are
`{"status": "success", "data": ...}` or the error envelope with Kite's exception type and HTTP
status; the instrument dump is CSV (gzip when the client accepts it). State, matching and
portfolio live in `kite_state`; faults and rate limits in `kite_faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any

import tornado.http1connection
import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web

from openalgo_lab.domain.clock import Clock, ManualClock, SystemClock
from tests.fakes.kite_errors import KiteError, dumps, general_error, input_error, network_error
from tests.fakes.kite_faults import Faults, RateLimiter
from tests.fakes.kite_instruments import KiteInstrument, instruments_csv
from tests.fakes.kite_orders import KiteOrder, KiteTrade
from tests.fakes.kite_state import DEFAULT_OPENING_BALANCE, KiteState

KITE_VERSION = "3"
QUOTE_LIMIT = 500
LTP_OHLC_LIMIT = 1000
DEFAULT_TIMEOUT_HOLD = 10.0  # seconds; longer than the SDK's 7 s default
POSTBACK_TIMEOUT = 5.0
_HTML_ERROR = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True, slots=True)
class KiteRequest:
    """One request as the route functions see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, str]
    headers: dict[str, str]

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True, slots=True)
class CsvBody:
    text: str


RouteFn = Callable[[KiteState, KiteRequest, re.Match[str]], Any]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    fn: RouteFn
    authenticated: bool = True


def _route(method: str, path: str, authenticated: bool = True) -> Callable[[RouteFn], RouteFn]:
    def register(fn: RouteFn) -> RouteFn:
        ROUTES.append(Route(method, re.compile(f"^{path}$"), fn, authenticated))
        return fn

    return register


ROUTES: list[Route] = []


# -- routes -------------------------------------------------------------------------------------
@_route("POST", "/session/token", authenticated=False)
def _login(state: KiteState, req: KiteRequest, _: re.Match[str]) -> Any:
    return state.create_session(req.form)


@_route("DELETE", "/session/token", authenticated=False)
def _logout(state: KiteState, req: KiteRequest, _: re.Match[str]) -> Any:
    return state.logout(req.arg("api_key"), req.arg("access_token"))


@_route("GET", "/user/profile")
def _profile(state: KiteState, req: KiteRequest, _: re.Match[str]) -> Any:
    return state.profile()


@_route("GET", "/user/margins")
def _margins(state: KiteState, req: KiteRequest, _: re.Match[str]) -> Any:
    return state.margins_payload(None)


@_route("GET", "/user/margins/(?P<segment>[^/]+)")
def _margins_segment(state: KiteState, req: KiteRequest, m: re.Match[str]) -> Any:
    return state.margins_payload(m["segment"])


@_route("GET", "/orders")
def _orders(state: KiteState, req: KiteRequest, _: re.Match[str]) -> Any:
    return state.order_book()


@_route("POST", "/orders/(?P<variety>[^/]+)")
def _place(state: KiteState, req: KiteRequest, m: re.Match[str]) -> Any:
    return {"order_id": state.place(m["variety"], req.form)}


@_route("PUT", "/orders/(?P<variety>[^/]+)/(?P<order_id>[^/]+)")
def _modify(state: KiteState, req: KiteRequest, m: re.Match[str]) -> Any:
    return {"order_id": state.modify(m["variety"], m["order_id"], req.form)}


@_route("DELETE", "/orders/(?P<variety>[^/]+)/(?P<order_id>[^/]+)")
def _cancel(state: KiteState, req: KiteRequest, m: re.Match[str]) -> Any:
    return {"order_id": state.cancel(m["variety"], m["order_id"])}


@_route("GET", "/orders/(?P<order_id>[^/]+)")
def _order_history(state: KiteState, req: KiteRequest, m: re.Match[str]) -> Any:
    return state.order_history(m["order_id"])


@_route("GET", "/orders/(?P<order_id>[^/]+)/trades")
def _order_trades(state: KiteState, req: KiteRequest, m: re.Match[str]) -> Any:
    return state.order_trades(m["order_id"])


@_route("GET", "/trades")
def _trades(state: KiteState, req: KiteRequest, _: re.Match[str]) -> Any:
    return state.trade_book()


@_route("GET", "/portfolio/positions")
def _positions(state: KiteState, req: KiteRequest, _: re.Match[str]) -> Any:
    return state.positions_payload()


@_route("GET", "/portfolio/holdings")
def _holdings(state: KiteState, req: KiteRequest, _: re.Match[str]) -> Any:
    return state.holdings_payload()


def _quote_keys(req: KiteRequest, limit: int) -> list[str]:
    keys = req.query.get("i", [])
    if not keys:
        raise input_error("No instruments specified: pass `i=EXCHANGE:TRADINGSYMBOL`.")
    if len(keys) > limit:
        raise input_error(f"Too many instruments: at most {limit} per request.")
    return keys


@_route("GET", "/quote")
def _quote(state: KiteState, req: KiteRequest, _: re.Match[str]) -> Any:
    return state.quote_entries(_quote_keys(req, QUOTE_LIMIT), "quote")


@_route("GET", "/quote/ltp")
def _ltp(state: KiteState, req: KiteRequest, _: re.Match[str]) -> Any:
    return state.quote_entries(_quote_keys(req, LTP_OHLC_LIMIT), "ltp")


@_route("GET", "/quote/ohlc")
def _ohlc(state: KiteState, req: KiteRequest, _: re.Match[str]) -> Any:
    return state.quote_entries(_quote_keys(req, LTP_OHLC_LIMIT), "ohlc")


@_route("GET", "/instruments", authenticated=False)
def _instruments(state: KiteState, req: KiteRequest, _: re.Match[str]) -> Any:
    return CsvBody(instruments_csv(state.instruments))


@_route("GET", "/instruments/(?P<exchange>[A-Z]+)", authenticated=False)
def _instruments_exchange(state: KiteState, req: KiteRequest, m: re.Match[str]) -> Any:
    rows = [i for i in state.instruments if i.exchange == m["exchange"]]
    if not rows:
        raise input_error(f"Invalid exchange: {m['exchange']}.")
    return CsvBody(instruments_csv(rows))


@_route("GET", "/instruments/historical/(?P<token>[^/]+)/(?P<interval>[^/]+)")
def _historical(state: KiteState, req: KiteRequest, m: re.Match[str]) -> Any:
    query = {name: values[-1] for name, values in req.query.items()}
    return state.historical(m["token"], m["interval"], query)


def resolve(method: str, path: str) -> tuple[Route, re.Match[str]]:
    """The route for a request, or Kite's 404 / 405 envelope."""
    path_known = False
    for route in ROUTES:
        match = route.pattern.match(path)
        if match is None:
            continue
        path_known = True
        if route.method == method:
            return route, match
    if path_known:
        raise general_error(f"Method {method} is not allowed on {path}.", 405)
    raise general_error("Route not found", 404)


# -- HTTP ---------------------------------------------------------------------------------------
class _Handler(tornado.web.RequestHandler):
    """Every request: log, faults, rate limit, version header, auth, route, envelope."""

    def initialize(self, fake: KiteFake) -> None:
        self.fake = fake

    def check_xsrf_cookie(self) -> None:  # an API, not a form site
        return

    async def _handle(self, *_: str) -> None:
        method, path = self.request.method or "GET", self.request.path
        self.fake.requests.append((method, path))
        fault = self.fake.faults.take(method, path)
        if fault == "timeout":
            await self.fake.hold()
            self._send_html(504, "Gateway Time-out")
            return
        if fault is not None and fault != "lost":
            self._send_fault(fault)
            return
        status, body = self._dispatch(method, path)
        if fault == "lost":
            self._drop_connection()
            return
        self._send(status, body)

    get = post = put = delete = _handle

    def _dispatch(self, method: str, path: str) -> tuple[int, Any]:
        try:
            if not self.fake.rate_limits.allow(method, path):
                raise network_error("Too many requests", 429)
            route, match = resolve(method, path)
            if (
                self.fake.require_version_header
                and self.request.headers.get("X-Kite-Version") != KITE_VERSION
            ):
                raise input_error("Invalid or missing `X-Kite-Version` header: send 3.")
            if route.authenticated:
                self.fake.state.authenticate(self.request.headers.get("Authorization"))
            return 200, route.fn(self.fake.state, self._kite_request(method, path), match)
        except KiteError as error:
            return error.status, error

    def _drop_connection(self) -> None:
        """Close the socket without an answer: the client sees the connection reset."""
        connection = self.request.connection
        if isinstance(connection, tornado.http1connection.HTTP1Connection):
            connection.stream.close()

    def _kite_request(self, method: str, path: str) -> KiteRequest:
        query = {k: [v.decode() for v in vs] for k, vs in self.request.query_arguments.items()}
        form = {k: vs[-1].decode() for k, vs in self.request.body_arguments.items()}
        return KiteRequest(method, path, query, form, dict(self.request.headers))

    def _send(self, status: int, body: Any) -> None:
        self.set_status(status)
        if isinstance(body, CsvBody):
            self.set_header("Content-Type", "text/csv")
            self.finish(body.text)
            return
        self.set_header("Content-Type", "application/json")
        payload = (
            body.body() if isinstance(body, KiteError) else {"status": "success", "data": body}
        )
        self.finish(dumps(payload))

    def _send_fault(self, kind: str) -> None:
        if kind == "malformed":
            self.set_header("Content-Type", "application/json")
            self.finish('{"status": "success", "data": {"order_id": "2')
        elif kind == "html":
            self._send_html(502, _HTML_ERROR)
        elif kind == "429":
            self._send(429, network_error("Too many requests", 429))
        elif kind == "500":
            self._send(500, general_error("Something went wrong. Please try again.", 500))
        elif kind == "502":
            self._send(502, KiteError("DataException", "Bad response from the OMS.", 502))
        else:
            self._send(503, network_error("Unable to reach the OMS. Please try again.", 503))

    def _send_html(self, status: int, text: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html")
        self.finish(text)


class KiteFake:
    """The server, its account state, and the test's controls (thread-safe)."""

    def __init__(
        self,
        api_key: str = "kite_key",
        api_secret: str = "kite_secret",
        user_id: str = "AB1234",
        *,
        now: datetime | None = None,
        opening_balance: Decimal = DEFAULT_OPENING_BALANCE,
    ) -> None:
        clock: Clock = ManualClock(now) if now is not None else SystemClock()
        self.state = KiteState(api_key, api_secret, user_id, clock, opening_balance=opening_balance)
        self.state.listener = self._queue_postback
        self.faults = Faults()
        self.rate_limits = RateLimiter()
        self.requests: list[tuple[str, str]] = []
        self.postbacks: list[dict[str, Any]] = []  # {"url", "payload", "status" or "error"}
        self.postback_url: str | None = None
        self.require_version_header = True
        self.timeout_hold = DEFAULT_TIMEOUT_HOLD
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._outbox: asyncio.Queue[tuple[str, dict[str, Any]]] | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> str:
        """Serve on a free loopback port from a background thread; returns the base URL."""
        if self._thread is not None:
            raise RuntimeError("KiteFake is already running")
        self._ready.clear()
        self._failure = None
        self._thread = threading.Thread(target=self._run, name="kite-fake", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("KiteFake did not start within 10 s")
        if self._failure is not None:
            raise RuntimeError("KiteFake failed to start") from self._failure
        assert self._base_url is not None
        return self._base_url

    def stop(self) -> None:
        """Stop serving; held requests are released and pending postbacks dropped."""
        loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is None or stopping is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(stopping.set)
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> KiteFake:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("KiteFake is not started")
        return self._base_url

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # surfaced by start()
            self._failure = error
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._outbox = asyncio.Queue()
        app = tornado.web.Application([(r".*", _Handler, {"fake": self})], compress_response=True)
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        server = tornado.httpserver.HTTPServer(app)
        server.add_sockets(sockets)
        self._base_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        sender = asyncio.create_task(self._send_postbacks())
        self._ready.set()
        await self._stopping.wait()
        server.stop()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        await asyncio.wait_for(server.close_all_connections(), 5)

    async def hold(self) -> None:
        """Keep a request waiting for `timeout_hold` seconds, or until the server stops."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self.timeout_hold)

    # -- postbacks ------------------------------------------------------------------------------
    def _queue_postback(self, payload: dict[str, Any]) -> None:
        url, loop, outbox = self.postback_url, self._loop, self._outbox
        if url is None or loop is None or outbox is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(outbox.put_nowait, (url, payload))

    async def _send_postbacks(self) -> None:
        """One at a time, in the order the changes happened."""
        assert self._outbox is not None
        client = tornado.httpclient.AsyncHTTPClient()
        while True:
            url, payload = await self._outbox.get()
            record: dict[str, Any] = {"url": url, "payload": json.loads(dumps(payload))}
            try:
                response = await client.fetch(
                    url,
                    method="POST",
                    body=dumps(payload),
                    headers={"Content-Type": "application/json"},
                    request_timeout=POSTBACK_TIMEOUT,
                    raise_error=False,
                )
                record["status"] = response.code
            except Exception as error:  # the receiver is down: Kite does not retry either
                record["error"] = f"{type(error).__name__}: {error}"
            self.postbacks.append(record)

    # -- controls -------------------------------------------------------------------------------
    def request_token(self) -> str:
        """A fresh request token, as if the user had just logged in on Kite's page."""
        return self.state.issue_request_token()

    def expire_sessions(self) -> None:
        """Invalidate every access token now (every later call gets TokenException 403)."""
        self.state.expire_all()

    def set_ltp(self, exchange: str, tradingsymbol: str, price: Decimal) -> None:
        self.state.set_ltp(exchange, tradingsymbol, price)

    def ltp(self, exchange: str, tradingsymbol: str) -> Decimal:
        with self.state.lock:
            return self.state.price(self.state.instrument(exchange, tradingsymbol)).last_price

    def fail_next(self, route_regex: str, kind: str, times: int = 1) -> None:
        """The next `times` requests whose `"METHOD /path"` matches get fault `kind`."""
        self.faults.add(route_regex, kind, times)

    @property
    def rate_limits_enabled(self) -> bool:
        return self.rate_limits.enabled

    @rate_limits_enabled.setter
    def rate_limits_enabled(self, value: bool) -> None:
        self.rate_limits.enabled = value
        self.rate_limits.reset()

    @property
    def fill_limit(self) -> int | None:
        """At most this many units fill per price update (None: everything at once)."""
        return self.state.fill_limit

    @fill_limit.setter
    def fill_limit(self, value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError("fill_limit must be at least 1 or None")
        self.state.fill_limit = value

    def set_market_open(self, is_open: bool) -> None:
        self.state.set_market_open(is_open)

    def add_holding(
        self, exchange: str, tradingsymbol: str, quantity: int, average_price: Decimal
    ) -> None:
        self.state.add_holding(exchange, tradingsymbol, quantity, average_price)

    @property
    def orders(self) -> list[KiteOrder]:
        with self.state.lock:
            return list(self.state.orders.values())

    @property
    def trades(self) -> list[KiteTrade]:
        with self.state.lock:
            return list(self.state.trades)

    @property
    def instruments(self) -> list[KiteInstrument]:
        return list(self.state.instruments)

    def instrument(self, exchange: str, tradingsymbol: str) -> KiteInstrument:
        return self.state.instrument(exchange, tradingsymbol)

    # -- time -----------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.state.now()

    def set_now(self, at: datetime) -> None:
        """From now on time stands still at `at` unless moved (it cannot go backwards)."""
        with self.state.lock:
            if isinstance(self.state.clock, ManualClock):
                self.state.clock.set(at)
            else:
                self.state.clock = ManualClock(at)

    def advance(self, delta: timedelta) -> datetime:
        with self.state.lock:
            start = self.state.now()
            self.set_now(start.astimezone(UTC) + delta)
            return self.state.now()

    def next_session(self) -> None:
        """The next trading day at 09:15 IST, with Kite's overnight settlement (see KiteState)."""
        if not isinstance(self.state.clock, ManualClock):
            self.set_now(self.state.now())
        self.state.next_session()
