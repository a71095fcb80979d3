"""Exchange sessions, holidays, square-off times and expiry rules, in exchange time (IST).

Facts come from `shared/reference/indian-markets.md` (as of 2026-11-24): normal-market hours
per segment (F&O to 15:40 since 2026-08-03), the 2026 NSE/BSE holiday list with MCX's
evening-session status, OpenAlgo's sandbox square-off defaults, and the expiry rules in force
since 2025-09-01 (NSE weekly NIFTY on Tuesday, monthly on the last Tuesday; BSE weekly SENSEX
on Thursday, monthly on the last Thursday; a holiday moves expiry to the previous trading day).

Years other than 2026 have no published list here: only weekends and the fixed-date national
holidays (Republic Day, Independence Day, Gandhi Jayanti, Christmas) are closed.
`MarketHours.ALWAYS` opens every exchange around the clock for demos and tests.
"""

from __future__ import annotations

import calendar as _cal
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from openalgo_lab.domain.enums import Exchange

IST = ZoneInfo("Asia/Kolkata")
MARKET_HOURS_ENV = "OPENALGO_LAB_MARKET_HOURS"


class MarketHours(StrEnum):
    EXCHANGE = "exchange"  # real sessions and holidays
    ALWAYS = "always"  # every exchange open all day, every day


def market_hours_from_env(default: MarketHours = MarketHours.EXCHANGE) -> MarketHours:
    """`OPENALGO_LAB_MARKET_HOURS=always|exchange`; anything else is a clear error."""
    raw = os.environ.get(MARKET_HOURS_ENV, "").strip().lower()
    if not raw:
        return default
    try:
        return MarketHours(raw)
    except ValueError:
        raise ValueError(f"{MARKET_HOURS_ENV}={raw!r} is not one of: always, exchange") from None


class HolidayType(StrEnum):
    TRADING_HOLIDAY = "TRADING_HOLIDAY"
    SETTLEMENT_HOLIDAY = "SETTLEMENT_HOLIDAY"
    SPECIAL_SESSION = "SPECIAL_SESSION"


class McxStatus(StrEnum):
    CLOSED = "closed"
    EVENING = "evening"  # morning session closed, evening (17:00-close) open
    MORNING = "morning"  # morning open, evening closed


@dataclass(frozen=True, slots=True)
class Holiday:
    day: date
    description: str
    mcx: McxStatus = McxStatus.EVENING
    kind: HolidayType = HolidayType.TRADING_HOLIDAY


HOLIDAYS_2026: tuple[Holiday, ...] = (
    Holiday(date(2026, 1, 15), "Municipal Corporation elections, Maharashtra"),
    Holiday(date(2026, 1, 26), "Republic Day", McxStatus.CLOSED),
    Holiday(date(2026, 3, 3), "Holi"),
    Holiday(date(2026, 3, 26), "Shri Ram Navami"),
    Holiday(date(2026, 3, 31), "Shri Mahavir Jayanti"),
    Holiday(date(2026, 4, 3), "Good Friday", McxStatus.CLOSED),
    Holiday(date(2026, 4, 14), "Dr. Baba Saheb Ambedkar Jayanti"),
    Holiday(date(2026, 5, 1), "Maharashtra Day"),
    Holiday(date(2026, 5, 28), "Bakri Id"),
    Holiday(date(2026, 6, 26), "Muharram"),
    Holiday(date(2026, 9, 14), "Ganesh Chaturthi"),
    Holiday(date(2026, 10, 2), "Mahatma Gandhi Jayanti", McxStatus.CLOSED),
    Holiday(date(2026, 10, 20), "Dussehra"),
    Holiday(date(2026, 11, 10), "Diwali Balipratipada"),
    Holiday(date(2026, 11, 24), "Prakash Gurpurb Sri Guru Nanak Dev"),
    Holiday(date(2026, 12, 25), "Christmas", McxStatus.CLOSED),
    Holiday(
        date(2026, 2, 19),
        "Chhatrapati Shivaji Maharaj Jayanti (settlement only)",
        kind=HolidayType.SETTLEMENT_HOLIDAY,
    ),
)
# Holidays on fixed dates every year: used for years with no published list.
FIXED_NATIONAL_HOLIDAYS: tuple[tuple[int, int, str], ...] = (
    (1, 26, "Republic Day"),
    (8, 15, "Independence Day"),
    (10, 2, "Mahatma Gandhi Jayanti"),
    (12, 25, "Christmas"),
)
# MCX trades only its morning session on New Year's Day; NSE and BSE are open.
MCX_MORNING_ONLY: frozenset[date] = frozenset({date(2026, 1, 1)})
# Muhurat trading (Diwali, a Sunday): an evening session on an otherwise closed day.
MUHURAT: dict[date, tuple[time, time]] = {date(2026, 11, 8): (time(18, 0), time(19, 15))}

