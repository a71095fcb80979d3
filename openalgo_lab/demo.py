"""Seed a data directory with a realistic history of paper trades.

Everything goes through the engine, as a strategy's requests would: the demo runs an engine on
a manual clock over the last few trading days, minute by minute through each session, and
three strategies trade on the sandbox as the simulated market moves:

* `orb` (opening-range breakout, MIS): after 09:30, buys a stock that breaks its 15-minute
  high with a stop at the range low; the 15:15 square-off closes what is left;
* `straddle` (NRML): sells the at-the-money NIFTY straddle of the monthly expiry at 09:45
  and buys it back at 15:00;
* `swing` (CNC): buys a few large caps on the first day and sells them on the last, so
  delivery holdings, T+1 settlement and delivery charges appear in the history.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from openalgo_lab.domain.calendar import IST, MarketCalendar, MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.domain.enums import Exchange
from openalgo_lab.engine.engine import Engine
from openalgo_lab.engine.settings import EngineSettings
from openalgo_lab.progress import progress_bar

ORB_SYMBOLS = ("RELIANCE", "HDFCBANK", "INFY", "ICICIBANK", "TCS", "SBIN")
SWING_SYMBOLS = ("ITC", "LT", "BHARTIARTL")
MAX_DAYS = 30  # the CLI offers 1..30: a month of minute-by-minute sessions


@dataclass
class DemoReport:
    days: list[date] = field(default_factory=list)
    orders: int = 0
    trades: int = 0
    errors: list[str] = field(default_factory=list)


def trading_days_before(today: date, count: int) -> list[date]:
    calendar = MarketCalendar(hours=MarketHours.EXCHANGE)
    days: list[date] = []
    day = today
    while len(days) < count:
        day = calendar.previous_trading_day(Exchange.NSE, day)
        days.append(day)
    return sorted(days)


def run_demo(
    data_dir: Path,
    *,
    days: int = 5,
    seed: int = 0,
    today: date | None = None,
    progress: bool | None = None,
) -> DemoReport:
    """Trade `days` sessions before `today` (default: today in IST) into `data_dir`.

    A bar counts the days (`openalgo_lab.progress`: `True` shows it, `False` hides it, `None`
    shows it in a notebook or a terminal). A fixed `today` and `seed` give the same history
    every time, which is what the tutorials rely on."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}, got {days}")
    work = _run(data_dir, days, seed, today, progress)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # a script or the CLI: no loop yet
        return asyncio.run(work)
    # A notebook cell already runs inside the kernel's event loop, where asyncio.run() is
    # refused: run the demo on its own loop in a worker thread and wait for it.
    with ThreadPoolExecutor(1, thread_name_prefix="openalgo-lab-demo") as pool:
        return pool.submit(asyncio.run, work).result()


async def _run(
    data_dir: Path,
    n_days: int,
    seed: int,
    today: date | None,
    progress: bool | None,
) -> DemoReport:
    today = today or datetime.now(IST).date()
    schedule = trading_days_before(today, n_days)
    clock = ManualClock(datetime.combine(schedule[0], time(9, 15), tzinfo=IST))
    settings = EngineSettings(data_dir=data_dir, market_hours=MarketHours.EXCHANGE, seed=seed)
    # the master of the first demo day lists every contract the demo trades
    engine = Engine(settings, clock=clock)
    report = DemoReport(days=schedule)
    await engine.start(background=False)
    try:
        with progress_bar(
            total=len(schedule), desc="seeding paper trades", unit="day", enabled=progress
        ) as bar:
            for n, day in enumerate(schedule):
                await _trade_day(
                    engine, clock, day, first=n == 0, last=n == len(schedule) - 1, report=report
                )
                bar.set_postfix(day=day.isoformat(), orders=report.orders, fills=report.trades)
                bar.update()
        if engine.history is not None:
            engine.history.flush()
    finally:
        await engine.stop()
    return report


async def _call(engine: Engine, report: DemoReport, name: str, payload: dict[str, Any]) -> Any:
    reply = await engine.call(name, payload)
    if not reply.ok:
        report.errors.append(f"{name}: {reply.body.get('message')}")
        return None
    if "orderid" in reply.body:
        report.orders += 1
    return reply.body


