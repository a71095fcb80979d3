"""Equity curve and maximum drawdown of net realised P&L.

Equity after each fill is starting capital plus the running total of net realised P&L
(FIFO realised P&L minus charges, each on the fill that produced it). The history writer
keeps that running total and its running peak on every fill (per account and overall), so
the curve is a scan and the maximum drawdown a single top-1 query, even over millions of
fills. `freq="day"` sums each IST day first and takes the running total and peak over days.

Drawdown is peak minus equity (never negative), and `drawdown_pct` is it as a fraction of the
peak equity. The maximum drawdown is the largest amount (the earliest, on a tie); its
percentage is that of the same point, its peak the last time equity stood at that peak
(None when it is the starting capital itself).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal, NamedTuple

import duckdb
import pandas as pd

from openalgo_lab.analytics._reading import (
    IST_DAY,
    Source,
    account_filter,
    fetch,
    money_param,
    reading,
)
from openalgo_lab.domain.calendar import IST
from openalgo_lab.domain.errors import ValidationError

Freq = Literal["trade", "day"]


class Drawdown(NamedTuple):
    amount: Decimal
    pct: float
    peak_ts: datetime | None
    trough_ts: datetime | None


def _columns(account: str | None) -> tuple[str, str]:
    """The stored running total and peak to read: one account's, or all accounts'."""
    if account is None:
        return "overall_total", "overall_peak"
    return "account_total", "account_peak"


def _daily_sql(where: str) -> str:
    """Per IST day: realised, charges, net, and the running total and peak of net."""
    return f"""
        WITH d AS (
            SELECT {IST_DAY.format(ts="ts")} AS day, sum(realised) AS realised,
                   sum(charges) AS charges, sum(realised) - sum(charges) AS net
            FROM fills WHERE {where} GROUP BY 1),
        t AS (SELECT *, sum(net) OVER (ORDER BY day) AS total FROM d)
        SELECT *, greatest(0, max(total) OVER (ORDER BY day)) AS peak FROM t"""


def _check_freq(freq: str) -> None:
    if freq not in ("trade", "day"):
        raise ValidationError("freq", f"must be 'trade' or 'day', got {freq!r}")


def equity_curve(
    store: Source,
    *,
    starting_capital: Decimal,
    account: str | None = None,
    freq: Freq = "trade",
    exact: bool = False,
) -> pd.DataFrame:
    """Rows per fill (`ts`, `seq`) or per IST day (`day`): realised, charges, net, equity,
    peak, drawdown, drawdown_pct."""
    _check_freq(freq)
    capital = money_param(starting_capital, "starting_capital", positive=True)
    where, params = account_filter(account)
    money = ("realised", "charges", "net", "equity", "peak", "drawdown")
    tail = """?::DECIMAL(18,4) + total AS equity, ?::DECIMAL(18,4) + peak AS peak,
              peak - total AS drawdown,
              ((peak - total) / (?::DECIMAL(18,4) + peak))::DOUBLE AS drawdown_pct"""
    if freq == "trade":
        total, peak = _columns(account)
        sql = f"""
            SELECT ts, seq, realised, charges, realised - charges AS net, {tail}
            FROM (SELECT *, {total} AS total, {peak} AS peak FROM fills WHERE {where})
            ORDER BY seq"""
        instants: tuple[str, ...] = ("ts",)
    else:
        sql = f"""SELECT day, realised, charges, net, {tail}
                  FROM ({_daily_sql(where)}) ORDER BY day"""
        instants = ()
    with reading(store) as cursor:
        return fetch(
            cursor,
            sql,
            [capital, capital, capital, *params],
            money=money,
            instants=instants,
            exact=exact,
        )


def max_drawdown(
    store: Source,
    *,
    starting_capital: Decimal,
    account: str | None = None,
    freq: Freq = "trade",
) -> Drawdown:
    """The largest fall of equity from a running peak: (amount, pct, peak_ts, trough_ts).
    With `freq="day"` the instants are the IST midnights starting the days."""
    _check_freq(freq)
    capital = Decimal(money_param(starting_capital, "starting_capital", positive=True))
    where, params = account_filter(account)
    with reading(store) as cursor:
        if freq == "trade":
            total, peak = _columns(account)
            points = f"SELECT seq AS pos, ts AS ts, {total} AS total, {peak} AS peak FROM fills"
            points += f" WHERE {where}"
        else:
            points = f"""SELECT day AS pos, day AS ts, total, peak
                         FROM ({_daily_sql(where)})"""
        return _deepest(cursor, points, params, capital, freq)


def _deepest(
    cursor: duckdb.DuckDBPyConnection,
    points: str,
    params: list[object],
    capital: Decimal,
    freq: Freq,
) -> Drawdown:
    row = cursor.execute(
        f"""SELECT pos, ts, total, peak, peak - total AS dd FROM ({points})
            ORDER BY dd DESC, pos LIMIT 1""",
        params,
    ).fetchone()
    if row is None or row[4] <= 0:
        return Drawdown(Decimal(0), 0.0, None, None)
    pos, trough, _, peak, amount = row
    found = cursor.execute(
        f"SELECT ts FROM ({points}) WHERE pos <= ? AND total = ? ORDER BY pos DESC LIMIT 1",
        [*params, pos, peak],
    ).fetchone()
    base = capital + Decimal(peak)
    pct = float(Decimal(amount) / base) if base > 0 else float("nan")
    return Drawdown(
        Decimal(amount), pct, _instant(found[0] if found else None, freq), _instant(trough, freq)
    )


def _instant(value: date | None, freq: Freq) -> datetime | None:
    """UTC-aware for fills; IST midnight for days (DuckDB hands back naive values)."""
    if value is None:
        return None
    if freq == "day" or not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=IST)
    return value.replace(tzinfo=UTC)
