"""Orders and trades in the fake Kite server: Kite's vocabulary, fields and form validation.

An order keeps every state it passed through (Kite's `GET /orders/{id}` answers the whole list),
and renders itself in the shape of `orders.json`: the same keys, Kite's timestamp format, numbers
as Kite writes them. Form fields are validated the way Kite validates them: a missing or
malformed field is an `InputException` before any order exists; a well-formed order the risk
checks refuse is created and `REJECTED` with a status message, as Kite does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from tests.fakes.kite_errors import input_error
from tests.fakes.kite_instruments import KiteInstrument

TAG_MAX_LENGTH = 20
MAX_MODIFICATIONS = 25
VARIETIES = ("regular", "amo", "co", "iceberg", "auction")
SUPPORTED_VARIETIES = ("regular", "amo")
TRANSACTION_TYPES = ("BUY", "SELL")
ORDER_TYPES = ("MARKET", "LIMIT", "SL", "SL-M")
PRODUCTS = ("CNC", "NRML", "MIS", "MTF", "CO")
VALIDITIES = ("DAY", "IOC", "TTL")


class Status(StrEnum):
    """Kite's order statuses, transient ones included."""

    PUT_ORDER_REQ_RECEIVED = "PUT ORDER REQ RECEIVED"
    VALIDATION_PENDING = "VALIDATION PENDING"
    OPEN_PENDING = "OPEN PENDING"
    OPEN = "OPEN"
    TRIGGER_PENDING = "TRIGGER PENDING"
    AMO_REQ_RECEIVED = "AMO REQ RECEIVED"
    MODIFY_VALIDATION_PENDING = "MODIFY VALIDATION PENDING"
    MODIFY_PENDING = "MODIFY PENDING"
    MODIFIED = "MODIFIED"
    CANCEL_PENDING = "CANCEL PENDING"
    COMPLETE = "COMPLETE"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"

    @property
    def terminal(self) -> bool:
        return self in (Status.COMPLETE, Status.CANCELLED, Status.REJECTED)

    @property
    def working(self) -> bool:
        return self in (Status.OPEN, Status.TRIGGER_PENDING, Status.AMO_REQ_RECEIVED)


@dataclass
class KiteOrder:
    """One order as Kite's OMS holds it."""

    order_id: str
    variety: str
    exchange: str
    tradingsymbol: str
    instrument_token: int
    transaction_type: str
    order_type: str
    product: str
    validity: str
    quantity: int
    price: Decimal
    trigger_price: Decimal
    order_timestamp: datetime
    placed_by: str
    guid: str
    tag: str | None = None
    validity_ttl: int = 0
    disclosed_quantity: int = 0
    market_protection: int = 0
    status: Status = Status.PUT_ORDER_REQ_RECEIVED
    status_message: str | None = None
    exchange_order_id: str | None = None
    exchange_timestamp: datetime | None = None
    exchange_update_timestamp: datetime | None = None
    filled_quantity: int = 0
    filled_value: Decimal = Decimal(0)
    cancelled_quantity: int = 0
    modified: bool = False
    modifications: int = 0
    triggered: bool = False
    resting: bool = False  # has waited at least once: fills at its own price from now on
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pending_quantity(self) -> int:
        if self.status is Status.REJECTED:
            return 0
        return self.quantity - self.filled_quantity

    @property
    def remaining(self) -> int:
        """What can still fill (zero once the order is terminal)."""
        return 0 if self.status.terminal else self.quantity - self.filled_quantity

    @property
    def average_price(self) -> Decimal:
        if self.filled_quantity == 0:
            return Decimal(0)
        return (self.filled_value / self.filled_quantity).quantize(Decimal("0.0001")).normalize()

    @property
    def is_buy(self) -> bool:
        return self.transaction_type == "BUY"

    def to_kite(self) -> dict[str, Any]:
        """The order in the shape of Kite's order book rows."""
        body: dict[str, Any] = {
            "account_id": self.placed_by,
            "placed_by": self.placed_by,
            "order_id": self.order_id,
            "exchange_order_id": self.exchange_order_id,
            "parent_order_id": None,
            "status": self.status.value,
            "status_message": self.status_message,
            "status_message_raw": self.status_message,
            "order_timestamp": self.order_timestamp,
            "exchange_update_timestamp": self.exchange_update_timestamp,
            "exchange_timestamp": self.exchange_timestamp,
            "variety": self.variety,
            "modified": self.modified,
            "exchange": self.exchange,
            "tradingsymbol": self.tradingsymbol,
            "instrument_token": self.instrument_token,
            "order_type": self.order_type,
            "transaction_type": self.transaction_type,
            "validity": self.validity,
            "validity_ttl": self.validity_ttl,
            "product": self.product,
            "quantity": self.quantity,
            "disclosed_quantity": self.disclosed_quantity,
            "price": self.price,
            "trigger_price": self.trigger_price,
            "average_price": self.average_price,
            "filled_quantity": self.filled_quantity,
            "pending_quantity": self.pending_quantity,
            "cancelled_quantity": self.cancelled_quantity,
            "market_protection": self.market_protection,
            "meta": {},
            "tag": self.tag,
            "guid": self.guid,
        }
        if self.tag is not None:
            body["tags"] = [self.tag]
        return body

    def record(self, status: Status, at: datetime, message: str | None = None) -> None:
        """Move to `status` and keep the snapshot for the order's history."""
        self.status = status
        if message is not None:
            self.status_message = message
        if self.exchange_order_id is not None:
            self.exchange_update_timestamp = at
        self.history.append(copy.deepcopy(self.to_kite()))


