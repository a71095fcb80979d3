"""The fake Kite server's instrument universe, in Kite's own naming.

A Kite adapter must map Kite's names to OpenAlgo's, so the fake has to name things the way Kite
does, not the way OpenAlgo does: NSE cash is plain `SBIN` (other series keep their suffix,
`CENTRALBK-BE`), indices are `NIFTY 50` / `NIFTY BANK` / `SENSEX` in segment `INDICES`, monthly
contracts are `NIFTY26DECFUT` / `NIFTY26DEC26000CE`, weekly options `NIFTY2612126000CE` (year,
a one-character month 1-9/O/N/D, day), and `instrument_token = exchange_token << 8 | segment`.

The rows come from three places: the real sample rows Zerodha publishes (`data/instruments_*.csv`,
cash rows only: its F&O rows expired in 2018), the project's shipped NIFTY 50 and index list
(reference prices and exchange tokens), and F&O contracts generated for the live expiries of
`today` by the project's exchange calendar, so the dump never goes stale.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path

from openalgo_lab.domain import black76
from openalgo_lab.domain.calendar import MarketCalendar
from openalgo_lab.domain.enums import Exchange
from openalgo_lab.instruments.sample import Underlying, equities, equity_tick, indices

DATA_DIR = Path(__file__).parent / "data"

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

# Kite's segment ids: the low byte of every instrument token.
SEGMENT_IDS = {"NSE": 1, "NFO": 2, "CDS": 3, "BSE": 4, "BFO": 5, "BCD": 6, "MCX": 7, "INDICES": 9}

# Kite's index rows: our symbol -> (Kite tradingsymbol, Kite exchange, exchange token).
KITE_INDICES = {
    "NIFTY": ("NIFTY 50", "NSE", 1001),
    "BANKNIFTY": ("NIFTY BANK", "NSE", 1016),
    "FINNIFTY": ("NIFTY FIN SERVICE", "NSE", 1007),
    "MIDCPNIFTY": ("NIFTY MID SELECT", "NSE", 1125),
    "INDIAVIX": ("INDIA VIX", "NSE", 1035),
    "SENSEX": ("SENSEX", "BSE", 1),
    "BANKEX": ("BANKEX", "BSE", 12),
}
# Which underlyings get derivatives here (a small but realistic slice of the real dump).
INDEX_DERIVATIVES = ("NIFTY", "BANKNIFTY", "SENSEX")
STOCK_OPTIONS = ("SBIN", "RELIANCE", "INFY", "HDFCBANK", "TCS")
INDEX_STRIKES_EACH_SIDE = 10
STOCK_STRIKES_EACH_SIDE = 5
WEEKLY_COUNT = 2
MONTHLY_COUNT = 3
STOCK_OPTION_MONTHS = 2

WEEKLY_MONTH_CODES = "123456789OND"
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DERIVATIVE_TOKEN_SPACE = 900_000
_DERIVATIVE_TOKEN_BASE = 35_000


@dataclass(frozen=True, slots=True)
class KiteInstrument:
    """One row of Kite's instrument dump (`GET /instruments`)."""

    instrument_token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    last_price: Decimal
    expiry: date | None
    strike: Decimal
    tick_size: Decimal
    lot_size: int
    instrument_type: str  # EQ, FUT, CE, PE
    segment: str  # NSE, BSE, NFO-FUT, NFO-OPT, BFO-FUT, BFO-OPT, INDICES
    exchange: str
    underlying_price: Decimal = Decimal(0)  # reference level of the underlying (derivatives)

    @property
    def key(self) -> str:
        """Kite's quote key, `EXCHANGE:TRADINGSYMBOL`."""
        return f"{self.exchange}:{self.tradingsymbol}"

    @property
    def is_index(self) -> bool:
        return self.segment == "INDICES"

    @property
    def is_derivative(self) -> bool:
        return self.instrument_type in ("FUT", "CE", "PE")

    @property
    def is_option(self) -> bool:
        return self.instrument_type in ("CE", "PE")

    def csv_row(self) -> list[str]:
        """The row as Kite writes it: floats with a decimal point, empty expiry for cash."""
        return [
            str(self.instrument_token),
            str(self.exchange_token),
            self.tradingsymbol,
            self.name,
            _float_text(self.last_price),
            self.expiry.isoformat() if self.expiry else "",
            _float_text(self.strike),
            _float_text(self.tick_size),
            str(self.lot_size),
            self.instrument_type,
            self.segment,
            self.exchange,
        ]


