"""Validation of order input, field by field, with messages that name the field and the reason.

Two steps, because they need different knowledge:

* `parse_order_request` turns a loose mapping (REST JSON, a webhook, widget values, client
  kwargs; numbers may be strings) into an `OrderRequest`, checking each field on its own and
  the fields against each other (LIMIT needs a price, SL needs a trigger on the right side).
* `check_order_against_instrument` checks the request against the master contract (tick size,
  lot size, product allowed on this instrument, freeze quantity).

Market-dependent rules (an SL trigger already crossed by the LTP, funds) belong to the broker.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from openalgo_lab.domain.enums import Action, Exchange, PriceType, Product
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.models import Instrument, OrderModification, OrderRequest
from openalgo_lab.domain.money import ZERO, is_multiple, to_decimal
from openalgo_lab.domain.symbols import parse_symbol

E = TypeVar("E", bound=StrEnum)

MAX_STRATEGY_LENGTH = 100


def parse_enum(enum: type[E], value: object, field: str, *, default: E | None = None) -> E:
    """Case-insensitive enum parse with a message listing the allowed values."""
    if value is None or value == "":
        if default is not None:
            return default
        raise ValidationError(field, "is required")
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    text = value.strip().upper()
    for member in enum:
        if member.value.upper() == text:
            return member
    allowed = ", ".join(m.value for m in enum)
    raise ValidationError(field, f"{value!r} is not one of {allowed}")


def parse_quantity(value: object, field: str = "quantity", *, allow_zero: bool = False) -> int:
    """A whole number of units; numeric strings such as "10" or "10.0" are accepted."""
    if value is None or value == "":
        raise ValidationError(field, "is required")
    number = to_decimal(value, field)
    if number != number.to_integral_value():
        raise ValidationError(field, f"must be a whole number, got {value!r}")
    if number < 0 or (number == 0 and not allow_zero):
        raise ValidationError(field, f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return int(number)


def parse_price(value: object, field: str) -> Decimal:
    """A price >= 0; missing means 0 (OpenAlgo's default for price and trigger_price)."""
    if value is None or value == "":
        return ZERO
    number = to_decimal(value, field)
    if number < 0:
        raise ValidationError(field, f"must be >= 0, got {value!r}")
    return number


def _text(payload: Mapping[str, object], field: str, *, required: bool) -> str:
    value = payload.get(field)
    if value is None or value == "":
        if required:
            raise ValidationError(field, "is required")
        return ""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    return value.strip()


def parse_order_request(payload: Mapping[str, object]) -> OrderRequest:
    """Build an `OrderRequest` from OpenAlgo's placeorder fields, or raise `ValidationError`."""
    exchange = parse_enum(Exchange, payload.get("exchange"), "exchange")
    if exchange.is_index:
        raise ValidationError("exchange", f"{exchange} is quote-only; orders go to NSE/BSE/NFO/BFO")
    symbol = _text(payload, "symbol", required=True).upper()
    parse_symbol(symbol, exchange)
    action = parse_enum(Action, payload.get("action"), "action")
    quantity = parse_quantity(payload.get("quantity"))
    pricetype = parse_enum(
        PriceType, payload.get("pricetype"), "pricetype", default=PriceType.MARKET
    )
    product = parse_enum(Product, payload.get("product"), "product", default=Product.MIS)
    price = parse_price(payload.get("price"), "price")
    trigger = parse_price(payload.get("trigger_price"), "trigger_price")
    disclosed_raw = payload.get("disclosed_quantity")
    disclosed = (
        0
        if disclosed_raw in (None, "")
        else parse_quantity(disclosed_raw, "disclosed_quantity", allow_zero=True)
    )
    strategy = _text(payload, "strategy", required=False)
    if len(strategy) > MAX_STRATEGY_LENGTH:
        raise ValidationError("strategy", f"must be at most {MAX_STRATEGY_LENGTH} characters")
    request = OrderRequest(
        symbol=symbol,
        exchange=exchange,
        action=action,
        quantity=quantity,
        pricetype=pricetype,
        product=product,
        price=price,
        trigger_price=trigger,
        disclosed_quantity=disclosed,
        strategy=strategy,
    )
    check_price_fields(request.action, request.pricetype, request.price, request.trigger_price)
    if disclosed > quantity:
        raise ValidationError("disclosed_quantity", "must not exceed quantity")
    return request


def check_price_fields(
    action: Action, pricetype: PriceType, price: Decimal, trigger: Decimal
) -> None:
    """The cross-field rules of price, trigger and price type."""
    if pricetype.needs_price and price <= 0:
        raise ValidationError("price", f"must be > 0 for a {pricetype} order")
    if pricetype.needs_trigger and trigger <= 0:
        raise ValidationError("trigger_price", f"must be > 0 for a {pricetype} order")
    if pricetype is PriceType.SL:
        # A stop-limit buy triggers when the price rises to the trigger and then buys up to the
        # limit, so the limit must be at or above the trigger; the mirror holds for a sell.
        if action is Action.BUY and price < trigger:
            raise ValidationError(
                "trigger_price", f"a BUY SL trigger ({trigger}) must be <= its price ({price})"
            )
        if action is Action.SELL and price > trigger:
            raise ValidationError(
                "trigger_price", f"a SELL SL trigger ({trigger}) must be >= its price ({price})"
            )


def check_order_against_instrument(request: OrderRequest, instrument: Instrument) -> None:
    """Rules that need the master contract: ticks, lots, products, freeze quantity."""
    check_quantity_and_prices(
        instrument,
        request.product,
        request.quantity,
        request.pricetype,
        request.price,
        request.trigger_price,
    )


def check_quantity_and_prices(
    instrument: Instrument,
    product: Product,
    quantity: int,
    pricetype: PriceType,
    price: Decimal,
    trigger: Decimal,
) -> None:
    if instrument.is_derivative and product is Product.CNC:
        raise ValidationError(
            "product", f"CNC is for equity delivery; use NRML or MIS for {instrument.symbol}"
        )
    if not instrument.is_derivative and product is Product.NRML:
        raise ValidationError("product", f"NRML is for F&O; use CNC or MIS for {instrument.symbol}")
    if instrument.lotsize > 1 and quantity % instrument.lotsize:
        raise ValidationError(
            "quantity",
            f"{quantity} is not a multiple of the lot size {instrument.lotsize} of "
            f"{instrument.symbol}",
        )
    if instrument.freeze_qty and quantity > instrument.freeze_qty:
        raise ValidationError(
            "quantity",
            f"{quantity} exceeds the freeze quantity {instrument.freeze_qty} of "
            f"{instrument.symbol}; split the order (splitorder)",
        )
    tick = instrument.tick_size
    if pricetype.needs_price and not is_multiple(price, tick):
        raise ValidationError(
            "price", f"{price} is not a multiple of the tick size {tick} of {instrument.symbol}"
        )
    if pricetype.needs_trigger and not is_multiple(trigger, tick):
        raise ValidationError(
            "trigger_price",
            f"{trigger} is not a multiple of the tick size {tick} of {instrument.symbol}",
        )


def parse_order_modification(payload: Mapping[str, object]) -> OrderModification:
    """modifyorder's fields (OpenAlgo sends them all; absent ones keep their value)."""

    def opt(field: str) -> object | None:
        value = payload.get(field)
        return None if value is None or value == "" else value

    qty = opt("quantity")
    pt = opt("pricetype")
    price = opt("price")
    trig = opt("trigger_price")
    disc = opt("disclosed_quantity")
    return OrderModification(
        quantity=None if qty is None else parse_quantity(qty),
        pricetype=None if pt is None else parse_enum(PriceType, pt, "pricetype"),
        price=None if price is None else parse_price(price, "price"),
        trigger_price=None if trig is None else parse_price(trig, "trigger_price"),
        disclosed_quantity=(
            None if disc is None else parse_quantity(disc, "disclosed_quantity", allow_zero=True)
        ),
    )
