"""Value types of the trading domain.

Prices and amounts are `Decimal` (see `money`), quantities are `int` (units, not lots),
instants are timezone-aware UTC `datetime`s (shown in IST at the edges). Order and position
state that changes over time lives in the brokers; what crosses a boundary is one of these
immutable snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from openalgo_lab.domain.enums import (
    Action,
    Exchange,
    InstrumentType,
    OrderStatus,
    PriceType,
    Product,
)
from openalgo_lab.domain.money import ZERO


@dataclass(frozen=True, slots=True)
class Instrument:
    """One row of the master contract, with OpenAlgo's columns.

    `strike` is 0 for anything that is not an option; `expiry` is None for cash and indices.
    `underlying` is the OpenAlgo symbol the derivative is priced from (e.g. NIFTY on
    NSE_INDEX for NIFTY options) and `underlying_exchange` its exchange.
    """

    symbol: str
    exchange: Exchange
    name: str
    instrumenttype: InstrumentType
    token: str
    tick_size: Decimal
    lotsize: int = 1
    brsymbol: str = ""
    brexchange: str = ""
    expiry: date | None = None
    strike: Decimal = ZERO
    freeze_qty: int = 0
    underlying: str = ""
    underlying_exchange: Exchange | None = None

    @property
    def key(self) -> tuple[Exchange, str]:
        return (self.exchange, self.symbol)

    @property
    def is_option(self) -> bool:
        return self.instrumenttype.is_option

    @property
    def is_future(self) -> bool:
        return self.instrumenttype is InstrumentType.FUT

    @property
    def is_derivative(self) -> bool:
        return self.is_option or self.is_future

    @property
    def expiry_str(self) -> str:
        """Expiry as the master contract and `/expiry` show it: `DD-MMM-YY`, upper case."""
        return self.expiry.strftime("%d-%b-%y").upper() if self.expiry else ""


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A validated request for a new order. Build it with `validation.parse_order_request`."""

    symbol: str
    exchange: Exchange
    action: Action
    quantity: int
    pricetype: PriceType = PriceType.MARKET
    product: Product = Product.MIS
    price: Decimal = ZERO
    trigger_price: Decimal = ZERO
    disclosed_quantity: int = 0
    strategy: str = ""
    tag: str = ""  # caller's idempotency key or broker tag; never shown as the order id


@dataclass(frozen=True, slots=True)
class OrderModification:
    """New values for a working order; None keeps the current value."""

    quantity: int | None = None
    pricetype: PriceType | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    disclosed_quantity: int | None = None


@dataclass(frozen=True, slots=True)
class Order:
    """A snapshot of an order as the broker knows it."""

    orderid: str
    symbol: str
    exchange: Exchange
    action: Action
    quantity: int
    pricetype: PriceType
    product: Product
    price: Decimal
    trigger_price: Decimal
    status: OrderStatus
    filled_quantity: int
    average_price: Decimal
    placed_at: datetime
    updated_at: datetime
    strategy: str = ""
    rejection_reason: str = ""
    disclosed_quantity: int = 0
    tag: str = ""

    @property
    def pending_quantity(self) -> int:
        return 0 if self.status.is_terminal else self.quantity - self.filled_quantity


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill: a part (or all) of an order executed at one price."""

    tradeid: str
    orderid: str
    symbol: str
    exchange: Exchange
    action: Action
    product: Product
    quantity: int
    price: Decimal
    timestamp: datetime
    strategy: str = ""
    charges: Decimal = ZERO

    @property
    def value(self) -> Decimal:
        return self.price * self.quantity


@dataclass(frozen=True, slots=True)
class Position:
    """Net position for (symbol, exchange, product). Closed positions (quantity 0) are kept."""

    symbol: str
    exchange: Exchange
    product: Product
    quantity: int
    average_price: Decimal
    ltp: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    buy_quantity: int = 0
    sell_quantity: int = 0
    buy_value: Decimal = ZERO
    sell_value: Decimal = ZERO

    @property
    def pnl(self) -> Decimal:
        return self.realized_pnl + self.unrealized_pnl


@dataclass(frozen=True, slots=True)
class Holding:
    symbol: str
    exchange: Exchange
    quantity: int
    average_price: Decimal
    ltp: Decimal
    product: Product = Product.CNC

    @property
    def pnl(self) -> Decimal:
        return (self.ltp - self.average_price) * self.quantity

    @property
    def invested(self) -> Decimal:
        return self.average_price * self.quantity

    @property
    def value(self) -> Decimal:
        return self.ltp * self.quantity


@dataclass(frozen=True, slots=True)
class Funds:
    """OpenAlgo's funds shape: cash available, collateral, realised/unrealised M2M, debits."""

    availablecash: Decimal
    collateral: Decimal
    m2mrealized: Decimal
    m2munrealized: Decimal
    utiliseddebits: Decimal


@dataclass(frozen=True, slots=True)
class DepthLevel:
    price: Decimal
    quantity: int
    orders: int = 1


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book and the day's statistics for one instrument at one instant."""

    symbol: str
    exchange: Exchange
    ltp: Decimal
    bid: Decimal
    ask: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    prev_close: Decimal
    volume: int
    oi: int
    timestamp: datetime
    ltq: int = 0
    bid_qty: int = 0
    ask_qty: int = 0


@dataclass(frozen=True, slots=True)
class Depth:
    """A quote with five (or more) levels on each side; bids best first, asks best first."""

    quote: Quote
    bids: tuple[DepthLevel, ...]
    asks: tuple[DepthLevel, ...]

    @property
    def totalbuyqty(self) -> int:
        return sum(level.quantity for level in self.bids)

    @property
    def totalsellqty(self) -> int:
        return sum(level.quantity for level in self.asks)


@dataclass(frozen=True, slots=True)
class Tick:
    """One market-data event: what the stream delivers and the matching engine consumes."""

    depth: Depth

    @property
    def quote(self) -> Quote:
        return self.depth.quote


@dataclass(frozen=True, slots=True)
class Candle:
    """An OHLCV bar starting at `start` (UTC instant). OpenAlgo sends `start` as epoch secs."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    oi: int = 0

    @property
    def timestamp(self) -> int:
        return int(self.start.timestamp())


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """A change to an order, published after every state transition (and after each fill)."""

    order: Order
    trade: Trade | None = None
    extra: dict[str, str] = field(default_factory=dict)
