"""Symbol-search latency over a broker-sized master (target: p99 <= 2 ms at 100,000+ rows).

The master is the sample master of every fortnight across a year and a half, merged: a year of
NIFTY and SENSEX weeklies, eighteen monthly series of every index and NIFTY 50 stock, each with
its full strike window. Queries are the mix users type: prefixes, option queries of several
words, company names, typos, with and without an exchange or type filter.

    python -m bench.bench_search [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date, timedelta

from openalgo_lab.domain.enums import Exchange, InstrumentType
from openalgo_lab.domain.models import Instrument
from openalgo_lab.instruments.master import MasterContract
from openalgo_lab.instruments.sample import build_sample_master

START = date(2026, 11, 24)
SNAPSHOTS = 40  # fortnightly masters merged into one
QUERIES: tuple[tuple[str, Exchange | None, InstrumentType | None], ...] = (
    ("NIFTY", None, None),
    ("nifty", Exchange.NFO, None),
    ("NIFTY 26000 DEC CE", None, None),
    ("nifty 25500 pe", Exchange.NFO, None),
    ("NIFTY01DEC2626000CE", None, None),
    ("NIFTY29DEC26", Exchange.NFO, None),
    ("BANKNIFTY FUT", None, None),
    ("banknifty 60000 jan pe", Exchange.NFO, None),
    ("SENSEX 85000 CE", Exchange.BFO, None),
    ("sensex", None, InstrumentType.FUT),
    ("reliance", None, None),
    ("RELIANCE", Exchange.NSE, None),
    ("RELAINCE", None, None),
    ("bajaj auto", None, None),
    ("M&M", Exchange.NSE, None),
    ("hdfc bank", None, None),
    ("HDFC", None, InstrumentType.EQ),
    ("tata stel", None, None),
    ("INFOSIS", None, None),
    ("icici 1400 ce", Exchange.NFO, None),
    ("SBIN FUT", Exchange.NFO, None),
    ("kotak", Exchange.BSE, None),
    ("nifty it", Exchange.NSE_INDEX, None),
    ("B", None, None),
)


def build_master() -> MasterContract:
    merged: dict[tuple[Exchange, str], Instrument] = {}
    for n in range(SNAPSHOTS):
        for inst in build_sample_master(START + timedelta(days=14 * n)):
            merged.setdefault(inst.key, inst)
    return MasterContract(merged.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="passes over the query mix")
    args = parser.parse_args()

    started = time.perf_counter()
    master = build_master()
    built = time.perf_counter() - started
    for query, exchange, kind in QUERIES:  # warm-up
        master.search(query, exchange, kind)

    samples: list[float] = []
    for _ in range(args.rounds):
        for query, exchange, kind in QUERIES:
            t0 = time.perf_counter_ns()
            master.search(query, exchange, kind)
            samples.append((time.perf_counter_ns() - t0) / 1e6)

    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(f"instruments  {len(master):,} (built and indexed in {built:.1f} s)")
    print(f"queries      {len(samples):,} ({len(QUERIES)} distinct x {args.rounds} rounds)")
    print(f"p50 ms       {statistics.median(samples):.3f}")
    print(f"p99 ms       {p99:.3f}")
    print(f"max ms       {samples[-1]:.3f}")


if __name__ == "__main__":
    main()
