"""The one table between OpenAlgo and Kite Connect v3: values, fields and response rows.

Everything that knows a Kite spelling lives here: exchanges, products, order types, actions,
order statuses, history intervals, and the conversion of Kite's JSON rows (orders, trades,
positions, holdings, margins, quotes, candles) into our domain values and of our requests
into Kite's form fields. The functions are pure, so the fixture files of Zerodha's published
responses test them directly.

Kite names instruments by (exchange, tradingsymbol); OpenAlgo by (exchange, symbol) built by
the symbol grammar. Translating one into the other needs the master contract, so the row
parsers take a `SymbolResolver` (the adapter's master, `master.KiteSymbols`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

from openalgo_lab.domain.calendar import IST
from openalgo_lab.domain.enums import (
    Action,
    Exchange,
    Interval,
    OrderStatus,
    PriceType,
    Product,
)
from openalgo_lab.domain.errors import BrokerError, ValidationError
from openalgo_lab.domain.models import (
    Candle,
    Depth,
    DepthLevel,
    Funds,
    Holding,
    Instrument,
    Order,
    OrderModification,
    OrderRequest,
    Position,
    Quote,
    Trade,
)
from openalgo_lab.domain.money import ZERO, to_decimal

JSON = dict[str, Any]

# -- value tables ------------------------------------------------------------------------------
# OpenAlgo exchange -> the `exchange` Kite expects in orders, quotes and the master. Index
# exchanges are OpenAlgo's own: Kite lists indices under their venue with segment INDICES.
EXCHANGE_TO_KITE: dict[Exchange, str] = {
    Exchange.NSE: "NSE",
    Exchange.BSE: "BSE",
    Exchange.NFO: "NFO",
    Exchange.BFO: "BFO",
    Exchange.CDS: "CDS",
    Exchange.BCD: "BCD",
    Exchange.MCX: "MCX",
    Exchange.NCO: "NCO",
    Exchange.NSE_INDEX: "NSE",
    Exchange.BSE_INDEX: "BSE",
    Exchange.MCX_INDEX: "MCX",
}
# Kite exchange of a tradable row -> OpenAlgo exchange.
EXCHANGE_FROM_KITE: dict[str, Exchange] = {
    "NSE": Exchange.NSE,
    "BSE": Exchange.BSE,
    "NFO": Exchange.NFO,
    "BFO": Exchange.BFO,
    "CDS": Exchange.CDS,
    "BCD": Exchange.BCD,
    "MCX": Exchange.MCX,
    "NCO": Exchange.NCO,
}
# Kite exchange of an INDICES row -> OpenAlgo's index exchange (others are global indices).
INDEX_EXCHANGE_FROM_KITE: dict[str, Exchange] = {
    "NSE": Exchange.NSE_INDEX,
    "BSE": Exchange.BSE_INDEX,
    "MCX": Exchange.MCX_INDEX,
}

PRODUCT_TO_KITE: dict[Product, str] = {
    Product.CNC: "CNC",
    Product.NRML: "NRML",
    Product.MIS: "MIS",
}
PRODUCT_FROM_KITE: dict[str, Product] = {v: k for k, v in PRODUCT_TO_KITE.items()}

PRICETYPE_TO_KITE: dict[PriceType, str] = {
    PriceType.MARKET: "MARKET",
    PriceType.LIMIT: "LIMIT",
    PriceType.SL: "SL",
    PriceType.SL_M: "SL-M",
}
PRICETYPE_FROM_KITE: dict[str, PriceType] = {v: k for k, v in PRICETYPE_TO_KITE.items()}

ACTION_TO_KITE: dict[Action, str] = {Action.BUY: "BUY", Action.SELL: "SELL"}
ACTION_FROM_KITE: dict[str, Action] = {v: k for k, v in ACTION_TO_KITE.items()}

# Kite's order statuses. Terminal ones map one to one; every transient state (the order is
# somewhere between the OMS and the exchange) is still working, i.e. OpenAlgo's `open`.
STATUS_FROM_KITE: dict[str, OrderStatus] = {
    "COMPLETE": OrderStatus.COMPLETE,
    "CANCELLED": OrderStatus.CANCELLED,
    "CANCELLED AMO": OrderStatus.CANCELLED,
    "REJECTED": OrderStatus.REJECTED,
    "OPEN": OrderStatus.OPEN,
    "TRIGGER PENDING": OrderStatus.TRIGGER_PENDING,
    "PUT ORDER REQ RECEIVED": OrderStatus.OPEN,
    "VALIDATION PENDING": OrderStatus.OPEN,
    "OPEN PENDING": OrderStatus.OPEN,
    "MODIFY VALIDATION PENDING": OrderStatus.OPEN,
    "MODIFY PENDING": OrderStatus.OPEN,
    "MODIFIED": OrderStatus.OPEN,
    "CANCEL PENDING": OrderStatus.OPEN,
    "TRIGGER PENDING MODIFY": OrderStatus.TRIGGER_PENDING,
    "AMO REQ RECEIVED": OrderStatus.OPEN,
}

# OpenAlgo interval -> Kite's `interval` path segment (OpenAlgo's Zerodha timeframe map).
INTERVAL_TO_KITE: dict[Interval, str] = {
    Interval.M1: "minute",
    Interval.M3: "3minute",
    Interval.M5: "5minute",
    Interval.M10: "10minute",
    Interval.M15: "15minute",
    Interval.M30: "30minute",
    Interval.H1: "60minute",
    Interval.D: "day",
}

# Kite's index tradingsymbols whose OpenAlgo symbol is not just the name without spaces.
INDEX_SYMBOLS: dict[str, str] = {
    "NIFTY 50": "NIFTY",
    "NIFTY BANK": "BANKNIFTY",
    "NIFTY FIN SERVICE": "FINNIFTY",
    "NIFTY FINANCIAL SERVICES": "FINNIFTY",
    "NIFTY MID SELECT": "MIDCPNIFTY",
    "NIFTY MIDCAP SELECT": "MIDCPNIFTY",
    "NIFTY NEXT 50": "NIFTYNXT50",
    "INDIA VIX": "INDIAVIX",
    "SENSEX": "SENSEX",
    "BSE SENSEX": "SENSEX",
    "BANKEX": "BANKEX",
    "BSE BANKEX": "BANKEX",
    "SNSX50": "SENSEX50",
    "SENSEX50": "SENSEX50",
    "BSE SENSEX 50": "SENSEX50",
}

VARIETIES = ("regular", "amo")
ORDER_VALIDITY = "DAY"
# Kite's automatic market protection for MARKET and SL-M orders (OpenAlgo sends the same).
MARKET_PROTECTION = "-1"
MAX_TAG_LENGTH = 20
_TAG = re.compile(r"[A-Za-z0-9]{1,20}")
_NOT_TICKER = re.compile(r"[^A-Z0-9&\-_.]")


# -- symbols ---------------------------------------------------------------------------------
class SymbolResolver(Protocol):
    """Translates between OpenAlgo's and Kite's names of an instrument."""

    def instrument(self, exchange: Exchange, symbol: str) -> Instrument:
        """The master row of an OpenAlgo symbol; `NotFoundError` if it is not listed."""
        ...

    def from_kite(self, kite_exchange: str, tradingsymbol: str) -> tuple[Exchange, str]:
        """OpenAlgo (exchange, symbol) of a Kite row; unknown rows keep Kite's names."""
        ...


