"""Kite's instrument dump (`GET /instruments`, a CSV) as our master contract.

Each Kite row becomes an `Instrument` with OpenAlgo's symbol, built by the domain grammar:

* cash (`segment` NSE/BSE): the tradingsymbol as it is (`SBIN`, `M&M`, `CDSL-BE`);
* indices (`segment` INDICES): OpenAlgo's fixed names (`NIFTY 50` -> `NIFTY`) on the index
  exchanges (NSE_INDEX, BSE_INDEX, MCX_INDEX; any other venue: GLOBAL_INDEX);
* futures: `NAME DDMMMYY FUT`; options: `NAME DDMMMYY STRIKE CE|PE`, from the row's name,
  expiry and strike (Kite's own tradingsymbol, e.g. `NIFTY2611326000CE`, stays in `brsymbol`).

The dump changes once a day, so it is cached on disk per day (`kite-instruments-YYYY-MM-DD.csv`
in the cache directory) and parsed from there on later starts. Rows that cannot be expressed
in OpenAlgo's grammar (a name with spaces, an unknown segment) are skipped and counted, never
fatal: a master with a few odd rows missing is still the master.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from openalgo_lab.brokers.zerodha import mapping
from openalgo_lab.domain.enums import Exchange, InstrumentType, OptionType
from openalgo_lab.domain.errors import BrokerError, NotFoundError, ValidationError
from openalgo_lab.domain.models import Instrument
from openalgo_lab.domain.money import ZERO
from openalgo_lab.domain.symbols import (
    format_future,
    format_option,
    format_strike,
    parse_symbol,
)
from openalgo_lab.instruments.master import MasterContract

log = logging.getLogger(__name__)

CSV_COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)
CACHE_PATTERN = "kite-instruments-{day}.csv"
INDEX_TICK = Decimal("0.05")
# Derivative venues and where their underlyings trade (index first, then the stock).
_UNDERLYING_VENUES: dict[Exchange, tuple[Exchange, Exchange]] = {
    Exchange.NFO: (Exchange.NSE_INDEX, Exchange.NSE),
    Exchange.BFO: (Exchange.BSE_INDEX, Exchange.BSE),
}
# Kite tradingsymbols of weekly and monthly contracts: NAME + YY + (MMM | M DD) + rest.
_KITE_EXPIRY_CODE = re.compile(r"\d{2}(?:[A-Z]{3}|[1-9OND]\d{2})")
_NAME = re.compile(r"[A-Z0-9&\-_.]+")


@dataclass
class ParseReport:
    """What became of the dump's rows: how many were kept, and why others were not."""

    rows: int = 0
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def parse_instruments(
    text: str,
    *,
    report: ParseReport | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Instrument]:
    """Kite's CSV as instruments with OpenAlgo symbols (see the module docstring).

    `progress(n)` is called as rows are read (every 10,000 and at the end)."""
    report = report if report is not None else ParseReport()
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise BrokerError(f"Kite's instrument dump lacks the columns {', '.join(missing)}")
    rows = list(reader)
    index_names: dict[Exchange, set[str]] = {}
    cash: dict[Exchange, set[str]] = {}
    out: list[Instrument] = []
    seen: set[tuple[Exchange, str]] = set()
    derivatives: list[dict[str, str]] = []
    done = 0
    # Cash and indices first: derivatives link to them as their underlyings.
    for row in rows:
        report.rows += 1
        done += 1
        if progress is not None and done % 10_000 == 0:
            progress(10_000)
        if row["instrument_type"].strip().upper() in ("FUT", "CE", "PE"):
            derivatives.append(row)
            continue
        inst = _spot(row, report)
        if inst is None:
            continue
        if inst.key in seen:
            report.skip("duplicate symbol")
            continue
        seen.add(inst.key)
        out.append(inst)
        target = index_names if inst.exchange.is_index else cash
        target.setdefault(inst.exchange, set()).add(inst.symbol)
    for row in derivatives:
        inst = _derivative(row, report, index_names, cash)
        if inst is None:
            continue
        if inst.key in seen:
            report.skip("duplicate symbol")
            continue
        seen.add(inst.key)
        out.append(inst)
    if progress is not None and done % 10_000:
        progress(done % 10_000)
    report.kept = len(out)
    return out


def _number(row: dict[str, str], column: str) -> Decimal:
    value = (row.get(column) or "").strip()
    if not value:
        return ZERO
    return Decimal(value)


def _common(row: dict[str, str], *, index: bool = False) -> tuple[str, str, Decimal, int]:
    token = row["instrument_token"].strip()
    if not token.isdigit():
        raise ValueError(f"bad instrument_token {token!r}")
    tick = _number(row, "tick_size")
    if tick <= 0 and index:
        tick = INDEX_TICK  # Kite lists indices with tick 0: they are quoted, never traded
    if tick <= 0:
        raise ValueError("no positive tick size")
    lot = int(_number(row, "lot_size")) or 1
    return token, row["tradingsymbol"].strip(), tick, lot


