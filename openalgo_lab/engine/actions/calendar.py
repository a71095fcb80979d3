"""Market calendar actions: market/holidays and market/timings (reference §2.6).

These describe the exchanges, not the sandbox: with `MarketHours.ALWAYS` (demos and tests) the
sandbox trades around the clock, yet a strategy asking "is Sunday a trading day?" must still
hear "no". So both read an exchange-hours calendar with the engine's own holiday list. Times
are epoch milliseconds, as OpenAlgo sends them.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

from openalgo_lab.domain.calendar import (
    FIXED_NATIONAL_HOLIDAYS,
    IST,
    MUHURAT,
    Holiday,
    HolidayType,
    MarketCalendar,
    MarketHours,
    McxStatus,
    Session,
)
from openalgo_lab.domain.enums import Exchange
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.engine.actions.market import parse_day
from openalgo_lab.engine.actions.registry import JSON, ActionContext, Payload, action

TIMEZONE = "Asia/Kolkata"
FIRST_YEAR, LAST_YEAR = 2020, 2050
# Exchanges with sessions to report: everything tradable except the 24x7 crypto venue.
CALENDAR_EXCHANGES: tuple[Exchange, ...] = tuple(
    e for e in Exchange if not e.is_index and e is not Exchange.CRYPTO
)


@lru_cache(maxsize=8)
def _exchange_hours(holidays: tuple[Holiday, ...]) -> MarketCalendar:
    return MarketCalendar(hours=MarketHours.EXCHANGE, holidays=holidays)


def exchange_calendar(calendar: MarketCalendar) -> MarketCalendar:
    """`calendar` itself when it follows exchange hours, else its exchange-hours twin."""
    if calendar.hours is MarketHours.EXCHANGE:
        return calendar
    return _exchange_hours(calendar.holidays)


def epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def session_row(session: Session) -> JSON:
    return {
        "exchange": session.exchange.value,
        "start_time": epoch_ms(session.open),
        "end_time": epoch_ms(session.close),
    }


def _holidays_of(calendar: MarketCalendar, year: int) -> list[Holiday]:
    """The published list, plus the fixed-date national holidays the calendar closes on
    weekdays in years without one (so 2031's Republic Day is listed, not just closed)."""
    listed = calendar.holiday_list(year)
    days = {h.day for h in listed}
    for month, day, name in FIXED_NATIONAL_HOLIDAYS:
        d = date(year, month, day)
        if d in days or d.weekday() >= 5 or calendar.is_trading_day(Exchange.NSE, d):
            continue
        listed.append(Holiday(d, name, McxStatus.CLOSED))
    return sorted(listed, key=lambda h: h.day)


def _holiday_row(calendar: MarketCalendar, holiday: Holiday) -> JSON:
    if holiday.kind is HolidayType.SETTLEMENT_HOLIDAY:
        # Trading runs normally; OpenAlgo lists no exchanges either way.
        closed: list[str] = []
        opened: list[JSON] = []
    else:
        sessions = {s.exchange: s for s in calendar.timings(holiday.day)}
        closed = [e.value for e in CALENDAR_EXCHANGES if e not in sessions]
        opened = [session_row(s) for s in sessions.values()]
    return {
        "date": holiday.day.isoformat(),
        "description": holiday.description,
        "holiday_type": holiday.kind.value,
        "closed_exchanges": closed,
        "open_exchanges": opened,
    }


def _special_rows(calendar: MarketCalendar, year: int) -> list[JSON]:
    """Muhurat trading: an evening session on an otherwise closed day."""
    return [
        {
            "date": d.isoformat(),
            "description": "Muhurat Trading (Diwali)",
            "holiday_type": HolidayType.SPECIAL_SESSION.value,
            "closed_exchanges": [],
            "open_exchanges": [session_row(s) for s in calendar.timings(d)],
        }
        for d in sorted(MUHURAT)
        if d.year == year
    ]


@action("market/holidays")
async def market_holidays(ctx: ActionContext, p: Payload) -> JSON:
    """Trading and settlement holidays of a year, with what stays open (MCX evenings)."""
    this_year = ctx.engine.clock.now().astimezone(IST).year
    year = p.integer("year", default=this_year, minimum=FIRST_YEAR, maximum=LAST_YEAR)
    calendar = exchange_calendar(ctx.engine.calendar)
    rows = [_holiday_row(calendar, h) for h in _holidays_of(calendar, year)]
    rows += _special_rows(calendar, year)
    rows.sort(key=lambda r: str(r["date"]))
    return {"year": year, "timezone": TIMEZONE, "data": rows}


@action("market/timings")
async def market_timings(ctx: ActionContext, p: Payload) -> JSON:
    """Each exchange's session on a day; an empty list on weekends and full holidays."""
    day = parse_day(p.raw("date"), "date")
    if not date(FIRST_YEAR, 1, 1) <= day <= date(LAST_YEAR, 12, 31):
        raise ValidationError("date", f"must be between {FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31")
    calendar = exchange_calendar(ctx.engine.calendar)
    return {"data": [session_row(s) for s in calendar.timings(day)]}
