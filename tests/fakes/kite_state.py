"""The fake Kite account: sessions, the order book, a small matching model, portfolio and funds.

No HTTP here: `kite_server` turns requests into calls on `KiteState` and its answers (or
`KiteError`s) into Kite's envelopes. Everything is guarded by one lock because the server runs on
its own thread while the test thread moves prices and inspects orders.

Matching: a MARKET order fills at the last price as soon as it is open; a LIMIT order fills at
the last price if it is marketable when it opens, otherwise it rests and fills at its own price
once the last price reaches it; SL / SL-M wait in TRIGGER PENDING until the last price touches the
trigger, then behave as LIMIT / MARKET. `fill_limit` caps the quantity one price update can fill
(whole lots for F&O), which makes partial fills. IOC cancels what did not fill at once; TTL
cancels after its minutes. An order moves through Kite's transient states (PUT ORDER REQ
RECEIVED, VALIDATION PENDING, OPEN PENDING; MODIFY ...; CANCEL PENDING), all kept in its history.

The session is open or closed by the test's switch (`set_market_open`), not by the clock, so a
test runs at any hour; closed, regular orders are refused and AMO orders wait for the open.

Sessions: a request token is single-use and lives ten minutes; an access token lives until the
next 06:00 in India (Kite's daily expiry), or until logout or `expire_all`.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from openalgo_lab.domain.calendar import MarketCalendar
from openalgo_lab.domain.clock import Clock, ManualClock
from openalgo_lab.domain.enums import Exchange
from tests.fakes.kite_errors import IST, input_error, kite_timestamp, order_error, token_error
from tests.fakes.kite_instruments import KiteInstrument, instruments_for
from tests.fakes.kite_market import PriceState, candles, on_tick, parse_kite_datetime
from tests.fakes.kite_orders import (
    MAX_MODIFICATIONS,
    KiteOrder,
    KiteTrade,
    ModifyForm,
    PlaceForm,
    Status,
    check_tick,
    parse_modify,
    parse_place,
    parse_variety,
)
from tests.fakes.kite_portfolio import Funds, KiteHolding, MarginUse, PositionBucket, bucket_margin

REQUEST_TOKEN_LIFETIME = timedelta(minutes=10)
DAILY_EXPIRY = time(6, 0)
DEFAULT_OPENING_BALANCE = Decimal(1_000_000)
APP_ID = 1234
CASH_EXCHANGES = ("NSE", "BSE")
DERIVATIVE_EXCHANGES = ("NFO", "BFO", "CDS", "BCD", "MCX")
POSTBACK_STATUSES = (
    Status.OPEN,
    Status.TRIGGER_PENDING,
    Status.AMO_REQ_RECEIVED,
    Status.COMPLETE,
    Status.CANCELLED,
    Status.REJECTED,
)
# The postback carries the order keys of Kite's sample postback (not the order book's newer ones).
POSTBACK_ORDER_KEYS = (
    "placed_by",
    "order_id",
    "exchange_order_id",
    "parent_order_id",
    "status",
    "status_message",
    "status_message_raw",
    "order_timestamp",
    "exchange_update_timestamp",
    "exchange_timestamp",
    "variety",
    "exchange",
    "tradingsymbol",
    "instrument_token",
    "order_type",
    "transaction_type",
    "validity",
    "product",
    "quantity",
    "disclosed_quantity",
    "price",
    "trigger_price",
    "average_price",
    "filled_quantity",
    "pending_quantity",
    "cancelled_quantity",
    "market_protection",
    "meta",
    "tag",
    "guid",
)

Listener = Callable[[dict[str, Any]], None]


def next_daily_expiry(issued: datetime) -> datetime:
    """The first 06:00 IST strictly after `issued`."""
    local = issued.astimezone(IST)
    expiry = datetime.combine(local.date(), DAILY_EXPIRY, tzinfo=IST)
    return expiry if expiry > local else expiry + timedelta(days=1)


def postback_checksum(order_id: str, order_timestamp: str, api_secret: str) -> str:
    """SHA-256 of order_id + order_timestamp + api_secret, as Kite signs its postbacks."""
    return hashlib.sha256((order_id + order_timestamp + api_secret).encode()).hexdigest()


@dataclass
class Session:
    access_token: str
    public_token: str
    enctoken: str
    login_time: datetime
    expires_at: datetime
    active: bool = True


class KiteState:
    """One Kite user's account as the OMS sees it."""

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        user_id: str,
        clock: Clock,
        calendar: MarketCalendar | None = None,
        opening_balance: Decimal = DEFAULT_OPENING_BALANCE,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.user_id = user_id
        self.clock = clock
        self.calendar = calendar or MarketCalendar()
        self.lock = threading.RLock()
        self.instruments = instruments_for(self.now().astimezone(IST).date())
        self.by_key = {(i.exchange, i.tradingsymbol): i for i in self.instruments}
        self.by_token = {i.instrument_token: i for i in self.instruments}
        self.prices: dict[int, PriceState] = {}
        self.orders: dict[str, KiteOrder] = {}
        self.trades: list[KiteTrade] = []
        self.positions: dict[tuple[str, str, str], PositionBucket] = {}
        self.holdings: dict[tuple[str, str], KiteHolding] = {}
        self.equity = Funds(opening_balance)
        self.commodity = Funds(opening_balance)
        self.fill_limit: int | None = None
        self.market_open = True
        self.listener: Listener | None = None
        self._request_tokens: dict[str, datetime] = {}
        self._sessions: dict[str, Session] = {}
        self._sequence = 0

    # -- time and ids ----------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    def _order_id(self) -> str:
        return f"{self.now().astimezone(IST):%y%m%d}{self._next():09d}"

    # -- sessions --------------------------------------------------------------------------------
    def issue_request_token(self) -> str:
        with self.lock:
            token = secrets.token_hex(16)
            self._request_tokens[token] = self.now()
            return token

    def create_session(self, form: Mapping[str, str]) -> dict[str, Any]:
        """`POST /session/token`: exchange a request token (checksummed) for an access token."""
        with self.lock:
            for name in ("api_key", "request_token", "checksum"):
                if not form.get(name):
                    raise input_error(f"Missing or empty field `{name}`.")
            if form["api_key"] != self.api_key:
                raise input_error("Invalid `api_key`.")
            issued = self._request_tokens.pop(form["request_token"], None)
            if issued is None or self.now() - issued > REQUEST_TOKEN_LIFETIME:
                raise token_error("Token is invalid or has expired.")
            expected = hashlib.sha256(
                (self.api_key + form["request_token"] + self.api_secret).encode()
            ).hexdigest()
            if not secrets.compare_digest(expected, form["checksum"]):
                raise token_error("Invalid checksum.")
            now = self.now()
            session = Session(
                access_token=secrets.token_hex(16),
                public_token=secrets.token_hex(16),
                enctoken=secrets.token_urlsafe(48),
                login_time=now,
                expires_at=next_daily_expiry(now),
            )
            self._sessions[session.access_token] = session
            return {
                **self.profile(),
                "api_key": self.api_key,
                "access_token": session.access_token,
                "public_token": session.public_token,
                "enctoken": session.enctoken,
                "refresh_token": "",
                "silo": "",
                "login_time": kite_timestamp(now),
            }

    def authenticate(self, authorization: str | None) -> None:
        """`Authorization: token api_key:access_token`; anything else is a TokenException."""
        with self.lock:
            if not authorization or not authorization.startswith("token "):
                raise token_error()
            api_key, _, access_token = authorization[len("token ") :].partition(":")
            session = self._sessions.get(access_token)
            if api_key != self.api_key or session is None or not session.active:
                raise token_error()
            if self.now() >= session.expires_at:
                session.active = False
                raise token_error()

    def logout(self, api_key: str | None, access_token: str | None) -> bool:
        with self.lock:
            if api_key != self.api_key:
                raise input_error("Invalid `api_key`.")
            session = self._sessions.get(access_token or "")
            if session is None or not session.active:
                raise token_error()
            session.active = False
            return True

    def expire_all(self) -> None:
        with self.lock:
            for session in self._sessions.values():
                session.active = False

    def active_sessions(self) -> int:
        with self.lock:
            now = self.now()
            return sum(1 for s in self._sessions.values() if s.active and now < s.expires_at)

    # -- reference ------------------------------------------------------------------------------
    def profile(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "user_type": "individual",
            "email": f"{self.user_id.lower()}@example.com",
            "user_name": "Fake Kite User",
            "user_shortname": "Fake",
            "broker": "ZERODHA",
            "exchanges": ["NSE", "NFO", "BFO", "CDS", "BSE", "MCX", "BCD", "MF"],
            "products": ["CNC", "NRML", "MIS", "BO", "CO"],
            "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
            "avatar_url": None,
            "meta": {"demat_consent": "physical"},
        }

    def instrument(self, exchange: str, tradingsymbol: str) -> KiteInstrument:
        inst = self.by_key.get((exchange, tradingsymbol))
        if inst is None:
            raise input_error(f"Invalid instrument: {exchange}:{tradingsymbol} not found.")
        return inst

    def price(self, inst: KiteInstrument) -> PriceState:
        state = self.prices.get(inst.instrument_token)
        if state is None:
            oi = 0 if not inst.is_derivative else 100 * max(inst.lot_size, 1) * 50
            state = PriceState.start(inst, oi)
            self.prices[inst.instrument_token] = state
        return state

    # -- market ---------------------------------------------------------------------------------
    def set_ltp(self, exchange: str, tradingsymbol: str, price: Decimal) -> None:
        """Move an instrument's last price and match its working orders."""
        with self.lock:
            inst = self.instrument(exchange, tradingsymbol)
            if price <= 0:
                raise ValueError(f"price must be positive, got {price}")
            self.price(inst).move(price, self.now())
            self.expire_ttl()
            if self.market_open:
                for order in self._working(inst.instrument_token):
                    self._match(order)

    def set_market_open(self, is_open: bool) -> None:
        """Open or close the session; opening releases after-market orders to the exchange."""
        with self.lock:
            self.market_open = is_open
            if not is_open:
                return
            for order in list(self.orders.values()):
                if order.status is Status.AMO_REQ_RECEIVED:
                    self._send_to_exchange(order)

    def _working(self, token: int) -> list[KiteOrder]:
        return [
            o
            for o in self.orders.values()
            if o.instrument_token == token and o.status in (Status.OPEN, Status.TRIGGER_PENDING)
        ]

    def quote_entries(self, keys: list[str], kind: str) -> dict[str, Any]:
        """`/quote`, `/quote/ltp`, `/quote/ohlc`: unknown keys are left out, as Kite does."""
        with self.lock:
            out: dict[str, Any] = {}
            now = self.now()
            for key in keys:
                inst = self._resolve_quote_key(key)
                if inst is None:
                    continue
                state = self.price(inst)
                if kind == "ltp":
                    out[key] = state.ltp_payload()
                elif kind == "ohlc":
                    out[key] = state.ohlc_payload()
                else:
                    out[key] = state.quote_payload(now)
            return out

    def _resolve_quote_key(self, key: str) -> KiteInstrument | None:
        if key.isdigit():
            return self.by_token.get(int(key))
        exchange, _, symbol = key.partition(":")
        return self.by_key.get((exchange, symbol))

    def historical(self, token: str, interval: str, query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            if not token.isdigit() or int(token) not in self.by_token:
                raise input_error(f"Invalid `instrument_token`: {token}.")
            inst = self.by_token[int(token)]
            for name in ("from", "to"):
                if not query.get(name):
                    raise input_error(f"Missing or empty field `{name}`.")
            start = parse_kite_datetime(query["from"], "from")
            end = parse_kite_datetime(query["to"], "to")
            with_oi = query.get("oi", "0") == "1"
            oi_base = self.price(inst).oi
            now = self.now()
        bars = candles(inst, interval, start, end, now, self.calendar, oi_base)
        return {"candles": [bar.row(with_oi) for bar in bars]}

    # -- orders ---------------------------------------------------------------------------------
    def place(self, variety: str, form: Mapping[str, str]) -> str:
        """`POST /orders/{variety}`: validate, create, run risk checks, open, match."""
        with self.lock:
            self.expire_ttl()
            request = parse_place(variety, form)
            inst = self.instrument(request.exchange, request.tradingsymbol)
            self._check_instrument(request, inst)
            order = self._new_order(request, inst)
            now = self.now()
            order.record(Status.PUT_ORDER_REQ_RECEIVED, now)
            order.record(Status.VALIDATION_PENDING, now)
            refusal = self._risk_refusal(order, inst)
            if refusal is not None:
                self._set(order, Status.REJECTED, refusal)
            elif request.variety == "amo":
                self._set(order, Status.AMO_REQ_RECEIVED)
            else:
                self._send_to_exchange(order)
            return order.order_id

    def _check_instrument(self, request: PlaceForm, inst: KiteInstrument) -> None:
        if inst.is_index:
            raise input_error(f"{inst.tradingsymbol} is an index and cannot be traded.")
        cash = inst.exchange in CASH_EXCHANGES
        if request.product == "CNC" and not cash:
            raise input_error(f"Product CNC is not allowed for {inst.exchange}; use NRML or MIS.")
        if request.product == "NRML" and cash:
            raise input_error(f"Product NRML is not allowed for {inst.exchange}; use CNC or MIS.")
        if request.product in ("CO", "MTF"):
            raise input_error(f"Product {request.product} is not available on this account.")
        lot = max(inst.lot_size, 1)
        if request.quantity % lot:
            raise input_error(f"Quantity should be a multiple of lot size ({lot}).")
        if request.order_type in ("LIMIT", "SL"):
            check_tick(request.price, inst, "price")
        if request.order_type in ("SL", "SL-M"):
            check_tick(request.trigger_price, inst, "trigger price")
        if request.variety == "regular" and not self.market_open:
            raise input_error(
                "Markets are closed right now. Use GTT for placing long standing orders instead."
            )
        if request.variety == "amo" and self.market_open:
            raise input_error("AMO orders are accepted only outside market hours.")

    def _new_order(self, request: PlaceForm, inst: KiteInstrument) -> KiteOrder:
        order = KiteOrder(
            order_id=self._order_id(),
            variety=request.variety,
            exchange=inst.exchange,
            tradingsymbol=inst.tradingsymbol,
            instrument_token=inst.instrument_token,
            transaction_type=request.transaction_type,
            order_type=request.order_type,
            product=request.product,
            validity=request.validity,
            validity_ttl=request.validity_ttl,
            quantity=request.quantity,
            disclosed_quantity=request.disclosed_quantity,
            price=request.price,
            trigger_price=request.trigger_price,
            order_timestamp=self.now(),
            placed_by=self.user_id,
            guid=f"{self._sequence}X{secrets.token_hex(6)}",
            tag=request.tag,
            market_protection=request.market_protection,
        )
        self.orders[order.order_id] = order
        return order

    def _risk_refusal(self, order: KiteOrder, inst: KiteInstrument) -> str | None:
        """The RMS checks that turn a well-formed order into a REJECTED one."""
        state = self.price(inst)
        lower, upper = state.circuit
        if order.order_type in ("LIMIT", "SL") and not lower <= order.price <= upper:
            return (
                f"Your order price is lower than the current lower circuit limit of {lower}"
                if order.price < lower
                else f"Your order price is higher than the current upper circuit limit of {upper}"
            )
        if order.order_type in ("SL", "SL-M"):
            refusal = _trigger_refusal(order, state.last_price)
            if refusal is not None:
                return refusal
        if order.product == "CNC" and not order.is_buy:
            free = self._sellable(inst) - order.quantity
            if free < 0:
                return (
                    "Insufficient holdings. You have "
                    f"{self._sellable(inst)} shares of {inst.tradingsymbol} available to sell."
                )
        return self._margin_refusal(order)

    def _margin_refusal(self, order: KiteOrder) -> str | None:
        before = self.margin_use(excluding=order.order_id)
        available = self.equity.available(before, *self._pnl_split())
        required = self.margin_use().total - before.total
        if required <= 0 or required <= available:
            return None
        return (
            f"Insufficient funds. Required margin is {required:.2f} but available margin is "
            f"{available:.2f}. Check the orderbook for open orders."
        )

    def _sellable(self, inst: KiteInstrument) -> int:
        """Free demat quantity plus today's CNC net buys, less open CNC sell orders."""
        holding = self.holdings.get((inst.exchange, inst.tradingsymbol))
        free = holding.sellable if holding else 0
        bucket = self.positions.get((inst.exchange, inst.tradingsymbol, "CNC"))
        bought_today = max(bucket.day_quantity, 0) if bucket else 0
        selling = sum(
            o.remaining
            for o in self.orders.values()
            if o.instrument_token == inst.instrument_token
            and o.product == "CNC"
            and not o.is_buy
            and o.status.working
        )
        return free + bought_today - selling

    def _send_to_exchange(self, order: KiteOrder) -> None:
        now = self.now()
        order.record(Status.OPEN_PENDING, now)
        order.exchange_order_id = f"1{self._next():015d}"
        order.exchange_timestamp = now
        waiting = order.order_type in ("SL", "SL-M") and not order.triggered
        self._set(order, Status.TRIGGER_PENDING if waiting else Status.OPEN)
        self._match(order)
        if order.validity == "IOC" and not order.status.terminal:
            self._cancel_rest(order, "IOC order: the unfilled quantity was cancelled.")

    def modify(self, variety: str, order_id: str, form: Mapping[str, str]) -> str:
        with self.lock:
            self.expire_ttl()
            parse_variety(variety)
            order = self._find(order_id)
            change = parse_modify(form)
            if not order.status.working:
                raise order_error(f"Order cannot be modified as it is {order.status.value}.")
            if order.modifications >= MAX_MODIFICATIONS:
                raise order_error("Maximum allowed order modifications exceeded.")
            inst = self.by_token[order.instrument_token]
            self._apply(order, change, inst)
            now = self.now()
            resume = order.status
            order.record(Status.MODIFY_VALIDATION_PENDING, now)
            order.record(Status.MODIFY_PENDING, now)
            order.record(Status.MODIFIED, now)
            if resume is Status.AMO_REQ_RECEIVED:
                self._set(order, Status.AMO_REQ_RECEIVED)
                return order.order_id
            waiting = order.order_type in ("SL", "SL-M") and not order.triggered
            self._set(order, Status.TRIGGER_PENDING if waiting else Status.OPEN)
            self._match(order)
            return order.order_id

    def _apply(self, order: KiteOrder, change: ModifyForm, inst: KiteInstrument) -> None:
        """Check the whole change first, then apply it: a refused change leaves the order as is."""
        order_type = change.order_type or order.order_type
        quantity = change.quantity if change.quantity is not None else order.quantity
        price = change.price if change.price is not None else order.price
        trigger = change.trigger_price if change.trigger_price is not None else order.trigger_price
        if quantity <= order.filled_quantity:
            raise input_error(
                f"Invalid `quantity`: {order.filled_quantity} already filled; the new quantity "
                "must be larger."
            )
        if quantity % max(inst.lot_size, 1):
            raise input_error(f"Quantity should be a multiple of lot size ({inst.lot_size}).")
        if order_type in ("LIMIT", "SL"):
            if price <= 0:
                raise input_error(
                    f"Invalid `price`: a {order_type} order needs a price above zero."
                )
            check_tick(price, inst, "price")
        if order_type in ("SL", "SL-M"):
            if trigger <= 0:
                raise input_error(f"Invalid `trigger_price`: a {order_type} order needs a trigger.")
            check_tick(trigger, inst, "trigger price")
        order.order_type, order.quantity = order_type, quantity
        order.price = price if order_type in ("LIMIT", "SL") else Decimal(0)
        order.trigger_price = trigger if order_type in ("SL", "SL-M") else Decimal(0)
        order.validity = change.validity or order.validity
        if change.disclosed_quantity is not None:
            order.disclosed_quantity = change.disclosed_quantity
        order.modified = True
        order.modifications += 1
        order.resting = False

    def cancel(self, variety: str, order_id: str) -> str:
        with self.lock:
            self.expire_ttl()
            parse_variety(variety)
            order = self._find(order_id)
            if not order.status.working:
                raise order_error(f"Order cannot be cancelled as it is {order.status.value}.")
            order.record(Status.CANCEL_PENDING, self.now())
            self._cancel_rest(order, None)
            return order.order_id

    def _cancel_rest(self, order: KiteOrder, message: str | None) -> None:
        order.cancelled_quantity = order.quantity - order.filled_quantity
        self._set(order, Status.CANCELLED, message)

    def expire_ttl(self) -> None:
        now = self.now()
        for order in list(self.orders.values()):
            if (
                order.validity == "TTL"
                and order.status in (Status.OPEN, Status.TRIGGER_PENDING)
                and now >= order.order_timestamp + timedelta(minutes=order.validity_ttl)
            ):
                self._cancel_rest(order, "TTL validity expired.")

    def _find(self, order_id: str) -> KiteOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise input_error(f"Couldn't find that `order_id` ({order_id}).")
        return order

    def order_history(self, order_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._find(order_id).history)

    def order_trades(self, order_id: str) -> list[dict[str, Any]]:
        with self.lock:
            self._find(order_id)
            return [t.to_kite() for t in self.trades if t.order_id == order_id]

    def order_book(self) -> list[dict[str, Any]]:
        with self.lock:
            self.expire_ttl()
            return [o.to_kite() for o in self.orders.values()]

    def trade_book(self) -> list[dict[str, Any]]:
        with self.lock:
            return [t.to_kite() for t in self.trades]

    # -- matching -------------------------------------------------------------------------------
    def _match(self, order: KiteOrder) -> None:
        if not self.market_open or order.status not in (Status.OPEN, Status.TRIGGER_PENDING):
            return
        inst = self.by_token[order.instrument_token]
        last = self.price(inst).last_price
        if order.status is Status.TRIGGER_PENDING:
            if not _triggered(order, last):
                return
            order.triggered = True
            self._set(order, Status.OPEN)
        fill_price = self._fill_price(order, last)
        if fill_price is None:
            order.resting = True
            return
        quantity = self._fill_quantity(order, inst)
        if quantity > 0:
            self._fill(order, inst, quantity, fill_price)
        order.resting = True

    def _fill_price(self, order: KiteOrder, last: Decimal) -> Decimal | None:
        if order.order_type in ("MARKET", "SL-M"):
            return last
        crossed = last <= order.price if order.is_buy else last >= order.price
        if not crossed:
            return None
        return order.price if order.resting else last

    def _fill_quantity(self, order: KiteOrder, inst: KiteInstrument) -> int:
        remaining = order.remaining
        if self.fill_limit is None:
            return remaining
        lot = max(inst.lot_size, 1)
        cap = max(self.fill_limit // lot, 1) * lot
        return min(remaining, cap)

    def _fill(self, order: KiteOrder, inst: KiteInstrument, quantity: int, price: Decimal) -> None:
        now = self.now()
        order.filled_quantity += quantity
        order.filled_value += price * quantity
        self.trades.append(
            KiteTrade(
                trade_id=f"{self._next():08d}",
                order_id=order.order_id,
                exchange_order_id=order.exchange_order_id or "",
                exchange=order.exchange,
                tradingsymbol=order.tradingsymbol,
                instrument_token=order.instrument_token,
                product=order.product,
                transaction_type=order.transaction_type,
                quantity=quantity,
                price=price,
                fill_timestamp=now,
            )
        )
        key = (inst.exchange, inst.tradingsymbol, order.product)
        bucket = self.positions.setdefault(key, PositionBucket(inst, order.product))
        if order.product == "CNC" and not order.is_buy:
            self._use_holdings(inst, bucket, quantity)
        bucket.add_fill(order.is_buy, quantity, price)
        self.price(inst).trade(quantity, price, now)
        done = order.filled_quantity == order.quantity
        self._set(order, Status.COMPLETE if done else Status.OPEN)

    def _use_holdings(self, inst: KiteInstrument, bucket: PositionBucket, quantity: int) -> None:
        """A CNC sale first nets today's CNC buys, then draws on demat stock."""
        from_today = min(max(bucket.day_quantity, 0), quantity)
        holding = self.holdings.get((inst.exchange, inst.tradingsymbol))
        if holding is not None:
            holding.used_quantity += quantity - from_today

    def _set(self, order: KiteOrder, status: Status, message: str | None = None) -> None:
        order.record(status, self.now(), message)
        if status in POSTBACK_STATUSES and self.listener is not None:
            self.listener(self.postback(order))

    def postback(self, order: KiteOrder) -> dict[str, Any]:
        """Kite's postback body for the order's current state, signed with the API secret."""
        body = order.to_kite()
        payload = {name: body[name] for name in POSTBACK_ORDER_KEYS}
        stamp = kite_timestamp(order.order_timestamp) or ""
        return {
            "user_id": self.user_id,
            "unfilled_quantity": order.pending_quantity if not order.status.terminal else 0,
            "app_id": APP_ID,
            "checksum": postback_checksum(order.order_id, stamp, self.api_secret),
            **payload,
            "order_timestamp": stamp,
        }

    # -- portfolio ------------------------------------------------------------------------------
    def add_holding(
        self, exchange: str, tradingsymbol: str, quantity: int, average_price: Decimal
    ) -> None:
        with self.lock:
            inst = self.instrument(exchange, tradingsymbol)
            isin = f"INE{inst.exchange_token:06d}01"[:12].ljust(12, "0")
            self.holdings[(exchange, tradingsymbol)] = KiteHolding(
                inst, isin, quantity, average_price
            )

    def positions_payload(self) -> dict[str, list[dict[str, Any]]]:
        with self.lock:
            net, day = [], []
            for bucket in self.positions.values():
                state = self.price(bucket.instrument)
                net_row, day_row = bucket.rows(state.last_price, state.close)
                net.append(net_row)
                if bucket.has_day_activity:
                    day.append(day_row)
            return {"net": net, "day": day}

    def holdings_payload(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = []
            for holding in self.holdings.values():
                state = self.price(holding.instrument)
                rows.append(holding.row(state.last_price, state.close))
            return rows

    def margin_use(self, excluding: str | None = None) -> MarginUse:
        """What every (instrument, product) line blocks, open orders counted as filled."""
        lines: dict[tuple[int, str], list[int]] = {}
        for bucket in self.positions.values():
            lines.setdefault((bucket.instrument.instrument_token, bucket.product), [0, 0, 0])[
                0
            ] += bucket.quantity
        for order in self.orders.values():
            if order.order_id == excluding:
                continue
            if order.status.working or order.status in (
                Status.PUT_ORDER_REQ_RECEIVED,
                Status.VALIDATION_PENDING,
            ):
                line = lines.setdefault((order.instrument_token, order.product), [0, 0, 0])
                line[1 if order.is_buy else 2] += order.remaining
        use = MarginUse()
        for (token, product), (net, buying, selling) in lines.items():
            inst = self.by_token[token]
            long_qty, short_qty = max(net + buying, 0), max(selling - net, 0)
            if product == "CNC":
                short_qty = 0  # CNC sells are backed by stock, not margin
            last = self.price(inst).last_price
            underlying = inst.underlying_price or last
            use.add(bucket_margin(inst, product, long_qty, short_qty, last, underlying))
        return use

    def _pnl_split(self) -> tuple[Decimal, Decimal]:
        """(realised, unrealised): closed lines' P&L and open lines' P&L."""
        realised = unrealised = Decimal(0)
        for bucket in self.positions.values():
            pnl = bucket.pnl(self.price(bucket.instrument).last_price)
            if bucket.quantity == 0:
                realised += pnl
            else:
                unrealised += pnl
        return realised, unrealised

    def margins_payload(self, segment: str | None) -> dict[str, Any]:
        with self.lock:
            equity = self.equity.row(self.margin_use(), *self._pnl_split())
            commodity = self.commodity.row(MarginUse(), Decimal(0), Decimal(0))
            if segment is None:
                return {"equity": equity, "commodity": commodity}
            if segment == "equity":
                return equity
            if segment == "commodity":
                return commodity
            raise input_error(f"Invalid segment: {segment!r} (equity or commodity).")

    # -- days -----------------------------------------------------------------------------------
    def next_session(self) -> None:
        """Roll to the next trading day: clock to 09:15 IST, CNC buys into holdings, NRML
        carried at the close, MIS squared off, books emptied, closes set. Sessions issued before
        06:00 today expire by Kite's daily rule."""
        with self.lock:
            if not isinstance(self.clock, ManualClock):
                raise RuntimeError("next_session needs a ManualClock (KiteFake.set_now first)")
            today = self.now().astimezone(IST).date()
            day = self.calendar.next_trading_day(Exchange.NSE, today)
            self.clock.set(datetime.combine(day, time(9, 15), tzinfo=IST))
            self._settle()
            for state in self.prices.values():
                state.roll()

    def _settle(self) -> None:
        for (exchange, symbol, product), bucket in list(self.positions.items()):
            if product == "CNC":
                holding = self.holdings.get((exchange, symbol))
                if holding is not None:
                    holding.quantity -= holding.used_quantity
                    holding.used_quantity = 0
                net_buy = max(bucket.day_quantity, 0)
                if net_buy:
                    self._credit_holding(bucket, net_buy)
            elif product == "NRML" and bucket.quantity != 0:
                close = self.price(bucket.instrument).last_price
                self.positions[(exchange, symbol, product)] = PositionBucket(
                    bucket.instrument, product, bucket.quantity, close
                )
                continue
            del self.positions[(exchange, symbol, product)]
        self.holdings = {k: h for k, h in self.holdings.items() if h.quantity + h.t1_quantity > 0}
        self.orders.clear()
        self.trades.clear()

    def _credit_holding(self, bucket: PositionBucket, quantity: int) -> None:
        inst = bucket.instrument
        price = on_tick(bucket.day_buy_value / bucket.day_buy_quantity, Decimal("0.0001"))
        key = (inst.exchange, inst.tradingsymbol)
        holding = self.holdings.get(key)
        if holding is None:
            isin = f"INE{inst.exchange_token:06d}01"[:12].ljust(12, "0")
            self.holdings[key] = KiteHolding(inst, isin, quantity, price)
            return
        total = holding.quantity + quantity
        holding.average_price = (
            holding.average_price * holding.quantity + price * quantity
        ) / total
        holding.quantity = total


def _triggered(order: KiteOrder, last: Decimal) -> bool:
    return last >= order.trigger_price if order.is_buy else last <= order.trigger_price


def _trigger_refusal(order: KiteOrder, last: Decimal) -> str | None:
    if order.order_type == "SL" and (
        order.price < order.trigger_price if order.is_buy else order.price > order.trigger_price
    ):
        side = "buy" if order.is_buy else "sell"
        bound = "above" if order.is_buy else "below"
        return f"Trigger price for stoploss {side} orders cannot be {bound} the limit price."
    if order.is_buy and order.trigger_price <= last:
        return "Trigger price for stoploss buy orders should be higher than the last traded price."
    if not order.is_buy and order.trigger_price >= last:
        return "Trigger price for stoploss sell orders should be lower than the last traded price."
    return None