async def _trade_day(
    engine: Engine,
    clock: ManualClock,
    day: date,
    *,
    first: bool,
    last: bool,
    report: DemoReport,
) -> None:
    exchange = engine.account().sandbox.exchange
    minute = datetime.combine(day, time(9, 15), tzinfo=IST)
    close = datetime.combine(day, time(15, 30), tzinfo=IST)
    ranges: dict[str, tuple[float, float]] = {}
    entered: set[str] = set()
    straddle: list[tuple[str, int]] = []
    while minute <= close:
        clock.set(minute)
        exchange.step()
        hhmm = minute.strftime("%H:%M")
        if first and hhmm == "09:20":
            for symbol in SWING_SYMBOLS:
                await _call(
                    engine,
                    report,
                    "placeorder",
                    {
                        "strategy": "swing",
                        "symbol": symbol,
                        "exchange": "NSE",
                        "action": "BUY",
                        "quantity": "20",
                        "pricetype": "MARKET",
                        "product": "CNC",
                    },
                )
        if last and hhmm == "14:30":
            for symbol in SWING_SYMBOLS:
                await _call(
                    engine,
                    report,
                    "placeorder",
                    {
                        "strategy": "swing",
                        "symbol": symbol,
                        "exchange": "NSE",
                        "action": "SELL",
                        "quantity": "20",
                        "pricetype": "MARKET",
                        "product": "CNC",
                    },
                )
        if hhmm == "09:30":
            start = minute - timedelta(minutes=15)
            for symbol in ORB_SYMBOLS:
                body = await _call(
                    engine,
                    report,
                    "history",
                    {
                        "symbol": symbol,
                        "exchange": "NSE",
                        "interval": "1m",
                        "start_date": day.isoformat(),
                        "end_date": day.isoformat(),
                    },
                )
                bars = [
                    b for b in (body or {}).get("data", []) if b["timestamp"] < minute.timestamp()
                ]
                bars = [b for b in bars if b["timestamp"] >= start.timestamp()]
                if bars:
                    ranges[symbol] = (max(b["high"] for b in bars), min(b["low"] for b in bars))
        if "09:30" < hhmm < "14:30" and minute.minute % 5 == 0:
            for symbol, (high, low) in ranges.items():
                if symbol in entered:
                    continue
                quote = await _call(engine, report, "quotes", {"symbol": symbol, "exchange": "NSE"})
                if quote and quote["data"]["ltp"] > high:
                    entered.add(symbol)
                    await _call(
                        engine,
                        report,
                        "placesmartorder",
                        {
                            "strategy": "orb",
                            "symbol": symbol,
                            "exchange": "NSE",
                            "action": "BUY",
                            "quantity": "0",
                            "position_size": "25",
                            "pricetype": "MARKET",
                            "product": "MIS",
                        },
                    )
                    stop = Decimal(str(low)).quantize(Decimal("0.05"))
                    await _call(
                        engine,
                        report,
                        "placeorder",
                        {
                            "strategy": "orb",
                            "symbol": symbol,
                            "exchange": "NSE",
                            "action": "SELL",
                            "quantity": "25",
                            "pricetype": "SL-M",
                            "trigger_price": str(stop),
                            "product": "MIS",
                        },
                    )
        if hhmm == "09:45":
            for option_type in ("CE", "PE"):
                body = await _call(
                    engine,
                    report,
                    "optionsorder",
                    {
                        "strategy": "straddle",
                        "underlying": "NIFTY",
                        "exchange": "NSE_INDEX",
                        "expiry_date": _monthly(engine, day),
                        "offset": "ATM",
                        "option_type": option_type,
                        "action": "SELL",
                        "quantity": "65",
                        "pricetype": "MARKET",
                        "product": "NRML",
                    },
                )
                if body:
                    straddle.append((body["symbol"], 65))
        if hhmm == "15:00":
            for symbol, qty in straddle:
                await _call(
                    engine,
                    report,
                    "placeorder",
                    {
                        "strategy": "straddle",
                        "symbol": symbol,
                        "exchange": "NFO",
                        "action": "BUY",
                        "quantity": str(qty),
                        "pricetype": "MARKET",
                        "product": "NRML",
                    },
                )
        minute += timedelta(minutes=1)
    report.trades += len(exchange.trades())


def _monthly(engine: Engine, day: date) -> str:
    """The NIFTY monthly expiry after `day`'s month end (liquid, listed for the whole demo)."""
    expiries = engine.calendar.monthly_expiries(Exchange.NFO, day, 2)
    return expiries[-1].strftime("%d%b%y").upper()
