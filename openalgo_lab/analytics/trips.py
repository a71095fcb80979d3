"""Round trips (FIFO-matched entries and exits) and the per-strategy statistics built on them.

Matching is pure SQL by interval intersection, with no per-unit expansion. Within a book
(account, strategy, exchange, symbol, product, mode) the history writer stores for each
fill `side_lo`: the units of its side bought (or sold) before it, so the fill covers units
(side_lo, side_lo + quantity] of its side. FIFO — shorts and reversals included — pairs
bought unit n with sold unit n, so the matched units are (0, min(bought, sold)]. Clip every
fill to that range, take the distinct end points of both sides as segment ends, and find
for each segment the buy and the sell covering it with an ASOF join: each segment is one
piece of one entry fill closed by one exit fill (the later of the two).

A round trip is everything one exit *order* closed: all its fills' pieces, so an exit filled
in several parts is still one trip (a fill without an order id is its own trip). Entry and
exit prices are quantity-weighted averages; `entry_time` is the earliest matched entry,
`exit_time` the last exit fill, `hold_time` the span between them. Each fill's charges are
allocated to its pieces pro rata to quantity, rounded to 0.0001 cumulatively so that the
pieces of a fill add up to its charges exactly; `net` is gross minus those charges. A trip
wins when its net is positive and loses when it is negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import pandas as pd

from openalgo_lab.analytics._reading import (
    BOOK_COLUMNS,
    Source,
    account_filter,
    check_by,
    fetch,
    reading,
    with_books,
)

STATS_COLUMNS: Final = (*BOOK_COLUMNS, "direction")


def _share(fill: str) -> str:
    """SQL for `fill`'s charges (in 0.0001 units) on the units (s.a, s.b] of the segment."""
    c = f"({fill}.charges * 10000)::HUGEINT"
    return f"({c} * (s.b - {fill}.lo)) // {fill}.q - ({c} * (s.a - {fill}.lo)) // {fill}.q"


def round_trips_sql(where: str) -> str:
    """The round trips of the fills matching `where` (a condition on `fills`), by book id."""
    long = "x.seq < y.seq"
    return f"""
    WITH f AS (
        SELECT book, seq, is_buy, quantity AS q, price, charges, ts, orderid,
               side_lo AS lo, side_lo + quantity AS hi
        FROM fills WHERE {where}),
    done AS (
        SELECT book, least(coalesce(max(hi) FILTER (WHERE is_buy), 0),
                           coalesce(max(hi) FILTER (WHERE NOT is_buy), 0)) AS m
        FROM f GROUP BY book),
    c AS (SELECT f.*, least(f.hi, d.m) AS e FROM f JOIN done d USING (book) WHERE f.lo < d.m),
    seg AS (
        SELECT book, coalesce(lag(e) OVER (PARTITION BY book ORDER BY e), 0) AS a, e AS b
        FROM (SELECT DISTINCT book, e FROM c)),
    x AS (SELECT * FROM c WHERE is_buy),
    y AS (SELECT * FROM c WHERE NOT is_buy),
    p AS (
        SELECT s.book, s.b - s.a AS qty, {long} AS is_long,
               CASE WHEN {long} THEN x.ts ELSE y.ts END AS entry_ts,
               CASE WHEN {long} THEN y.ts ELSE x.ts END AS exit_ts,
               CASE WHEN {long} THEN x.price ELSE y.price END AS entry_price,
               CASE WHEN {long} THEN y.price ELSE x.price END AS exit_price,
               greatest(x.seq, y.seq) AS exit_seq,
               CASE WHEN {long} THEN y.orderid ELSE x.orderid END AS exit_orderid,
               (s.b - s.a) * (y.price - x.price) AS gross,
               (({_share("x")}) + ({_share("y")})) * 0.0001::DECIMAL(5,4) AS charges
        FROM seg s
        ASOF JOIN x ON s.book = x.book AND s.b <= x.e
        ASOF JOIN y ON s.book = y.book AND s.b <= y.e)
    SELECT p.book, p.is_long,
           p.exit_orderid,
           min(p.entry_ts) AS entry_time, max(p.exit_ts) AS exit_time,
           sum(p.qty)::BIGINT AS quantity,
           (sum(p.qty * p.entry_price) / sum(p.qty))::DOUBLE AS entry_price,
           (sum(p.qty * p.exit_price) / sum(p.qty))::DOUBLE AS exit_price,
           sum(p.gross) AS gross, sum(p.charges) AS charges,
           sum(p.gross) - sum(p.charges) AS net,
           max(p.exit_ts) - min(p.entry_ts) AS hold_time,
           min(p.exit_seq) AS exit_seq
    FROM p
    GROUP BY p.book, p.is_long, p.exit_orderid,
             CASE WHEN p.exit_orderid = '' THEN p.exit_seq ELSE -1 END"""


