"""The history database: orders, order events, fills (with charges and FIFO results), candles.

DuckDB allows one writer per file, so `HistoryStore` is the only thing that writes it, and
the engine never calls it on the request path: `HistoryWriter` queues rows in O(1) and a
background thread writes them in batches. See `history_schema` for the tables and the
numeric types (DECIMAL(18,4) per row, DECIMAL(38,4) for sums) and `history_fifo` for why FIFO
matching happens here, at write time.

Reading while the engine runs, two ways:

* `query()` and the `analytics` functions read through their own DuckDB connection in a
  read-only transaction. DuckDB's MVCC gives them a consistent view while the writer keeps
  appending, so the engine never stops for analysis.
* `export_snapshot()` is for other processes (a notebook kernel, a script), which cannot
  open the live file while the engine holds it. It uses DuckDB's own `COPY FROM DATABASE`
  into a new DuckDB file inside one transaction, then renames it into place. We chose this
  over CHECKPOINT + file copy because a file copy is only consistent if writes pause for its
  duration, and over EXPORT DATABASE to Parquet because reading Parquet back needs pyarrow
  (not a dependency) while a DuckDB file opens with `duckdb.connect(path, read_only=True)`
  and the analytics functions accept that connection directly.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Final, Self, TypeVar

import duckdb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from openalgo_lab.domain.errors import OpenAlgoError, ValidationError
from openalgo_lab.store.history_fifo import FifoState, Fills, Outcome, running_totals
from openalgo_lab.store.history_rows import (
    KEY_SEPARATOR,
    MAX_MONEY,
    MAX_QUANTITY,
    MODES,
    CandleRow,
    OrderEventRow,
    OrderRow,
    RequestRow,
    TradeRow,
)
from openalgo_lab.store.history_schema import (
    BOOK_TOTALS,
    DDL,
    EQUITY_STATE,
    OPEN_LOTS,
    OVERALL_STATE,
    SCHEMA_VERSION,
)

__all__ = [
    "CandleRow",
    "HistoryStore",
    "HistoryWriter",
    "OrderEventRow",
    "OrderRow",
    "RequestRow",
    "TradeRow",
]

log = logging.getLogger(__name__)
_Row = TypeVar("_Row")

BookKey = tuple[str, str, str, str, str, str]  # account, strategy, exchange, symbol, product, mode
_US_PER_DAY: Final = 86_400_000_000
_IST_OFFSET_US: Final = 19_800_000_000  # +05:30; India has no daylight saving
_IMPORT_CHUNK: Final = 250_000
_PIPELINE_CHUNK: Final = 50_000
"""Rows per pipelined step of one append: big enough to amortise DuckDB's per-statement
cost, small enough that preparing and inserting overlap for most of a large append."""


def _dec(column: str) -> str:
    """SQL turning an integer count of 0.0001 rupee into an exact DECIMAL(18,4)."""
    return f"({column} * 0.0001::DECIMAL(5,4))::DECIMAL(18,4)"


_INSERT_FILLS: Final = f"""
    INSERT INTO fills SELECT seq, book, tradeid, orderid, is_buy, quantity,
        {_dec("price")}, {_dec("charges")}, ts, side_lo, {_dec("realised")},
        {_dec("account_total")}, {_dec("account_peak")},
        {_dec("overall_total")}, {_dec("overall_peak")}
    FROM batch"""

_ORDER_COLUMNS: Final = (
    "account, orderid, strategy, symbol, exchange, action, quantity, pricetype, product, "
    "price, trigger_price, status, filled_quantity, average_price, placed_at, updated_at, "
    "rejection_reason, mode, seq"
)
_UPSERT_ORDERS: Final = f"""
    INSERT INTO orders
    SELECT account, orderid, strategy, symbol, exchange, action, quantity, pricetype, product,
           price::DECIMAL(18,4), trigger_price::DECIMAL(18,4), status, filled_quantity,
           average_price::DECIMAL(18,4), placed_at, updated_at, rejection_reason, mode, seq
    FROM batch
    QUALIFY row_number() OVER (PARTITION BY account, orderid ORDER BY updated_at DESC, seq DESC) = 1
    ON CONFLICT (account, orderid) DO UPDATE SET
        {", ".join(f"{c} = EXCLUDED.{c}" for c in _ORDER_COLUMNS.split(", ")[2:])}
    WHERE EXCLUDED.updated_at >= orders.updated_at"""
_INSERT_EVENTS: Final = """
    INSERT INTO order_events
    SELECT seq, account, orderid, status, filled_quantity, ts, detail FROM batch"""
_REQUEST_TIMES: Final = (
    "duration_ms",
    "parse_ms",
    "engine_ms",
    "risk_ms",
    "journal_ms",
    "broker_ms",
)
_INSERT_REQUESTS: Final = f"""
    INSERT INTO requests
    SELECT seq, ts, method, route, status, {", ".join(_REQUEST_TIMES)}, key_id, client
    FROM batch"""
_UPSERT_CANDLES: Final = """
    INSERT INTO candles
    SELECT exchange, symbol, interval, ts, open::DECIMAL(18,4), high::DECIMAL(18,4),
           low::DECIMAL(18,4), close::DECIMAL(18,4), volume, oi
    FROM batch
    QUALIFY row_number() OVER (PARTITION BY exchange, symbol, interval, ts ORDER BY seq DESC) = 1
    ON CONFLICT (exchange, symbol, interval, ts) DO UPDATE SET
        open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low,
        close = EXCLUDED.close, volume = EXCLUDED.volume, oi = EXCLUDED.oi"""


def _execute_with(cursor: duckdb.DuckDBPyConnection, sql: str, batch: pd.DataFrame) -> None:
    """Run `sql`, which reads the DataFrame `batch` by name.

    DuckDB's replacement scan finds `batch` among this frame's locals; that is cheaper than
    `register`/`unregister` around every statement (about a millisecond per batch)."""
    cursor.execute(sql)


def _units(values: NDArray[np.float64], field: str) -> NDArray[np.int64]:
    """Floats holding 4-place decimals to exact integer units of 0.0001.

    Exact because every value is below 10^10 in magnitude: the float's error times 10^4 is
    far below half a unit. Values with a fifth decimal place are refused, not rounded."""
    scaled = values * 10_000.0
    units = np.rint(scaled)
    if len(values) and not (np.abs(values).max() < float(MAX_MONEY)):
        raise ValidationError(field, f"must be below {MAX_MONEY:,} in absolute value")
    if len(values) and np.abs(scaled - units).max() > 1e-3:
        raise ValidationError(field, "has more than 4 decimal places")
    return units.astype(np.int64)


def _utc_instants(values: list[datetime] | pd.Series, field: str) -> NDArray[np.int64]:
    """Microseconds since the epoch (UTC) for aware datetimes."""
    try:
        index = pd.DatetimeIndex(values)
    except (TypeError, ValueError):
        try:  # aware values with different offsets
            index = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
        except (TypeError, ValueError) as err:
            raise ValidationError(field, f"must be datetimes: {err}") from None
    if index.tz is None:
        raise ValidationError(field, "must be timezone-aware (UTC)")
    return np.asarray(index.tz_convert("UTC").as_unit("us").asi8, dtype=np.int64)


def _as_timestamps(us: NDArray[np.int64]) -> NDArray[np.datetime64]:
    return us.view("datetime64[us]")


@dataclass(frozen=True, slots=True)
class _TradeColumns:
    """A batch of fills as columns; `keys` are `TradeRow.book_key`s (the book and the side
    in one string: one dict lookup per fill)."""

    keys: list[str]
    tradeid: list[str]
    orderid: list[str]
    quantity: NDArray[np.int64]
    price: NDArray[np.int64]
    charges: NDArray[np.int64]
    ts: NDArray[np.int64]

    @classmethod
    def from_rows(cls, rows: Sequence[TradeRow]) -> _TradeColumns:
        n = len(rows)
        return cls(
            keys=[r.book_key for r in rows],
            tradeid=[r.tradeid for r in rows],
            orderid=[r.orderid for r in rows],
            quantity=np.array([r.quantity for r in rows], dtype=np.int64),
            price=np.fromiter([r.price_units for r in rows], np.int64, n),
            charges=np.fromiter([r.charges_units for r in rows], np.int64, n),
            ts=np.fromiter([r.ts_us for r in rows], np.int64, n),
        )


_FRAME_COLUMNS: Final = (
    "account",
    "tradeid",
    "orderid",
    "strategy",
    "symbol",
    "exchange",
    "product",
    "action",
    "quantity",
    "price",
    "charges",
    "ts",
    "mode",
)
_ALLOWED: Final = {
    "exchange": frozenset(
        {"NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX", "NCDEX", "NCO", "CRYPTO"}
        | {"NSE_INDEX", "BSE_INDEX", "MCX_INDEX", "GLOBAL_INDEX"}
    ),
    "product": frozenset({"CNC", "NRML", "MIS"}),
    "action": frozenset({"BUY", "SELL"}),
    "mode": MODES,
}


_KEY_PARTS: Final = ("account", "strategy", "exchange", "symbol", "product", "mode", "action")


def _frame_columns(frame: pd.DataFrame) -> _TradeColumns:
    """Validate a trade frame column by column, the bulk twin of `TradeRow`'s checks.

    Text columns are checked on their distinct values and book keys built once per
    distinct combination, so the cost per row is a few numpy operations."""
    codes = np.zeros(len(frame), np.int64)
    for name in _KEY_PARTS:
        code, values = pd.factorize(frame[name])
        if (code < 0).any():
            raise ValidationError(name, "must not be missing")
        _check_names(name, [str(v) for v in values])
        codes = pd.factorize(codes * len(values) + code)[0]  # dense, so it never overflows
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    parts = [frame[name].to_numpy()[first] for name in _KEY_PARTS]
    joined = [KEY_SEPARATOR.join(map(str, key)) for key in zip(*parts, strict=True)]
    keys = np.array(joined, dtype=object)
    ids = {name: frame[name].astype(str) for name in ("tradeid", "orderid")}
    if (ids["tradeid"] == "").any():
        raise ValidationError("tradeid", "must not be empty")
    quantity = frame["quantity"].to_numpy()
    if not np.issubdtype(quantity.dtype, np.integer):
        raise ValidationError("quantity", "must be whole numbers")
    if len(quantity) and not (quantity.min() >= 1 and quantity.max() <= MAX_QUANTITY):
        raise ValidationError("quantity", f"must be between 1 and {MAX_QUANTITY}")
    return _TradeColumns(
        keys=keys[inverse.reshape(-1)].tolist(),
        tradeid=ids["tradeid"].tolist(),
        orderid=ids["orderid"].tolist(),
        quantity=quantity.astype(np.int64),
        price=_units(_money_floats(frame["price"], "price"), "price"),
        charges=_units(_money_floats(frame["charges"], "charges"), "charges"),
        ts=_utc_instants(frame["ts"], "ts"),
    )


def _check_names(name: str, values: list[str]) -> None:
    allowed = _ALLOWED.get(name)
    if allowed is not None and not set(values) <= allowed:
        bad = sorted(set(values) - allowed)[0]
        raise ValidationError(name, f"must be one of {', '.join(sorted(allowed))}, got {bad!r}")
    if name in ("account", "symbol") and "" in values:
        raise ValidationError(name, "must not be empty")
    if any(KEY_SEPARATOR in v for v in values):
        raise ValidationError(name, "must not contain the control character U+001F")


def _money_floats(column: pd.Series, field: str) -> NDArray[np.float64]:
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64)
    try:
        return np.fromiter(map(float, column), np.float64, len(column))
    except (TypeError, ValueError):
        raise ValidationError(field, "must be numbers") from None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A batch ready to insert: the new books' rows and the fills frame."""

    books: list[tuple[int, str, str, str, str, str, str]]
    fills: pd.DataFrame


