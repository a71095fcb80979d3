"""The rows the engine hands to the history store, validated when they are built.

Validation happens here, once, on the engine's side, so that a bad value is reported to the
code that produced it (naming the field) instead of surfacing later inside the writer thread,
where nobody could act on it. It also lets the batch path trust its input and stay fast.

Money fields must be exact at 4 decimal places because the store keeps them as
DECIMAL(18,4) (see `history`): a price with a fifth decimal would be silently rounded there, so
it is refused here instead. Derived figures that legitimately have more decimals (an order's
average fill price) are rounded half-even to 4 places rather than refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Final

from openalgo_lab.domain.enums import (
    Action,
    Exchange,
    Interval,
    OrderStatus,
    PriceType,
    Product,
)
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.models import Candle, Order, OrderEvent, Trade

SCALE: Final = 4
"""Decimal places kept for every price and amount (DECIMAL(18,4))."""
_QUANTUM: Final = Decimal(1).scaleb(-SCALE)
MAX_MONEY: Final = Decimal(10) ** 10
"""Exclusive bound on |price| and |charges| (₹10 billion). Keeps each value exact both in
DECIMAL(18,4) and as a binary float times 10^4 on the fast ingest path."""
MAX_QUANTITY: Final = 10**9
MODES: Final = frozenset({"analyze", "live"})
_EXCHANGES: Final = frozenset(e.value for e in Exchange)
_PRODUCTS: Final = frozenset(p.value for p in Product)
_ACTIONS: Final = frozenset(a.value for a in Action)
_PRICE_TYPES: Final = frozenset(p.value for p in PriceType)
_STATUSES: Final = frozenset(s.value for s in OrderStatus)
_INTERVALS: Final = frozenset(i.value for i in Interval)
KEY_SEPARATOR: Final = "\x1f"
"""Joins the parts of a fill's book key (ASCII unit separator: never part of a name)."""
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _text(obj: object, name: str, value: object, *, required: bool = True) -> None:
    """Plain `str` only: enum members are stored by value so DuckDB sees ordinary strings."""
    if not isinstance(value, str):
        raise ValidationError(name, f"must be a string, got {type(value).__name__}")
    if type(value) is not str:
        _set(obj, name, str(value))
    if required and not value:
        raise ValidationError(name, "must not be empty")


def _name(obj: object, name: str, value: object, *, required: bool = True) -> None:
    """A part of a book key: text without the key separator."""
    _text(obj, name, value, required=required)
    if KEY_SEPARATOR in value:  # type: ignore[operator]
        raise ValidationError(name, "must not contain the control character U+001F")


def book_key(row: TradeRow) -> str:
    """account, strategy, exchange, symbol, product, mode and action, joined."""
    return KEY_SEPARATOR.join(
        (row.account, row.strategy, row.exchange, row.symbol, row.product, row.mode, row.action)
    )


def _choice(obj: object, name: str, value: object, allowed: frozenset[str]) -> None:
    _text(obj, name, value)
    if value not in allowed:
        raise ValidationError(name, f"must be one of {', '.join(sorted(allowed))}, got {value!r}")