def round_trips(store: Source, *, account: str | None = None, exact: bool = False) -> pd.DataFrame:
    """One row per round trip, in order of exit (see the module docstring)."""
    where, params = account_filter(account)
    sql = f"SELECT * EXCLUDE (exit_seq) FROM ({round_trips_sql(where)}) ORDER BY exit_seq"
    with reading(store) as cursor:
        frame = fetch(
            cursor,
            sql,
            params,
            money=("gross", "charges", "net"),
            instants=("entry_time", "exit_time"),
            exact=exact,
        )
        frame = with_books(cursor, frame)
    is_long = frame.pop("is_long").to_numpy(dtype=bool)
    direction = pd.Categorical.from_codes(
        is_long.astype("int8"), categories=pd.Index(["SHORT", "LONG"])
    )
    frame.insert(len(BOOK_COLUMNS), "direction", pd.Series(direction, index=frame.index))
    return frame


def trade_stats(
    store: Source,
    *,
    by: Sequence[str] = ("strategy",),
    account: str | None = None,
    exact: bool = False,
) -> pd.DataFrame:
    """Per group of round trips: trades, wins, losses, win_rate, gross_profit (sum of
    winning nets), gross_loss (sum of losing nets, as a positive amount), net,
    profit_factor (gross_profit / gross_loss: inf with no losses, NaN with neither),
    expectancy (mean net per trip) and avg_hold."""
    columns = check_by(by, STATS_COLUMNS)
    keys = ", ".join(columns)
    where, params = account_filter(account)
    wins, losses = "count(*) FILTER (WHERE net > 0)", "count(*) FILTER (WHERE net < 0)"
    profit = "coalesce(sum(net) FILTER (WHERE net > 0), 0)"
    loss = "coalesce(-sum(net) FILTER (WHERE net < 0), 0)"
    sql = f"""
        SELECT {keys + "," if columns else ""}
               count(*) AS trades, {wins} AS wins, {losses} AS losses,
               {wins} / count(*) AS win_rate,
               {profit} AS gross_profit, {loss} AS gross_loss, sum(net) AS net,
               CASE WHEN {loss} > 0 THEN {profit}::DOUBLE / {loss}
                    WHEN {profit} > 0 THEN 'Infinity'::DOUBLE END AS profit_factor,
               sum(net)::DOUBLE / count(*) AS expectancy,
               to_microseconds(
                   round(avg(epoch_us(exit_time) - epoch_us(entry_time)))::BIGINT
               ) AS avg_hold
        FROM (SELECT *, CASE WHEN is_long THEN 'LONG' ELSE 'SHORT' END AS direction
              FROM ({round_trips_sql(where)})) JOIN books USING (book)
        {f"GROUP BY {keys} ORDER BY {keys}" if columns else ""}"""
    with reading(store) as cursor:
        frame = fetch(cursor, sql, params, money=("gross_profit", "gross_loss", "net"), exact=exact)
    if not columns and int(frame["trades"].iloc[0]) == 0:
        return frame.iloc[0:0]
    return frame