_EQUITY = (time(9, 15), time(15, 30))
_DERIVATIVES = (time(9, 15), time(15, 40))
_CURRENCY = (time(9, 0), time(17, 0))
_NCDEX = (time(9, 0), time(17, 0))
_MCX_OPEN = time(9, 0)
_MCX_EVENING = time(17, 0)

NORMAL_HOURS: dict[Exchange, tuple[time, time]] = {
    Exchange.NSE: _EQUITY,
    Exchange.BSE: _EQUITY,
    Exchange.NSE_INDEX: _EQUITY,
    Exchange.BSE_INDEX: _EQUITY,
    Exchange.GLOBAL_INDEX: _EQUITY,
    Exchange.NFO: _DERIVATIVES,
    Exchange.BFO: _DERIVATIVES,
    Exchange.CDS: _CURRENCY,
    Exchange.BCD: _CURRENCY,
    Exchange.NCDEX: _NCDEX,
}
_MCX_LIKE = frozenset({Exchange.MCX, Exchange.MCX_INDEX, Exchange.NCO})

# OpenAlgo sandbox's MIS square-off defaults (sandbox/squareoff_manager.py).
DEFAULT_SQUAREOFF: dict[Exchange, time] = {
    Exchange.NSE: time(15, 15),
    Exchange.BSE: time(15, 15),
    Exchange.NFO: time(15, 15),
    Exchange.BFO: time(15, 15),
    Exchange.CDS: time(16, 45),
    Exchange.BCD: time(16, 45),
    Exchange.MCX: time(23, 30),
    Exchange.NCO: time(23, 30),
    Exchange.NCDEX: time(17, 0),
}


@dataclass(frozen=True, slots=True)
class Session:
    """One continuous trading window, as UTC instants."""

    exchange: Exchange
    open: datetime
    close: datetime

    def contains(self, at: datetime) -> bool:
        return self.open <= at < self.close


def _us_dst(d: date) -> bool:
    """US daylight saving (2nd Sunday of March to 1st Sunday of November) moves MCX's close."""
    march = [w for w in _cal.Calendar().itermonthdates(d.year, 3) if w.month == 3]
    start = [w for w in march if w.weekday() == 6][1]
    nov = [w for w in _cal.Calendar().itermonthdates(d.year, 11) if w.month == 11]
    end = next(w for w in nov if w.weekday() == 6)
    return start <= d < end


def _at(d: date, t: time) -> datetime:
    return datetime.combine(d, t, tzinfo=IST).astimezone(UTC)


