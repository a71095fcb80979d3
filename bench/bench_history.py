"""History ingest and analytics speed. Targets: ingest >= 500,000 trades/s in batches; P&L by
strategy and day plus maximum drawdown over 10 million trades <= 1 s.

* **ingest**: `HistoryStore.append_trades` with ready `TradeRow`s (as the engine hands them
  over) into a fresh DuckDB file, at several batch sizes, and end to end through
  `HistoryWriter` (submit every row, then flush) at its default batch of 5,000. Each write
  includes FIFO matching and the running totals stored with every fill. Building the rows
  (validation, on the engine's side when a fill happens) is timed separately.
* **analytics**: 10 million generated fills (1,050 books, 250 days, longs, shorts and
  reversals) bulk-loaded with `import_trades`, then `pnl_by(strategy, day)`, `max_drawdown`
  per fill and per day, the daily equity curve, and round trips over one account.

    python -m bench.bench_history [--trades N] [--ingest N]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from openalgo_lab.analytics import equity_curve, max_drawdown, pnl_by, round_trips, trade_stats
from openalgo_lab.store.history import HistoryStore, HistoryWriter, TradeRow

START = datetime(2025, 1, 1, 3, 45, tzinfo=UTC)  # 09:15 IST
SESSION_SECONDS = 22_500  # 09:15 to 15:30
STRATEGIES = [f"strategy{i:02d}" for i in range(20)]
SYMBOLS = [f"SYM{i:02d}" for i in range(50)]
BOOKS = [("acc1", s, y) for s in STRATEGIES for y in SYMBOLS] + [
    ("acc2", "scalper", y) for y in SYMBOLS
]
CAPITAL = Decimal(1_000_000_000)


def make_rows(n: int, seed: int = 1) -> list[TradeRow]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        account, strategy, symbol = BOOKS[rng.randrange(len(BOOKS))]
        price = Decimal(rng.randint(2_000, 40_000)) * Decimal("0.05")
        rows.append(
            TradeRow(
                account=account,
                tradeid=f"T{i}",
                orderid=f"O{i // 2}",
                strategy=strategy,
                symbol=symbol,
                exchange="NSE",
                product="MIS",
                action="BUY" if rng.random() < 0.5 else "SELL",
                quantity=rng.randint(1, 100),
                price=price,
                charges=Decimal(rng.randint(0, 2_000)) / 100,
                ts=START + timedelta(milliseconds=i),
                mode="analyze",
            )
        )
    return rows


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_ingest(n: int, workdir: Path) -> None:
    started = time.perf_counter()
    rows = make_rows(n)
    built = time.perf_counter() - started
    print(f"ingest ({n:,} fills, FIFO-matched, into a DuckDB file)")
    print(f"  building TradeRows (engine side)   {n / built:12,.0f} rows/s")
    for batch in (5_000, 50_000, 250_000):
        with HistoryStore(workdir / f"ingest-{batch}.duckdb") as store:
            elapsed = timed(
                lambda store=store, batch=batch: [
                    store.append_trades(rows[i : i + batch]) for i in range(0, n, batch)
                ]
            )
        print(f"  append_trades, batches of {batch:>7,} {n / elapsed:12,.0f} trades/s")
    with HistoryStore(workdir / "ingest-writer.duckdb") as store:
        writer = HistoryWriter(store)
        writer.start()

        def submit_all() -> None:
            for row in rows:
                writer.submit_trade(row)
            writer.flush()

        elapsed = timed(submit_all)
        writer.stop()
    print(f"  HistoryWriter (max_batch 5,000)    {n / elapsed:12,.0f} trades/s")


def frame_for(lo: int, hi: int, rng: np.random.Generator) -> pd.DataFrame:
    """Fills lo..hi of a 250-day history: 40,000 a day spread over the session."""
    index = np.arange(lo, hi)
    per_day = 40_000
    day, slot = index // per_day, index % per_day
    seconds = day * 86_400 + slot * SESSION_SECONDS // per_day
    book = rng.integers(0, len(BOOKS), hi - lo)
    accounts = pd.Categorical.from_codes((book >= 1_000).astype(np.int8), ["acc1", "acc2"])
    strategies = np.array([b[1] for b in BOOKS], dtype=object)[book]
    symbols = np.array([b[2] for b in BOOKS], dtype=object)[book]
    base = 400 + (book % 50) * 700  # ticks of 0.05: SYM00 at 20, SYM49 at ~1,735
    price = (base + rng.integers(-150, 150, hi - lo)) * 0.05
    quantity = rng.integers(1, 101, hi - lo)
    return pd.DataFrame(
        {
            "account": accounts,
            "tradeid": [f"T{i}" for i in index],
            "orderid": [f"O{i}" for i in index],
            "strategy": pd.Categorical(strategies),
            "symbol": pd.Categorical(symbols),
            "exchange": pd.Categorical.from_codes(np.zeros(hi - lo, np.int8), ["NSE"]),
            "product": pd.Categorical.from_codes(np.zeros(hi - lo, np.int8), ["MIS"]),
            "action": pd.Categorical.from_codes(rng.integers(0, 2, hi - lo), ["BUY", "SELL"]),
            "quantity": quantity,
            "price": np.round(price, 2),
            "charges": np.round(price * quantity * 0.0003, 2),
            "ts": pd.to_datetime(START) + pd.to_timedelta(seconds, unit="s"),
            "mode": pd.Categorical.from_codes(np.zeros(hi - lo, np.int8), ["analyze"]),
        }
    )


def best_of(runs: int, action: Callable[[], object]) -> tuple[float, float]:
    times = [timed(action) for _ in range(runs)]
    return times[0], min(times)


def bench_analytics(total: int, workdir: Path) -> None:
    print(f"analytics ({total:,} generated fills, {len(BOOKS):,} books, 250 IST days)")
    rng = np.random.default_rng(2)
    with HistoryStore(workdir / "analytics.duckdb") as store:
        started = time.perf_counter()
        generating = 0.0
        for lo in range(0, total, 500_000):
            begun = time.perf_counter()
            frame = frame_for(lo, min(lo + 500_000, total), rng)
            generating += time.perf_counter() - begun
            store.import_trades(frame)
        loaded = time.perf_counter() - started - generating
        print(f"  import_trades (bulk load)          {total / loaded:12,.0f} trades/s")

        def pnl() -> pd.DataFrame:
            return pnl_by(store, ("strategy", "day"))

        def drawdown() -> object:
            return max_drawdown(store, starting_capital=CAPITAL)

        def both() -> object:
            return pnl(), drawdown()

        result = pnl()
        for label, action in (
            ("pnl_by(strategy, day)", pnl),
            ("max_drawdown (per fill)", drawdown),
            ("pnl_by + max_drawdown", both),
            (
                "max_drawdown (per day)",
                lambda: max_drawdown(store, starting_capital=CAPITAL, freq="day"),
            ),
            (
                "equity_curve (per day)",
                lambda: equity_curve(store, starting_capital=CAPITAL, freq="day"),
            ),
        ):
            first, best = best_of(3, action)
            print(f"  {label:<34} {best:8.3f} s  (first run {first:.3f} s)")
        print(f"    ({len(result):,} rows; worst drawdown {drawdown()})")
        n_acc2 = int(store.query("SELECT count(*) AS n FROM trades WHERE account = 'acc2'").n[0])
        for label, action in (
            ("round_trips", lambda: round_trips(store, account="acc2")),
            ("trade_stats", lambda: trade_stats(store, account="acc2")),
        ):
            title = f"{label} (acc2, {n_acc2:,} fills)"
            print(f"  {title:<34} {timed(action):8.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=10_000_000, help="fills for analytics")
    parser.add_argument("--ingest", type=int, default=500_000, help="fills for ingest")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        bench_ingest(args.ingest, Path(tmp))
        bench_analytics(args.trades, Path(tmp))


if __name__ == "__main__":
    main()