def _spot(row: dict[str, str], report: ParseReport) -> Instrument | None:
    segment = row["segment"].strip().upper()
    kite_exchange = row["exchange"].strip().upper()
    try:
        token, tradingsymbol, tick, lot = _common(row, index=segment == "INDICES")
    except (ValueError, InvalidOperation):
        report.skip("bad number")
        return None
    if segment == "INDICES":
        exchange = mapping.INDEX_EXCHANGE_FROM_KITE.get(kite_exchange, Exchange.GLOBAL_INDEX)
        symbol = mapping.index_symbol(tradingsymbol)
        kind = InstrumentType.INDEX
        lot = 1
    elif segment in ("NSE", "BSE") and kite_exchange in ("NSE", "BSE"):
        exchange = mapping.EXCHANGE_FROM_KITE[kite_exchange]
        symbol = tradingsymbol.upper()
        kind = InstrumentType.EQ
    else:
        report.skip(f"segment {segment or '(empty)'}")
        return None
    try:
        parse_symbol(symbol, exchange)
    except ValidationError:
        report.skip("symbol outside OpenAlgo's grammar")
        return None
    return Instrument(
        symbol=symbol,
        exchange=exchange,
        name=(row["name"].strip() or tradingsymbol).upper(),
        instrumenttype=kind,
        token=token,
        tick_size=tick,
        lotsize=lot,
        brsymbol=tradingsymbol,
        brexchange=kite_exchange,
    )


def derivative_name(tradingsymbol: str, kind: str, strike: Decimal) -> str:
    """The underlying's name when Kite's `name` column is empty (its published sample dump
    leaves it empty): the tradingsymbol without its expiry code and strike/type suffix."""
    suffix = "FUT" if kind == "FUT" else format_strike(strike) + kind
    stem = tradingsymbol[: -len(suffix)] if tradingsymbol.endswith(suffix) else ""
    if len(stem) > 5 and _KITE_EXPIRY_CODE.fullmatch(stem[-5:]):
        return stem[:-5]
    return ""


def _derivative(
    row: dict[str, str],
    report: ParseReport,
    index_names: dict[Exchange, set[str]],
    cash: dict[Exchange, set[str]],
) -> Instrument | None:
    kite_exchange = row["exchange"].strip().upper()
    exchange = mapping.EXCHANGE_FROM_KITE.get(kite_exchange)
    if exchange is None or not exchange.is_derivative:
        report.skip(f"exchange {kite_exchange or '(empty)'}")
        return None
    kind = row["instrument_type"].strip().upper()
    try:
        token, tradingsymbol, tick, lot = _common(row)
        strike = _number(row, "strike")
        expiry = mapping.expiry_date(row["expiry"])
    except (ValueError, InvalidOperation):
        report.skip("bad number")
        return None
    if expiry is None:
        report.skip("derivative without expiry")
        return None
    name = row["name"].strip().upper() or derivative_name(tradingsymbol, kind, strike)
    if not name or not _NAME.fullmatch(name):
        report.skip("name outside OpenAlgo's grammar")
        return None
    if kind == "FUT":
        symbol = format_future(name, expiry)
        instrumenttype = InstrumentType.FUT
        strike = ZERO
    else:
        if strike <= 0:
            report.skip("option without strike")
            return None
        symbol = format_option(name, expiry, strike, OptionType(kind))
        instrumenttype = InstrumentType(kind)
    underlying, underlying_exchange = _underlying(name, exchange, index_names, cash)
    return Instrument(
        symbol=symbol,
        exchange=exchange,
        name=name,
        instrumenttype=instrumenttype,
        token=token,
        tick_size=tick,
        lotsize=lot,
        brsymbol=tradingsymbol,
        brexchange=kite_exchange,
        expiry=expiry,
        strike=strike,
        underlying=underlying,
        underlying_exchange=underlying_exchange,
    )


def _underlying(
    name: str,
    exchange: Exchange,
    index_names: dict[Exchange, set[str]],
    cash: dict[Exchange, set[str]],
) -> tuple[str, Exchange | None]:
    venues = _UNDERLYING_VENUES.get(exchange)
    if venues is None:
        return "", None
    index_venue, cash_venue = venues
    if name in index_names.get(index_venue, ()):
        return name, index_venue
    if name in cash.get(cash_venue, ()):
        return name, cash_venue
    return "", None


class KiteSymbols:
    """The master with Kite's names indexed too: `mapping.SymbolResolver` for the adapter."""

    def __init__(self, master: MasterContract) -> None:
        self.master = master
        self._by_kite: dict[tuple[str, str], Instrument] = {}
        for inst in master:
            if inst.exchange.is_index:
                continue  # never traded or reported in books; quotes go by OpenAlgo symbol
            self._by_kite.setdefault((inst.brexchange, inst.brsymbol), inst)

    @classmethod
    def from_instruments(cls, instruments: Iterable[Instrument]) -> KiteSymbols:
        return cls(MasterContract(instruments))

    def instrument(self, exchange: Exchange, symbol: str) -> Instrument:
        found = self.master.find(exchange, symbol)
        if found is None:
            raise NotFoundError(f"Symbol {symbol} not found on {exchange} in Zerodha's master")
        return found

    def from_kite(self, kite_exchange: str, tradingsymbol: str) -> tuple[Exchange, str]:
        found = self._by_kite.get((kite_exchange, tradingsymbol))
        if found is not None:
            return found.exchange, found.symbol
        return mapping.exchange_from_kite(kite_exchange), tradingsymbol

    def by_token(self, token: str) -> Instrument | None:
        """Kite's instrument_token is unique across exchanges."""
        for exchange in Exchange:
            found = self.master.by_token(exchange, token)
            if found is not None:
                return found
        return None

    def __len__(self) -> int:
        return len(self.master)


def cache_path(cache_dir: Path, day: date) -> Path:
    return cache_dir / CACHE_PATTERN.format(day=day.isoformat())


def read_cache(cache_dir: Path, day: date) -> str | None:
    path = cache_path(cache_dir, day)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def write_cache(cache_dir: Path, day: date, text: str) -> Path:
    """Write today's dump atomically and drop older days' files."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_path(cache_dir, day)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    for old in cache_dir.glob(CACHE_PATTERN.format(day="*")):
        if old != path:
            old.unlink(missing_ok=True)
    return path