class _Books:
    """Book keys ↔ small integer ids, and each book's account (for per-account totals)."""

    def __init__(self) -> None:
        self.ids: dict[BookKey, int] = {}
        self._sided: dict[str, int] = {}
        self.account_names: list[str] = []
        self._account_index: dict[str, int] = {}
        self._account_of = np.zeros(0, np.int64)

    def resolve(
        self, keys: list[str]
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_], list[BookKey]]:
        """Book id and side per fill; books seen for the first time are numbered in order
        of appearance and returned, for `keep` to record."""
        codes = list(map(self._sided.get, keys))
        new: list[BookKey] = []
        if None in codes:
            pending: dict[BookKey, int] = {}
            for i, code in enumerate(codes):
                if code is None:
                    a, st, ex, sy, pr, mo, action = keys[i].split(KEY_SEPARATOR)
                    book_key = (a, st, ex, sy, pr, mo)
                    book = self.ids.get(book_key)
                    if book is None:
                        book = pending.get(book_key)
                    if book is None:
                        book = pending[book_key] = len(self.ids) + len(pending)
                        new.append(book_key)
                    codes[i] = 2 * book + (action == "BUY")
        sided = np.array(codes, dtype=np.int64)
        return sided >> 1, (sided & 1).astype(np.bool_), new

    def accounts(
        self, book: NDArray[np.int64], new: list[BookKey]
    ) -> tuple[NDArray[np.int64], list[str]]:
        """Account code per fill and the code → name list, counting books from `new`."""
        names = list(self.account_names)
        index = dict(self._account_index)
        extra = []
        for key in new:
            code = index.get(key[0])
            if code is None:
                code = index[key[0]] = len(names)
                names.append(key[0])
            extra.append(code)
        of = np.concatenate((self._account_of, np.asarray(extra, dtype=np.int64)))
        return of[book], names

    def keep(self, new: list[BookKey]) -> None:
        _, self.account_names = self.accounts(np.zeros(0, np.int64), new)
        self._account_index = {name: i for i, name in enumerate(self.account_names)}
        extra = np.fromiter((self._account_index[k[0]] for k in new), np.int64, len(new))
        self._account_of = np.concatenate((self._account_of, extra))
        for key in new:
            book = self.ids[key] = len(self.ids)
            self._sided[KEY_SEPARATOR.join((*key, "SELL"))] = 2 * book
            self._sided[KEY_SEPARATOR.join((*key, "BUY"))] = 2 * book + 1


