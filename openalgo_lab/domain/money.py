"""Exact money arithmetic.

We use `decimal.Decimal` for every price and amount inside the product and floats only at the
JSON edge. Integer paise would not do: currency futures tick in ₹0.0025 and option strikes can
be fractional, neither a whole number of paise. Decimal keeps those exact, and `quantize`
applies the exchanges' and brokers' rounding (paise for most charges, whole rupees for STT).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

ZERO = Decimal(0)
PAISA = Decimal("0.01")
RUPEE = Decimal(1)


def to_decimal(value: object, field: str) -> Decimal:
    """Parse a number as it arrives from JSON or the official client (which sends strings).

    Floats go through `repr` so that `812.5` becomes `Decimal("812.5")`, not its binary
    expansion. Raises `ValidationError` naming `field` for anything that is not a finite number.
    """
    from openalgo_lab.domain.errors import ValidationError

    if isinstance(value, bool):
        raise ValidationError(field, f"must be a number, got {value!r}")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        d = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValidationError(field, "must be a number, got an empty string")
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise ValidationError(field, f"must be a number, got {value!r}") from None
    else:
        raise ValidationError(field, f"must be a number, got {type(value).__name__}")
    if not d.is_finite():
        raise ValidationError(field, f"must be a finite number, got {value!r}")
    return d


def round_paise(amount: Decimal) -> Decimal:
    """Round to the paisa, half up (brokers' calculators and contract notes)."""
    return amount.quantize(PAISA, rounding=ROUND_HALF_UP)


def round_rupee(amount: Decimal) -> Decimal:
    """Round to the whole rupee, half up (STT and CTT on a contract note)."""
    return amount.quantize(RUPEE, rounding=ROUND_HALF_UP)


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """True when `value` is an exact multiple of `step` (a tick size or a lot size)."""
    if step <= 0:
        return True
    return value % step == 0


def round_to_tick(price: Decimal, tick: Decimal, *, up: bool | None = None) -> Decimal:
    """Snap a price onto the tick grid: nearest (half up) by default, or up/down on request."""
    if tick <= 0:
        return price
    steps = price / tick
    if up is None:
        n = steps.quantize(RUPEE, rounding=ROUND_HALF_UP)
    elif up:
        n = steps.to_integral_value(rounding="ROUND_CEILING")
    else:
        n = steps.to_integral_value(rounding="ROUND_FLOOR")
    return (n * tick).quantize(tick)


def to_float(amount: Decimal) -> float:
    """The JSON edge: a float that prints as the exact decimal (e.g. 1845.29)."""
    return float(amount)