def index_symbol(tradingsymbol: str) -> str:
    """OpenAlgo's symbol of a Kite index (`NIFTY 50` -> `NIFTY`, `NIFTY IT` -> `NIFTYIT`)."""
    text = tradingsymbol.strip().upper()
    return INDEX_SYMBOLS.get(text) or _NOT_TICKER.sub("", text)


def exchange_from_kite(kite_exchange: str) -> Exchange:
    found = EXCHANGE_FROM_KITE.get(kite_exchange)
    if found is None:
        raise BrokerError(f"Kite answered with an unknown exchange {kite_exchange!r}")
    return found


def kite_tag(tag: str) -> str:
    """The tag Kite carries for one of our orders. Kite takes at most 20 alphanumerics, our
    tags (idempotency keys) can be longer or hold other characters: those are sent as a
    stable digest, so the same request always carries the same Kite tag and can be found
    again in the order book after a lost answer or a restart."""
    if _TAG.fullmatch(tag):
        return tag
    return "oa" + hashlib.sha256(tag.encode("utf-8")).hexdigest()[: MAX_TAG_LENGTH - 2]


# -- values ------------------------------------------------------------------------------------
def order_status(kite_status: str, filled: int, quantity: int) -> OrderStatus:
    """Our status of a Kite order. Unknown statuses count as working: treating a live order
    as finished would hide it from cancel-all and from reconciliation."""
    status = STATUS_FROM_KITE.get(kite_status.strip().upper(), OrderStatus.OPEN)
    if status is OrderStatus.OPEN and 0 < filled < quantity:
        return OrderStatus.PARTIALLY_FILLED
    return status


