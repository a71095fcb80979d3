"""The history database's schema, and the SQL that both the store and analytics read it with.

Numeric types: every stored price and amount is DECIMAL(18,4) — exact to four places (enough
for ₹0.0025 currency-futures ticks and paise charges) up to ±₹10^14, and held as a 64-bit
integer, which keeps both writes and scans fast (the writer refuses a batch whose running
totals would leave that range; see `history_fifo`). Sums in queries widen to DECIMAL(38,4),
DuckDB's 128-bit decimal, so aggregates never overflow or round. Instants are TIMESTAMP
holding UTC; `day` is the IST trading day (IST has no daylight saving: always UTC+05:30).

Trades are split into `books` (one row per FIFO position key: account, strategy, exchange,
symbol, product, mode) and `fills`, which refer to a book by a small integer: ingest moves
fewer strings and analytics group by an integer. The `trades` view joins them back for
anyone writing their own SQL.

Each fill also carries its FIFO results, computed by the single writer in the transaction
that stores it (so a snapshot is always self-consistent): `side_lo` (units of its side bought
or sold in the book before it — all that round-trip matching needs), `realised` (gross FIFO
P&L of the units it closed) and running totals of net realised P&L (`realised - charges`),
per account and overall, with their running peaks (so drawdown is one scan, not a window).
Nothing else is precomputed: grouping 10 million fills by strategy and IST day takes about
0.1 s, and every extra table written per batch costs ingest more than it saves analysis.
"""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = "1"

DDL: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    """CREATE TABLE IF NOT EXISTS books (
        book INTEGER PRIMARY KEY,
        account VARCHAR NOT NULL, strategy VARCHAR NOT NULL, exchange VARCHAR NOT NULL,
        symbol VARCHAR NOT NULL, product VARCHAR NOT NULL, mode VARCHAR NOT NULL,
        UNIQUE (account, strategy, exchange, symbol, product, mode))""",
    """CREATE TABLE IF NOT EXISTS fills (
        seq BIGINT NOT NULL, book INTEGER NOT NULL,
        tradeid VARCHAR NOT NULL, orderid VARCHAR NOT NULL,
        is_buy BOOLEAN NOT NULL, quantity BIGINT NOT NULL,
        price DECIMAL(18,4) NOT NULL, charges DECIMAL(18,4) NOT NULL,
        ts TIMESTAMP NOT NULL, side_lo BIGINT NOT NULL, realised DECIMAL(18,4) NOT NULL,
        account_total DECIMAL(18,4) NOT NULL, account_peak DECIMAL(18,4) NOT NULL,
        overall_total DECIMAL(18,4) NOT NULL, overall_peak DECIMAL(18,4) NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS orders (
        account VARCHAR NOT NULL, orderid VARCHAR NOT NULL, strategy VARCHAR NOT NULL,
        symbol VARCHAR NOT NULL, exchange VARCHAR NOT NULL, action VARCHAR NOT NULL,
        quantity BIGINT NOT NULL, pricetype VARCHAR NOT NULL, product VARCHAR NOT NULL,
        price DECIMAL(18,4) NOT NULL, trigger_price DECIMAL(18,4) NOT NULL,
        status VARCHAR NOT NULL, filled_quantity BIGINT NOT NULL,
        average_price DECIMAL(18,4) NOT NULL,
        placed_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL,
        rejection_reason VARCHAR NOT NULL, mode VARCHAR NOT NULL, seq BIGINT NOT NULL,
        PRIMARY KEY (account, orderid))""",
    """CREATE TABLE IF NOT EXISTS order_events (
        seq BIGINT NOT NULL, account VARCHAR NOT NULL, orderid VARCHAR NOT NULL,
        status VARCHAR NOT NULL, filled_quantity BIGINT NOT NULL, ts TIMESTAMP NOT NULL,
        detail VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS candles (
        exchange VARCHAR NOT NULL, symbol VARCHAR NOT NULL, interval VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        open DECIMAL(18,4) NOT NULL, high DECIMAL(18,4) NOT NULL,
        low DECIMAL(18,4) NOT NULL, close DECIMAL(18,4) NOT NULL,
        volume BIGINT NOT NULL, oi BIGINT NOT NULL,
        PRIMARY KEY (exchange, symbol, interval, ts))""",
    """CREATE TABLE IF NOT EXISTS requests (
        seq BIGINT NOT NULL, ts TIMESTAMP NOT NULL, method VARCHAR NOT NULL,
        route VARCHAR NOT NULL, status INTEGER NOT NULL, duration_ms DOUBLE NOT NULL,
        parse_ms DOUBLE NOT NULL, engine_ms DOUBLE NOT NULL, risk_ms DOUBLE NOT NULL,
        journal_ms DOUBLE NOT NULL, broker_ms DOUBLE NOT NULL,
        key_id VARCHAR NOT NULL, client VARCHAR NOT NULL)""",
    """CREATE OR REPLACE VIEW trades AS
        SELECT f.seq, b.account, f.tradeid, f.orderid, b.strategy, b.symbol, b.exchange,
               b.product, CASE WHEN f.is_buy THEN 'BUY' ELSE 'SELL' END AS action,
               f.quantity, f.price, f.charges, f.ts, b.mode,
               CAST(f.ts + INTERVAL 330 MINUTE AS DATE) AS day, f.realised
        FROM fills f JOIN books b USING (book)""",
)

BOOK_TOTALS: Final = """
    SELECT book,
           coalesce(max(side_lo + quantity) FILTER (WHERE is_buy), 0) AS bought,
           coalesce(max(side_lo + quantity) FILTER (WHERE NOT is_buy), 0) AS sold
    FROM fills GROUP BY book"""
"""Units bought and sold per book: the last fill of a side ends at that side's total."""

OPEN_LOTS: Final = f"""
    SELECT f.*, least(f.quantity, f.side_lo + f.quantity - least(t.bought, t.sold))
               AS open_quantity
    FROM fills f JOIN ({BOOK_TOTALS}) t USING (book)
    WHERE f.side_lo + f.quantity > least(t.bought, t.sold)"""
"""Fills (or their tails) not yet matched: FIFO keeps the newest units of the open side."""

EQUITY_STATE: Final = """
    SELECT b.account, arg_max(f.account_total, f.seq) AS total,
           arg_max(f.account_peak, f.seq) AS peak
    FROM fills f JOIN books b USING (book) GROUP BY b.account"""

OVERALL_STATE: Final = "SELECT arg_max(overall_total, seq), arg_max(overall_peak, seq) FROM fills"