@dataclass(frozen=True, slots=True)
class KiteTrade:
    """One fill."""

    trade_id: str
    order_id: str
    exchange_order_id: str
    exchange: str
    tradingsymbol: str
    instrument_token: int
    product: str
    transaction_type: str
    quantity: int
    price: Decimal
    fill_timestamp: datetime

    def to_kite(self) -> dict[str, Any]:
        return {
            "trade_id": self.trade_id,
            "order_id": self.order_id,
            "exchange": self.exchange,
            "tradingsymbol": self.tradingsymbol,
            "instrument_token": self.instrument_token,
            "product": self.product,
            "average_price": self.price,
            "quantity": self.quantity,
            "exchange_order_id": self.exchange_order_id,
            "transaction_type": self.transaction_type,
            "fill_timestamp": self.fill_timestamp,
            "order_timestamp": self.fill_timestamp.strftime("%H:%M:%S"),
            "exchange_timestamp": self.fill_timestamp,
        }


# -- form validation ----------------------------------------------------------------------------
def _text(form: Mapping[str, str], name: str, required: bool = True) -> str | None:
    value = form.get(name)
    if value is None or value == "":
        if required:
            raise input_error(f"Missing or empty field `{name}`.")
        return None
    return value


def _choice(
    form: Mapping[str, str], name: str, allowed: tuple[str, ...], required: bool = True
) -> str | None:
    value = _text(form, name, required)
    if value is not None and value not in allowed:
        raise input_error(f"Invalid `{name}`: {value!r} (one of {', '.join(allowed)}).")
    return value


def parse_int(form: Mapping[str, str], name: str, required: bool = True) -> int | None:
    value = _text(form, name, required)
    if value is None:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise input_error(f"Invalid `{name}`: {value!r} is not a number.") from None
    if number != number.to_integral_value() or number < 0:
        raise input_error(f"Invalid `{name}`: {value!r} is not a whole number.")
    return int(number)


def parse_price(form: Mapping[str, str], name: str) -> Decimal | None:
    value = _text(form, name, required=False)
    if value is None:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise input_error(f"Invalid `{name}`: {value!r} is not a number.") from None
    if not number.is_finite() or number < 0:
        raise input_error(f"Invalid `{name}`: {value!r}.")
    return number


def check_tick(value: Decimal, inst: KiteInstrument, name: str) -> None:
    tick = inst.tick_size
    if tick > 0 and value % tick != 0:
        raise input_error(
            f"Tick size for this script is {tick}. Kindly enter the {name} in the multiple of "
            "tick size for this script."
        )


