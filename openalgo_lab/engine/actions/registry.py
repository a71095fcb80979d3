"""How an OpenAlgo action is declared, and what it is given.

An action is an async function `(ctx, payload) -> dict` registered under its OpenAlgo name
(`placeorder`, `quotes`, ...). It reads its fields from `payload` with the `Payload` helpers,
which raise `ValidationError` naming the field, and returns the success body *without* the
envelope's status (the engine adds `status: success` and, in analyze mode, `mode: analyze`).
Errors are raised, never returned: the engine maps them to OpenAlgo's error envelope once.

The registry also says, per action, which rate-limit class it belongs to and whether it
changes anything, so the REST layer and API-key scopes need no list of their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from openalgo_lab.domain.enums import Exchange
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.money import to_decimal
from openalgo_lab.domain.validation import parse_enum, parse_price, parse_quantity

if TYPE_CHECKING:
    from openalgo_lab.brokers.base import Broker
    from openalgo_lab.engine.accounts import TradingAccount
    from openalgo_lab.engine.engine import Engine
    from openalgo_lab.instruments.master import MasterContract

JSON = dict[str, Any]


class RateClass(StrEnum):
    """OpenAlgo's rate-limit buckets (reference §1.1)."""

    ORDER = "order"  # placeorder, modifyorder, cancelorder, optionsorder, ...
    SMART_ORDER = "smart_order"  # placesmartorder
    API = "api"  # everything else


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What an action may use: the engine and the caller's account.

    `broker` takes orders and keeps the books: the sandbox in analyze mode, else the account's
    live broker. `data` serves market data: the live broker when the account has one (as
    OpenAlgo's analyzer does), else the sandbox's simulated market.
    """

    engine: Engine
    account: TradingAccount
    idempotency_key: str = ""

    @property
    def broker(self) -> Broker:
        return self.account.order_broker

    @property
    def data(self) -> Broker:
        return self.account.data_broker

    @property
    def master(self) -> MasterContract:
        """The master contract of the broker serving `data` (symbols, expiries, chains)."""
        return self.account.data_master

    @property
    def analyze(self) -> bool:
        return self.account.analyze


Handler = Callable[[ActionContext, "Payload"], Awaitable[JSON]]


@dataclass(frozen=True, slots=True)
class ActionSpec:
    name: str
    handler: Handler
    rate: RateClass
    trading: bool  # changes orders or positions (needs a trading-scoped key)
    summary: str


ACTIONS: dict[str, ActionSpec] = {}


def action(
    name: str, *, rate: RateClass = RateClass.API, trading: bool = False
) -> Callable[[Handler], Handler]:
    """Register an action under its OpenAlgo name; the docstring's first line is its summary."""

    def register(fn: Handler) -> Handler:
        if name in ACTIONS:
            raise ValueError(f"action {name!r} registered twice")
        summary = (fn.__doc__ or name).strip().splitlines()[0]
        ACTIONS[name] = ActionSpec(name, fn, rate, trading, summary)
        return fn

    return register


E = TypeVar("E", bound=StrEnum)


class Payload:
    """Typed, validating access to a request body. Every error names its field."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping):
            raise ValidationError("body", "must be a JSON object")
        self.data = data

    def raw(self, field: str) -> Any:
        return self.data.get(field)

    def has(self, field: str) -> bool:
        value = self.data.get(field)
        return value is not None and value != ""

    def text(self, field: str, *, default: str | None = None, max_length: int = 200) -> str:
        value = self.data.get(field)
        if value is None or value == "":
            if default is not None:
                return default
            raise ValidationError(field, "is required")
        if not isinstance(value, str):
            raise ValidationError(field, f"must be a string, got {type(value).__name__}")
        if len(value) > max_length:
            raise ValidationError(field, f"must be at most {max_length} characters")
        return value.strip()

    def enum(self, enum: type[E], field: str, *, default: E | None = None) -> E:
        return parse_enum(enum, self.data.get(field), field, default=default)

    def exchange(self, field: str = "exchange") -> Exchange:
        return self.enum(Exchange, field)

    def quantity(self, field: str = "quantity", *, allow_zero: bool = False) -> int:
        return parse_quantity(self.data.get(field), field, allow_zero=allow_zero)

    def integer(
        self,
        field: str,
        *,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        value = self.data.get(field)
        if value is None or value == "":
            if default is None:
                raise ValidationError(field, "is required")
            return default
        number = to_decimal(value, field)
        if number != number.to_integral_value():
            raise ValidationError(field, f"must be a whole number, got {value!r}")
        if minimum is not None and number < minimum:
            raise ValidationError(field, f"must be >= {minimum}, got {value!r}")
        if maximum is not None and number > maximum:
            raise ValidationError(field, f"must be <= {maximum}, got {value!r}")
        return int(number)

    def decimal(self, field: str, *, default: Decimal | None = None) -> Decimal:
        value = self.data.get(field)
        if value is None or value == "":
            if default is None:
                raise ValidationError(field, "is required")
            return default
        return to_decimal(value, field)

    def price(self, field: str) -> Decimal:
        return parse_price(self.data.get(field), field)

    def boolean(self, field: str, *, default: bool | None = None) -> bool:
        value = self.data.get(field)
        if value is None:
            if default is None:
                raise ValidationError(field, "is required")
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValidationError(field, f"must be true or false, got {value!r}")

    def items(self, field: str, *, minimum: int = 1, maximum: int = 100) -> list[Payload]:
        """A list of objects (basket legs, multiquote symbols), each as a Payload."""
        value = self.data.get(field)
        if not isinstance(value, list):
            raise ValidationError(field, "must be a list")
        if not minimum <= len(value) <= maximum:
            raise ValidationError(
                field, f"must have {minimum} to {maximum} items, got {len(value)}"
            )
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise ValidationError(f"{field}[{i}]", "must be an object")
            out.append(Payload(item))
        return out
