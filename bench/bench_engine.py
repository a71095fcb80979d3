"""placeorder through the engine on the sandbox, journal included (SQLite on disk).

Each call is the whole path a REST request takes after parsing: validation, the journal's
"accepted" (committed), risk checks, the sandbox (matching and exact accounting), the journal's
"acknowledged", the event bus, the journal's fill transitions and the history writer's queue.

    python -m bench.bench_engine [--orders N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from openalgo_lab.domain.calendar import IST, MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.engine.engine import Engine
from openalgo_lab.engine.settings import EngineSettings

SYMBOLS = ("SBIN", "INFY", "RELIANCE", "ITC", "TCS", "LT", "HDFCBANK", "ICICIBANK")


async def run(n: int, data_dir: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 25, 10, 0, tzinfo=IST))
    engine = Engine(EngineSettings(data_dir=data_dir, market_hours=MarketHours.ALWAYS), clock=clock)
    await engine.start(background=False)
    try:
        latencies: list[float] = []
        failures = 0
        started = time.perf_counter()
        for i in range(n):
            if i % 100 == 0:  # the market moves on: a new tick every hundred orders
                clock.advance(timedelta(milliseconds=250))
            payload = {
                "strategy": "bench",
                "symbol": SYMBOLS[i % len(SYMBOLS)],
                "exchange": "NSE",
                "action": "BUY" if i % 2 else "SELL",
                "quantity": "1",
                "pricetype": "MARKET",
                "product": "MIS",
            }
            t0 = time.perf_counter()
            reply = await engine.call("placeorder", payload, idempotency_key=f"bench-{i}")
            latencies.append(time.perf_counter() - t0)
            failures += not reply.ok
        elapsed = time.perf_counter() - started
        assert engine.history is not None
        t0 = time.perf_counter()
        engine.history.flush()
        flush = time.perf_counter() - t0
    finally:
        await engine.stop()
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    print(f"orders           {n} ({failures} refused)")
    print(f"throughput       {n / elapsed:,.0f} orders/s")
    print(f"latency p50      {statistics.median(ms):.3f} ms")
    print(f"latency p99      {ms[int(len(ms) * 0.99) - 1]:.3f} ms")
    print(f"latency max      {ms[-1]:.3f} ms")
    print(f"history flush    {flush * 1000:.0f} ms after the run (written off the request path)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.orders, Path(tmp)))


if __name__ == "__main__":
    main()