class HistoryStore:
    """Owns the DuckDB file and is its only writer; safe to call from several threads."""

    _open_paths: ClassVar[set[str]] = set()
    _open_paths_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path | str) -> None:
        self._memory = str(path) == ":memory:"
        self._path = ":memory:" if self._memory else str(Path(path).resolve())
        if not self._memory:
            with self._open_paths_lock:
                if self._path in self._open_paths:
                    raise ValidationError("path", f"{self._path} is already open for writing")
                self._open_paths.add(self._path)
        try:
            self._root = duckdb.connect(self._path)
        except duckdb.Error as err:
            self._release_path()
            raise ValidationError("path", f"cannot open history database: {err}") from None
        self._lock = threading.RLock()
        self._cursor_lock = threading.Lock()
        self._closed = False
        self._w = self._root.cursor()
        self._inserter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-insert")
        self._create_schema()
        self._catalog = str(self._scalar("SELECT current_database()"))
        self._books = _Books()
        self._fifo = FifoState.empty()
        self._totals: dict[str, tuple[int, int]] = {}
        self._overall = (0, 0)
        self._next = {"orders": 0, "order_events": 0, "candles": 0, "requests": 0}
        self._next_fill = 0
        self._chunk = _PIPELINE_CHUNK
        self._load_state()

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._inserter.shutdown()
            self._w.close()
            self._root.close()
            self._release_path()

    def _release_path(self) -> None:
        if not self._memory:
            with self._open_paths_lock:
                self._open_paths.discard(self._path)

    @property
    def path(self) -> str:
        return self._path

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new connection to the same database for reading from any thread (the analytics
        use this). Reads see committed data only; writes belong to this store."""
        self._check_open()
        with self._cursor_lock:
            return self._root.cursor()

    def _check_open(self) -> None:
        if self._closed:  # a state error, not bad input: a writer keeps such rows queued
            raise OpenAlgoError("history store is closed")

    def _scalar(self, sql: str) -> object:
        row = self._w.execute(sql).fetchone()
        return None if row is None else row[0]

    def _create_schema(self) -> None:
        with self._lock:
            self._w.execute("BEGIN")
            try:
                for statement in DDL:
                    self._w.execute(statement)
                self._w.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING",
                    [SCHEMA_VERSION],
                )
                version = self._scalar("SELECT value FROM meta WHERE key = 'schema_version'")
                if version != SCHEMA_VERSION:
                    raise ValidationError(
                        "path", f"history schema version {version} is not {SCHEMA_VERSION}"
                    )
                self._w.execute("COMMIT")
            except BaseException:
                self._w.execute("ROLLBACK")
                self.close()
                raise

    def _load_state(self) -> None:
        """Rebuild the writer's in-memory FIFO and totals from the tables (they are the
        truth; memory is a cache of their tails)."""
        w = self._w
        self._books = _Books()
        self._totals = {}
        self._overall = (0, 0)
        books = w.execute(
            "SELECT account, strategy, exchange, symbol, product, mode FROM books ORDER BY book"
        ).fetchall()
        self._books.keep(
            [(str(a), str(s), str(e), str(y), str(p), str(m)) for a, s, e, y, p, m in books]
        )
        for table in ("fills", "orders", "order_events", "requests"):
            row = w.execute(f"SELECT coalesce(max(seq) + 1, 0) FROM {table}").fetchone()
            self._next[table] = int(row[0]) if row else 0
        self._next_fill = self._next.pop("fills")
        n = len(self._books.ids)
        totals = w.execute(f"SELECT book, bought, sold FROM ({BOOK_TOTALS})").fetchnumpy()
        bought, sold = np.zeros(n, np.int64), np.zeros(n, np.int64)
        bought[totals["book"]] = totals["bought"]
        sold[totals["book"]] = totals["sold"]
        lots = w.execute(
            f"""SELECT book::BIGINT AS book, is_buy, quantity, seq,
                       (price * 10000)::BIGINT AS price, (charges * 10000)::BIGINT AS charges,
                       epoch_us(ts) AS ts, side_lo
                FROM ({OPEN_LOTS}) ORDER BY seq"""
        ).fetchnumpy()
        ints = {c: np.asarray(lots[c], dtype=np.int64) for c in lots if c != "is_buy"}
        open_lots = Fills(
            ints["book"],
            np.asarray(lots["is_buy"], dtype=np.bool_),
            ints["quantity"],
            ints["seq"],
            ints["price"],
            ints["charges"],
            ints["ts"],
            ints["side_lo"],
        )
        self._fifo = FifoState(bought, sold, open_lots)
        for account, total, peak in w.execute(
            "SELECT account, (total * 10000)::HUGEINT, (peak * 10000)::HUGEINT"
            f" FROM ({EQUITY_STATE})"
        ).fetchall():
            self._totals[str(account)] = (int(total), int(peak))
        row = w.execute(
            f"SELECT (t * 10000)::HUGEINT, (p * 10000)::HUGEINT FROM ({OVERALL_STATE}) s(t, p)"
        ).fetchone()
        if row is not None and row[0] is not None:
            self._overall = (int(row[0]), int(row[1]))

    # -- trades -----------------------------------------------------------------------------
    def append_trades(self, rows: Sequence[TradeRow]) -> None:
        """Write fills in one transaction, FIFO-matched in fill (arrival) order."""
        if rows:
            step = self._chunk
            self._ingest(
                _TradeColumns.from_rows(rows[i : i + step]) for i in range(0, len(rows), step)
            )

    def import_trades(self, frame: pd.DataFrame) -> int:
        """Bulk-load a trade book (a broker's tradebook, a backtest, a benchmark).

        Columns as `TradeRow`; prices and charges as numbers with at most 4 decimals; `ts`
        timezone-aware. Rows are matched in time order (stable for equal times), after any
        fills already stored. Returns the number of fills written."""
        missing = [c for c in _FRAME_COLUMNS if c not in frame.columns]
        if missing:
            raise ValidationError(missing[0], "column is missing from the trades frame")
        if frame.empty:
            return 0
        ts = _utc_instants(frame["ts"], "ts")
        if (np.diff(ts) < 0).any():
            frame = frame.iloc[np.argsort(ts, kind="stable")]
        step = max(self._chunk, _IMPORT_CHUNK)
        self._ingest(_frame_columns(frame.iloc[i : i + step]) for i in range(0, len(frame), step))
        return len(frame)

    def _ingest(self, parts: Iterable[_TradeColumns]) -> None:
        """Write batches in one transaction, preparing batch k+1 (Python, numpy) while a
        worker thread inserts batch k (DuckDB, which releases the GIL): on two cores the
        two halves of the work overlap. Memory state runs ahead of the database during the
        transaction; if anything fails it is rebuilt from the tables, which are the truth."""
        with self._lock:
            self._check_open()
            pending: Future[None] | None = None
            self._w.execute("BEGIN")
            try:
                for cols in parts:
                    prepared = self._prepare(cols)
                    if pending is not None:
                        pending.result()
                    pending = self._inserter.submit(self._insert, prepared)
                if pending is not None:
                    pending.result()
                self._w.execute("COMMIT")
            except BaseException:
                if pending is not None:
                    wait([pending])
                self._w.execute("ROLLBACK")
                self._load_state()
                raise

    def _prepare(self, cols: _TradeColumns) -> _Prepared:
        """FIFO-match a batch and lay it out for insertion; advances the memory state."""
        book, is_buy, new_books = self._books.resolve(cols.keys)
        n = len(book)
        first_book = len(self._books.ids)
        seq = np.arange(self._next_fill, self._next_fill + n, dtype=np.int64)
        batch = Fills(
            book,
            is_buy,
            cols.quantity,
            seq,
            cols.price,
            cols.charges,
            cols.ts,
            np.full(n, -1, np.int64),
        )
        outcome = self._fifo.match(batch)
        totals, running = self._running_totals(batch, outcome, new_books)
        fills = pd.DataFrame(
            {
                "seq": seq,
                "book": book.astype(np.int32),
                "tradeid": cols.tradeid,
                "orderid": cols.orderid,
                "is_buy": is_buy,
                "quantity": cols.quantity,
                "price": cols.price,
                "charges": cols.charges,
                "ts": _as_timestamps(cols.ts),
                "side_lo": outcome.lo,
                "realised": outcome.realised,
                **running,
            }
        )
        self._books.keep(new_books)
        self._fifo.apply(outcome)
        self._totals.update(totals)
        self._overall = (int(running["overall_total"][-1]), int(running["overall_peak"][-1]))
        self._next_fill += n
        books = [(first_book + i, *key) for i, key in enumerate(new_books)]
        return _Prepared(books, fills)

    def _insert(self, prepared: _Prepared) -> None:
        if prepared.books:
            self._w.executemany("INSERT INTO books VALUES (?, ?, ?, ?, ?, ?, ?)", prepared.books)
        _execute_with(self._w, _INSERT_FILLS, prepared.fills)

    def _running_totals(
        self, batch: Fills, outcome: Outcome, new_books: list[BookKey]
    ) -> tuple[dict[str, tuple[int, int]], dict[str, NDArray[np.int64]]]:
        """Running net realised P&L (realised - charges) per account and overall, and the
        peaks, continuing from the last batch: the equity curve and drawdown read these."""
        net = outcome.realised - batch.charges
        overall_total, overall_peak = running_totals(net, *self._overall)
        code, names = self._books.accounts(batch.book, new_books)
        account_total = np.empty(len(net), np.int64)
        account_peak = np.empty(len(net), np.int64)
        state: dict[str, tuple[int, int]] = {}
        for c in np.unique(code):
            mask = code == c
            name = names[int(c)]
            total, peak = running_totals(net[mask], *self._totals.get(name, (0, 0)))
            account_total[mask], account_peak[mask] = total, peak
            state[name] = (int(total[-1]), int(peak[-1]))
        return state, {
            "account_total": account_total,
            "account_peak": account_peak,
            "overall_total": overall_total,
            "overall_peak": overall_peak,
        }

    # -- orders, events, candles ---------------------------------------------------------
    def append_orders(self, rows: Sequence[OrderRow]) -> None:
        """Upsert: one row per (account, orderid), keeping the latest `updated_at` (the later
        submission on a tie), so replays and out-of-order updates cannot regress a status."""
        if not rows:
            return
        frame = pd.DataFrame(
            {
                "account": [r.account for r in rows],
                "orderid": [r.orderid for r in rows],
                "strategy": [r.strategy for r in rows],
                "symbol": [r.symbol for r in rows],
                "exchange": [r.exchange for r in rows],
                "action": [r.action for r in rows],
                "quantity": np.fromiter((r.quantity for r in rows), np.int64, len(rows)),
                "pricetype": [r.pricetype for r in rows],
                "product": [r.product for r in rows],
                "price": [str(r.price) for r in rows],
                "trigger_price": [str(r.trigger_price) for r in rows],
                "status": [r.status for r in rows],
                "filled_quantity": np.fromiter(
                    (r.filled_quantity for r in rows), np.int64, len(rows)
                ),
                "average_price": [str(r.average_price) for r in rows],
                "placed_at": _as_timestamps(
                    _utc_instants([r.placed_at for r in rows], "placed_at")
                ),
                "updated_at": _as_timestamps(
                    _utc_instants([r.updated_at for r in rows], "updated_at")
                ),
                "rejection_reason": [r.rejection_reason for r in rows],
                "mode": [r.mode for r in rows],
            }
        )
        self._write_sequenced("orders", _UPSERT_ORDERS, frame)

    def append_order_events(self, rows: Sequence[OrderEventRow]) -> None:
        if not rows:
            return
        frame = pd.DataFrame(
            {
                "account": [r.account for r in rows],
                "orderid": [r.orderid for r in rows],
                "status": [r.status for r in rows],
                "filled_quantity": np.fromiter(
                    (r.filled_quantity for r in rows), np.int64, len(rows)
                ),
                "ts": _as_timestamps(_utc_instants([r.ts for r in rows], "ts")),
                "detail": [r.detail for r in rows],
            }
        )
        self._write_sequenced("order_events", _INSERT_EVENTS, frame)

    def append_candles(self, rows: Sequence[CandleRow]) -> None:
        """Upsert on (exchange, symbol, interval, ts): a re-sent bar replaces the stored one
        (the later submission wins), because a live bar is revised until it closes."""
        if not rows:
            return
        frame = pd.DataFrame(
            {
                "exchange": [r.exchange for r in rows],
                "symbol": [r.symbol for r in rows],
                "interval": [r.interval for r in rows],
                "ts": _as_timestamps(_utc_instants([r.ts for r in rows], "ts")),
                **{k: [str(getattr(r, k)) for r in rows] for k in ("open", "high", "low", "close")},
                "volume": np.fromiter((r.volume for r in rows), np.int64, len(rows)),
                "oi": np.fromiter((r.oi for r in rows), np.int64, len(rows)),
            }
        )
        self._write_sequenced("candles", _UPSERT_CANDLES, frame)

    def append_requests(self, rows: Sequence[RequestRow]) -> None:
        """Append to the traffic log (one row per API request, in submission order)."""
        if not rows:
            return
        frame = pd.DataFrame(
            {
                "ts": _as_timestamps(_utc_instants([r.ts for r in rows], "ts")),
                "method": [r.method for r in rows],
                "route": [r.route for r in rows],
                "status": np.fromiter((r.status for r in rows), np.int32, len(rows)),
                **{
                    k: np.fromiter((getattr(r, k) for r in rows), np.float64, len(rows))
                    for k in _REQUEST_TIMES
                },
                "key_id": [r.key_id for r in rows],
                "client": [r.client for r in rows],
            }
        )
        self._write_sequenced("requests", _INSERT_REQUESTS, frame)

    def _write_sequenced(self, table: str, sql: str, frame: pd.DataFrame) -> None:
        """Write with a submission sequence number so "later wins" is well defined."""
        with self._lock:
            self._check_open()
            start = self._next[table]
            frame["seq"] = np.arange(start, start + len(frame), dtype=np.int64)
            self._w.execute("BEGIN")
            try:
                _execute_with(self._w, sql, frame)
                self._w.execute("COMMIT")
            except BaseException:
                self._w.execute("ROLLBACK")
                raise
            self._next[table] = start + len(frame)

    # -- reading ------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        """Run one read-only statement and return its rows.

        Only a single SELECT (including WITH … SELECT, FROM-first, DESCRIBE/SHOW) passes: the
        statement type is taken from DuckDB's own parser, not guessed from text, and the query
        also runs in a READ ONLY transaction, so even a function with side effects cannot
        write. History has exactly one writer: this store, fed by the engine."""
        self._check_open()
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as err:
            raise ValidationError("sql", f"cannot parse: {err}") from None
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            kinds = ", ".join(s.type.name for s in statements) or "nothing"
            raise ValidationError(
                "sql",
                f"only a single SELECT (or WITH … SELECT) statement may be run against history, "
                f"got {kinds}; history is written by the engine only",
            )
        cursor = self.cursor()
        try:
            cursor.execute("BEGIN TRANSACTION READ ONLY")
            return cursor.execute(sql, list(params)).df()
        except duckdb.Error as err:
            raise ValidationError("sql", str(err)) from None
        finally:
            cursor.close()

    def export_snapshot(self, dest: Path | str) -> Path:
        """Write a consistent copy of the whole database to the DuckDB file `dest` and return
        its path. The copy is one read transaction (the writer keeps going meanwhile) and
        appears atomically: readers of `dest` see the previous snapshot or the new one."""
        self._check_open()
        target = Path(dest).resolve()
        if target.is_dir():
            raise ValidationError("dest", f"{target} is a directory; give a file name")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        alias = f"snapshot_{uuid.uuid4().hex}"
        cursor = self.cursor()
        try:
            quoted = str(tmp).replace("'", "''")
            cursor.execute(f"ATTACH '{quoted}' AS {alias}")
            try:
                cursor.execute(f'COPY FROM DATABASE "{self._catalog}" TO {alias}')
            finally:
                cursor.execute(f"DETACH {alias}")
            os.replace(tmp, target)
        finally:
            cursor.close()
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
        return target


@dataclass(slots=True)
class _FlushRequest:
    done: threading.Event
    error: BaseException | None = None


class HistoryWriter:
    """Takes rows from the engine in O(1) and writes them in batches on its own thread.

    Queues are unbounded `deque`s: a submit is an append (plus, once a batch is full, setting
    an event), never waits for the database and never drops. We prefer memory growth (visible
    in `pending`) to losing fills if the disk stalls; nothing is dropped
    except a batch the store rejects as invalid, which is logged and counted in `rejected`
    (rows are validated when built, so this needs amounts beyond the store's exact range). A
    batch that fails for any other reason (disk full, I/O) stays queued and is retried."""

    def __init__(
        self, store: HistoryStore, *, max_batch: int = 5000, flush_interval: float = 0.2
    ) -> None:
        if max_batch < 1:
            raise ValidationError("max_batch", "must be at least 1")
        if not flush_interval > 0:
            raise ValidationError("flush_interval", "must be positive")
        self._store = store
        self._max_batch = max_batch
        self._interval = flush_interval
        self._trades: deque[TradeRow] = deque()
        self._orders: deque[OrderRow] = deque()
        self._events: deque[OrderEventRow] = deque()
        self._candles: deque[CandleRow] = deque()
        self._wake = threading.Event()
        self._flushes: deque[_FlushRequest] = deque()
        self._drain_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._in_flight = 0
        self.rejected = 0
        self.last_error: BaseException | None = None

    # -- submitting (the engine's side: O(1), never blocks) -------------------------------
    def submit_trade(self, row: TradeRow) -> None:
        self._trades.append(row)
        if len(self._trades) >= self._max_batch:
            self._wake.set()

    def submit_order(self, row: OrderRow) -> None:
        self._orders.append(row)
        if len(self._orders) >= self._max_batch:
            self._wake.set()

    def submit_order_event(self, row: OrderEventRow) -> None:
        self._events.append(row)
        if len(self._events) >= self._max_batch:
            self._wake.set()

    def submit_candles(self, rows: Iterable[CandleRow]) -> None:
        self._candles.extend(rows)
        if len(self._candles) >= self._max_batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Rows submitted but not yet written (queued or being written)."""
        queued = len(self._trades) + len(self._orders) + len(self._events) + len(self._candles)
        return queued + self._in_flight

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after writing everything queued so far."""
        thread = self._thread
        if thread is not None:
            self._stopping = True
            self._wake.set()
            thread.join()
            self._thread = None
        self._drain()

    def flush(self) -> None:
        """Block until everything submitted before this call is written; raise if a write
        failed (the rows stay queued for the next attempt)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._drain()
            return
        request = _FlushRequest(threading.Event())
        self._flushes.append(request)
        self._wake.set()
        while not request.done.wait(self._interval):
            if not thread.is_alive():  # stopped meanwhile: write what is left ourselves
                self._drain()
                return
        if request.error is not None:
            raise request.error

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            waiting = [self._flushes.popleft() for _ in range(len(self._flushes))]
            error: BaseException | None = None
            try:
                self._drain()
            except Exception as err:
                error = err
                log.exception("history write failed; rows stay queued and will be retried")
            for request in waiting:
                request.error = error
                request.done.set()
            if self._stopping and (error is not None or not self.pending):
                return

    def _drain(self) -> None:
        """Write everything queued, batch by batch (one drainer at a time)."""
        with self._drain_lock:
            store = self._store
            while len(self._trades) + len(self._orders) + len(self._events) + len(self._candles):
                self._write(self._orders, store.append_orders)
                self._write(self._events, store.append_order_events)
                self._write(self._trades, store.append_trades)
                self._write(self._candles, store.append_candles)

    def _write(self, queue: deque[_Row], write: Callable[[list[_Row]], None]) -> None:
        while queue:
            batch = [queue.popleft() for _ in range(min(len(queue), self._max_batch))]
            self._in_flight = len(batch)
            try:
                write(batch)
            except ValidationError as err:
                self.rejected += len(batch)
                self.last_error = err
                log.error("history rejected %d rows: %s", len(batch), err.message)
            except BaseException as err:
                queue.extendleft(reversed(batch))
                self.last_error = err
                raise
            finally:
                self._in_flight = 0