def _float_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.0"


def instrument_token(exchange_token: int, segment_exchange: str) -> int:
    return exchange_token << 8 | SEGMENT_IDS[segment_exchange]


def kite_future_symbol(name: str, expiry: date) -> str:
    return f"{name}{expiry:%y}{MONTHS[expiry.month - 1]}FUT"


def kite_option_symbol(name: str, expiry: date, strike: Decimal, kind: str, monthly: bool) -> str:
    """Monthly contracts carry the month's name, weeklies a one-character month and the day."""
    strike_text = format(strike.normalize(), "f")
    if monthly:
        return f"{name}{expiry:%y}{MONTHS[expiry.month - 1]}{strike_text}{kind}"
    return f"{name}{expiry:%y}{WEEKLY_MONTH_CODES[expiry.month - 1]}{expiry:%d}{strike_text}{kind}"


def _strikes(price: Decimal, step: Decimal, each_side: int) -> list[Decimal]:
    atm = (price / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
    return [atm + step * i for i in range(-each_side, each_side + 1) if atm + step * i > 0]


class _TokenIssuer:
    """Stable, unique exchange tokens for generated contracts (a hash of the symbol)."""

    def __init__(self) -> None:
        self._used: set[int] = set()

    def issue(self, exchange: str, symbol: str) -> int:
        digest = hashlib.blake2b(f"{exchange}:{symbol}".encode(), digest_size=8).digest()
        n = int.from_bytes(digest, "big") % _DERIVATIVE_TOKEN_SPACE
        while _DERIVATIVE_TOKEN_BASE + n in self._used:
            n = (n + 1) % _DERIVATIVE_TOKEN_SPACE
        self._used.add(_DERIVATIVE_TOKEN_BASE + n)
        return _DERIVATIVE_TOKEN_BASE + n


def _sample_rows() -> list[KiteInstrument]:
    """Zerodha's published cash rows (both sample files, deduplicated by token)."""
    seen: set[int] = set()
    out: list[KiteInstrument] = []
    for name in ("instruments_nse.csv", "instruments_all.csv"):
        with (DATA_DIR / name).open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                token = int(row["instrument_token"])
                if row["instrument_type"] != "EQ" or token in seen:
                    continue
                seen.add(token)
                out.append(
                    KiteInstrument(
                        instrument_token=token,
                        exchange_token=int(row["exchange_token"]),
                        tradingsymbol=row["tradingsymbol"],
                        name=row["name"],
                        last_price=Decimal(row["last_price"]),
                        expiry=None,
                        strike=Decimal(0),
                        tick_size=Decimal(row["tick_size"]),
                        lot_size=int(row["lot_size"]),
                        instrument_type="EQ",
                        segment=row["segment"],
                        exchange=row["exchange"],
                    )
                )
    return out


def _index_rows() -> list[KiteInstrument]:
    out = []
    for u in indices():
        if u.symbol not in KITE_INDICES:
            continue
        symbol, exchange, exchange_token = KITE_INDICES[u.symbol]
        out.append(
            KiteInstrument(
                instrument_token=instrument_token(exchange_token, "INDICES"),
                exchange_token=exchange_token,
                tradingsymbol=symbol,
                name=symbol,
                last_price=u.price,
                expiry=None,
                strike=Decimal(0),
                tick_size=Decimal(0),
                lot_size=0,
                instrument_type="EQ",
                segment="INDICES",
                exchange=exchange,
            )
        )
    return out


def _equity_rows(u: Underlying) -> list[KiteInstrument]:
    rows = []
    for exchange, token in (("NSE", int(u.token)), ("BSE", int(u.bse_token))):
        rows.append(
            KiteInstrument(
                instrument_token=instrument_token(token, exchange),
                exchange_token=token,
                tradingsymbol=u.symbol,
                name=u.name,
                last_price=u.price,
                expiry=None,
                strike=Decimal(0),
                tick_size=equity_tick(u.price),
                lot_size=1,
                instrument_type="EQ",
                segment=exchange,
                exchange=exchange,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class _Series:
    """What one underlying's contracts share."""

    underlying: Underlying
    venue: str  # NFO or BFO
    tick: Decimal
    tokens: _TokenIssuer

    def row(
        self, symbol: str, kind: str, expiry: date, strike: Decimal, last_price: Decimal
    ) -> KiteInstrument:
        token = self.tokens.issue(self.venue, symbol)
        return KiteInstrument(
            instrument_token=instrument_token(token, self.venue),
            exchange_token=token,
            tradingsymbol=symbol,
            name=self.underlying.symbol,
            last_price=last_price,
            expiry=expiry,
            strike=strike,
            tick_size=self.tick,
            lot_size=self.underlying.lot,
            instrument_type=kind,
            segment=f"{self.venue}-{'FUT' if kind == 'FUT' else 'OPT'}",
            exchange=self.venue,
            underlying_price=self.underlying.price,
        )


def option_reference_price(
    underlying: Decimal, strike: Decimal, kind: str, expiry: date, today: date, tick: Decimal
) -> Decimal:
    """A plausible previous close for an option (Black-76, flat 15% volatility), on the tick and
    never below one tick, so the dump's `last_price` looks like Kite's."""
    years = max((expiry - today).days, 0) / 365 + 1 / 365
    value = black76.price(float(underlying), float(strike), years, 0.15, 0.0, kind == "CE")
    ticks = (Decimal(str(value)) / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return max(ticks, Decimal(1)) * tick


def _derivative_rows(
    u: Underlying, today: date, cal: MarketCalendar, tokens: _TokenIssuer
) -> list[KiteInstrument]:
    venue = Exchange.BFO if u.exchange is Exchange.BSE_INDEX else Exchange.NFO
    is_index = u.exchange.is_index
    series = _Series(u, venue.value, Decimal("0.05") if is_index else equity_tick(u.price), tokens)
    monthlies = cal.monthly_expiries(venue, today, MONTHLY_COUNT)
    out = [
        series.row(kite_future_symbol(u.symbol, e), "FUT", e, Decimal(0), u.price)
        for e in monthlies
    ]
    if is_index:
        weeklies = cal.weekly_expiries(venue, today, WEEKLY_COUNT) if u.weekly else []
        option_expiries = sorted(set(weeklies) | set(monthlies[:2]))
        each_side = INDEX_STRIKES_EACH_SIDE
    elif u.symbol in STOCK_OPTIONS:
        option_expiries = monthlies[:STOCK_OPTION_MONTHS]
        each_side = STOCK_STRIKES_EACH_SIDE
    else:
        option_expiries = []
        each_side = 0
    monthly_set = set(monthlies)
    for expiry in option_expiries:
        for strike in _strikes(u.price, u.step, each_side):
            for kind in ("CE", "PE"):
                symbol = kite_option_symbol(u.symbol, expiry, strike, kind, expiry in monthly_set)
                premium = option_reference_price(u.price, strike, kind, expiry, today, series.tick)
                out.append(series.row(symbol, kind, expiry, strike, premium))
    return out


def build_instruments(today: date, calendar: MarketCalendar | None = None) -> list[KiteInstrument]:
    """The whole dump for `today`: indices, cash on NSE and BSE, live F&O contracts."""
    cal = calendar or MarketCalendar()
    tokens = _TokenIssuer()
    rows = _index_rows()
    stocks = equities()
    for u in stocks:
        rows += _equity_rows(u)
    known = {r.instrument_token for r in rows}
    rows += [r for r in _sample_rows() if r.instrument_token not in known]
    for u in indices():
        if u.symbol in INDEX_DERIVATIVES and u.has_derivatives:
            rows += _derivative_rows(u, today, cal, tokens)
    for u in stocks:
        if u.has_derivatives:
            rows += _derivative_rows(u, today, cal, tokens)
    return rows


@lru_cache(maxsize=4)
def instruments_for(today: date) -> tuple[KiteInstrument, ...]:
    """`build_instruments` with the exchange calendar, built once per date (rows are frozen)."""
    return tuple(build_instruments(today))


def instruments_csv(rows: Sequence[KiteInstrument]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(row.csv_row())
    return buffer.getvalue()