@dataclass
class MarketCalendar:
    """Sessions and holidays per exchange; the one place that knows what "open" means."""

    hours: MarketHours = MarketHours.EXCHANGE
    holidays: tuple[Holiday, ...] = HOLIDAYS_2026
    squareoff: dict[Exchange, time] = field(default_factory=lambda: dict(DEFAULT_SQUAREOFF))

    def __post_init__(self) -> None:
        self._trading_holidays = {
            h.day: h for h in self.holidays if h.kind is HolidayType.TRADING_HOLIDAY
        }
        self._published_years = {h.day.year for h in self.holidays}
        self._sessions: dict[tuple[Exchange, date], Session | None] = {}

    def _holiday(self, d: date) -> Holiday | None:
        if d.year in self._published_years:
            return self._trading_holidays.get(d)
        for month, day, name in FIXED_NATIONAL_HOLIDAYS:
            if (d.month, d.day) == (month, day):
                return Holiday(d, name, McxStatus.CLOSED)
        return None

    @classmethod
    def from_env(cls) -> MarketCalendar:
        return cls(hours=market_hours_from_env())

    # -- days ---------------------------------------------------------------------------------
    def is_trading_day(self, exchange: Exchange, d: date) -> bool:
        """A day with a session on `exchange` (weekends and full holidays have none)."""
        return self.session(exchange, d) is not None

    def is_expiry_day_open(self, d: date) -> bool:
        """Whether NSE/BSE derivatives trade on `d`: the test expiry rules use."""
        return d.weekday() < 5 and self._holiday(d) is None

    def previous_trading_day(self, exchange: Exchange, d: date) -> date:
        day = d - timedelta(days=1)
        while not self.is_trading_day(exchange, day):
            day -= timedelta(days=1)
        return day

    def next_trading_day(self, exchange: Exchange, d: date) -> date:
        day = d + timedelta(days=1)
        while not self.is_trading_day(exchange, day):
            day += timedelta(days=1)
        return day

    # -- sessions -----------------------------------------------------------------------------
    def session(self, exchange: Exchange, d: date) -> Session | None:
        """The day's continuous session on `exchange`, or None when it is closed all day."""
        key = (exchange, d)
        if key not in self._sessions:
            self._sessions[key] = self._session(exchange, d)
        return self._sessions[key]

    def _session(self, exchange: Exchange, d: date) -> Session | None:
        if self.hours is MarketHours.ALWAYS or exchange is Exchange.CRYPTO:
            return Session(exchange, _at(d, time(0, 0)), _at(d + timedelta(days=1), time(0, 0)))
        if d in MUHURAT and exchange not in _MCX_LIKE:
            start, end = MUHURAT[d]
            return Session(exchange, _at(d, start), _at(d, end))
        if d.weekday() >= 5:
            return None
        holiday = self._holiday(d)
        if exchange in _MCX_LIKE:
            return self._mcx_session(exchange, d, holiday)
        if holiday is not None:
            return None
        start, end = NORMAL_HOURS[exchange]
        return Session(exchange, _at(d, start), _at(d, end))

    def _mcx_session(self, exchange: Exchange, d: date, holiday: Holiday | None) -> Session | None:
        close = time(23, 30) if _us_dst(d) else time(23, 55)
        start = _MCX_OPEN
        if d in MCX_MORNING_ONLY:
            close = _MCX_EVENING
        if holiday is not None:
            if holiday.mcx is McxStatus.CLOSED:
                return None
            if holiday.mcx is McxStatus.EVENING:
                start = _MCX_EVENING
            else:
                close = _MCX_EVENING
        return Session(exchange, _at(d, start), _at(d, close))

    def is_open(self, exchange: Exchange, at: datetime) -> bool:
        session = self.session(exchange, at.astimezone(IST).date())
        return session is not None and session.contains(at)

    def squareoff_at(self, exchange: Exchange, d: date) -> datetime | None:
        """When MIS positions on `exchange` are squared off on `d` (None: no session / never)."""
        if self.hours is MarketHours.ALWAYS or exchange not in self.squareoff:
            return None
        session = self.session(exchange, d)
        if session is None:
            return None
        return min(_at(d, self.squareoff[exchange]), session.close)

    def timings(self, d: date) -> list[Session]:
        """OpenAlgo's `/market/timings`: every tradable exchange's session on `d`."""
        tradable = [e for e in Exchange if not e.is_index and e is not Exchange.CRYPTO]
        return [s for e in tradable if (s := self.session(e, d)) is not None]

    def holiday_list(self, year: int) -> list[Holiday]:
        return sorted((h for h in self.holidays if h.day.year == year), key=lambda h: h.day)

    # -- expiries -----------------------------------------------------------------------------
    def shift_expiry(self, nominal: date) -> date:
        """An expiry on a holiday moves to the previous trading day."""
        day = nominal
        while not self.is_expiry_day_open(day):
            day -= timedelta(days=1)
        return day

    def monthly_expiry(self, exchange: Exchange, year: int, month: int) -> date:
        """Last Tuesday (NSE) or last Thursday (BSE) of the month, moved off holidays."""
        weekday = _expiry_weekday(exchange)
        last = date(year, month, _cal.monthrange(year, month)[1])
        while last.weekday() != weekday:
            last -= timedelta(days=1)
        return self.shift_expiry(last)

    def weekly_expiries(self, exchange: Exchange, start: date, count: int) -> list[date]:
        """The next `count` weekly expiries on or after `start` (shifted off holidays)."""
        weekday = _expiry_weekday(exchange)
        nominal = start + timedelta(days=(weekday - start.weekday()) % 7)
        out: list[date] = []
        while len(out) < count:
            actual = self.shift_expiry(nominal)
            if actual >= start:
                out.append(actual)
            nominal += timedelta(days=7)
        return out

    def monthly_expiries(self, exchange: Exchange, start: date, count: int) -> list[date]:
        """The next `count` monthly expiries on or after `start`."""
        out: list[date] = []
        year, month = start.year, start.month
        while len(out) < count:
            expiry = self.monthly_expiry(exchange, year, month)
            if expiry >= start:
                out.append(expiry)
            month += 1
            if month == 13:
                year, month = year + 1, 1
        return out


def _expiry_weekday(exchange: Exchange) -> int:
    if exchange in (Exchange.NFO, Exchange.NSE, Exchange.NSE_INDEX):
        return 1  # Tuesday
    if exchange in (Exchange.BFO, Exchange.BSE, Exchange.BSE_INDEX):
        return 3  # Thursday
    raise ValueError(f"no expiry rule for {exchange}")
