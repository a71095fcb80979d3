"""What an order ticket may send: every field checked, each error named by its field.

The ticket checks what it can before anything is sent, with the domain's own parsers (the
engine checks again; the ticket's job is to say what is wrong next to the field, and to make
an invalid order impossible to send). Lot and tick rules come from the symbol's master-contract
row (`Client.symbol`), so the ticket is lot- and tick-aware on any OpenAlgo server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from openalgo_lab.domain.enums import Action, Exchange, PriceType, Product
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.money import is_multiple, round_to_tick, to_decimal
from openalgo_lab.domain.validation import (
    MAX_STRATEGY_LENGTH,
    check_price_fields,
    parse_price,
    parse_quantity,
)

JSON = dict[str, Any]

ORDER_EXCHANGES = tuple(e.value for e in Exchange if not e.is_index)
PRICE_TYPES = tuple(p.value for p in PriceType)
PRODUCTS = tuple(p.value for p in Product)


@dataclass(frozen=True, slots=True)
class Contract:
    """The master-contract facts an order ticket needs about one symbol."""

    symbol: str
    exchange: str
    name: str
    lotsize: int
    tick_size: Decimal
    freeze_qty: int
    instrumenttype: str

    @property
    def is_derivative(self) -> bool:
        return self.instrumenttype in ("FUT", "CE", "PE") or _is_derivative_exchange(self.exchange)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Contract:
        """From a `/symbol` or `/search` row; raises ValueError on a malformed row."""
        try:
            tick = to_decimal(record.get("tick_size") or 0, "tick_size")
            return cls(
                symbol=str(record["symbol"]).upper(),
                exchange=str(record["exchange"]).upper(),
                name=str(record.get("name") or ""),
                lotsize=max(1, int(record.get("lotsize") or 1)),
                tick_size=tick if tick > 0 else Decimal("0.01"),
                freeze_qty=int(record.get("freeze_qty") or 0),
                instrumenttype=str(record.get("instrumenttype") or ""),
            )
        except (KeyError, TypeError, ValueError, ValidationError) as err:
            raise ValueError(f"malformed symbol record: {err}") from None


def _is_derivative_exchange(exchange: str) -> bool:
    try:
        return Exchange(exchange).is_derivative
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class TicketForm:
    """The ticket's fields as the user typed them."""

    exchange: str
    symbol: str
    action: str
    quantity: str
    pricetype: str = "MARKET"
    product: str = "MIS"
    price: str = ""
    trigger_price: str = ""
    strategy: str = ""


@dataclass(frozen=True, slots=True)
class TicketCheck:
    """The verdict: errors by field (empty when the order may be sent) and, when valid, the
    keyword arguments of `Client.placeorder` and a one-line summary for the confirm step."""

    errors: dict[str, str] = field(default_factory=dict)
    order: JSON | None = None
    summary: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors and self.order is not None


def _tick_hint(value: Decimal, tick: Decimal) -> str:
    lo = round_to_tick(value, tick, up=False)
    hi = round_to_tick(value, tick, up=True)
    return f"{value} is not a multiple of the tick {tick}: use {lo} or {hi}"


def _price(
    raw: str, name: str, needed: bool, tick: Decimal | None, errors: dict[str, str]
) -> Decimal:
    if not needed:
        return Decimal(0)
    try:
        value = parse_price(raw, name)
    except ValidationError as err:
        errors[name] = err.reason
        return Decimal(0)
    if value <= 0:
        errors[name] = "is required (> 0) for this price type"
    elif tick is not None and not is_multiple(value, tick):
        errors[name] = _tick_hint(value, tick)
    return value


