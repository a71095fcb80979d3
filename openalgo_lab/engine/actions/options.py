"""Options actions: optionsymbol, optionchain, syntheticfuture, optiongreeks, multioptiongreeks
(reference §2.5), and `resolve_option`, which optionsorder and optionsmultiorder reuse.

Strikes come from the master contract, never from an assumed strike interval: stock and far
expiries list unequal steps, and a computed strike may not exist. The underlying is the
contract's own (`Instrument.underlying`), so `NIFTY` on NFO and on NSE_INDEX price the same.

Quotes are fetched in batches: the underlying first (it decides the ATM strike), then every
contract the answer needs in one `quotes` call. An option chain built from one quote per
contract is what makes OpenAlgo's chain take seconds and trip broker rate limits.

Greeks are Black-76 on a forward taken from the ATM put-call parity of the same expiry
(falling back to the underlying's LTP), IV in percent, theta per calendar day, vega per vol
point, time to the exchange's expiry cut-off (15:30 IST for NFO/BFO) on ACT/365.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal

from openalgo_lab.brokers.base import InstrumentKey
from openalgo_lab.brokers.sandbox.market import EXPIRY_CUTOFF
from openalgo_lab.domain import black76
from openalgo_lab.domain.calendar import IST
from openalgo_lab.domain.enums import Exchange, InstrumentType, OptionType
from openalgo_lab.domain.errors import NotFoundError, OpenAlgoError, ValidationError
from openalgo_lab.domain.models import Instrument, Quote
from openalgo_lab.domain.symbols import MONTHS, format_expiry, format_option, parse_expiry
from openalgo_lab.domain.validation import parse_enum
from openalgo_lab.engine.actions.market import instrument_of, symbol_of
from openalgo_lab.engine.actions.registry import JSON, ActionContext, Payload, action
from openalgo_lab.instruments.master import MasterContract

# Index and cash underlyings list their options on the exchange's F&O segment.
OPTION_VENUE: dict[Exchange, Exchange] = {
    Exchange.NSE: Exchange.NFO,
    Exchange.NSE_INDEX: Exchange.NFO,
    Exchange.BSE: Exchange.BFO,
    Exchange.BSE_INDEX: Exchange.BFO,
}
DEFAULT_CUTOFF = time(15, 30)  # OpenAlgo's cut-off for exchanges it has no rule for
MIN_YEARS = 0.0001  # OpenAlgo's floor on time to expiry (about 53 minutes): keeps IV finite
MAX_OFFSET = 50
MAX_GREEKS_SYMBOLS = 50
MAX_STRIKE_COUNT = 100
_OFFSET = re.compile(r"ATM|(?P<kind>ITM|OTM)(?P<n>[1-9]\d?)")
_EMBEDDED_EXPIRY = re.compile(
    rf"(?P<name>.+?)(?P<expiry>\d{{2}}(?:{'|'.join(MONTHS)})\d{{2}})(?:FUT)?"
)
_HHMM = re.compile(r"(?P<h>\d{1,2}):(?P<m>\d{2})")


# -- inputs ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Offset:
    """ATM, ITMn or OTMn: n strikes into or out of the money from the ATM strike."""

    kind: str  # "ATM", "ITM" or "OTM"
    steps: int = 0

    def __str__(self) -> str:
        return "ATM" if self.kind == "ATM" else f"{self.kind}{self.steps}"

    def shift(self, option_type: OptionType) -> int:
        """Positions to move along the ascending strike list: calls are in the money below
        the ATM strike, puts above it."""
        if self.kind == "ATM":
            return 0
        downwards = (self.kind == "ITM") == (option_type is OptionType.CE)
        return -self.steps if downwards else self.steps


def parse_offset(value: object, field_name: str = "offset") -> Offset:
    if value is None or value == "":
        raise ValidationError(field_name, "is required")
    text = value.strip().upper() if isinstance(value, str) else ""
    m = _OFFSET.fullmatch(text)
    if m is None or (m["n"] is not None and int(m["n"]) > MAX_OFFSET):
        raise ValidationError(
            field_name,
            f"must be ATM, ITM1..ITM{MAX_OFFSET} or OTM1..OTM{MAX_OFFSET}, got {value!r}",
        )
    return Offset("ATM") if m["kind"] is None else Offset(m["kind"], int(m["n"]))


def parse_rate(p: Payload) -> float:
    """`interest_rate` in percent (0..100, OpenAlgo's default 0) as a decimal fraction."""
    rate = p.decimal("interest_rate", default=Decimal(0))
    if not Decimal(0) <= rate <= Decimal(100):
        raise ValidationError("interest_rate", f"must be between 0 and 100, got {rate}")
    return float(rate) / 100.0


def parse_cutoff(value: object) -> time | None:
    """`expiry_time` "HH:MM" (IST) overriding the exchange's cut-off, e.g. an MCX contract's."""
    if value is None or value == "":
        return None
    m = _HHMM.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None or int(m["h"]) > 23 or int(m["m"]) > 59:
        raise ValidationError("expiry_time", f"must be HH:MM (IST), got {value!r}")
    return time(int(m["h"]), int(m["m"]))


# -- an underlying's options for one expiry ----------------------------------------------------
ChainRow = tuple[Decimal, Instrument | None, Instrument | None]


@dataclass(frozen=True, slots=True)
class Series:
    """The options of one underlying and expiry, and the instrument its price comes from."""

    name: str
    venue: Exchange
    expiry: date
    spot: Instrument
    rows: list[ChainRow]

    @property
    def code(self) -> str:
        return format_expiry(self.expiry)

    def strikes(self, option_type: OptionType | None = None) -> list[Decimal]:
        """Listed strikes, ascending: of one side, or (None) where both sides are listed."""
        if option_type is OptionType.CE:
            return [s for s, ce, _ in self.rows if ce is not None]
        if option_type is OptionType.PE:
            return [s for s, _, pe in self.rows if pe is not None]
        return [s for s, ce, pe in self.rows if ce is not None and pe is not None]

    def contract(self, strike: Decimal, option_type: OptionType) -> Instrument | None:
        for s, ce, pe in self.rows:
            if s == strike:
                return ce if option_type is OptionType.CE else pe
        return None


def split_underlying(underlying: str) -> tuple[str, date | None]:
    """`NIFTY28OCT25FUT` or `NIFTY28OCT25` → (NIFTY, 28 Oct 2025): OpenAlgo lets the expiry
    ride inside the underlying; a plain name has none."""
    m = _EMBEDDED_EXPIRY.fullmatch(underlying)
    if m is None:
        return underlying, None
    return m["name"], parse_expiry(m["expiry"], "underlying")


def spot_of(master: MasterContract, contract: Instrument, today: date) -> Instrument | None:
    """What a derivative is priced from: its listed underlying, else (commodities, currency:
    no spot row) the nearest unexpired future."""
    found = master.underlying_of(contract)
    if found is not None:
        return found
    futures = master.futures(contract.name, contract.exchange)
    return next((f for f in futures if f.expiry is not None and f.expiry >= today), None)


async def resolve_series(
    ctx: ActionContext, underlying: str, exchange: Exchange, expiry_date: str | None
) -> Series:
    master = ctx.master
    text = underlying.strip().upper()
    if not text:
        raise ValidationError("underlying", "is required")
    listed = not exchange.is_derivative and master.find(exchange, text) is not None
    name, embedded = (text, None) if listed else split_underlying(text)
    venue = exchange if exchange.is_derivative else OPTION_VENUE.get(exchange)
    if venue is None:
        raise ValidationError(
            "exchange", f"{exchange} lists no options; use NSE_INDEX, NSE, BSE_INDEX, BSE or NFO"
        )
    if embedded is None and not expiry_date:
        raise ValidationError(
            "expiry_date",
            "is required (DDMMMYY), unless the underlying embeds it (NIFTY28OCT25FUT)",
        )
    expiry = embedded or parse_expiry(expiry_date or "")
    rows = master.option_chain(name, venue, expiry)
    if not rows:
        raise NotFoundError(
            f"No strikes found for {name} expiring {format_expiry(expiry)} on {venue}; "
            "see /expiry for the listed expiries"
        )
    today = ctx.engine.clock.now().astimezone(IST).date()
    first = next(leg for row in rows for leg in row[1:] if leg is not None)
    spot = (
        master.get(exchange, name) if not exchange.is_derivative else spot_of(master, first, today)
    )
    if spot is None:
        raise NotFoundError(f"No underlying or unexpired future found to price {name} on {venue}")
    return Series(name, venue, expiry, spot, rows)


def reference_price(quote: Quote) -> Decimal:
    """The LTP, or the previous close when the feed shows 0 (holidays, before the first
    trade): a zero spot would put the ATM strike at the bottom of the chain."""
    price = quote.ltp if quote.ltp > 0 else quote.prev_close
    if price <= 0:
        raise NotFoundError(f"No price for {quote.symbol} on {quote.exchange}: LTP is 0")
    return price


async def underlying_quote(ctx: ActionContext, series: Series) -> Quote:
    return await ctx.data.quote(series.spot.exchange, series.spot.symbol)


async def quotes_of(
    ctx: ActionContext, keys: Sequence[InstrumentKey]
) -> dict[InstrumentKey, Quote]:
    """One batched quote call for distinct keys (none at all for an empty list)."""
    unique = list(dict.fromkeys(keys))
    return await ctx.data.quotes(unique) if unique else {}


def nearest(strikes: Sequence[Decimal], price: Decimal) -> Decimal:
    """The ATM strike: closest to the price; of two equally close, the lower."""
    return min(strikes, key=lambda s: (abs(s - price), s))


# -- resolve_option: optionsymbol, optionsorder, optionsmultiorder ------------------------------
@dataclass(frozen=True, slots=True)
class ResolvedOption:
    symbol: str
    exchange: Exchange
    instrument: Instrument
    underlying: str
    underlying_ltp: Decimal
    atm_strike: Decimal
    offset: str
    option_type: OptionType
    lotsize: int
    tick_size: Decimal
    freeze_qty: int


async def resolve_option(
    ctx: ActionContext,
    underlying: str,
    exchange: Exchange,
    expiry_date: str | None,
    offset: str,
    option_type: str,
    strike_int: Decimal | None,
    *,
    underlying_ltp: Decimal | None = None,
) -> ResolvedOption:
    """The contract `offset` strikes from the money, as OpenAlgo's optionsymbol picks it.

    ATM is the listed strike nearest the underlying's LTP; with `strike_int` (deprecated in
    OpenAlgo) it is the LTP rounded to that interval and strikes step by it instead. Pass
    `underlying_ltp` to reuse one price across legs (optionsmultiorder).
    """
    where = parse_offset(offset)
    kind = parse_enum(OptionType, option_type, "option_type")
    series = await resolve_series(ctx, underlying, exchange, expiry_date)
    if underlying_ltp is None:
        underlying_ltp = reference_price(await underlying_quote(ctx, series))
    if strike_int is None:
        atm, strike = _listed_strike(series, kind, where, underlying_ltp)
    else:
        atm, strike = _interval_strike(kind, where, underlying_ltp, strike_int)
    inst = series.contract(strike, kind)
    if inst is None:
        symbol = format_option(series.name, series.expiry, strike, kind)
        raise NotFoundError(f"Option symbol {symbol} not found in {series.venue}")
    return ResolvedOption(
        symbol=inst.symbol,
        exchange=inst.exchange,
        instrument=inst,
        underlying=series.name,
        underlying_ltp=underlying_ltp,
        atm_strike=atm,
        offset=str(where),
        option_type=kind,
        lotsize=inst.lotsize,
        tick_size=inst.tick_size,
        freeze_qty=inst.freeze_qty,
    )


def _listed_strike(
    series: Series, kind: OptionType, where: Offset, ltp: Decimal
) -> tuple[Decimal, Decimal]:
    strikes = series.strikes(kind)
    atm = nearest(strikes, ltp)
    at = strikes.index(atm)
    target = at + where.shift(kind)
    if not 0 <= target < len(strikes):
        raise ValidationError(
            "offset",
            f"{where} is beyond the listed strikes: {series.name} {series.code} {kind} lists "
            f"{at} strikes below and {len(strikes) - 1 - at} above the ATM strike "
            f"{_num(atm)}; use a smaller offset",
        )
    return atm, strikes[target]


def _interval_strike(
    kind: OptionType, where: Offset, ltp: Decimal, interval: Decimal
) -> tuple[Decimal, Decimal]:
    if interval <= 0:
        raise ValidationError("strike_int", f"must be > 0, got {interval}")
    atm = (ltp / interval).quantize(Decimal(1), rounding=ROUND_HALF_UP) * interval
    strike = atm + interval * where.shift(kind)
    if strike <= 0:
        raise ValidationError("offset", f"{where} at a {interval} interval is below zero")
    return atm, strike


def _num(value: Decimal) -> float | int:
    """Strikes as OpenAlgo prints them: 26000 (an int when whole), 292.5."""
    return int(value) if value == value.to_integral_value() else float(value)


@action("optionsymbol")
async def optionsymbol(ctx: ActionContext, p: Payload) -> JSON:
    """The option contract at an offset (ATM, ITMn, OTMn) from the underlying's price."""
    strike_int = p.decimal("strike_int") if p.has("strike_int") else None
    resolved = await resolve_option(
        ctx,
        p.text("underlying"),
        p.exchange(),
        p.text("expiry_date", default="") or None,
        p.text("offset"),
        p.text("option_type"),
        strike_int,
    )
    return {
        "symbol": resolved.symbol,
        "exchange": resolved.exchange.value,
        "lotsize": resolved.lotsize,
        "tick_size": float(resolved.tick_size),
        "freeze_qty": resolved.freeze_qty,
        "underlying_ltp": float(resolved.underlying_ltp),
    }


# -- Greeks ------------------------------------------------------------------------------------
def cutoff_of(exchange: Exchange, custom: time | None = None) -> time:
    return custom or EXPIRY_CUTOFF.get(exchange, DEFAULT_CUTOFF)


def expiry_instant(exchange: Exchange, expiry: date, custom: time | None = None) -> datetime:
    """When the contract stops having time value: its expiry day's cut-off in IST."""
    return datetime.combine(expiry, cutoff_of(exchange, custom), tzinfo=IST).astimezone(UTC)


def years_left(now: datetime, expiry_at: datetime) -> float:
    """ACT/365 years to expiry, floored at OpenAlgo's minimum until the cut-off passes."""
    t = black76.year_fraction(now, expiry_at)
    return max(t, MIN_YEARS) if t > 0 else 0.0


def parity_forward(
    strike: Decimal, call: Decimal, put: Decimal, t_years: float, rate: float
) -> float | None:
    """F = K + (C - P) / D: the forward the ATM pair implies (None without two prices).
    With OpenAlgo's default rate of 0 this is its K + C - P."""
    if call <= 0 or put <= 0:
        return None
    forward = float(strike) + float(call - put) * math.exp(rate * t_years)
    return forward if forward > 0 else None


@dataclass(frozen=True, slots=True)
class LegGreeks:
    iv: float  # percent
    greeks: black76.Greeks
    theoretical: bool  # at or below intrinsic: IV 0, delta ±1 (OpenAlgo's rule)

    def fields(self) -> JSON:
        g = self.greeks
        return {
            "implied_volatility": round(self.iv, 2),
            "delta": round(g.delta, 4),
            "gamma": round(g.gamma, 6),
            "theta": round(g.theta, 4),
            "vega": round(g.vega, 4),
        }


def leg_greeks(
    price: float, forward: float, strike: float, t_years: float, rate: float, is_call: bool
) -> LegGreeks:
    """IV and Greeks of one traded price. Prices at or within a paisa of intrinsic have no
    time value to invert, and an IV that cannot exist (above the no-arbitrage bound) is
    treated the same way: IV 0 and the option moves one-for-one with the forward."""
    intrinsic = black76.intrinsic(forward, strike, t_years, rate, is_call)
    flat = black76.Greeks(1.0 if is_call else -1.0, 0.0, 0.0, 0.0, 0.0)
    if price - intrinsic <= 0 or (intrinsic > 0 and price - intrinsic < 0.01):
        return LegGreeks(0.0, flat, True)
    try:
        iv, greeks = black76.option_analytics(price, forward, strike, t_years, rate, is_call)
    except ValueError:
        return LegGreeks(0.0, flat, True)
    return LegGreeks(iv * 100.0, greeks, iv == 0.0)


@dataclass(frozen=True, slots=True)
class GreeksAsk:
    """One option to analyse, as optiongreeks / multioptiongreeks name it."""

    symbol: str
    exchange: Exchange
    underlying_symbol: str | None = None
    underlying_exchange: Exchange | None = None
    forward_price: Decimal | None = None


@dataclass(slots=True)
class _Plan:
    """How one ask gets its forward: given, a custom underlying's LTP, or its expiry's
    ATM parity (falling back to the spot)."""

    ask: GreeksAsk
    inst: Instrument
    expiry_at: datetime
    spot_key: InstrumentKey | None = None
    series: tuple[str, Exchange, date] | None = None
    forward: float | None = None
    error: OpenAlgoError | None = None


@dataclass(slots=True)
class _Parity:
    spot_key: InstrumentKey
    expiry_at: datetime
    rows: list[ChainRow]
    atm: tuple[Decimal, Instrument, Instrument] | None = None
    legs: list[InstrumentKey] = field(default_factory=list)


def _option_instrument(ctx: ActionContext, ask: GreeksAsk) -> Instrument:
    if not ask.exchange.is_derivative:
        raise ValidationError("exchange", f"{ask.exchange} is not an F&O exchange")
    inst = instrument_of(ctx, ask.exchange, ask.symbol)
    if not inst.is_option or inst.expiry is None:
        raise ValidationError("symbol", f"{ask.symbol} is not an option")
    return inst


def _plan(ctx: ActionContext, ask: GreeksAsk, cutoff: time | None) -> _Plan:
    inst = _option_instrument(ctx, ask)
    assert inst.expiry is not None
    plan = _Plan(ask, inst, expiry_instant(inst.exchange, inst.expiry, cutoff))
    if ask.forward_price is not None and ask.forward_price > 0:
        plan.forward = float(ask.forward_price)
        return plan
    master = ctx.master
    if ask.underlying_symbol and ask.underlying_symbol != inst.name:
        exchange = ask.underlying_exchange or inst.underlying_exchange or inst.exchange
        plan.spot_key = instrument_of(ctx, exchange, ask.underlying_symbol).key
        return plan
    today = ctx.engine.clock.now().astimezone(IST).date()
    spot = spot_of(master, inst, today)
    if spot is None:
        raise NotFoundError(f"No underlying found to price {inst.symbol}")
    plan.spot_key = spot.key
    plan.series = (inst.name, inst.exchange, inst.expiry)
    return plan


async def _forwards(
    ctx: ActionContext, plans: list[_Plan], rate: float
) -> dict[InstrumentKey, Quote]:
    """Fill each plan's forward with two batched quote calls; returns the option quotes."""
    live = [p for p in plans if p.error is None]
    spots = await quotes_of(ctx, [p.spot_key for p in live if p.spot_key is not None])
    parities: dict[tuple[str, Exchange, date], _Parity] = {}
    for plan in live:
        if plan.series is not None and plan.spot_key is not None:
            name, venue, expiry = plan.series
            parities.setdefault(
                plan.series,
                _Parity(
                    plan.spot_key,
                    plan.expiry_at,
                    ctx.master.option_chain(name, venue, expiry),
                ),
            )
    for parity in parities.values():
        spot = spots.get(parity.spot_key)
        pairs = [(s, ce, pe) for s, ce, pe in parity.rows if ce is not None and pe is not None]
        if spot is not None and pairs and (spot.ltp > 0 or spot.prev_close > 0):
            atm = nearest([s for s, _, _ in pairs], reference_price(spot))
            parity.atm = next(row for row in pairs if row[0] == atm)
            parity.legs = [parity.atm[1].key, parity.atm[2].key]
    keys = [p.inst.key for p in live] + [k for par in parities.values() for k in par.legs]
    options = await quotes_of(ctx, keys)
    now = ctx.engine.clock.now()
    for plan in live:
        if plan.forward is None:
            plan.forward = _plan_forward(plan, spots, parities, options, now, rate)
            if plan.forward is None:
                plan.error = NotFoundError(f"Underlying LTP not available for {plan.inst.symbol}")
    return options


def _plan_forward(
    plan: _Plan,
    spots: dict[InstrumentKey, Quote],
    parities: dict[tuple[str, Exchange, date], _Parity],
    options: dict[InstrumentKey, Quote],
    now: datetime,
    rate: float,
) -> float | None:
    parity = parities.get(plan.series) if plan.series is not None else None
    if parity is not None and parity.atm is not None:
        strike, ce, pe = parity.atm
        call, put = options.get(ce.key), options.get(pe.key)
        if call is not None and put is not None:
            t = years_left(now, parity.expiry_at)
            forward = parity_forward(strike, call.ltp, put.ltp, t, rate)
            if forward is not None:
                return forward
    spot = spots.get(plan.spot_key) if plan.spot_key is not None else None
    if spot is None or (spot.ltp <= 0 and spot.prev_close <= 0):
        return None
    return float(reference_price(spot))


def _greeks_body(plan: _Plan, option: Quote | None, now: datetime, rate: float) -> JSON:
    inst = plan.inst
    assert inst.expiry is not None and plan.forward is not None
    if option is None or option.ltp <= 0:
        raise NotFoundError(f"Option LTP not available for {inst.symbol}")
    price = float(option.ltp)
    is_call = inst.instrumenttype is InstrumentType.CE
    t = years_left(now, plan.expiry_at)
    body: JSON = {
        "symbol": inst.symbol,
        "exchange": inst.exchange.value,
        "underlying": inst.name,
        "strike": round(float(inst.strike), 2),
        "option_type": inst.instrumenttype.value,
        "expiry_date": inst.expiry.strftime("%d-%b-%Y"),
        "days_to_expiry": round(t * 365.0, 4),
        "spot_price": round(plan.forward, 2),
        "option_price": round(price, 2),
        "interest_rate": round(rate * 100.0, 2),
    }
    strike = float(inst.strike)
    if t <= 0:
        intrinsic = max(plan.forward - strike, 0.0) if is_call else max(strike - plan.forward, 0.0)
        body |= {
            "intrinsic_value": round(intrinsic, 2),
            "time_value": round(max(price - intrinsic, 0.0), 2),
            "implied_volatility": 0,
            "greeks": {"delta": 0, "gamma": 0, "theta": 0, "vega": 0, "rho": 0},
            "note": "Option has expired - Greeks are no longer applicable",
        }
        return body
    leg = leg_greeks(price, plan.forward, strike, t, rate, is_call)
    g = leg.greeks
    if leg.theoretical:
        intrinsic = black76.intrinsic(plan.forward, strike, t, rate, is_call)
        body |= {
            "intrinsic_value": round(intrinsic, 2),
            "time_value": round(max(price - intrinsic, 0.0), 2),
            "note": "Deep ITM option with no time value - theoretical Greeks returned",
        }
    body |= {
        "implied_volatility": round(leg.iv, 2),
        "greeks": {
            "delta": round(g.delta, 4),
            "gamma": round(g.gamma, 6),
            "theta": round(g.theta, 4),
            "vega": round(g.vega, 4),
            "rho": round(g.rho, 6),
        },
    }
    return body


async def option_greeks(
    ctx: ActionContext,
    asks: Sequence[GreeksAsk],
    rate: float,
    cutoff: time | None = None,
    *,
    allow_expired: bool = False,
) -> list[JSON | OpenAlgoError]:
    """Greeks for many options with two quote calls in all; failures are returned per ask."""
    now = ctx.engine.clock.now()
    plans: list[_Plan | OpenAlgoError] = []
    for ask in asks:
        try:
            plan = _plan(ctx, ask, cutoff)
            if not allow_expired and plan.expiry_at <= now:
                at = plan.expiry_at.astimezone(IST).strftime("%d-%b-%Y %H:%M IST")
                raise ValidationError("symbol", f"Option has expired on {at}")
            plans.append(plan)
        except OpenAlgoError as err:
            plans.append(err)
    live = [p for p in plans if isinstance(p, _Plan)]
    options = await _forwards(ctx, live, rate) if live else {}
    out: list[JSON | OpenAlgoError] = []
    for item in plans:
        if isinstance(item, OpenAlgoError):
            out.append(item)
        elif item.error is not None:
            out.append(item.error)
        else:
            try:
                out.append(_greeks_body(item, options.get(item.inst.key), now, rate))
            except OpenAlgoError as err:
                out.append(err)
    return out


def _exchange_opt(p: Payload, field_name: str) -> Exchange | None:
    return p.enum(Exchange, field_name) if p.has(field_name) else None


def _fno_exchange(p: Payload) -> Exchange:
    exchange = p.exchange()
    if not exchange.is_derivative:
        fno = ", ".join(e.value for e in Exchange if e.is_derivative)
        raise ValidationError("exchange", f"must be an F&O exchange ({fno}), got {exchange}")
    return exchange


@action("optiongreeks")
async def optiongreeks(ctx: ActionContext, p: Payload) -> JSON:
    """IV and Black-76 Greeks of one option from its LTP."""
    forward = p.decimal("forward_price") if p.has("forward_price") else None
    if forward is not None and forward < 0:
        raise ValidationError("forward_price", f"must be >= 0, got {forward}")
    ask = GreeksAsk(
        symbol=symbol_of(p),
        exchange=_fno_exchange(p),
        underlying_symbol=p.text("underlying_symbol").upper()
        if p.has("underlying_symbol")
        else None,
        underlying_exchange=_exchange_opt(p, "underlying_exchange"),
        forward_price=forward,
    )
    [result] = await option_greeks(ctx, [ask], parse_rate(p), parse_cutoff(p.raw("expiry_time")))
    if isinstance(result, OpenAlgoError):
        raise result
    return result


def _greeks_ask(item: Payload, index: int) -> GreeksAsk:
    try:
        return GreeksAsk(
            symbol=symbol_of(item),
            exchange=_fno_exchange(item),
            underlying_symbol=(
                item.text("underlying_symbol").upper() if item.has("underlying_symbol") else None
            ),
            underlying_exchange=_exchange_opt(item, "underlying_exchange"),
        )
    except ValidationError as err:
        raise ValidationError(f"symbols[{index}].{err.field}", err.reason) from None


@action("multioptiongreeks")
async def multioptiongreeks(ctx: ActionContext, p: Payload) -> JSON:
    """Greeks for up to 50 options in one call; each symbol succeeds or fails on its own."""
    items = p.items("symbols", maximum=MAX_GREEKS_SYMBOLS)
    asks = [_greeks_ask(item, i) for i, item in enumerate(items)]
    results = await option_greeks(
        ctx, asks, parse_rate(p), parse_cutoff(p.raw("expiry_time")), allow_expired=True
    )
    data: list[JSON] = []
    for ask, result in zip(asks, results, strict=True):
        if isinstance(result, OpenAlgoError):
            data.append(
                {
                    "status": "error",
                    "symbol": ask.symbol,
                    "exchange": ask.exchange.value,
                    "message": result.message,
                }
            )
        else:
            data.append({"status": "success", **result})
    failed = [d for d in data if d["status"] == "error"]
    body: JSON = {
        "data": data,
        "summary": {"total": len(data), "success": len(data) - len(failed), "failed": len(failed)},
    }
    if failed:
        # OpenAlgo's envelope: "partial" when some succeed, "error" (still HTTP 200) when none.
        body["status"] = "partial" if len(failed) < len(data) else "error"
        messages = list(dict.fromkeys(str(d["message"]) for d in failed))[:3]
        lead = (
            "All option Greeks calculations failed"
            if body["status"] == "error"
            else (f"{len(failed)} option Greeks calculation(s) failed")
        )
        body["message"] = f"{lead}: {'; '.join(messages)}"
    return body


# -- option chain and synthetic future ---------------------------------------------------------
def _label(position: int, atm_index: int, option_type: OptionType) -> str:
    if position == atm_index:
        return "ATM"
    below = position < atm_index
    in_the_money = below == (option_type is OptionType.CE)
    return f"{'ITM' if in_the_money else 'OTM'}{abs(position - atm_index)}"


def _leg(inst: Instrument | None, label: str, quote: Quote | None) -> JSON | None:
    if inst is None:
        return None
    q = quote
    return {
        "symbol": inst.symbol,
        "label": label,
        "ltp": float(q.ltp) if q else 0.0,
        "bid": float(q.bid) if q else 0.0,
        "ask": float(q.ask) if q else 0.0,
        "bid_qty": int(q.bid_qty) if q else 0,
        "ask_qty": int(q.ask_qty) if q else 0,
        "open": float(q.open) if q else 0.0,
        "high": float(q.high) if q else 0.0,
        "low": float(q.low) if q else 0.0,
        "prev_close": float(q.prev_close) if q else 0.0,
        "volume": int(q.volume) if q else 0,
        "oi": int(q.oi) if q else 0,
        "lotsize": inst.lotsize,
        "tick_size": float(inst.tick_size),
    }


def _attach_greeks(
    chain: list[JSON], rows: list[ChainRow], forward: float, t: float, rate: float
) -> None:
    """IV and Greeks on every priced leg; unpriced legs get no fields, so a caller can tell
    "no data" from "zero"."""
    for row_json, (strike, *_legs) in zip(chain, rows, strict=True):
        for side, is_call in (("ce", True), ("pe", False)):
            leg = row_json[side]
            if leg is None or leg["ltp"] <= 0:
                continue
            leg.update(leg_greeks(leg["ltp"], forward, float(strike), t, rate, is_call).fields())


def _chain_forward(
    row: ChainRow, quotes: dict[InstrumentKey, Quote], t: float, rate: float
) -> float | None:
    strike, ce, pe = row
    call = quotes.get(ce.key) if ce is not None else None
    put = quotes.get(pe.key) if pe is not None else None
    if call is None or put is None:
        return None
    return parity_forward(strike, call.ltp, put.ltp, t, rate)


@action("optionchain")
async def optionchain(ctx: ActionContext, p: Payload) -> JSON:
    """Strikes around the ATM with both legs' quotes (and, on request, IV and Greeks)."""
    exchange = p.exchange()
    series = await resolve_series(ctx, p.text("underlying"), exchange, p.text("expiry_date"))
    count = (
        p.integer("strike_count", minimum=1, maximum=MAX_STRIKE_COUNT)
        if p.has("strike_count")
        else None
    )
    with_greeks = p.boolean("with_greeks", default=False)
    rate = parse_rate(p)
    spot = await underlying_quote(ctx, series)
    ltp = reference_price(spot)
    strikes = [s for s, _, _ in series.rows]
    atm_index = strikes.index(nearest(strikes, ltp))
    lo, hi = (
        (0, len(strikes)) if count is None else (max(atm_index - count, 0), atm_index + count + 1)
    )
    window = series.rows[lo:hi]
    keys = [leg.key for row in window for leg in row[1:] if leg is not None]
    quotes = await quotes_of(ctx, keys)
    chain: list[JSON] = []
    for position, (strike, ce, pe) in enumerate(window, start=lo):
        chain.append(
            {
                "strike": float(strike),
                "ce": _leg(
                    ce,
                    _label(position, atm_index, OptionType.CE),
                    quotes.get(ce.key) if ce else None,
                ),
                "pe": _leg(
                    pe,
                    _label(position, atm_index, OptionType.PE),
                    quotes.get(pe.key) if pe else None,
                ),
            }
        )
    now = ctx.engine.clock.now()
    expiry_at = expiry_instant(series.venue, series.expiry)
    forward: float | None = None
    greeks_included = False
    t = years_left(now, expiry_at)
    if with_greeks:
        forward = _chain_forward(series.rows[atm_index], quotes, t, rate) or float(ltp)
        if t > 0:
            _attach_greeks(chain, window, forward, t, rate)
            greeks_included = True
    return {
        "underlying": series.name,
        "underlying_symbol": series.spot.symbol,
        "underlying_exchange": series.spot.exchange.value,
        "underlying_ltp": float(ltp),
        "underlying_prev_close": float(spot.prev_close),
        "expiry_date": series.code,
        "expiry_ts": int(expiry_at.timestamp()),
        "server_ts": int(now.timestamp()),
        "atm_strike": float(strikes[atm_index]),
        "quotes_included": True,
        "greeks_included": greeks_included,
        "forward_price": None if forward is None else round(forward, 4),
        "chain": chain,
    }


@action("syntheticfuture")
async def syntheticfuture(ctx: ActionContext, p: Payload) -> JSON:
    """The future the ATM call and put imply: strike + call - put."""
    exchange = p.exchange()
    series = await resolve_series(ctx, p.text("underlying"), exchange, p.text("expiry_date"))
    ltp = reference_price(await underlying_quote(ctx, series))
    paired = series.strikes()
    if not paired:
        raise NotFoundError(
            f"{series.name} {series.code} lists no strike with both a call and a put"
        )
    atm = nearest(paired, ltp)
    ce = series.contract(atm, OptionType.CE)
    pe = series.contract(atm, OptionType.PE)
    assert ce is not None and pe is not None
    quotes = await quotes_of(ctx, [ce.key, pe.key])
    call, put = quotes.get(ce.key), quotes.get(pe.key)
    if call is None or put is None:
        missing = ce.symbol if call is None else pe.symbol
        raise NotFoundError(f"No quote for {missing} on {series.venue}")
    price = atm + call.ltp - put.ltp
    return {
        "underlying": series.name,
        "underlying_ltp": float(ltp),
        "expiry": series.code,
        "atm_strike": float(atm),
        "synthetic_future_price": round(float(price), 2),
    }
