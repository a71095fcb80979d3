"""A realistic master contract that never goes stale: contracts are listed relative to `today`.

The sandbox needs a master without a broker login, and a shipped snapshot would expire within a
week. So the cash and index rows (symbols, company names, reference prices, lot sizes, strike
steps, tokens) are data in `data/*.csv`, and the derivatives are generated from the exchange
rules in `MarketCalendar`: NIFTY weeklies on Tuesdays and SENSEX weeklies on Thursdays (moved
off holidays), three monthlies for every index and stock, and strike windows around the
reference price. The same `today` always gives the same master.

Facts and their sources (`shared/reference/indian-markets.md`, as of 2026-11-24): index lots,
freeze quantities, expiry rules and strike steps (§3); equity and stock-derivative ticks (§3.4,
§4.1); the NIFTY 50 list (§7). Approximate, stated in the data files' values: reference
prices (late-2026 levels), stock lot sizes other than HDFCBANK and TATASTEEL, stock strike
steps, SENSEX50's lot, step and freeze quantity, stock freeze quantities (a rule, below) and
tokens (real-looking exchange tokens from memory for equities, synthetic for indices, a stable
hash for derivatives).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from importlib.resources import files

from openalgo_lab.domain.calendar import IST, MarketCalendar
from openalgo_lab.domain.enums import Exchange, InstrumentType, OptionType
from openalgo_lab.domain.models import Instrument
from openalgo_lab.domain.symbols import format_future, format_option
from openalgo_lab.instruments.master import MasterContract

INDEX_TICK = Decimal("0.05")
TICK_BELOW_250 = Decimal("0.01")
TICK_FROM_250 = Decimal("0.05")
TICK_THRESHOLD = Decimal(250)

WEEKLY_EXPIRIES = 5
MONTHLY_EXPIRIES = 3
# Strikes each side of the money, by the expiry's position among the underlying's expiries:
# near expiries carry wide chains, far ones narrower (as on the exchanges).
INDEX_STRIKE_WINDOWS = (40, 40, 30, 30, 20)
STOCK_STRIKE_WINDOWS = (20, 15, 10)
# Stock freeze quantities are set per stock by NSE; we approximate them as 20 lots.
STOCK_FREEZE_LOTS = 20

_DERIVATIVE_VENUE = {
    Exchange.NSE_INDEX: Exchange.NFO,
    Exchange.BSE_INDEX: Exchange.BFO,
    Exchange.NSE: Exchange.NFO,
}
_TOKEN_SPACE = 900_000_000
_TOKEN_BASE = 100_000_000


@dataclass(frozen=True, slots=True)
class Underlying:
    """One cash or index row of the shipped data, with its F&O terms (lot 0: no F&O)."""

    exchange: Exchange
    symbol: str
    name: str
    price: Decimal
    token: str
    lot: int
    step: Decimal
    freeze_qty: int
    weekly: bool
    bse_token: str = ""

    @property
    def has_derivatives(self) -> bool:
        return self.lot > 0 and self.step > 0


def equity_tick(price: Decimal) -> Decimal:
    """NSE's cash (and stock-derivative) tick: ₹0.01 below ₹250, else ₹0.05."""
    return TICK_BELOW_250 if price < TICK_THRESHOLD else TICK_FROM_250


def _read(name: str) -> list[dict[str, str]]:
    text = files("openalgo_lab.instruments").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@lru_cache(maxsize=1)
def indices() -> tuple[Underlying, ...]:
    return tuple(
        Underlying(
            exchange=Exchange(r["exchange"]),
            symbol=r["symbol"],
            name=r["name"],
            price=Decimal(r["reference_price"]),
            token=r["token"],
            lot=int(r["lot_size"]),
            step=Decimal(r["strike_step"]),
            freeze_qty=int(r["freeze_qty"]),
            weekly=r["weekly"] == "Y",
        )
        for r in _read("indices.csv")
    )


@lru_cache(maxsize=1)
def equities() -> tuple[Underlying, ...]:
    return tuple(
        Underlying(
            exchange=Exchange.NSE,
            symbol=r["symbol"],
            name=r["name"],
            price=Decimal(r["reference_price"]),
            token=r["nse_token"],
            lot=int(r["lot_size"]),
            step=Decimal(r["strike_step"]),
            freeze_qty=int(r["lot_size"]) * STOCK_FREEZE_LOTS,
            weekly=False,
            bse_token=r["bse_token"],
        )
        for r in _read("equities.csv")
    )


def reference_prices() -> dict[tuple[Exchange, str], Decimal]:
    """Last closes the simulated market starts from: every index, and every equity on NSE and
    BSE (same price). Approximate late-2026 levels (NIFTY 26,000, SENSEX 85,000, ...)."""
    prices = {(u.exchange, u.symbol): u.price for u in indices()}
    for eq in equities():
        prices[(Exchange.NSE, eq.symbol)] = eq.price
        prices[(Exchange.BSE, eq.symbol)] = eq.price
    return prices


