"""`ZerodhaBroker`: a Zerodha Kite Connect v3 account behind our async `Broker` protocol.

It speaks HTTP with `httpx.AsyncClient` (`http.py`), never the official SDK, and is assembled
from one module per concept: the login (`session.py`), the master contract (`master.py`),
books (`books.py`), orders (`orders.py`), market data (`market.py`) and order updates
(`updates.py`), with every Kite spelling in `mapping.py`.

Every call first checks the login: a missing or expired one (Kite logins end at 06:00 IST) is
`BrokerSessionExpired` "broker session expired ..." before Kite is asked, and a
`TokenException` from Kite drops the login and says the same. The master contract is
downloaded on first need (and cached on disk for the day), since Kite names instruments its
own way and every request must be translated.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from openalgo_lab.brokers.base import InstrumentKey
from openalgo_lab.brokers.zerodha import mapping
from openalgo_lab.brokers.zerodha.books import Books, OrderMemory
from openalgo_lab.brokers.zerodha.http import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    KiteHttp,
    RateClass,
    RetryPolicy,
)
from openalgo_lab.brokers.zerodha.market import KiteMarket
from openalgo_lab.brokers.zerodha.master import (
    KiteSymbols,
    ParseReport,
    parse_instruments,
    read_cache,
    write_cache,
)
from openalgo_lab.brokers.zerodha.orders import RECONCILE_DELAYS, KiteOrders
from openalgo_lab.brokers.zerodha.session import (
    DEFAULT_LOGIN_URL,
    KiteLogin,
    KiteSession,
    LoginHelper,
    checksum,
)
from openalgo_lab.brokers.zerodha.updates import DEFAULT_INTERVAL, OrderUpdates
from openalgo_lab.domain.calendar import IST, MarketCalendar
from openalgo_lab.domain.clock import Clock, SystemClock
from openalgo_lab.domain.enums import Action, Exchange, Interval, PriceType
from openalgo_lab.domain.errors import (
    AuthError,
    BrokerError,
    BrokerSessionExpired,
    NotFoundError,
    OpenAlgoError,
    OrderRejected,
    ValidationError,
)
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

log = logging.getLogger(__name__)

T = TypeVar("T")
STREAM_INTERVAL = 1.0  # seconds between quote polls of `stream()` (Kite: 1 quote call/s)


@dataclass(frozen=True)
class KiteConfig:
    """One Kite app and account. `api_secret` never appears in a repr or a log."""

    api_key: str
    api_secret: str = field(repr=False)
    account: str = ""
    base_url: str = DEFAULT_BASE_URL
    login_url: str = DEFAULT_LOGIN_URL
    cache_dir: Path | None = None  # where the day's instrument dump is kept
    timeout: float = DEFAULT_TIMEOUT
    poll_interval: float = DEFAULT_INTERVAL
    amo: bool = False  # send orders as after-market orders when the exchange is closed

    OPTIONS = ("base_url", "login_url", "timeout", "poll_interval", "amo")

    @classmethod
    def from_options(
        cls,
        api_key: str,
        api_secret: str,
        options: Mapping[str, str],
        *,
        account: str = "",
        cache_dir: Path | None = None,
    ) -> KiteConfig:
        """Build from stored text options (`accounts set-broker ... --option k=v`)."""
        unknown = sorted(set(options) - set(cls.OPTIONS))
        if unknown:
            raise ValidationError("options", f"unknown Zerodha options {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name in ("base_url", "login_url"):
            if options.get(name):
                values[name] = str(options[name]).rstrip("/")
        for name in ("timeout", "poll_interval"):
            if options.get(name):
                try:
                    values[name] = float(options[name])
                except ValueError:
                    raise ValidationError(name, "must be a number of seconds") from None
                if values[name] <= 0:
                    raise ValidationError(name, "must be positive")
        if options.get("amo"):
            values["amo"] = str(options["amo"]).lower() in ("1", "true", "yes")
        return cls(api_key, api_secret, account=account, cache_dir=cache_dir, **values)


class _CurrentSymbols:
    """The master in use, behind `mapping.SymbolResolver`; replaced when a new day's dump
    is loaded."""

    def __init__(self) -> None:
        self.current: KiteSymbols | None = None

    def _get(self) -> KiteSymbols:
        if self.current is None:
            raise BrokerError("Zerodha's master contract is not loaded yet")
        return self.current

    def instrument(self, exchange: Exchange, symbol: str) -> Instrument:
        return self._get().instrument(exchange, symbol)

    def from_kite(self, kite_exchange: str, tradingsymbol: str) -> tuple[Exchange, str]:
        return self._get().from_kite(kite_exchange, tradingsymbol)


class ZerodhaBroker:
    """A Zerodha account through Kite Connect v3 (see the module docstring)."""

    name = "zerodha"

    def __init__(
        self,
        config: KiteConfig,
        *,
        clock: Clock | None = None,
        calendar: MarketCalendar | None = None,
        on_login: Callable[[KiteLogin], None] | None = None,
        reload: Callable[[], KiteLogin | None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: Mapping[RateClass, Sequence[tuple[int, float]]] | None = None,
        retry: RetryPolicy | None = None,
        reconcile_delays: Sequence[float] = RECONCILE_DELAYS,
        stream_interval: float = STREAM_INTERVAL,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.calendar = calendar
        self.http = KiteHttp(
            config.api_key,
            base_url=config.base_url,
            timeout=config.timeout,
            limits=limits,
            retry=retry,
            transport=transport,
        )
        self.session = KiteSession(
            self.http,
            config.api_secret,
            account=config.account,
            login_base=config.login_url,
            clock=self.clock,
            on_login=on_login,
            reload=reload,
        )
        self._symbols = _CurrentSymbols()
        self._master_day: str = ""
        self._master_lock: asyncio.Lock | None = None
        self.master_report = ParseReport()
        self.memory = OrderMemory()
        self.books = Books(self.http, self._symbols, self.memory)
        self.orders_api = KiteOrders(
            self.http,
            self.books,
            clock=self.clock.now,
            variety=self._variety,
            reconcile_delays=reconcile_delays,
        )
        self.market = KiteMarket(self.http, self._symbols, self.clock.now)
        self.updates = OrderUpdates(
            lambda: self._call(self.books.orders),
            lambda: self._call(self.books.trades),
            interval=config.poll_interval,
            ours=self.memory.is_ours,
        )
        self.stream_interval = stream_interval

    def __repr__(self) -> str:
        return f"ZerodhaBroker(account={self.config.account!r}, {self.session!r})"

    # -- building from stored credentials (engine/live.py) ---------------------------------
    @classmethod
    def check_options(cls, options: Mapping[str, str]) -> None:
        """`ValidationError` naming a bad option (`base_url`, `timeout`, ...)."""
        KiteConfig.from_options("key", "secret", options)

    @classmethod
    def from_credentials(
        cls,
        *,
        account: str,
        api_key: str,
        api_secret: str,
        options: Mapping[str, str],
        cache_dir: Path | None,
        clock: Clock | None = None,
        calendar: MarketCalendar | None = None,
        save_login: Callable[[str, str, datetime], None] | None = None,
        stored_login: Callable[[], tuple[str, str, datetime] | None] | None = None,
    ) -> ZerodhaBroker:
        """An adapter for a stored account: its logins are saved with `save_login` (access
        token, user id, expiry) and looked up with `stored_login` when it has none."""
        config = KiteConfig.from_options(
            api_key, api_secret, options, account=account, cache_dir=cache_dir
        )

        def on_login(login: KiteLogin) -> None:
            if save_login is not None:
                save_login(login.access_token, login.user_id, login.expires_at)

        def reload() -> KiteLogin | None:
            found = stored_login() if stored_login is not None else None
            if found is None:
                return None
            token, user_id, expires = found
            return KiteLogin(token, user_id, expires - timedelta(days=1), expires)

        broker = cls(config, clock=clock, calendar=calendar, on_login=on_login, reload=reload)
        broker.restore_login(reload())
        return broker

    # -- login -----------------------------------------------------------------------------
    @property
    def logged_in(self) -> bool:
        login = self.session.login
        return login is not None and not login.expired(self.clock.now())

    def login_url(self) -> str:
        return self.session.login_url()

    async def complete_login(self, request_token_or_url: str) -> KiteLogin:
        return await self.session.complete_login(request_token_or_url)

    def login_helper(self) -> LoginHelper:
        """A notebook object that shows the login link and completes the login."""
        return LoginHelper(self.session)

    def restore_login(self, login: KiteLogin | None) -> bool:
        return self.session.restore(login)

    async def _call(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run one piece of Kite work with a usable login and a loaded master."""
        self.session.ensure()
        try:
            await self.load_master()
            return await work()
        except BrokerSessionExpired:
            raise self.session.session_expired() from None

    # -- the master contract ---------------------------------------------------------------
    @property
    def master(self) -> MasterContract | None:
        """The loaded master contract (None until the first call that needs it)."""
        current = self._symbols.current
        return current.master if current is not None else None

    async def load_master(self, *, force: bool = False, progress: bool = False) -> MasterContract:
        """Today's master: from memory, the day's cache file, or Kite (`GET /instruments`)."""
        day = self.clock.now().astimezone(IST).date()
        current = self._symbols.current
        if current is not None and self._master_day == day.isoformat() and not force:
            return current.master
        if self._master_lock is None:
            self._master_lock = asyncio.Lock()
        async with self._master_lock:
            current = self._symbols.current
            if current is not None and self._master_day == day.isoformat() and not force:
                return current.master
            cache = self.config.cache_dir
            text = (
                None if force or cache is None else await asyncio.to_thread(read_cache, cache, day)
            )
            if text is None:
                text = await self.http.get_text("/instruments")
                if cache is not None:
                    await asyncio.to_thread(write_cache, cache, day, text)
            report = ParseReport()
            symbols = await asyncio.to_thread(_build_symbols, text, report, progress)
            self._symbols.current = symbols
            self._master_day = day.isoformat()
            self.master_report = report
            log.info(
                "Zerodha master for %s: %d instruments (%d rows, skipped %s)",
                day,
                report.kept,
                report.rows,
                report.skipped or "none",
            )
            return symbols.master

    async def master_contract(self) -> list[Instrument]:
        try:
            return list(await self.load_master())
        except BrokerSessionExpired:
            raise self.session.session_expired() from None

    # -- orders ----------------------------------------------------------------------------
    def _variety(self, request: OrderRequest) -> str:
        if (
            self.config.amo
            and self.calendar is not None
            and not self.calendar.is_open(request.exchange, self.clock.now())
        ):
            return "amo"
        return "regular"

    async def place_order(self, request: OrderRequest) -> Order:
        order = await self._call(lambda: self.orders_api.place(request))
        self.updates.track(order.orderid)
        return order

    async def modify_order(self, orderid: str, change: OrderModification) -> Order:
        return await self._call(lambda: self.orders_api.modify(orderid, change))

    async def cancel_order(self, orderid: str) -> Order:
        return await self._call(lambda: self.orders_api.cancel(orderid))

    async def cancel_all_orders(self) -> tuple[list[str], list[str]]:
        cancelled: list[str] = []
        failed: list[str] = []
        for order in await self.orders():
            if order.status.is_terminal:
                continue
            try:
                await self.cancel_order(order.orderid)
                cancelled.append(order.orderid)
            except BrokerSessionExpired:
                raise
            except OpenAlgoError as err:
                log.warning("cancelling order %s failed: %s", order.orderid, err.message)
                failed.append(order.orderid)
        return cancelled, failed

    async def close_all_positions(self) -> list[Order]:
        """A MARKET order against every open position, in its own product."""
        placed: list[Order] = []
        failures: list[str] = []
        for pos in await self.positions():
            if pos.quantity == 0 or pos.exchange.is_index:
                continue
            request = OrderRequest(
                symbol=pos.symbol,
                exchange=pos.exchange,
                action=Action.SELL if pos.quantity > 0 else Action.BUY,
                quantity=abs(pos.quantity),
                pricetype=PriceType.MARKET,
                product=pos.product,
                tag="oaclose" + uuid.uuid4().hex[:13],
            )
            try:
                placed.append(await self.place_order(request))
            except BrokerSessionExpired:
                raise
            except OpenAlgoError as err:
                failures.append(f"{pos.symbol} {pos.product.value}: {err.message}")
        if failures:
            raise OrderRejected(
                f"closed {len(placed)} of {len(placed) + len(failures)} positions; "
                + "; ".join(failures)
            )
        return placed

    # -- books -----------------------------------------------------------------------------
    async def orders(self) -> list[Order]:
        return await self._call(self.books.orders)

    async def order(self, orderid: str) -> Order:
        return await self._call(lambda: self.books.order(orderid))

    async def trades(self) -> list[Trade]:
        return await self._call(self.books.trades)

    async def positions(self) -> list[Position]:
        return await self._call(self.books.positions)

    async def holdings(self) -> list[Holding]:
        return await self._call(self.books.holdings)

    async def funds(self) -> Funds:
        return await self._call(self.books.funds)

    # -- market data -----------------------------------------------------------------------
    async def quote(self, exchange: Exchange, symbol: str) -> Quote:
        return (await self.depth(exchange, symbol)).quote

    async def quotes(self, keys: Sequence[InstrumentKey]) -> dict[InstrumentKey, Quote]:
        depths = await self._call(lambda: self.market.depths(keys))
        return {key: depth.quote for key, depth in depths.items()}

    async def depth(self, exchange: Exchange, symbol: str) -> Depth:
        return await self._call(lambda: self.market.depth(exchange, symbol))

    async def history(
        self,
        exchange: Exchange,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
    ) -> list[Candle]:
        return await self._call(lambda: self.market.history(exchange, symbol, interval, start, end))

    def intervals(self) -> list[Interval]:
        return list(mapping.INTERVAL_TO_KITE)

    async def stream(self, keys: Sequence[InstrumentKey]) -> AsyncIterator[Tick]:
        """Ticks by polling `/quote` (Kite's binary WebSocket ticker is not implemented).
        Read errors are logged and retried; the stream ends only when the consumer stops."""
        for exchange, symbol in keys:
            if self.master is not None and self.master.find(exchange, symbol) is None:
                raise NotFoundError(f"Symbol {symbol} not found on {exchange}")
        last_error = ""
        while True:
            try:
                depths = await self._call(lambda: self.market.depths(keys))
                last_error = ""
            except OpenAlgoError as err:
                if err.message != last_error:
                    log.warning("Kite quote stream: %s", err.message)
                last_error = err.message
                depths = {}
            for depth in depths.values():
                yield Tick(depth)
            await asyncio.sleep(self.stream_interval)

    def order_events(self) -> AsyncIterator[OrderEvent]:
        return self.updates.events()

    def remember(
        self,
        orderid: str,
        strategy: str,
        tag: str,
        *,
        resume_from: Mapping[str, int] | None = None,
    ) -> None:
        """An order sent before a restart: its strategy and our tag come back on its rows;
        one still open then (`resume_from`: the fills recorded) has its updates resumed."""
        self.memory.remember(orderid, strategy, tag)
        if resume_from is not None:
            self.updates.resume(orderid, resume_from)

    def wire_tag(self, tag: str) -> str:
        """The tag Kite shows for an order we sent with `tag` (Kite keeps 20 characters)."""
        return mapping.kite_tag(tag)

    # -- postbacks -------------------------------------------------------------------------
    def verify_postback(self, payload: Mapping[str, Any]) -> None:
        """Kite signs a postback with sha256(order_id + order_timestamp + api_secret);
        `AuthError` unless this one carries that checksum."""
        given = str(payload.get("checksum") or "")
        expected = checksum(
            str(payload.get("order_id") or ""),
            str(payload.get("order_timestamp") or ""),
            self.config.api_secret,
        )
        if not given or not hmac.compare_digest(given.lower(), expected):
            raise AuthError("postback checksum does not match this account's Kite app")

    async def accept_postback(self, payload: Mapping[str, Any]) -> list[OrderEvent]:
        """A verified postback, fed into the order updates (published once if it is news)."""
        self.verify_postback(payload)
        await self.load_master()
        order = self.books.order_from_row(payload)
        return await self.updates.feed(order)

    # -- lifecycle -------------------------------------------------------------------------
    async def aclose(self) -> None:
        await self.updates.stop()
        await self.http.aclose()


def _build_symbols(text: str, report: ParseReport, progress: bool) -> KiteSymbols:
    from tqdm.auto import tqdm

    total = max(0, text.count("\n") - 1)
    with tqdm(
        total=total, desc="Zerodha master", unit="rows", disable=not progress, leave=False
    ) as bar:

        def tick(rows: int) -> None:
            bar.update(rows)

        instruments = parse_instruments(text, report=report, progress=tick)
    return KiteSymbols(MasterContract(instruments))
