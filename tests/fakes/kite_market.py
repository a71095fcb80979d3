"""Prices in the fake Kite server: last price, day's OHLC, volume, depth, and history.

Prices move only when a test moves them (`KiteFake.set_ltp`), so every test is deterministic.
Each instrument starts at its reference price (the dump's `last_price`, or a stable made-up
level for the sample rows that carry none), which is also its previous close. Historical
candles are a deterministic walk per (instrument, day) on the exchange's 09:15-15:30 session,
built from one-minute bars so every interval agrees with every other.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from openalgo_lab.domain.calendar import MarketCalendar
from openalgo_lab.domain.enums import Exchange
from tests.fakes.kite_errors import IST, input_error
from tests.fakes.kite_instruments import KiteInstrument

CIRCUIT_BAND = Decimal("0.20")  # equity price band used for the circuit limits
DEPTH_LEVELS = 5
SESSION_OPEN = time(9, 15)
SESSION_MINUTES = 375  # 09:15 to 15:30

# Kite's intervals: minutes per candle (0 = daily), and the longest range one call may ask for.
INTERVALS: dict[str, tuple[int, int]] = {
    "minute": (1, 60),
    "3minute": (3, 100),
    "5minute": (5, 100),
    "10minute": (10, 100),
    "15minute": (15, 200),
    "30minute": (30, 200),
    "60minute": (60, 400),
    "day": (0, 2000),
}


def on_tick(value: Decimal, tick: Decimal) -> Decimal:
    if tick <= 0:
        return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return (value / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP) * tick


def reference_price(inst: KiteInstrument) -> Decimal:
    """The dump's last price, or a stable level between ₹10 and ₹1,000 for rows without one."""
    if inst.last_price > 0:
        return inst.last_price
    digest = hashlib.blake2b(inst.key.encode(), digest_size=4).digest()
    level = Decimal(10 + int.from_bytes(digest, "big") % 990)
    return on_tick(level, inst.tick_size or Decimal("0.05"))


@dataclass
class PriceState:
    """One instrument's market today."""

    instrument: KiteInstrument
    close: Decimal  # previous session's close
    last_price: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    volume: int = 0
    last_quantity: int = 0
    turnover: Decimal = Decimal(0)
    last_trade_time: datetime | None = None
    updated: datetime | None = None
    oi: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, inst: KiteInstrument, oi: int) -> PriceState:
        price = reference_price(inst)
        return cls(inst, close=price, last_price=price, open=price, high=price, low=price, oi=oi)

    def move(self, price: Decimal, at: datetime) -> None:
        self.last_price = price
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.updated = at

    def trade(self, quantity: int, price: Decimal, at: datetime) -> None:
        """A fill of ours prints on the tape: volume, last quantity and VWAP move."""
        self.volume += quantity
        self.last_quantity = quantity
        self.turnover += price * quantity
        self.last_trade_time = at

    def roll(self) -> None:
        """A new session: today's last price becomes the close, the day's figures reset."""
        self.close = self.last_price
        self.open = self.high = self.low = self.last_price
        self.volume = self.last_quantity = 0
        self.turnover = Decimal(0)

    @property
    def tick(self) -> Decimal:
        return self.instrument.tick_size if self.instrument.tick_size > 0 else Decimal("0.05")

    @property
    def circuit(self) -> tuple[Decimal, Decimal]:
        if self.instrument.is_index:
            return Decimal(0), Decimal(0)
        lower = on_tick(self.close * (1 - CIRCUIT_BAND), self.tick)
        upper = on_tick(self.close * (1 + CIRCUIT_BAND), self.tick)
        return max(lower, self.tick), upper

    @property
    def average_price(self) -> Decimal:
        if self.volume == 0:
            return Decimal(0)
        return on_tick(self.turnover / self.volume, Decimal("0.01"))

    def ohlc(self) -> dict[str, Decimal]:
        return {"open": self.open, "high": self.high, "low": self.low, "close": self.close}

    def depth(self) -> dict[str, list[dict[str, Any]]]:
        """Five levels each side, one tick apart around the last price, in whole lots."""
        if self.instrument.is_index:
            empty = [{"price": 0, "quantity": 0, "orders": 0} for _ in range(DEPTH_LEVELS)]
            return {"buy": empty, "sell": [dict(level) for level in empty]}
        lot = max(self.instrument.lot_size, 1)
        buy, sell = [], []
        for level in range(DEPTH_LEVELS):
            size = lot * (10 + 5 * level)
            bid = self.last_price - self.tick * level
            buy.append({"price": max(bid, self.tick), "quantity": size, "orders": 2 + level})
            sell.append(
                {
                    "price": self.last_price + self.tick * (level + 1),
                    "quantity": size,
                    "orders": 2 + level,
                }
            )
        return {"buy": buy, "sell": sell}

    def ltp_payload(self) -> dict[str, Any]:
        return {"instrument_token": self.instrument.instrument_token, "last_price": self.last_price}

    def ohlc_payload(self) -> dict[str, Any]:
        return {**self.ltp_payload(), "ohlc": self.ohlc()}

    def quote_payload(self, now: datetime) -> dict[str, Any]:
        lower, upper = self.circuit
        depth = self.depth()
        return {
            "instrument_token": self.instrument.instrument_token,
            "timestamp": now,
            "last_trade_time": self.last_trade_time or self.updated or now,
            "last_price": self.last_price,
            "last_quantity": self.last_quantity,
            "buy_quantity": sum(level["quantity"] for level in depth["buy"]),
            "sell_quantity": sum(level["quantity"] for level in depth["sell"]),
            "volume": self.volume,
            "average_price": self.average_price,
            "oi": self.oi,
            "oi_day_high": self.oi,
            "oi_day_low": self.oi,
            "net_change": self.last_price - self.close,
            "lower_circuit_limit": lower,
            "upper_circuit_limit": upper,
            "ohlc": self.ohlc(),
            "depth": depth,
        }


