"""Simulated-market throughput: can `SimulatedMarket.depth()` feed a busy sandbox on one core?

The target is 1,000 instruments (equities, indices, futures, options) each ticking 10 times a
simulated second. The run steps a simulated clock in 100 ms steps from the NSE open and asks
for every instrument's depth at every step, exactly what the sandbox exchange does; it then
compares wall time with simulated time. The first step (building each instrument's day) is
timed separately: it is paid once per instrument per day.

    python -m bench.bench_market [--seconds N] [--instruments N] [--rate TICKS_PER_SECOND]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from openalgo_lab.brokers.sandbox.market import SimulatedMarket
from openalgo_lab.domain.calendar import IST, MarketCalendar
from openalgo_lab.domain.enums import Exchange, InstrumentType
from openalgo_lab.domain.models import Instrument
from openalgo_lab.domain.symbols import format_expiry

D = Decimal
DAY = date(2026, 11, 25)
NIFTY50 = [
    "ADANIENT",
    "ADANIPORTS",
    "APOLLOHOSP",
    "ASIANPAINT",
    "AXISBANK",
    "BAJAJ-AUTO",
    "BAJFINANCE",
    "BAJAJFINSV",
    "BEL",
    "BHARTIARTL",
    "CIPLA",
    "COALINDIA",
    "DRREDDY",
    "EICHERMOT",
    "ETERNAL",
    "GRASIM",
    "HCLTECH",
    "HDFCBANK",
    "HDFCLIFE",
    "HINDALCO",
    "HINDUNILVR",
    "ICICIBANK",
    "INDIGO",
    "INFY",
    "ITC",
    "JIOFIN",
    "JSWSTEEL",
    "KOTAKBANK",
    "LT",
    "M&M",
    "MARUTI",
    "MAXHEALTH",
    "NESTLEIND",
    "NTPC",
    "ONGC",
    "POWERGRID",
    "RELIANCE",
    "SBILIFE",
    "SBIN",
    "SHRIRAMFIN",
    "SUNPHARMA",
    "TATACONSUM",
    "TATASTEEL",
    "TCS",
    "TECHM",
    "TITAN",
    "TMPV",
    "TRENT",
    "ULTRACEMCO",
    "WIPRO",
]
INDICES = {
    ("NIFTY", Exchange.NSE_INDEX): (D(26000), 50, 65, Exchange.NFO),
    ("BANKNIFTY", Exchange.NSE_INDEX): (D(59000), 100, 30, Exchange.NFO),
    ("SENSEX", Exchange.BSE_INDEX): (D(85000), 100, 20, Exchange.BFO),
    ("FINNIFTY", Exchange.NSE_INDEX): (D(27500), 50, 60, Exchange.NFO),
}


def _tick_for(price: Decimal) -> Decimal:
    return D("0.01") if price < 250 else D("0.05")


def _equity_price(i: int) -> Decimal:
    # A deterministic spread of prices from about 120 to 6,000 rupees.
    return D(120 + (i * 7919) % 5900)


def _option(
    name: str,
    under_ex: Exchange,
    ex: Exchange,
    expiry: date,
    strike: int,
    kind: str,
    lot: int,
    tick: Decimal,
) -> Instrument:
    sym = f"{name}{format_expiry(expiry)}{strike}{kind}"
    return Instrument(
        sym,
        ex,
        name,
        InstrumentType(kind),
        sym,
        tick,
        lotsize=lot,
        expiry=expiry,
        strike=D(strike),
        underlying=name,
        underlying_exchange=under_ex,
    )


def _future(
    name: str, under_ex: Exchange, ex: Exchange, expiry: date, lot: int, tick: Decimal
) -> Instrument:
    sym = f"{name}{format_expiry(expiry)}FUT"
    return Instrument(
        sym,
        ex,
        name,
        InstrumentType.FUT,
        sym,
        tick,
        lotsize=lot,
        expiry=expiry,
        underlying=name,
        underlying_exchange=under_ex,
    )


def universe(count: int) -> tuple[dict[tuple[Exchange, str], Decimal], list[Instrument]]:
    """Reference prices and a master-contract-like mix of `count` instruments."""
    cal = MarketCalendar()
    refs: dict[tuple[Exchange, str], Decimal] = {(Exchange.NSE_INDEX, "INDIAVIX"): D("12.5")}
    insts: list[Instrument] = [
        Instrument(
            "INDIAVIX", Exchange.NSE_INDEX, "INDIAVIX", InstrumentType.INDEX, "v", D("0.0025")
        )
    ]
    options: list[Instrument] = []
    nse_monthly = cal.monthly_expiries(Exchange.NFO, DAY, 3)
    bse_monthly = cal.monthly_expiries(Exchange.BFO, DAY, 3)
    for (name, ex), (price, step, lot, fo) in INDICES.items():
        refs[(ex, name)] = price
        insts.append(Instrument(name, ex, name, InstrumentType.INDEX, name, D("0.05")))
        monthlies = nse_monthly if fo is Exchange.NFO else bse_monthly
        insts.extend(_future(name, ex, fo, e, lot, D("0.05")) for e in monthlies)
        expiries = [monthlies[0]]
        if name in ("NIFTY", "SENSEX"):
            expiries = [*cal.weekly_expiries(fo, DAY, 2), monthlies[0]]
        atm = int(price) // step * step
        for e in expiries:
            for k in range(-20, 21):
                for kind in ("CE", "PE"):
                    options.append(_option(name, ex, fo, e, atm + k * step, kind, lot, D("0.05")))
    for i, name in enumerate(NIFTY50):
        price = _equity_price(i)
        tick = _tick_for(price)
        refs[(Exchange.NSE, name)] = price
        insts.append(Instrument(name, Exchange.NSE, name, InstrumentType.EQ, name, tick))
        lot = max(1, int(500_000 // price))
        insts.append(_future(name, Exchange.NSE, Exchange.NFO, nse_monthly[0], lot, tick))
        step = max(1, int(price) // 50)
        atm = int(price) // step * step
        for k in range(-3, 4):
            for kind in ("CE", "PE"):
                options.append(
                    _option(
                        name,
                        Exchange.NSE,
                        Exchange.NFO,
                        nse_monthly[0],
                        atm + k * step,
                        kind,
                        lot,
                        tick,
                    )
                )
    return refs, (insts + options)[:count]


def run(seconds: int, count: int, rate: int) -> None:
    refs, insts = universe(count)
    market = SimulatedMarket(refs, seed=7)
    start = datetime.combine(DAY, datetime.min.time().replace(hour=9, minute=15), IST)
    start = start.astimezone(UTC)
    step = timedelta(seconds=1 / rate)
    mix = Counter(i.instrumenttype.value for i in insts)

    t0 = time.perf_counter()
    for inst in insts:
        market.depth(inst, start)
    warm = time.perf_counter() - t0

    steps = seconds * rate
    t0 = time.perf_counter()
    for n in range(1, steps + 1):
        at = start + step * n
        for inst in insts:
            market.depth(inst, at)
    wall = time.perf_counter() - t0

    ticks = steps * len(insts)
    needed = len(insts) * rate
    achieved = ticks / wall
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(mix.items()))
    print(f"instruments        {len(insts)}  ({kinds})")
    print(f"first tick of day  {warm:.2f} s for all instruments (once per instrument per day)")
    print(f"simulated          {seconds} s at {rate} ticks/s each = {ticks:,} depth() calls")
    print(f"wall               {wall:.2f} s")
    print(f"throughput         {achieved:,.0f} ticks/s, {1e6 * wall / ticks:.1f} µs per tick")
    print(f"needed             {needed:,} ticks/s")
    verdict = "yes" if achieved >= needed else "NO"
    print(f"keeps up           {verdict} (ratio {achieved / needed:.2f}x real time)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=120, help="simulated seconds")
    parser.add_argument("--instruments", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=10, help="ticks per second per instrument")
    args = parser.parse_args()
    run(args.seconds, args.instruments, args.rate)


if __name__ == "__main__":
    main()