def _count(name: str, value: object, *, low: int, high: int = MAX_QUANTITY) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(name, f"must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValidationError(name, f"must be between {low} and {high}, got {value}")


def _money(obj: object, name: str, value: object, *, round_half_even: bool = False) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = Decimal(value)
        _set(obj, name, value)
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationError(name, f"must be a finite Decimal, got {value!r}")
    if abs(value) >= MAX_MONEY:
        raise ValidationError(name, f"must be below {MAX_MONEY:,} in absolute value")
    try:
        exact = value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:  # pragma: no cover - the bound above keeps quantize in range
        raise ValidationError(name, f"cannot be stored exactly: {value}") from None
    if exact != value:
        if not round_half_even:
            raise ValidationError(name, f"has more than {SCALE} decimal places: {value}")
        _set(obj, name, exact)


def _utc(obj: object, name: str, value: object) -> None:
    """Aware instants only: a naive datetime is ambiguous (UTC? IST?) and is refused."""
    if not isinstance(value, datetime):
        raise ValidationError(name, f"must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(name, "must be timezone-aware (UTC)")
    if value.tzinfo is not UTC:
        _set(obj, name, value.astimezone(UTC))


@dataclass(frozen=True, slots=True)
class TradeRow:
    """One fill as history keeps it. FIFO matching happens per (account, strategy, exchange,
    symbol, product, mode): analyze-mode and live fills are different positions.

    Validation also derives the store's representation once, here: amounts as integers of
    0.0001 rupee, the instant as microseconds since the epoch, and `book_key` (the book and
    the side as one string, resolved with a single hash lookup). Converting Decimals and
    datetimes and building key tuples was half of the batch writer's cost."""

    account: str
    tradeid: str
    orderid: str
    strategy: str
    symbol: str
    exchange: str
    product: str
    action: str
    quantity: int
    price: Decimal
    charges: Decimal
    ts: datetime
    mode: str
    price_units: int = field(init=False, repr=False, compare=False)
    charges_units: int = field(init=False, repr=False, compare=False)
    ts_us: int = field(init=False, repr=False, compare=False)
    book_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _name(self, "account", self.account)
        _text(self, "tradeid", self.tradeid)
        _text(self, "orderid", self.orderid, required=False)
        _name(self, "strategy", self.strategy, required=False)
        _name(self, "symbol", self.symbol)
        _choice(self, "exchange", self.exchange, _EXCHANGES)
        _choice(self, "product", self.product, _PRODUCTS)
        _choice(self, "action", self.action, _ACTIONS)
        _count("quantity", self.quantity, low=1)
        _money(self, "price", self.price)
        _money(self, "charges", self.charges)
        _utc(self, "ts", self.ts)
        _choice(self, "mode", self.mode, MODES)
        _set(self, "price_units", int(self.price.scaleb(SCALE)))
        _set(self, "charges_units", int(self.charges.scaleb(SCALE)))
        _set(self, "ts_us", (self.ts - _EPOCH) // _MICROSECOND)
        _set(self, "book_key", book_key(self))

    @classmethod
    def from_trade(cls, account: str, trade: Trade, mode: str) -> TradeRow:
        return cls(
            account=account,
            tradeid=trade.tradeid,
            orderid=trade.orderid,
            strategy=trade.strategy,
            symbol=trade.symbol,
            exchange=trade.exchange.value,
            product=trade.product.value,
            action=trade.action.value,
            quantity=trade.quantity,
            price=trade.price,
            charges=trade.charges,
            ts=trade.timestamp,
            mode=mode,
        )


@dataclass(frozen=True, slots=True)
class OrderRow:
    """The latest known state of an order; the store keeps one row per (account, orderid)."""

    account: str
    orderid: str
    strategy: str
    symbol: str
    exchange: str
    action: str
    quantity: int
    pricetype: str
    product: str
    price: Decimal
    trigger_price: Decimal
    status: str
    filled_quantity: int
    average_price: Decimal
    placed_at: datetime
    updated_at: datetime
    rejection_reason: str
    mode: str

    def __post_init__(self) -> None:
        _text(self, "account", self.account)
        _text(self, "orderid", self.orderid)
        _text(self, "strategy", self.strategy, required=False)
        _text(self, "symbol", self.symbol)
        _choice(self, "exchange", self.exchange, _EXCHANGES)
        _choice(self, "action", self.action, _ACTIONS)
        _count("quantity", self.quantity, low=1)
        _choice(self, "pricetype", self.pricetype, _PRICE_TYPES)
        _choice(self, "product", self.product, _PRODUCTS)
        _money(self, "price", self.price)
        _money(self, "trigger_price", self.trigger_price)
        _choice(self, "status", self.status, _STATUSES)
        _count("filled_quantity", self.filled_quantity, low=0, high=self.quantity)
        _money(self, "average_price", self.average_price, round_half_even=True)
        _utc(self, "placed_at", self.placed_at)
        _utc(self, "updated_at", self.updated_at)
        _text(self, "rejection_reason", self.rejection_reason, required=False)
        _choice(self, "mode", self.mode, MODES)

    @classmethod
    def from_order(cls, account: str, order: Order, mode: str) -> OrderRow:
        return cls(
            account=account,
            orderid=order.orderid,
            strategy=order.strategy,
            symbol=order.symbol,
            exchange=order.exchange.value,
            action=order.action.value,
            quantity=order.quantity,
            pricetype=order.pricetype.value,
            product=order.product.value,
            price=order.price,
            trigger_price=order.trigger_price,
            status=order.status.value,
            filled_quantity=order.filled_quantity,
            average_price=order.average_price,
            placed_at=order.placed_at,
            updated_at=order.updated_at,
            rejection_reason=order.rejection_reason,
            mode=mode,
        )


@dataclass(frozen=True, slots=True)
class OrderEventRow:
    """One state transition of an order, kept append-only as its audit trail."""

    account: str
    orderid: str
    status: str
    filled_quantity: int
    ts: datetime
    detail: str = ""

    def __post_init__(self) -> None:
        _text(self, "account", self.account)
        _text(self, "orderid", self.orderid)
        _choice(self, "status", self.status, _STATUSES)
        _count("filled_quantity", self.filled_quantity, low=0)
        _utc(self, "ts", self.ts)
        _text(self, "detail", self.detail, required=False)

    @classmethod
    def from_event(cls, account: str, event: OrderEvent) -> OrderEventRow:
        """`detail` is a JSON object (the fill, if any, and the event's extras) so that it
        stays queryable with DuckDB's JSON functions without a column per broker quirk."""
        order, trade = event.order, event.trade
        detail: dict[str, str] = dict(event.extra)
        if trade is not None:
            detail.update(
                tradeid=trade.tradeid,
                fill_quantity=str(trade.quantity),
                fill_price=str(trade.price),
            )
        if order.rejection_reason:
            detail.setdefault("rejection_reason", order.rejection_reason)
        ts = trade.timestamp if trade is not None else order.updated_at
        return cls(
            account=account,
            orderid=order.orderid,
            status=order.status.value,
            filled_quantity=order.filled_quantity,
            ts=ts,
            detail=json.dumps(detail, sort_keys=True) if detail else "",
        )


@dataclass(frozen=True, slots=True)
class CandleRow:
    """An OHLCV bar starting at `ts` (UTC); one row per (exchange, symbol, interval, ts)."""

    exchange: str
    symbol: str
    interval: str
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    oi: int = 0

    def __post_init__(self) -> None:
        _choice(self, "exchange", self.exchange, _EXCHANGES)
        _text(self, "symbol", self.symbol)
        _choice(self, "interval", self.interval, _INTERVALS)
        _utc(self, "ts", self.ts)
        for name in ("open", "high", "low", "close"):
            _money(self, name, getattr(self, name))
        if not self.low <= min(self.open, self.close) or not max(self.open, self.close) <= (
            self.high
        ):
            raise ValidationError("high", "bar must satisfy low <= open, close <= high")
        _count("volume", self.volume, low=0, high=2**62)
        _count("oi", self.oi, low=0, high=2**62)

    @classmethod
    def from_candle(cls, exchange: str, symbol: str, interval: str, candle: Candle) -> CandleRow:
        return cls(
            exchange=exchange,
            symbol=symbol,
            interval=interval,
            ts=candle.start,
            open=candle.open,
            high=candle.high,
            low=candle.low,
            close=candle.close,
            volume=candle.volume,
            oi=candle.oi,
        )


@dataclass(frozen=True, slots=True)
class RequestRow:
    """One API request in the traffic log: where it went, how it ended and where its time
    went (milliseconds). `key_id` is the key's public id, never the key; nothing of the
    request's body is kept."""

    ts: datetime
    method: str
    route: str
    status: int
    duration_ms: float
    parse_ms: float = 0.0
    engine_ms: float = 0.0
    risk_ms: float = 0.0
    journal_ms: float = 0.0
    broker_ms: float = 0.0
    key_id: str = ""
    client: str = ""

    def __post_init__(self) -> None:
        _utc(self, "ts", self.ts)
        _text(self, "method", self.method)
        _text(self, "route", self.route)
        _text(self, "key_id", self.key_id, required=False)
        _text(self, "client", self.client, required=False)
        if isinstance(self.status, bool) or not isinstance(self.status, int):
            raise ValidationError("status", f"must be an integer, got {self.status!r}")
        for name in ("duration_ms", "parse_ms", "engine_ms", "risk_ms", "journal_ms", "broker_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValidationError(name, f"must be a number >= 0, got {value!r}")
            _set(self, name, float(value))
