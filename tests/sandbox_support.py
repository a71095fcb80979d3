"""Helpers for sandbox tests: a market whose book the test sets by hand.

`BookMarket` implements the sandbox's `MarketData` interface with depth the test writes, so a
matching test states exactly which levels exist at which instant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from openalgo_lab.brokers.sandbox.account import DEFAULT_CAPITAL, Account
from openalgo_lab.brokers.sandbox.exchange import SandboxExchange
from openalgo_lab.domain.calendar import IST, MarketCalendar, MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.domain.enums import Exchange, InstrumentType, Interval
from openalgo_lab.domain.models import Candle, Depth, DepthLevel, Instrument, Quote
from openalgo_lab.instruments.master import MasterContract

D = Decimal
RELIANCE = Instrument(
    "RELIANCE", Exchange.NSE, "RELIANCE INDUSTRIES", InstrumentType.EQ, "2885", D("0.05")
)
SBIN = Instrument("SBIN", Exchange.NSE, "STATE BANK OF INDIA", InstrumentType.EQ, "3045", D("0.05"))
NIFTY = Instrument("NIFTY", Exchange.NSE_INDEX, "NIFTY", InstrumentType.INDEX, "26000", D("0.05"))
NIFTY_FUT = Instrument(
    "NIFTY29DEC26FUT",
    Exchange.NFO,
    "NIFTY",
    InstrumentType.FUT,
    "50001",
    D("0.05"),
    lotsize=65,
    freeze_qty=1800,
    underlying="NIFTY",
    underlying_exchange=Exchange.NSE_INDEX,
    expiry=datetime(2026, 12, 29).date(),
)
NIFTY_CE = Instrument(
    "NIFTY01DEC2626000CE",
    Exchange.NFO,
    "NIFTY",
    InstrumentType.CE,
    "50002",
    D("0.05"),
    lotsize=65,
    freeze_qty=1800,
    strike=D(26000),
    underlying="NIFTY",
    underlying_exchange=Exchange.NSE_INDEX,
    expiry=datetime(2026, 12, 1).date(),
)
INSTRUMENTS = [RELIANCE, SBIN, NIFTY, NIFTY_FUT, NIFTY_CE]


def at_ist(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=IST).astimezone(UTC)


class BookMarket:
    """Depth by instrument, set by the test; the last book set stays until replaced."""

    def __init__(self) -> None:
        self.books: dict[tuple[Exchange, str], Depth] = {}

    def set(
        self,
        instrument: Instrument,
        ltp: str,
        asks: list[tuple[str, int]] | None = None,
        bids: list[tuple[str, int]] | None = None,
    ) -> None:
        asks = asks if asks is not None else [(ltp, 1000)]
        bids = bids if bids is not None else [(ltp, 1000)]
        ask_levels = tuple(DepthLevel(D(p), q) for p, q in asks)
        bid_levels = tuple(DepthLevel(D(p), q) for p, q in bids)
        price = D(ltp)
        quote = Quote(
            symbol=instrument.symbol,
            exchange=instrument.exchange,
            ltp=price,
            bid=bid_levels[0].price if bid_levels else D(0),
            ask=ask_levels[0].price if ask_levels else D(0),
            open=price,
            high=price,
            low=price,
            prev_close=price,
            volume=0,
            oi=0,
            timestamp=datetime.now(UTC),
        )
        self.books[instrument.key] = Depth(quote, bid_levels, ask_levels)

    def depth(self, instrument: Instrument, at: datetime) -> Depth:
        return self.books[instrument.key]

    def candles(
        self, instrument: Instrument, interval: Interval, start: datetime, end: datetime
    ) -> list[Candle]:
        return []


def make_exchange(
    start: datetime | None = None,
    *,
    hours: MarketHours = MarketHours.ALWAYS,
    capital: Decimal = DEFAULT_CAPITAL,
) -> tuple[SandboxExchange, BookMarket, ManualClock]:
    clock = ManualClock(start or at_ist("2026-11-25", "10:00"))
    market = BookMarket()
    for inst in INSTRUMENTS:
        market.set(inst, "100")
    market.set(RELIANCE, "1500", [("1500.05", 1000)], [("1500", 1000)])
    market.set(NIFTY, "26000")
    exchange = SandboxExchange(
        MasterContract(INSTRUMENTS),
        market,
        clock=clock,
        calendar=MarketCalendar(hours=hours),
        account=Account(capital=capital),
    )
    return exchange, market, clock


def tick(clock: ManualClock, exchange: SandboxExchange, seconds: int = 1) -> None:
    clock.advance(timedelta(seconds=seconds))
    exchange.step()
