"""How analytics read history: one read-only transaction per call, results as DataFrames.

A source is the live `HistoryStore` (each call gets its own connection, so analysis runs
beside the writer under DuckDB's MVCC) or any DuckDB connection to a history database —
typically an exported snapshot opened with `duckdb.connect(path, read_only=True)`.

Money in the returned frames: DuckDB computes every figure exactly in DECIMAL; by default it
arrives as float64 (what plotting and pandas arithmetic want, and exact to the paisa far
beyond any account's size); `exact=True` returns `Decimal` objects instead, for
reconciliation against a contract note. Instants come back as tz-aware UTC; `day` is the IST
trading day as a naive date.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Final, TypeAlias

import duckdb
import pandas as pd

from openalgo_lab.domain.calendar import IST
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.money import to_decimal

if TYPE_CHECKING:
    from openalgo_lab.store.history import HistoryStore

Source: TypeAlias = "HistoryStore | duckdb.DuckDBPyConnection"

IST_DAY: Final = "CAST({ts} + INTERVAL 330 MINUTE AS DATE)"
"""SQL for the IST trading day of a UTC TIMESTAMP (India keeps no daylight saving)."""

BOOK_COLUMNS: Final = ("account", "strategy", "exchange", "symbol", "product", "mode")


@contextmanager
def reading(source: Source) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private connection in a READ ONLY transaction: every query of one analytics call
    sees the same committed state, and none of them can write."""
    cursor = source.cursor()
    try:
        cursor.execute("BEGIN TRANSACTION READ ONLY")
        yield cursor
    finally:
        with suppress(duckdb.Error):
            cursor.execute("ROLLBACK")
        cursor.close()


def fetch(
    cursor: duckdb.DuckDBPyConnection,
    sql: str,
    params: Sequence[object] = (),
    *,
    money: Sequence[str] = (),
    instants: Sequence[str] = (),
    exact: bool = False,
) -> pd.DataFrame:
    """Run `sql` and shape the frame: `money` columns as float or Decimal, `instants` as
    UTC-aware timestamps."""
    if exact and money:
        replaced = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in money)
        sql = f"SELECT * REPLACE ({replaced}) FROM ({sql})"
    frame = cursor.execute(sql, list(params)).df()
    for column in money:
        if exact:
            frame[column] = pd.Series(
                [None if v is None or v != v else Decimal(v) for v in frame[column]],
                index=frame.index,
                dtype=object,
            )
        else:
            frame[column] = frame[column].astype("float64")
    for column in instants:
        frame[column] = pd.to_datetime(frame[column]).dt.tz_localize(UTC)
    return frame


def account_filter(account: str | None, column: str = "book") -> tuple[str, list[object]]:
    """A WHERE clause restricting fills (by their book) to one account, with its params."""
    if account is None:
        return "TRUE", []
    if not isinstance(account, str) or not account:
        raise ValidationError("account", "must be a non-empty string or None")
    return f"{column} IN (SELECT book FROM books WHERE account = ?)", [account]


def check_by(by: Sequence[str], allowed: Sequence[str]) -> list[str]:
    if isinstance(by, str):
        by = (by,)
    columns = list(by)
    for column in columns:
        if column not in allowed:
            raise ValidationError("by", f"unknown column {column!r}; use any of {list(allowed)}")
    if len(set(columns)) != len(columns):
        raise ValidationError("by", "lists a column twice")
    return columns


def money_param(value: object, field: str, *, positive: bool = False) -> str:
    """A Decimal as the exact text DuckDB casts to DECIMAL(18,4); refuses what would round."""
    amount = to_decimal(value, field)
    if amount != amount.quantize(Decimal("0.0001")) or abs(amount) >= Decimal(10) ** 14:
        raise ValidationError(field, "must have at most 4 decimal places and be below 10^14")
    if positive and amount <= 0:
        raise ValidationError(field, "must be positive")
    return str(amount)


def ist_day(when: datetime | None) -> datetime:
    """The IST trading day of `when` (now if None), as a naive midnight like the `day`
    column."""
    instant = datetime.now(UTC) if when is None else when
    if instant.tzinfo is None:
        raise ValidationError("as_of", "must be timezone-aware")
    day = instant.astimezone(IST).date()
    return datetime(day.year, day.month, day.day)


def with_books(cursor: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> pd.DataFrame:
    """Replace the `book` id column by the book's attributes, as categoricals: a frame of
    millions of rows then holds a few codes per row instead of six Python strings."""
    books = cursor.execute(f"SELECT book, {', '.join(BOOK_COLUMNS)} FROM books").df()
    position = pd.Index(books["book"]).get_indexer(frame["book"])
    attributes = {}
    for column in BOOK_COLUMNS:
        codes, categories = pd.factorize(books[column].astype(str))
        attributes[column] = pd.Categorical.from_codes(codes[position], categories=categories)
    books_part = pd.DataFrame(attributes, index=frame.index)
    return pd.concat([books_part, frame.drop(columns="book")], axis=1)
