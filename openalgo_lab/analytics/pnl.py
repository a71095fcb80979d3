"""P&L by any of account, strategy, exchange, symbol, product, mode and IST day.

Realised P&L is FIFO — the same matching as `round_trips`, done by the history writer as
fills arrive — and belongs to the fill that closes the units, so to that fill's day. Charges
belong to the fill that incurred them, on its day, as on a contract note; `net` is
realised + unrealised - charges. Unrealised P&L values the open FIFO lots at the `marks`
you pass (last prices by (exchange, symbol)) and is shown on the day of `as_of` (now by
default): it is a mark-to-market of today, not of the day a lot was opened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Final

import duckdb
import pandas as pd

from openalgo_lab.analytics._reading import (
    BOOK_COLUMNS,
    IST_DAY,
    Source,
    check_by,
    fetch,
    ist_day,
    money_param,
    reading,
)
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.store.history_schema import OPEN_LOTS

PNL_COLUMNS: Final = (*BOOK_COLUMNS, "day")
_MONEY: Final = ("realised", "unrealised", "charges", "net")


def pnl_by(
    store: Source,
    by: Sequence[str] = ("strategy", "symbol", "day"),
    *,
    marks: Mapping[tuple[str, str], Decimal] | None = None,
    account: str | None = None,
    as_of: datetime | None = None,
    exact: bool = False,
) -> pd.DataFrame:
    """One row per group: realised, unrealised, charges, net, and `net_quantity` (bought
    minus sold in the group: the open position when `day` is not a grouping column).

    Without `marks` open positions are not valued (unrealised is 0); with them every open
    (exchange, symbol) must have a mark, or a ValidationError names the missing ones."""
    columns = check_by(by, PNL_COLUMNS)
    keys = ", ".join(columns)
    group = "GROUP BY ALL" if columns else ""
    account_sql, account_params = _account(account)
    # the big scan aggregates straight away; the union below only sees grouped rows
    realised = f"""
        SELECT {_select(columns, IST_DAY.format(ts="f.ts"))}
               sum(f.realised) AS realised, 0::DECIMAL(38,4) AS unrealised,
               sum(f.charges) AS charges,
               sum(CASE WHEN f.is_buy THEN f.quantity ELSE -f.quantity END) AS net_quantity
        FROM fills f JOIN books b USING (book) WHERE {account_sql} {group}"""
    params: list[object] = list(account_params)
    parts = [realised]
    with reading(store) as cursor:
        if marks is not None:
            mark_params = _marks(marks)
            _require_marks(cursor, marks, account_sql, account_params)
            parts.append(
                f"""
        SELECT {_select(columns, "?::DATE")}
               0::DECIMAL(38,4) AS realised,
               sum(CASE WHEN l.is_buy THEN l.open_quantity * (m.mark - l.price)
                        ELSE l.open_quantity * (l.price - m.mark) END) AS unrealised,
               0::DECIMAL(38,4) AS charges, 0::HUGEINT AS net_quantity
        FROM ({OPEN_LOTS}) l JOIN books b USING (book)
             JOIN (SELECT unnest(?::VARCHAR[]) AS exchange, unnest(?::VARCHAR[]) AS symbol,
                          unnest(?::VARCHAR[])::DECIMAL(18,4) AS mark) m
             ON m.exchange = b.exchange AND m.symbol = b.symbol
        WHERE {account_sql} {group}"""
            )
            params += [ist_day(as_of)] if "day" in columns else []
            params += [*mark_params, *account_params]
        sql = f"""
            SELECT {keys + "," if columns else ""}
                   coalesce(sum(realised), 0) AS realised,
                   coalesce(sum(unrealised), 0) AS unrealised,
                   coalesce(sum(charges), 0) AS charges,
                   coalesce(sum(realised) + sum(unrealised) - sum(charges), 0) AS net,
                   coalesce(sum(net_quantity), 0)::BIGINT AS net_quantity
            FROM ({" UNION ALL ".join(parts)}) {group} {f"ORDER BY {keys}" if columns else ""}"""
        return fetch(cursor, sql, params, money=_MONEY, exact=exact)


def _select(columns: list[str], day: str) -> str:
    """The grouping columns for one part of the union, each followed by a comma."""
    return "".join(f"{day if c == 'day' else 'b.' + c} AS {c}, " for c in columns)


def _account(account: str | None) -> tuple[str, list[object]]:
    if account is None:
        return "TRUE", []
    if not isinstance(account, str) or not account:
        raise ValidationError("account", "must be a non-empty string or None")
    return "b.account = ?", [account]


def _marks(marks: Mapping[tuple[str, str], Decimal]) -> list[object]:
    exchanges, symbols, prices = [], [], []
    for key, price in marks.items():
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key)):
            raise ValidationError("marks", f"keys must be (exchange, symbol), got {key!r}")
        exchanges.append(key[0])
        symbols.append(key[1])
        prices.append(money_param(price, f"marks[{key[0]}:{key[1]}]"))
    return [exchanges, symbols, prices]


def _require_marks(
    cursor: duckdb.DuckDBPyConnection,
    marks: Mapping[tuple[str, str], Decimal],
    account_sql: str,
    account_params: list[object],
) -> None:
    """Refuse to value a book without a price: silently counting it as zero would hide
    exactly the positions someone forgot."""
    rows = cursor.execute(
        f"""SELECT DISTINCT b.exchange, b.symbol
            FROM ({OPEN_LOTS}) l JOIN books b USING (book) WHERE {account_sql}
            ORDER BY 1, 2""",
        account_params,
    ).fetchall()
    missing = [f"{e}:{s}" for e, s in rows if (e, s) not in marks]
    if missing:
        raise ValidationError("marks", f"no mark for open position(s) {', '.join(missing)}")
