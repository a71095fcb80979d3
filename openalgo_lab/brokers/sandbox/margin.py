"""Margin the sandbox blocks, by product and instrument type.

We keep OpenAlgo's sandbox model (order value ÷ leverage; reference `openalgo-api.md` §5) so
funds behave the way OpenAlgo users expect, with one deliberate change: a short option blocks
max(premium value, underlying notional × a short-option rate) instead of the premium alone.
Premium-only margin lets a ₹1 lakh account sell options worth crores of notional, which no
broker allows (openalgo issue #1097).

The short-option rates approximate SPAN + exposure margin (reference `indian-markets.md` §5):
12% of notional for index options (an ATM index short is about 8–12% with the 2% index ELM),
20% for stock options (stock F&O margins run about 15–35%). Currency and commodity shorts use
the futures margin (notional ÷ futures leverage), which is what SPAN charges an ATM short.
These are approximations; a real broker's figure depends on moneyness, volatility, expiry-day
ELM and hedges.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal

from openalgo_lab.brokers.sandbox.charges import Segment, segment_of
from openalgo_lab.domain.enums import Action, Product
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.models import Instrument
from openalgo_lab.domain.money import ZERO, round_paise

# Fallback for masters that do not say where an option's underlying is quoted.
INDEX_UNDERLYINGS = frozenset(
    {"NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTYNXT50", "SENSEX", "BANKEX", "SENSEX50"}
)


@dataclass(frozen=True, slots=True)
class MarginRules:
    """Leverages (OpenAlgo's sandbox defaults) and short-option rates (our SPAN+ELM stand-in)."""

    equity_mis_leverage: Decimal = Decimal(5)
    equity_cnc_leverage: Decimal = Decimal(1)
    futures_leverage: Decimal = Decimal(10)
    option_buy_leverage: Decimal = Decimal(1)
    short_option_index_rate: Decimal = Decimal("0.12")
    short_option_stock_rate: Decimal = Decimal("0.20")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ValidationError(f.name, f"must be a positive Decimal, got {value!r}")


DEFAULT_RULES = MarginRules()


def margin_required(
    instrument: Instrument,
    product: Product,
    action: Action,
    quantity: int,
    price: Decimal,
    *,
    underlying_price: Decimal | None = None,
    rules: MarginRules | None = None,
) -> Decimal:
    """Margin for `quantity` units that open (or add to) exposure in the direction of `action`,
    rounded to the paisa. `price` is the premium for options. A short option's notional uses
    `underlying_price`, or the strike when no usable underlying price is known."""
    _check_quantity(quantity, "quantity")
    segment = _check(instrument, product, price, underlying_price)
    return _margin(instrument, segment, action, quantity, price, underlying_price, rules)


def margin_for_order(
    instrument: Instrument,
    product: Product,
    action: Action,
    quantity: int,
    price: Decimal,
    *,
    position_quantity: int,
    underlying_price: Decimal | None = None,
    rules: MarginRules | None = None,
) -> Decimal:
    """Margin an order blocks given the signed position it trades against (same symbol,
    exchange and product). Units that reduce the position free margin rather than need it,
    so only the excess of a reversal is margined."""
    _check_quantity(quantity, "quantity")
    if isinstance(position_quantity, bool) or not isinstance(position_quantity, int):
        raise ValidationError(
            "position_quantity", f"must be a whole number, got {position_quantity!r}"
        )
    segment = _check(instrument, product, price, underlying_price)
    reducing = position_quantity * action.sign < 0
    opening = quantity - min(quantity, abs(position_quantity)) if reducing else quantity
    return _margin(instrument, segment, action, opening, price, underlying_price, rules)


def release_on_close(blocked: Decimal, position_quantity: int, closed_quantity: int) -> Decimal:
    """Margin freed by closing `closed_quantity` of a position that blocks `blocked`.

    Pro rata, rounded to the paisa, and the close that flattens the position frees whatever is
    left; so a sequence of partial closes (each passed the remaining block and position) frees
    exactly the original block and never more."""
    if not isinstance(blocked, Decimal) or not blocked.is_finite() or blocked < 0:
        raise ValidationError("blocked", f"must be a non-negative Decimal, got {blocked!r}")
    if isinstance(position_quantity, bool) or not isinstance(position_quantity, int):
        raise ValidationError(
            "position_quantity", f"must be a whole number, got {position_quantity!r}"
        )
    if position_quantity == 0:
        raise ValidationError("position_quantity", "a flat position has nothing to close")
    _check_quantity(closed_quantity, "closed_quantity")
    held = abs(position_quantity)
    if closed_quantity > held:
        raise ValidationError(
            "closed_quantity", f"cannot close {closed_quantity} of a position of {held}"
        )
    if closed_quantity == held:
        return blocked
    return min(round_paise(blocked * closed_quantity / held), blocked)


# -- internals ---------------------------------------------------------------------------------


def _margin(
    instrument: Instrument,
    segment: Segment,
    action: Action,
    quantity: int,
    price: Decimal,
    underlying_price: Decimal | None,
    rules: MarginRules | None,
) -> Decimal:
    if quantity == 0:
        return ZERO
    rules = rules if rules is not None else DEFAULT_RULES
    value = price * quantity
    if segment is Segment.EQUITY_DELIVERY:
        # A CNC sell delivers shares already owned: it opens no exposure.
        amount = ZERO if action is Action.SELL else value / rules.equity_cnc_leverage
    elif segment is Segment.EQUITY_INTRADAY:
        amount = value / rules.equity_mis_leverage
    elif not segment.is_option:
        amount = value / rules.futures_leverage
    elif action is Action.BUY:
        amount = value / rules.option_buy_leverage
    else:
        reference = underlying_price if underlying_price else instrument.strike
        notional = reference * quantity
        amount = max(value, notional * _short_option_rate(instrument, segment, rules))
    return round_paise(amount)


def _short_option_rate(instrument: Instrument, segment: Segment, rules: MarginRules) -> Decimal:
    if segment is not Segment.EQUITY_OPTIONS:
        return 1 / rules.futures_leverage
    if instrument.underlying_exchange is not None:
        is_index = instrument.underlying_exchange.is_index
    else:
        is_index = (instrument.underlying or instrument.name) in INDEX_UNDERLYINGS
    return rules.short_option_index_rate if is_index else rules.short_option_stock_rate


def _check(
    instrument: Instrument, product: Product, price: Decimal, underlying_price: Decimal | None
) -> Segment:
    _check_amount(price, "price")
    if underlying_price is not None:
        _check_amount(underlying_price, "underlying_price")
    return segment_of(instrument, product)


def _check_quantity(quantity: int, name: str) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise ValidationError(name, f"must be a positive whole number, got {quantity!r}")


def _check_amount(amount: Decimal, name: str) -> None:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
        raise ValidationError(name, f"must be a finite, non-negative Decimal, got {amount!r}")