def kite_interval(interval: Interval) -> str:
    found = INTERVAL_TO_KITE.get(interval)
    if found is None:
        supported = ", ".join(i.value for i in INTERVAL_TO_KITE)
        raise ValidationError(
            "interval", f"{interval.value} is not supported by Zerodha (supported: {supported})"
        )
    return found


def decimal(value: object, field: str) -> Decimal:
    """A Kite number (JSON int/float, sometimes null) as an exact Decimal."""
    if value is None or value == "":
        return ZERO
    try:
        return to_decimal(value, field)
    except ValidationError:
        raise BrokerError(f"Kite sent a bad number in {field}: {value!r}") from None


def integer(value: object, field: str) -> int:
    number = decimal(value, field)
    if number != number.to_integral_value():
        raise BrokerError(f"Kite sent a fractional quantity in {field}: {value!r}")
    return int(number)


def text(value: object) -> str:
    return "" if value is None else str(value)


def kite_time(value: object, field: str, *, default: datetime | None = None) -> datetime:
    """`YYYY-MM-DD HH:MM:SS` in IST (Kite's timestamps) as a UTC instant."""
    if value is None or value == "":
        if default is not None:
            return default
        raise BrokerError(f"Kite sent no {field}")
    try:
        local = datetime.strptime(str(value)[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise BrokerError(f"Kite sent a bad timestamp in {field}: {value!r}") from None
    return local.replace(tzinfo=IST).astimezone(UTC)


def kite_form_time(at: datetime) -> str:
    """An instant as Kite's historical API wants `from` and `to`: IST wall time."""
    return at.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")


def kite_price(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _field(row: Mapping[str, Any], name: str) -> Any:
    if name not in row:
        raise BrokerError(f"Kite's answer lacks the field {name!r}")
    return row[name]


def _enum_value(table: Mapping[str, Any], value: object, field: str) -> Any:
    found = table.get(text(value).upper())
    if found is None:
        raise BrokerError(f"Kite sent an unknown {field} {value!r}")
    return found


# -- requests ----------------------------------------------------------------------------------
def order_form(request: OrderRequest, instrument: Instrument, tag: str) -> dict[str, str]:
    """Kite's form fields for placing `request` (OpenAlgo's Zerodha mapping, reference §8.3)."""
    form = {
        "exchange": instrument.brexchange or EXCHANGE_TO_KITE[request.exchange],
        "tradingsymbol": instrument.brsymbol or request.symbol,
        "transaction_type": ACTION_TO_KITE[request.action],
        "quantity": str(request.quantity),
        "product": PRODUCT_TO_KITE[request.product],
        "order_type": PRICETYPE_TO_KITE[request.pricetype],
        "validity": ORDER_VALIDITY,
        "price": kite_price(request.price) if request.pricetype.needs_price else "0",
        "trigger_price": (
            kite_price(request.trigger_price) if request.pricetype.needs_trigger else "0"
        ),
        "disclosed_quantity": str(request.disclosed_quantity),
        "tag": kite_tag(tag) if tag else "",
    }
    if request.pricetype in (PriceType.MARKET, PriceType.SL_M):
        form["market_protection"] = MARKET_PROTECTION
    if not form["tag"]:
        del form["tag"]
    return form


def modify_form(current: Order, change: OrderModification) -> dict[str, str]:
    """Kite's form fields for a modification; unchanged fields keep the order's values."""
    pricetype = change.pricetype or current.pricetype
    price = change.price if change.price is not None else current.price
    trigger = change.trigger_price if change.trigger_price is not None else current.trigger_price
    quantity = change.quantity if change.quantity is not None else current.quantity
    disclosed = (
        change.disclosed_quantity
        if change.disclosed_quantity is not None
        else current.disclosed_quantity
    )
    return {
        "quantity": str(quantity),
        "order_type": PRICETYPE_TO_KITE[pricetype],
        "price": kite_price(price) if pricetype.needs_price else "0",
        "trigger_price": kite_price(trigger) if pricetype.needs_trigger else "0",
        "disclosed_quantity": str(disclosed),
        "validity": ORDER_VALIDITY,
    }


# -- response rows -----------------------------------------------------------------------------
def parse_order(row: Mapping[str, Any], symbols: SymbolResolver, *, strategy: str = "") -> Order:
    """One row of `GET /orders` (or the last entry of `GET /orders/{id}`, or a postback)."""
    exchange, symbol = symbols.from_kite(
        text(_field(row, "exchange")), text(_field(row, "tradingsymbol"))
    )
    quantity = integer(_field(row, "quantity"), "quantity")
    filled = integer(row.get("filled_quantity"), "filled_quantity")
    placed = kite_time(row.get("order_timestamp"), "order_timestamp")
    updated = kite_time(row.get("exchange_update_timestamp"), "updated", default=placed)
    status = order_status(text(_field(row, "status")), filled, quantity)
    return Order(
        orderid=text(_field(row, "order_id")),
        symbol=symbol,
        exchange=exchange,
        action=_enum_value(ACTION_FROM_KITE, row.get("transaction_type"), "transaction_type"),
        quantity=quantity,
        pricetype=_enum_value(PRICETYPE_FROM_KITE, row.get("order_type"), "order_type"),
        product=_product(row.get("product")),
        price=decimal(row.get("price"), "price"),
        trigger_price=decimal(row.get("trigger_price"), "trigger_price"),
        status=status,
        filled_quantity=filled,
        average_price=decimal(row.get("average_price"), "average_price"),
        placed_at=placed,
        updated_at=max(updated, placed),
        strategy=strategy,
        rejection_reason=text(row.get("status_message")) if status is OrderStatus.REJECTED else "",
        disclosed_quantity=integer(row.get("disclosed_quantity"), "disclosed_quantity"),
        tag=text(row.get("tag")),
    )


def _product(value: object) -> Product:
    """Kite also reports CO/BO/MTF products; OpenAlgo's books know only three, and an
    intraday-only product is closest to MIS."""
    name = text(value).upper()
    if name == "MTF":
        return Product.CNC
    return PRODUCT_FROM_KITE.get(name, Product.MIS)


def parse_trade(row: Mapping[str, Any], symbols: SymbolResolver, *, strategy: str = "") -> Trade:
    """One row of `GET /trades`."""
    exchange, symbol = symbols.from_kite(
        text(_field(row, "exchange")), text(_field(row, "tradingsymbol"))
    )
    stamp = row.get("fill_timestamp") or row.get("exchange_timestamp")
    return Trade(
        tradeid=text(_field(row, "trade_id")),
        orderid=text(_field(row, "order_id")),
        symbol=symbol,
        exchange=exchange,
        action=_enum_value(ACTION_FROM_KITE, row.get("transaction_type"), "transaction_type"),
        product=_product(row.get("product")),
        quantity=integer(_field(row, "quantity"), "quantity"),
        price=decimal(_field(row, "average_price"), "average_price"),
        timestamp=kite_time(stamp, "fill_timestamp"),
        strategy=strategy,
    )


def parse_position(row: Mapping[str, Any], symbols: SymbolResolver) -> Position:
    """One row of `GET /portfolio/positions` `net`."""
    exchange, symbol = symbols.from_kite(
        text(_field(row, "exchange")), text(_field(row, "tradingsymbol"))
    )
    return Position(
        symbol=symbol,
        exchange=exchange,
        product=_product(row.get("product")),
        quantity=integer(_field(row, "quantity"), "quantity"),
        average_price=decimal(row.get("average_price"), "average_price"),
        ltp=decimal(row.get("last_price"), "last_price"),
        realized_pnl=decimal(row.get("realised"), "realised"),
        unrealized_pnl=decimal(row.get("unrealised"), "unrealised"),
        buy_quantity=integer(row.get("buy_quantity"), "buy_quantity"),
        sell_quantity=integer(row.get("sell_quantity"), "sell_quantity"),
        buy_value=decimal(row.get("buy_value"), "buy_value"),
        sell_value=decimal(row.get("sell_value"), "sell_value"),
    )


def parse_holding(row: Mapping[str, Any], symbols: SymbolResolver) -> Holding:
    """One row of `GET /portfolio/holdings`; T1 shares (bought yesterday) count as held."""
    exchange, symbol = symbols.from_kite(
        text(_field(row, "exchange")), text(_field(row, "tradingsymbol"))
    )
    quantity = integer(_field(row, "quantity"), "quantity")
    quantity += integer(row.get("t1_quantity"), "t1_quantity")
    return Holding(
        symbol=symbol,
        exchange=exchange,
        quantity=quantity,
        average_price=decimal(row.get("average_price"), "average_price"),
        ltp=decimal(row.get("last_price"), "last_price"),
        product=_product(row.get("product") or "CNC"),
    )


def parse_funds(data: Mapping[str, Any]) -> Funds:
    """`GET /user/margins`: the equity and commodity segments summed (OpenAlgo's Zerodha
    funds: available cash is the segments' `net`, debits their `utilised.debits`)."""
    segments = [data[s] for s in ("equity", "commodity") if isinstance(data.get(s), Mapping)]
    if not segments:
        raise BrokerError("Kite's margins answer has neither an equity nor a commodity segment")

    def total(path: tuple[str, ...]) -> Decimal:
        out = ZERO
        for seg in segments:
            value: Any = seg
            for key in path:
                value = value.get(key) if isinstance(value, Mapping) else None
            out += decimal(value, ".".join(path))
        return out

    return Funds(
        availablecash=total(("net",)),
        collateral=total(("available", "collateral")),
        m2mrealized=total(("utilised", "m2m_realised")),
        m2munrealized=total(("utilised", "m2m_unrealised")),
        utiliseddebits=total(("utilised", "debits")),
    )


def _levels(rows: object, field: str) -> tuple[DepthLevel, ...]:
    if not isinstance(rows, Sequence):
        return ()
    out = []
    for level in rows:
        if not isinstance(level, Mapping):
            raise BrokerError(f"Kite sent a bad depth level in {field}")
        out.append(
            DepthLevel(
                price=decimal(level.get("price"), f"{field}.price"),
                quantity=integer(level.get("quantity"), f"{field}.quantity"),
                orders=integer(level.get("orders"), f"{field}.orders"),
            )
        )
    return tuple(out)


def parse_depth(row: Mapping[str, Any], exchange: Exchange, symbol: str, now: datetime) -> Depth:
    """One instrument of `GET /quote` (or of `/quote/ohlc`, `/quote/ltp`, which carry less)."""
    ohlc = row.get("ohlc") if isinstance(row.get("ohlc"), Mapping) else {}
    depth = row.get("depth") if isinstance(row.get("depth"), Mapping) else {}
    assert isinstance(ohlc, Mapping) and isinstance(depth, Mapping)
    bids = tuple(lv for lv in _levels(depth.get("buy"), "depth.buy") if lv.quantity)
    asks = tuple(lv for lv in _levels(depth.get("sell"), "depth.sell") if lv.quantity)
    stamp = row.get("timestamp")
    quote = Quote(
        symbol=symbol,
        exchange=exchange,
        ltp=decimal(_field(row, "last_price"), "last_price"),
        bid=bids[0].price if bids else ZERO,
        ask=asks[0].price if asks else ZERO,
        open=decimal(ohlc.get("open"), "ohlc.open"),
        high=decimal(ohlc.get("high"), "ohlc.high"),
        low=decimal(ohlc.get("low"), "ohlc.low"),
        prev_close=decimal(ohlc.get("close"), "ohlc.close"),
        volume=integer(row.get("volume"), "volume"),
        oi=integer(row.get("oi"), "oi"),
        timestamp=kite_time(stamp, "timestamp") if stamp else now,
        ltq=integer(row.get("last_quantity"), "last_quantity"),
        bid_qty=bids[0].quantity if bids else 0,
        ask_qty=asks[0].quantity if asks else 0,
    )
    return Depth(quote, bids, asks)


def parse_candles(data: Mapping[str, Any]) -> list[Candle]:
    """`GET /instruments/historical/...`: `[time, o, h, l, c, v (, oi)]` rows; time carries
    its offset (`2017-12-15T09:15:00+0530`, day bars at 00:00 IST)."""
    rows = data.get("candles")
    if not isinstance(rows, list):
        raise BrokerError("Kite's historical answer has no candles list")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) < 6:
            raise BrokerError(f"Kite sent a bad candle at position {i}")
        try:
            start = datetime.strptime(str(row[0]), "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)
        except ValueError:
            raise BrokerError(f"Kite sent a bad candle time {row[0]!r}") from None
        out.append(
            Candle(
                start=start,
                open=decimal(row[1], "open"),
                high=decimal(row[2], "high"),
                low=decimal(row[3], "low"),
                close=decimal(row[4], "close"),
                volume=integer(row[5], "volume"),
                oi=integer(row[6], "oi") if len(row) > 6 else 0,
            )
        )
    return out


def expiry_date(value: str) -> date | None:
    """The master's `expiry` column: `YYYY-MM-DD` or empty."""
    value = value.strip()
    if not value:
        return None
    return date.fromisoformat(value)
