"""Positions, holdings and funds in the fake Kite server, moved by fills.

Kite reports a position per (exchange, tradingsymbol, product) twice: `net` (overnight quantity
included) and `day` (today's trades only), with `value = sell_value - buy_value` and
`pnl = value + quantity * last_price * multiplier`; realised P&L stays inside `pnl`/`unrealised`
as Kite's own rows show it. Funds follow a plain margin model, stated here because the fake
invents it (Kite publishes no formula): cash MIS blocks 20% of the exposure, CNC buys take the
full value (`delivery`), futures block 10% SPAN + 2% exposure, bought options pay the premium,
written options block 10% SPAN + 2% exposure of the underlying's notional. Exposure counts
open orders as if they filled. Losses reduce the available balance, profits do not (they are
paid out at settlement, as at Kite).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.fakes.kite_instruments import KiteInstrument

MIS_EQUITY_RATE = Decimal("0.20")
SPAN_RATE = Decimal("0.10")
EXPOSURE_RATE = Decimal("0.02")
ZERO = Decimal(0)


@dataclass
class PositionBucket:
    """One (exchange, tradingsymbol, product) line."""

    instrument: KiteInstrument
    product: str
    overnight_quantity: int = 0  # signed, carried from the previous session
    overnight_price: Decimal = ZERO
    day_buy_quantity: int = 0
    day_buy_value: Decimal = ZERO
    day_sell_quantity: int = 0
    day_sell_value: Decimal = ZERO

    def add_fill(self, is_buy: bool, quantity: int, price: Decimal) -> None:
        if is_buy:
            self.day_buy_quantity += quantity
            self.day_buy_value += price * quantity
        else:
            self.day_sell_quantity += quantity
            self.day_sell_value += price * quantity

    @property
    def quantity(self) -> int:
        return self.overnight_quantity + self.day_buy_quantity - self.day_sell_quantity

    @property
    def day_quantity(self) -> int:
        return self.day_buy_quantity - self.day_sell_quantity

    @property
    def has_day_activity(self) -> bool:
        return self.day_buy_quantity > 0 or self.day_sell_quantity > 0

    def pnl(self, last_price: Decimal) -> Decimal:
        buy_value = self.day_buy_value + max(self.overnight_quantity, 0) * self.overnight_price
        sell_value = self.day_sell_value + max(-self.overnight_quantity, 0) * self.overnight_price
        return sell_value - buy_value + self.quantity * last_price

    def rows(self, last_price: Decimal, close: Decimal) -> tuple[dict[str, Any], dict[str, Any]]:
        """(net row, day row) in Kite's position shape."""
        on_long, on_short = max(self.overnight_quantity, 0), max(-self.overnight_quantity, 0)
        net = _row(
            self,
            last_price,
            close,
            buy=(
                self.day_buy_quantity + on_long,
                self.day_buy_value + on_long * self.overnight_price,
            ),
            sell=(
                self.day_sell_quantity + on_short,
                self.day_sell_value + on_short * self.overnight_price,
            ),
            m2m_carry=(on_long * close, on_short * close),
            overnight=self.overnight_quantity,
        )
        day = _row(
            self,
            last_price,
            close,
            buy=(self.day_buy_quantity, self.day_buy_value),
            sell=(self.day_sell_quantity, self.day_sell_value),
            m2m_carry=(ZERO, ZERO),
            overnight=0,
        )
        return net, day


def _avg(value: Decimal, quantity: int) -> Decimal:
    return (value / quantity).quantize(Decimal("0.0001")).normalize() if quantity else ZERO


def _row(
    bucket: PositionBucket,
    last_price: Decimal,
    close: Decimal,
    buy: tuple[int, Decimal],
    sell: tuple[int, Decimal],
    m2m_carry: tuple[Decimal, Decimal],
    overnight: int,
) -> dict[str, Any]:
    inst = bucket.instrument
    (buy_qty, buy_value), (sell_qty, sell_value) = buy, sell
    quantity = buy_qty - sell_qty
    value = sell_value - buy_value
    pnl = value + quantity * last_price
    buy_m2m = (buy_value - max(overnight, 0) * bucket.overnight_price) + m2m_carry[0]
    sell_m2m = (sell_value - max(-overnight, 0) * bucket.overnight_price) + m2m_carry[1]
    m2m = sell_m2m - buy_m2m + quantity * last_price
    if quantity > 0:
        average = _avg(buy_value, buy_qty)
    elif quantity < 0:
        average = _avg(sell_value, sell_qty)
    else:
        average = ZERO
    return {
        "tradingsymbol": inst.tradingsymbol,
        "exchange": inst.exchange,
        "instrument_token": inst.instrument_token,
        "product": bucket.product,
        "quantity": quantity,
        "overnight_quantity": overnight,
        "multiplier": 1,
        "average_price": average,
        "close_price": close,
        "last_price": last_price,
        "value": value,
        "pnl": pnl,
        "m2m": m2m,
        "unrealised": pnl,
        "realised": 0,
        "buy_quantity": buy_qty,
        "buy_price": _avg(buy_value, buy_qty),
        "buy_value": buy_value,
        "buy_m2m": buy_m2m,
        "sell_quantity": sell_qty,
        "sell_price": _avg(sell_value, sell_qty),
        "sell_value": sell_value,
        "sell_m2m": sell_m2m,
        "day_buy_quantity": bucket.day_buy_quantity,
        "day_buy_price": _avg(bucket.day_buy_value, bucket.day_buy_quantity),
        "day_buy_value": bucket.day_buy_value,
        "day_sell_quantity": bucket.day_sell_quantity,
        "day_sell_price": _avg(bucket.day_sell_value, bucket.day_sell_quantity),
        "day_sell_value": bucket.day_sell_value,
    }


