"""Pre-trade risk checks: the last gate before an order leaves for a broker.

Off by default except sane order-size limits (a fat-fingered quantity or value is refused).
The kill switch blocks every new order of an account; `Engine.kill` can also cancel all working
orders and close all positions. A refusal is an `OrderRejected` (HTTP 400) naming the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from openalgo_lab.domain.errors import OrderRejected
from openalgo_lab.domain.models import OrderRequest


@dataclass
class RiskLimits:
    max_order_value: Decimal | None = Decimal(50_000_000)
    max_order_quantity: int | None = 100_000
    max_position_quantity: int | None = None  # per symbol and product, absolute
    max_daily_loss: Decimal | None = None  # per account, realised + unrealised, positive number
    max_daily_loss_per_strategy: dict[str, Decimal] = field(default_factory=dict)


class RiskRejected(OrderRejected):
    """An order refused by a risk limit or the kill switch."""


@dataclass
class RiskState:
    """What the checks need to know about the account right now."""

    position_quantity: int = 0  # signed net position in this symbol and product
    day_pnl: Decimal = Decimal(0)
    strategy_day_pnl: Decimal = Decimal(0)


def check_order(
    limits: RiskLimits,
    request: OrderRequest,
    price: Decimal,
    state: RiskState,
    *,
    killed: bool,
) -> None:
    """Raise `RiskRejected` naming the first limit the order would break."""
    if killed:
        raise RiskRejected("Kill switch is on for this account: new orders are blocked")
    if limits.max_order_quantity is not None and request.quantity > limits.max_order_quantity:
        raise RiskRejected(
            f"Risk: quantity {request.quantity} exceeds the per-order limit "
            f"{limits.max_order_quantity}"
        )
    value = price * request.quantity
    if limits.max_order_value is not None and value > limits.max_order_value:
        raise RiskRejected(
            f"Risk: order value ₹{value:.2f} exceeds the per-order limit "
            f"₹{limits.max_order_value:.2f}"
        )
    if limits.max_position_quantity is not None:
        after = state.position_quantity + request.action.sign * request.quantity
        if abs(after) > limits.max_position_quantity and abs(after) > abs(state.position_quantity):
            raise RiskRejected(
                f"Risk: position in {request.symbol} would be {after}, beyond the limit "
                f"{limits.max_position_quantity}"
            )
    increases = abs(state.position_quantity + request.action.sign * request.quantity) > abs(
        state.position_quantity
    )
    if not increases:
        return  # reducing exposure is always allowed, even past a loss limit
    if limits.max_daily_loss is not None and -state.day_pnl >= limits.max_daily_loss:
        raise RiskRejected(
            f"Risk: the account's loss today (₹{-state.day_pnl:.2f}) has reached the limit "
            f"₹{limits.max_daily_loss:.2f}; only orders that reduce positions are accepted"
        )
    strategy_limit = limits.max_daily_loss_per_strategy.get(request.strategy)
    if strategy_limit is not None and -state.strategy_day_pnl >= strategy_limit:
        raise RiskRejected(
            f"Risk: strategy {request.strategy!r} lost ₹{-state.strategy_day_pnl:.2f} today, "
            f"reaching its limit ₹{strategy_limit:.2f}"
        )