def parse_market_protection(form: Mapping[str, str]) -> int:
    """-1 (automatic) or a percentage from 0 to 100."""
    value = _text(form, "market_protection", required=False)
    if value is None:
        return 0
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise input_error(f"Invalid `market_protection`: {value!r}.") from None
    if number != -1 and not Decimal(0) <= number <= Decimal(100):
        raise input_error("Invalid `market_protection`: -1 or a percentage from 0 to 100.")
    return int(number)


@dataclass(frozen=True, slots=True)
class PlaceForm:
    """A validated `POST /orders/{variety}` body."""

    variety: str
    exchange: str
    tradingsymbol: str
    transaction_type: str
    order_type: str
    product: str
    quantity: int
    price: Decimal
    trigger_price: Decimal
    validity: str
    validity_ttl: int
    disclosed_quantity: int
    tag: str | None
    market_protection: int


def parse_variety(variety: str) -> str:
    if variety not in VARIETIES:
        raise input_error(f"Invalid `variety`: {variety!r}.")
    if variety not in SUPPORTED_VARIETIES:
        raise input_error(f"Variety {variety!r} is not available on this account.")
    return variety


def parse_tag(form: Mapping[str, str]) -> str | None:
    tag = _text(form, "tag", required=False)
    if tag is not None and len(tag) > TAG_MAX_LENGTH:
        raise input_error(f"Invalid `tag`: at most {TAG_MAX_LENGTH} characters.")
    return tag


def parse_place(variety: str, form: Mapping[str, str]) -> PlaceForm:
    """Every field Kite checks before an order exists; raises `InputException`."""
    order_type = _choice(form, "order_type", ORDER_TYPES)
    quantity = parse_int(form, "quantity")
    if quantity is None or quantity <= 0:
        raise input_error("Invalid `quantity`: must be a positive whole number.")
    price = parse_price(form, "price") or Decimal(0)
    trigger = parse_price(form, "trigger_price") or Decimal(0)
    if order_type in ("LIMIT", "SL") and price <= 0:
        raise input_error(f"Invalid `price`: a {order_type} order needs a price above zero.")
    if order_type in ("SL", "SL-M") and trigger <= 0:
        raise input_error(f"Invalid `trigger_price`: a {order_type} order needs a trigger price.")
    validity = _choice(form, "validity", VALIDITIES, required=False) or "DAY"
    ttl = parse_int(form, "validity_ttl", required=False) or 0
    if validity == "TTL" and ttl <= 0:
        raise input_error("Invalid `validity_ttl`: TTL validity needs a number of minutes.")
    return PlaceForm(
        variety=parse_variety(variety),
        exchange=str(_text(form, "exchange")),
        tradingsymbol=str(_text(form, "tradingsymbol")),
        transaction_type=str(_choice(form, "transaction_type", TRANSACTION_TYPES)),
        order_type=str(order_type),
        product=str(_choice(form, "product", PRODUCTS)),
        quantity=quantity,
        price=price if order_type in ("LIMIT", "SL") else Decimal(0),
        trigger_price=trigger if order_type in ("SL", "SL-M") else Decimal(0),
        validity=validity,
        validity_ttl=ttl,
        disclosed_quantity=parse_int(form, "disclosed_quantity", required=False) or 0,
        tag=parse_tag(form),
        market_protection=parse_market_protection(form),
    )


@dataclass(frozen=True, slots=True)
class ModifyForm:
    """A validated `PUT /orders/{variety}/{order_id}` body (absent fields stay as they are)."""

    quantity: int | None
    price: Decimal | None
    trigger_price: Decimal | None
    order_type: str | None
    validity: str | None
    disclosed_quantity: int | None


def parse_modify(form: Mapping[str, str]) -> ModifyForm:
    quantity = parse_int(form, "quantity", required=False)
    if quantity is not None and quantity <= 0:
        raise input_error("Invalid `quantity`: must be a positive whole number.")
    return ModifyForm(
        quantity=quantity,
        price=parse_price(form, "price"),
        trigger_price=parse_price(form, "trigger_price"),
        order_type=_choice(form, "order_type", ORDER_TYPES, required=False),
        validity=_choice(form, "validity", ("DAY", "IOC"), required=False),
        disclosed_quantity=parse_int(form, "disclosed_quantity", required=False),
    )
