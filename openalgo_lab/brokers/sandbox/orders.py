"""Orders inside the sandbox: a mutable record with an explicit state machine.

Every status change goes through `WorkingOrder.move_to`, which refuses transitions that cannot
happen at an exchange (a complete order cannot be cancelled, a cancelled one cannot fill).
Fills go through `WorkingOrder.record_fill`, which refuses a fill larger than what is pending,
so no fill is ever applied twice or beyond the order's quantity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from openalgo_lab.domain.enums import Action, Exchange, OrderStatus, PriceType, Product
from openalgo_lab.domain.errors import InvalidOrderState
from openalgo_lab.domain.models import Instrument, Order
from openalgo_lab.domain.money import ZERO

S = OrderStatus
ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.OPEN: frozenset({S.PARTIALLY_FILLED, S.COMPLETE, S.CANCELLED}),
    S.TRIGGER_PENDING: frozenset({S.OPEN, S.PARTIALLY_FILLED, S.COMPLETE, S.CANCELLED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.COMPLETE, S.CANCELLED}),
    S.COMPLETE: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}


@dataclass(slots=True)
class WorkingOrder:
    orderid: str
    instrument: Instrument
    action: Action
    quantity: int
    pricetype: PriceType
    product: Product
    price: Decimal
    trigger_price: Decimal
    status: OrderStatus
    placed_at: datetime
    updated_at: datetime
    strategy: str = ""
    tag: str = ""
    disclosed_quantity: int = 0
    filled_quantity: int = 0
    filled_value: Decimal = ZERO
    margin_blocked: Decimal = ZERO
    rejection_reason: str = ""
    fill_count: int = 0
    trade_ids: list[str] = field(default_factory=list)
    _snapshot: Order | None = field(default=None, repr=False, compare=False)

    @property
    def symbol(self) -> str:
        return self.instrument.symbol

    @property
    def exchange(self) -> Exchange:
        return self.instrument.exchange

    @property
    def pending_quantity(self) -> int:
        return self.quantity - self.filled_quantity

    @property
    def average_price(self) -> Decimal:
        if not self.filled_quantity:
            return ZERO
        return self.filled_value / self.filled_quantity

    @property
    def triggered(self) -> bool:
        return self.status is not OrderStatus.TRIGGER_PENDING

    @property
    def effective_type(self) -> PriceType:
        """What the order behaves as now: a triggered SL is a LIMIT, a triggered SL-M a MARKET."""
        if self.pricetype is PriceType.SL and self.triggered:
            return PriceType.LIMIT
        if self.pricetype is PriceType.SL_M and self.triggered:
            return PriceType.MARKET
        return self.pricetype

    def move_to(self, status: OrderStatus, at: datetime) -> None:
        if status not in ALLOWED[self.status]:
            raise InvalidOrderState(
                f"Order {self.orderid} is {self.status.value}; it cannot become {status.value}"
            )
        self.status = status
        self.updated_at = at
        self._snapshot = None

    def record_fill(self, quantity: int, price: Decimal, at: datetime) -> str:
        """Book a fill against this order and return its trade id."""
        if quantity <= 0 or quantity > self.pending_quantity:
            raise InvalidOrderState(
                f"fill of {quantity} on order {self.orderid} with {self.pending_quantity} pending"
            )
        self.filled_quantity += quantity
        self.filled_value += price * quantity
        self._snapshot = None
        self.fill_count += 1
        complete = self.filled_quantity == self.quantity
        self.move_to(OrderStatus.COMPLETE if complete else OrderStatus.PARTIALLY_FILLED, at)
        trade_id = f"{self.orderid}-{self.fill_count}"
        self.trade_ids.append(trade_id)
        return trade_id

    def touch(self, at: datetime) -> None:
        """Record a change made outside `move_to`/`record_fill` (a modification)."""
        self.updated_at = at
        self._snapshot = None

    def snapshot(self) -> Order:
        """The immutable view of this order, built once per change: every event and every
        caller of one state share it."""
        if self._snapshot is None:
            self._snapshot = self._build_snapshot()
        return self._snapshot

    def _build_snapshot(self) -> Order:
        return Order(
            orderid=self.orderid,
            symbol=self.symbol,
            exchange=self.exchange,
            action=self.action,
            quantity=self.quantity,
            pricetype=self.pricetype,
            product=self.product,
            price=self.price,
            trigger_price=self.trigger_price,
            status=self.status,
            filled_quantity=self.filled_quantity,
            average_price=self.average_price,
            placed_at=self.placed_at,
            updated_at=self.updated_at,
            strategy=self.strategy,
            rejection_reason=self.rejection_reason,
            disclosed_quantity=self.disclosed_quantity,
            tag=self.tag,
        )


class OrderIds:
    """OpenAlgo-style sandbox order ids: `YYMMDD` + 8 digits, unique within a sandbox."""

    def __init__(self) -> None:
        self.seq = 0
        self._day = (0, 0, 0)
        self._prefix = ""

    def next(self, at: datetime) -> str:
        """`at` is exchange (IST) time: the prefix is the exchange's trading date."""
        self.seq += 1
        day = (at.year, at.month, at.day)
        if day != self._day:
            self._day, self._prefix = day, f"{at:%y%m%d}"
        return f"{self._prefix}{self.seq:08d}"