def check_ticket(
    form: TicketForm, contract: Contract | None, lookup_error: str = ""
) -> TicketCheck:
    """Check every field of `form` against the symbol's `contract` (None when it could not
    be found, with `lookup_error` saying why)."""
    errors: dict[str, str] = {}
    exchange = form.exchange.strip().upper()
    if exchange not in ORDER_EXCHANGES:
        errors["exchange"] = f"{form.exchange!r} is not an exchange orders can go to"
    symbol = form.symbol.strip().upper()
    if not symbol:
        errors["symbol"] = "is required"
    elif contract is None:
        errors["symbol"] = lookup_error or f"{symbol} not found on {exchange}"
    try:
        action = Action(form.action.strip().upper())
    except ValueError:
        errors["action"] = "choose BUY or SELL"
        action = Action.BUY
    try:
        pricetype = PriceType(form.pricetype.strip().upper())
    except ValueError:
        errors["pricetype"] = f"{form.pricetype!r} is not one of {', '.join(PRICE_TYPES)}"
        pricetype = PriceType.MARKET
    try:
        product = Product(form.product.strip().upper())
    except ValueError:
        errors["product"] = f"{form.product!r} is not one of {', '.join(PRODUCTS)}"
        product = Product.MIS
    quantity = 0
    try:
        quantity = parse_quantity(form.quantity.strip())
    except ValidationError as err:
        errors["quantity"] = err.reason
    tick = contract.tick_size if contract else None
    price = _price(form.price, "price", pricetype.needs_price, tick, errors)
    trigger = _price(form.trigger_price, "trigger_price", pricetype.needs_trigger, tick, errors)
    if "price" not in errors and "trigger_price" not in errors:
        try:
            check_price_fields(action, pricetype, price, trigger)
        except ValidationError as err:
            errors.setdefault(err.field, err.reason)
    if contract is not None:
        _check_contract(contract, product, quantity, errors)
    strategy = form.strategy.strip()
    if len(strategy) > MAX_STRATEGY_LENGTH:
        errors["strategy"] = f"must be at most {MAX_STRATEGY_LENGTH} characters"
    if errors or contract is None:
        return TicketCheck(errors=errors)
    order: JSON = {
        "strategy": strategy or "Python",
        "symbol": contract.symbol,
        "exchange": contract.exchange,
        "action": action.value,
        "price_type": pricetype.value,
        "product": product.value,
        "quantity": str(quantity),
    }
    if pricetype.needs_price:
        order["price"] = str(price)
    if pricetype.needs_trigger:
        order["trigger_price"] = str(trigger)
    return TicketCheck(order=order, summary=summary(order, contract))


def _check_contract(
    contract: Contract, product: Product, quantity: int, errors: dict[str, str]
) -> None:
    if contract.instrumenttype == "INDEX" or _is_index(contract.exchange):
        errors["symbol"] = f"{contract.symbol} is an index: it has quotes but cannot be ordered"
    if contract.is_derivative and product is Product.CNC:
        errors["product"] = f"CNC is for equity delivery; use NRML or MIS for {contract.symbol}"
    if not contract.is_derivative and product is Product.NRML:
        errors["product"] = f"NRML is for F&O; use CNC or MIS for {contract.symbol}"
    if quantity and contract.lotsize > 1 and quantity % contract.lotsize:
        lots = quantity // contract.lotsize
        errors["quantity"] = (
            f"{quantity} is not a multiple of the lot size {contract.lotsize}: use "
            f"{max(lots, 1) * contract.lotsize} or {(lots + 1) * contract.lotsize}"
        )
    if quantity and contract.freeze_qty and quantity > contract.freeze_qty:
        errors["quantity"] = (
            f"{quantity} exceeds the freeze quantity {contract.freeze_qty}; split the order"
        )


def _is_index(exchange: str) -> bool:
    try:
        return Exchange(exchange).is_index
    except ValueError:
        return False


def summary(order: Mapping[str, Any], contract: Contract) -> str:
    """`BUY 65 NIFTY29DEC26FUT (1 lot) on NFO · NRML · LIMIT 26,010.50` style one-liner."""
    qty = int(order["quantity"])
    lots = f" ({qty // contract.lotsize} lot{'s' if qty // contract.lotsize != 1 else ''})"
    text = (
        f"{order['action']} {qty:,} {order['symbol']}{lots if contract.lotsize > 1 else ''} "
        f"on {order['exchange']} · {order['product']} · {order['price_type']}"
    )
    if "price" in order:
        text += f" {order['price']}"
    if "trigger_price" in order:
        text += f" trigger {order['trigger_price']}"
    return text