# -- history ------------------------------------------------------------------------------------
def parse_kite_datetime(text: str, name: str) -> datetime:
    """`yyyy-mm-dd hh:mm:ss` or `yyyy-mm-dd`, exchange time."""
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=IST)
        except ValueError:
            continue
    raise input_error(f"invalid `{name}` date format: {text!r} (want yyyy-mm-dd hh:mm:ss)")


@dataclass(frozen=True, slots=True)
class Bar:
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    oi: int

    def row(self, with_oi: bool) -> list[Any]:
        out: list[Any] = [
            self.start.strftime("%Y-%m-%dT%H:%M:%S%z"),
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
        ]
        if with_oi:
            out.append(self.oi)
        return out


def _minute_bars(inst: KiteInstrument, day: date, level: Decimal, oi_base: int) -> list[Bar]:
    """One session of one-minute bars: a seeded walk around `level`."""
    rng = random.Random(f"{inst.instrument_token}:{day.isoformat()}")
    tick = inst.tick_size if inst.tick_size > 0 else Decimal("0.05")
    price = float(level) * (1 + rng.gauss(0, 0.01))
    start = datetime.combine(day, SESSION_OPEN, tzinfo=IST)
    oi = oi_base
    bars = []
    for minute in range(SESSION_MINUTES):
        path = [price * (1 + rng.gauss(0, 0.0008)) for _ in range(4)]
        o, c = Decimal(str(price)), Decimal(str(path[-1]))
        hi, lo = Decimal(str(max([price, *path]))), Decimal(str(min([price, *path])))
        oi = max(oi + rng.randint(-50, 60) * max(inst.lot_size, 1), 0) if oi_base else 0
        bars.append(
            Bar(
                start=start + timedelta(minutes=minute),
                open=on_tick(o, tick),
                high=on_tick(hi, tick),
                low=on_tick(lo, tick),
                close=on_tick(c, tick),
                volume=0 if inst.is_index else rng.randint(1, 400) * max(inst.lot_size, 1),
                oi=oi,
            )
        )
        price = path[-1]
    return bars


def _merge(bars: list[Bar], start: datetime) -> Bar:
    return Bar(
        start=start,
        open=bars[0].open,
        high=max(b.high for b in bars),
        low=min(b.low for b in bars),
        close=bars[-1].close,
        volume=sum(b.volume for b in bars),
        oi=bars[-1].oi,
    )


def _aggregate(bars: list[Bar], minutes: int, day: date) -> list[Bar]:
    if minutes == 0:
        return [_merge(bars, datetime.combine(day, time(0, 0), tzinfo=IST))]
    if minutes == 1:
        return bars
    return [_merge(bars[i : i + minutes], bars[i].start) for i in range(0, len(bars), minutes)]


def _within(at: datetime, start: datetime, end: datetime, daily: bool) -> bool:
    """Intraday candles by instant; a day candle belongs to its date."""
    if daily:
        return start.astimezone(IST).date() <= at.date() <= end.astimezone(IST).date()
    return start <= at <= end


def candles(
    inst: KiteInstrument,
    interval: str,
    start: datetime,
    end: datetime,
    now: datetime,
    calendar: MarketCalendar,
    oi_base: int,
) -> list[Bar]:
    """Candles whose start lies in [start, end] and that have begun by `now`."""
    if interval not in INTERVALS:
        raise input_error(f"invalid interval: {interval!r}")
    minutes, max_days = INTERVALS[interval]
    if end < start:
        raise input_error("`from` date is after `to` date")
    if (end - start).days > max_days:
        raise input_error(f"interval exceeds max limit: {max_days} days")
    level = reference_price(inst) if not inst.is_option else inst.last_price
    out: list[Bar] = []
    day = start.astimezone(IST).date()
    while day <= end.astimezone(IST).date():
        if calendar.is_trading_day(Exchange.NSE, day) and (
            inst.expiry is None or day <= inst.expiry
        ):
            for bar in _aggregate(_minute_bars(inst, day, level, oi_base), minutes, day):
                if _within(bar.start, start, end, daily=minutes == 0) and bar.start <= now:
                    out.append(bar)
        day += timedelta(days=1)
    return out