@dataclass
class KiteHolding:
    """Demat stock: settled `quantity`, `t1_quantity` bought yesterday, `used_quantity` sold
    today."""

    instrument: KiteInstrument
    isin: str
    quantity: int
    average_price: Decimal
    t1_quantity: int = 0
    used_quantity: int = 0

    @property
    def sellable(self) -> int:
        return self.quantity + self.t1_quantity - self.used_quantity

    def row(self, last_price: Decimal, close: Decimal) -> dict[str, Any]:
        owned = self.quantity + self.t1_quantity
        day_change = last_price - close
        return {
            "tradingsymbol": self.instrument.tradingsymbol,
            "exchange": self.instrument.exchange,
            "instrument_token": self.instrument.instrument_token,
            "isin": self.isin,
            "product": "CNC",
            "price": 0,
            "quantity": self.quantity,
            "used_quantity": self.used_quantity,
            "t1_quantity": self.t1_quantity,
            "realised_quantity": self.quantity,
            "authorised_quantity": 0,
            "authorised_date": None,
            "authorisation": {},
            "opening_quantity": self.quantity,
            "short_quantity": 0,
            "collateral_quantity": 0,
            "collateral_type": "",
            "discrepancy": False,
            "average_price": self.average_price,
            "last_price": last_price,
            "close_price": close,
            "pnl": (last_price - self.average_price) * owned,
            "day_change": day_change,
            "day_change_percentage": float(day_change / close * 100) if close else 0.0,
            "mtf": {
                "quantity": 0,
                "used_quantity": 0,
                "average_price": 0,
                "value": 0,
                "initial_margin": 0,
            },
        }


@dataclass
class MarginUse:
    """What positions and open orders block, by Kite's utilised fields."""

    span: Decimal = ZERO
    exposure: Decimal = ZERO
    option_premium: Decimal = ZERO
    delivery: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.span + self.exposure + self.option_premium + self.delivery

    def add(self, other: MarginUse) -> None:
        self.span += other.span
        self.exposure += other.exposure
        self.option_premium += other.option_premium
        self.delivery += other.delivery


def bucket_margin(
    inst: KiteInstrument,
    product: str,
    long_qty: int,
    short_qty: int,
    price: Decimal,
    underlying: Decimal,
) -> MarginUse:
    """Margin for the larger of the long and the short exposure of one line."""
    if inst.is_option:
        premium = MarginUse(option_premium=price * long_qty)
        notional = underlying * short_qty
        written = MarginUse(span=notional * SPAN_RATE, exposure=notional * EXPOSURE_RATE)
        return premium if premium.total >= written.total else written
    if inst.is_derivative:
        notional = price * max(long_qty, short_qty)
        return MarginUse(span=notional * SPAN_RATE, exposure=notional * EXPOSURE_RATE)
    if product == "CNC":
        return MarginUse(delivery=price * long_qty)
    return MarginUse(exposure=price * max(long_qty, short_qty) * MIS_EQUITY_RATE)


@dataclass
class Funds:
    """One segment's account (Kite's `equity` or `commodity`)."""

    opening_balance: Decimal
    payin: Decimal = ZERO

    def row(self, use: MarginUse, realised: Decimal, unrealised: Decimal) -> dict[str, Any]:
        losses = max(-(realised + unrealised), ZERO)
        debits = use.total + losses
        cash = self.opening_balance + self.payin
        net = cash - debits
        return {
            "enabled": True,
            "net": net,
            "available": {
                "adhoc_margin": 0,
                "cash": cash,
                "opening_balance": self.opening_balance,
                "live_balance": net,
                "collateral": 0,
                "intraday_payin": self.payin,
            },
            "utilised": {
                "debits": debits,
                "exposure": use.exposure,
                "m2m_realised": realised,
                "m2m_unrealised": unrealised,
                "option_premium": use.option_premium,
                "payout": 0,
                "span": use.span,
                "holding_sales": 0,
                "turnover": 0,
                "liquid_collateral": 0,
                "stock_collateral": 0,
                "delivery": use.delivery,
            },
        }

    def available(self, use: MarginUse, realised: Decimal, unrealised: Decimal) -> Decimal:
        losses = max(-(realised + unrealised), ZERO)
        return self.opening_balance + self.payin - use.total - losses