def build_sample_master(today: date, calendar: MarketCalendar | None = None) -> list[Instrument]:
    """Indices, NSE and BSE equities, and the F&O contracts live on `today` (expiring today
    included), in a fixed order."""
    cal = calendar or MarketCalendar()
    tokens = _Tokens()
    out = [_index_row(u) for u in indices()]
    out += [_equity_row(u, Exchange.NSE) for u in equities()]
    out += [_equity_row(u, Exchange.BSE) for u in equities()]
    for u in indices() + equities():
        if u.has_derivatives:
            out += _derivatives(u, today, cal, tokens)
    return out


@lru_cache(maxsize=4)
def _cached_master(today: date) -> MasterContract:
    return MasterContract(build_sample_master(today))


def sample_master(today: date | None = None) -> MasterContract:
    """The sample master for `today` (default: today in IST), built once per date."""
    return _cached_master(today or datetime.now(IST).date())


# -- rows ---------------------------------------------------------------------------------------
def _index_row(u: Underlying) -> Instrument:
    return Instrument(
        symbol=u.symbol,
        exchange=u.exchange,
        name=u.name,
        instrumenttype=InstrumentType.INDEX,
        token=u.token,
        tick_size=INDEX_TICK,
        brsymbol=u.symbol,
        brexchange=u.exchange.value,
    )


def _equity_row(u: Underlying, exchange: Exchange) -> Instrument:
    """Brokers name NSE cash by series (`RELIANCE-EQ`); BSE's trading symbol is plain."""
    nse = exchange is Exchange.NSE
    return Instrument(
        symbol=u.symbol,
        exchange=exchange,
        name=u.name,
        instrumenttype=InstrumentType.EQ,
        token=u.token if nse else u.bse_token,
        tick_size=equity_tick(u.price),
        brsymbol=f"{u.symbol}-EQ" if nse else u.symbol,
        brexchange=exchange.value,
    )


def _derivatives(
    u: Underlying, today: date, cal: MarketCalendar, tokens: _Tokens
) -> list[Instrument]:
    venue = _DERIVATIVE_VENUE[u.exchange]
    monthlies = cal.monthly_expiries(venue, today, MONTHLY_EXPIRIES)
    weeklies = cal.weekly_expiries(venue, today, WEEKLY_EXPIRIES) if u.weekly else []
    is_index = u.exchange.is_index
    windows = INDEX_STRIKE_WINDOWS if is_index else STOCK_STRIKE_WINDOWS
    tick = INDEX_TICK if is_index else equity_tick(u.price)
    spec = _Contract(u, venue, tick, tokens)
    out = [spec.future(expiry) for expiry in monthlies]
    for rank, expiry in enumerate(sorted(set(monthlies) | set(weeklies))):
        width = windows[min(rank, len(windows) - 1)]
        for strike in strike_window(u.price, u.step, width):
            out.append(spec.option(expiry, strike, OptionType.CE))
            out.append(spec.option(expiry, strike, OptionType.PE))
    return out


def strike_window(price: Decimal, step: Decimal, width: int) -> list[Decimal]:
    """`width` strikes each side of the at-the-money strike, skipping non-positive ones."""
    atm = (price / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
    strikes = (atm + step * i for i in range(-width, width + 1))
    return [_clean(s) for s in strikes if s > 0]


def _clean(strike: Decimal) -> Decimal:
    """26000 rather than 26000.0, 242.5 rather than 242.50: one spelling per strike."""
    integral = strike.to_integral_value()
    return Decimal(int(integral)) if strike == integral else strike.normalize()


@dataclass(frozen=True, slots=True)
class _Contract:
    """What a derivative row takes from its underlying; `future`/`option` fill in the rest."""

    u: Underlying
    venue: Exchange
    tick: Decimal
    tokens: _Tokens

    def _row(self, symbol: str, kind: InstrumentType, expiry: date, strike: Decimal) -> Instrument:
        return Instrument(
            symbol=symbol,
            exchange=self.venue,
            name=self.u.symbol,
            instrumenttype=kind,
            token=self.tokens.issue(self.venue, symbol),
            tick_size=self.tick,
            lotsize=self.u.lot,
            brsymbol=symbol,
            brexchange=self.venue.value,
            expiry=expiry,
            strike=strike,
            freeze_qty=self.u.freeze_qty,
            underlying=self.u.symbol,
            underlying_exchange=self.u.exchange,
        )

    def future(self, expiry: date) -> Instrument:
        return self._row(
            format_future(self.u.symbol, expiry), InstrumentType.FUT, expiry, Decimal(0)
        )

    def option(self, expiry: date, strike: Decimal, kind: OptionType) -> Instrument:
        symbol = format_option(self.u.symbol, expiry, strike, kind)
        return self._row(symbol, InstrumentType(kind.value), expiry, strike)


class _Tokens:
    """Derivative tokens from a hash of the symbol, so a contract keeps its token from one day's
    master to the next; the rare collision takes the next free number."""

    def __init__(self) -> None:
        self._used: dict[Exchange, set[str]] = {}

    def issue(self, exchange: Exchange, symbol: str) -> str:
        used = self._used.setdefault(exchange, set())
        digest = hashlib.blake2b(f"{exchange}:{symbol}".encode(), digest_size=8).digest()
        n = int.from_bytes(digest, "big") % _TOKEN_SPACE
        while (token := str(_TOKEN_BASE + n)) in used:
            n = (n + 1) % _TOKEN_SPACE
        used.add(token)
        return token
