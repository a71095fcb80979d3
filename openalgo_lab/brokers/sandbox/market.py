"""A seeded, deterministic simulated market for the sandbox.

Every price is a pure function of (seed, instrument, instant): a tick asked for twice, in any
order, from any number of market objects, is the same tick. That is what lets history candles
agree with the ticks they summarise, lets a test state "at 10:17:03 the LTP was ..." and lets
the matching engine be replayed.

How a price comes to be, coarse to fine:

* **Daily walk.** Each underlying (equity or index) has a log-price that steps once per trading
  day of its exchange, a slowly mean-reverting AR(1) anchored so that the close of the last
  trading day before `anchor` is the reference price. The walk runs forward from the anchor for
  later days and backward (time-reversed) for earlier ones, one calendar year at a time, so
  reaching any date costs a few hundred additions, not a replay from an epoch. A share of each
  day's variance is an overnight gap (open differs from the previous close).
* **Intraday bridge.** Inside the session the log-price is a Brownian bridge from that day's
  open to its close on a one-second grid. Its normals come from a counter-based generator
  (SplitMix64 of (seed, underlying, day, second)), so any stretch of seconds can be regenerated
  on its own: a session keeps only its running sums at 60-second block boundaries, and the
  tick path regenerates one minute at a time.
* **Instruments.** Cash and index prices are the path snapped to the tick grid. A future is
  spot × e^(r·T) (cost of carry to the 15:30 IST expiry cut-off). An option is Black-76 on that
  forward with a smile (ATM vol + skew and curvature in standardised moneyness), floored at the
  European intrinsic value and at one tick, so put-call parity holds to within a tick.
* **Book and tape.** Bid/ask straddle the LTP (the trade printed at the bid or the ask,
  whichever side the model price was on); the spread is one tick for liquid contracts and
  widens with moneyness and premium; five levels a side, quantities in whole lots, thinner
  away from the money. Volume accumulates along a U-shaped intraday activity curve whose
  running total is shared by the tick quotes and the candles, so bar volumes sum exactly.

Outside its exchange session an instrument shows its last tick of the previous session: prices
move only while the exchange is open (with `MarketHours.ALWAYS`, all day).
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Protocol

import numpy as np
import numpy.typing as npt

from openalgo_lab.domain import black76
from openalgo_lab.domain.calendar import IST, MarketCalendar
from openalgo_lab.domain.enums import Exchange, InstrumentType, Interval
from openalgo_lab.domain.errors import NotFoundError, ValidationError
from openalgo_lab.domain.models import Candle, Depth, DepthLevel, Instrument, Quote

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
BoolArray = npt.NDArray[np.bool_]

BLOCK = 60  # seconds per block: the unit of regeneration and of the day-high/low prefix
LEVELS = 5
DAY_SECONDS = 86_400
IST_OFFSET = 19_800  # IST has no daylight saving: a fixed +05:30
DEFAULT_ANCHOR = date(2026, 11, 24)  # reference prices are the closes before this date
OVERNIGHT_SHARE = 0.15  # share of daily variance that arrives as the opening gap
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MIN_T_SMILE = 1.0 / (365.0 * 24.0)  # an hour: keeps moneyness finite at the expiry bell
# Whole-day arrays kept after building a session, across all underlyings: a history request
# reuses them at once; the tick path never needs them (it regenerates single blocks).
_FULL_DAYS_KEPT = 8
_ZERO = Decimal(0)
_EMPTY_LEVEL = DepthLevel(_ZERO, 0, 0)

# Expiry cut-offs OpenAlgo uses for time to expiry (reference §2.5).
EXPIRY_CUTOFF: dict[Exchange, time] = {
    Exchange.NFO: time(15, 30),
    Exchange.BFO: time(15, 30),
    Exchange.CDS: time(12, 30),
    Exchange.BCD: time(12, 30),
    Exchange.MCX: time(23, 30),
    Exchange.NCO: time(23, 30),
    Exchange.NCDEX: time(17, 0),
}

# Annualised volatility by underlying; equities get 20-35 % from their name.
INDEX_VOLATILITY: dict[str, float] = {
    "NIFTY": 0.13,
    "BANKNIFTY": 0.16,
    "FINNIFTY": 0.15,
    "MIDCPNIFTY": 0.18,
    "NIFTYNXT50": 0.17,
    "SENSEX": 0.13,
    "BANKEX": 0.16,
    "SENSEX50": 0.13,
    "INDIAVIX": 0.85,
}
_CLASS_VOLATILITY: dict[Exchange, float] = {
    Exchange.MCX: 0.25,
    Exchange.MCX_INDEX: 0.22,
    Exchange.NCO: 0.25,
    Exchange.NCDEX: 0.22,
    Exchange.CDS: 0.05,
    Exchange.BCD: 0.05,
    Exchange.CRYPTO: 0.60,
}
# Mean reversion of the daily walk (per year): a three-year half-life keeps a demo run in 2030
# near today's levels without visibly damping a year's volatility; VIX reverts in weeks.
_KAPPA = math.log(2.0) / 3.0
_KAPPA_VIX = math.log(2.0) / (20.0 / 252.0)


class MarketData(Protocol):
    """What the matching engine and the broker need from a market (simulated or replayed)."""

    def depth(self, instrument: Instrument, at: datetime) -> Depth:
        """Quote and five levels a side at `at` (UTC-aware); prices on the tick grid."""
        ...

    def candles(
        self, instrument: Instrument, interval: Interval, start: datetime, end: datetime
    ) -> list[Candle]:
        """Bars starting in [start, end), built only from what had traded before `end`."""
        ...


# -- counter-based randomness ---------------------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SALT2 = np.uint64(0xD1B54A32D192ED03)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_2_53 = 2.0**-53


def stable_key(*parts: object) -> int:
    """A 64-bit key from labels, stable across processes (unlike `hash`)."""
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def _mix(x: U64) -> U64:
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    out: U64 = x ^ (x >> _S31)
    return out


def _hash(key: int, counter: I64) -> U64:
    return _mix(np.uint64(key) + counter.astype(np.uint64) * _GOLDEN)


def _uniform(bits: U64) -> F64:
    out: F64 = (bits >> _S11).astype(np.float64) * _2_53
    return out


def uniforms(key: int, counter: I64) -> F64:
    """Uniforms on [0, 1), one per counter, independent of how many are asked for."""
    return _uniform(_hash(key, counter))


def normals(key: int, counter: I64) -> F64:
    """Standard normals by Box-Muller from two hashes of each counter."""
    h1 = _hash(key, counter)
    u1 = 1.0 - _uniform(h1)  # (0, 1]: log is finite
    u2 = _uniform(_mix(h1 ^ _SALT2))
    out: F64 = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)
    return out


def _activity(key: int, seconds: I64, n: int) -> F64:
    """Trading intensity per second: U-shaped across the session (busy open and close)."""
    edge = 2.0 * seconds.astype(np.float64) / max(n - 1, 1) - 1.0
    edge *= edge
    shape = 0.6 + 1.8 * edge * edge
    out: F64 = shape * -np.log(1.0 - uniforms(key, seconds))
    return out


# -- sessions ---------------------------------------------------------------------------------
Session = tuple[int, int]  # (open epoch seconds, length in seconds)


class SessionTable:
    """Calendar look-ups by day ordinal, memoised: the tick path asks millions of times."""

    def __init__(self, calendar: MarketCalendar) -> None:
        self.calendar = calendar
        self._days: dict[tuple[Exchange, int], Session | None] = {}
        self._prev: dict[tuple[Exchange, int], int] = {}
        self._years: dict[tuple[Exchange, int], list[int]] = {}

    def get(self, exchange: Exchange, ordinal: int) -> Session | None:
        key = (exchange, ordinal)
        try:
            return self._days[key]
        except KeyError:
            pass
        found = self.calendar.session(exchange, date.fromordinal(ordinal))
        value = None
        if found is not None:
            open_ts = int(found.open.timestamp())
            value = (open_ts, int(found.close.timestamp()) - open_ts)
        self._days[key] = value
        return value

    def previous(self, exchange: Exchange, ordinal: int) -> int:
        """The last day strictly before `ordinal` with a session on `exchange`."""
        key = (exchange, ordinal)
        found = self._prev.get(key)
        if found is None:
            day = ordinal - 1
            while self.get(exchange, day) is None:
                day -= 1
                if ordinal - day > 3660:
                    raise NotFoundError(f"{exchange} has no session in the ten years before")
            found = self._prev[key] = day
        return found

    def trading_days(self, exchange: Exchange, year: int) -> list[int]:
        key = (exchange, year)
        days = self._years.get(key)
        if days is None:
            first, last = date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal()
            days = [d for d in range(first, last + 1) if self.get(exchange, d) is not None]
            self._years[key] = days
        return days


def ordinal_of(ts: float) -> int:
    """The IST calendar day (as a date ordinal) of an epoch instant."""
    return int((ts + IST_OFFSET) // DAY_SECONDS) + _EPOCH_ORDINAL


def midnight_ts(ordinal: int) -> int:
    """Epoch seconds of 00:00 IST on the day `ordinal`: where daily and longer bars start."""
    return (ordinal - _EPOCH_ORDINAL) * DAY_SECONDS - IST_OFFSET


# -- underlyings: the daily walk and the intraday bridge --------------------------------------
@dataclass(slots=True)
class _Year:
    index: dict[int, int]  # trading-day ordinal -> position
    days: list[int]
    x_open: F64  # absolute log levels
    x_close: F64
    x_prev: F64  # previous trading day's close (bit-identical to it)
    x_end: float  # close of the last trading day on or before 31 Dec (relative)
    x_before: float  # close of the last trading day before 1 Jan (relative)
    dt: float


class _SegmentSlots:
    """The last few stretches regenerated for an underlying: every derivative of NIFTY asks
    for the same seconds in turn (its new block, the day so far, the open), so a handful of
    slots saves regenerating them for each strike."""

    __slots__ = ("_items",)
    SIZE = 4

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[int, int, int], tuple[F64, F64]] = OrderedDict()

    def get(self, key: tuple[int, int, int]) -> tuple[F64, F64] | None:
        return self._items.get(key)

    def put(self, key: tuple[int, int, int], value: tuple[F64, F64]) -> None:
        self._items[key] = value
        if len(self._items) > self.SIZE:
            self._items.popitem(last=False)


@dataclass(slots=True)
class _UDay:
    """One session of an underlying: enough to regenerate any stretch of its path."""

    ordinal: int
    open_ts: int
    n: int
    x_open: float
    x_close: float
    x_prev: float
    sigma_s: float
    k_bridge: int
    k_act: int
    w_blocks: F64  # W at each block start
    a_blocks: F64  # cumulative activity before each block start
    w_end: float
    a_total: float
    full: tuple[F64, F64] | None = None  # the whole day, kept briefly after building
    slots: _SegmentSlots = field(default_factory=_SegmentSlots)  # shared by the underlying

    def _bridge(self, seconds: I64, w: F64) -> F64:
        span = max(self.n - 1, 1)
        frac = seconds.astype(np.float64) / span
        # Written so that the first second is exactly the open and the last exactly the close.
        x = (
            self.x_open * (1.0 - frac)
            + self.x_close * frac
            + self.sigma_s * (w - frac * self.w_end)
        )
        out: F64 = np.exp(x)
        return out

    def segment(self, lo: int, hi: int) -> tuple[F64, F64]:
        """Spot and cumulative activity share for seconds [lo, hi) of this session.

        Regenerates from the enclosing block boundary: the running sums are continued with
        the same sequential additions as the whole-day pass, so the numbers are bit-identical
        to it however the day is sliced.
        """
        if self.full is not None:
            return self.full[0][lo:hi], self.full[1][lo:hi]
        key = (self.ordinal, lo, hi)
        found = self.slots.get(key)
        if found is None:
            found = self._regenerate(lo, hi)
            self.slots.put(key, found)
        return found

    def _regenerate(self, lo: int, hi: int) -> tuple[F64, F64]:
        j = lo // BLOCK
        start = j * BLOCK
        z = normals(self.k_bridge, np.arange(start, hi - 1, dtype=np.int64))
        w = np.cumsum(np.concatenate(([self.w_blocks[j]], z)))
        seconds = np.arange(start, hi, dtype=np.int64)
        act = _activity(self.k_act, seconds, self.n)
        cum = np.cumsum(np.concatenate(([self.a_blocks[j]], act)))[1:]
        cut = lo - start
        spot = self._bridge(seconds[cut:], w[cut:])
        share: F64 = cum[cut:] / self.a_total
        return spot, share


class _Underlying:
    def __init__(
        self,
        key: tuple[Exchange, str],
        price: float,
        sigma: float,
        seed: int,
        sessions: SessionTable,
        anchor: date,
        recent_full: deque[_UDay],
    ) -> None:
        exchange, symbol = key
        if not price > 0:
            raise ValidationError("underlyings", f"{exchange}:{symbol} price must be positive")
        self.key = key
        self.exchange = exchange
        self.sigma = sigma
        self.kappa = _KAPPA_VIX if symbol == "INDIAVIX" else _KAPPA
        self.log_p0 = math.log(price)
        # NSE and BSE listings of one company share a path (each at its own reference price).
        noise = f"EQ:{symbol}" if exchange.is_cash else f"{exchange}:{symbol}"
        self.noise = (seed, noise)
        self.k_daily = stable_key(seed, noise, "daily")
        self.sessions = sessions
        self.anchor_prev = sessions.previous(exchange, anchor.toordinal())
        self._years: dict[int, _Year] = {}
        self._days: OrderedDict[int, _UDay] = OrderedDict()
        self.recent_full = recent_full
        self.slots = _SegmentSlots()

    # -- the daily walk -----------------------------------------------------------------
    def year(self, y: int) -> _Year:
        found = self._years.get(y)
        if found is not None:
            return found
        ya = date.fromordinal(self.anchor_prev).year
        step = 1 if y > ya else -1
        for yy in range(ya, y + step, step):
            if yy not in self._years:
                self._years[yy] = self._build_year(yy, ya)
        return self._years[y]

    def _build_year(self, y: int, ya: int) -> _Year:
        days = self.sessions.trading_days(self.exchange, y)
        n = len(days)
        dt = 1.0 / max(n, 1)
        a = math.exp(-self.kappa * dt)
        counters = np.array(days, dtype=np.int64) * 2
        gap = self.sigma * math.sqrt(OVERNIGHT_SHARE * dt) * normals(self.k_daily, counters)
        body = self.sigma * math.sqrt((1 - OVERNIGHT_SHARE) * dt)
        eps = (gap + body * normals(self.k_daily, counters + 1)).tolist()
        x_close = [0.0] * n
        x_prev = [0.0] * n
        if y > ya:
            x_before = self._years[y - 1].x_end
            x = x_before
            for j in range(n):
                x_prev[j] = x
                x = a * x + eps[j]
                x_close[j] = x
            x_end = x
        elif y < ya:
            x_end = self._years[y + 1].x_before
            x = x_end
            for j in range(n - 1, -1, -1):
                x_close[j] = x
                x = a * x - eps[j]
                x_prev[j] = x
            x_before = x
        else:
            k = days.index(self.anchor_prev)
            x = 0.0
            for j in range(k, -1, -1):
                x_close[j] = x
                x = a * x - eps[j]
                x_prev[j] = x
            x_before = x
            x = 0.0
            for j in range(k + 1, n):
                x_prev[j] = x
                x = a * x + eps[j]
                x_close[j] = x
            x_end = x
        prev = self.log_p0 + np.array(x_prev)
        return _Year(
            index={d: j for j, d in enumerate(days)},
            days=days,
            x_open=prev + gap,
            x_close=self.log_p0 + np.array(x_close),
            x_prev=prev,
            x_end=x_end,
            x_before=x_before,
            dt=dt,
        )

    def close_before(self, ordinal: int) -> float:
        """Log close of the last trading day strictly before `ordinal`."""
        yr = self.year(date.fromordinal(ordinal).year)
        pos = bisect.bisect_left(yr.days, ordinal) - 1
        if pos >= 0:
            return float(yr.x_close[pos])
        return self.log_p0 + yr.x_before

    # -- sessions -----------------------------------------------------------------------
    def day(self, ordinal: int) -> _UDay | None:
        """The session of `ordinal`, or None when the underlying's exchange is shut."""
        found = self._days.get(ordinal)
        if found is not None:
            self._days.move_to_end(ordinal)
            return found
        session = self.sessions.get(self.exchange, ordinal)
        if session is None:
            return None
        made = self._build_day(ordinal, session)
        self._days[ordinal] = made
        if len(self._days) > 64:
            self._days.popitem(last=False)
        return made

    def _build_day(self, ordinal: int, session: Session) -> _UDay:
        open_ts, n = session
        yr = self.year(date.fromordinal(ordinal).year)
        j = yr.index[ordinal]
        seed, noise = self.noise
        k_bridge = stable_key(seed, noise, ordinal, "bridge")
        k_act = stable_key(seed, noise, ordinal, "activity")
        z = normals(k_bridge, np.arange(0, n - 1, dtype=np.int64))
        w = np.cumsum(np.concatenate(([0.0], z)))
        act = np.cumsum(_activity(k_act, np.arange(n, dtype=np.int64), n))
        blocks = -(-n // BLOCK)
        a_blocks = np.concatenate(([0.0], act[BLOCK - 1 :: BLOCK]))[:blocks]
        sigma_day = self.sigma * math.sqrt((1 - OVERNIGHT_SHARE) * yr.dt)
        made = _UDay(
            ordinal=ordinal,
            open_ts=open_ts,
            n=n,
            x_open=float(yr.x_open[j]),
            x_close=float(yr.x_close[j]),
            x_prev=float(yr.x_prev[j]),
            sigma_s=sigma_day / math.sqrt(max(n - 1, 1)),
            k_bridge=k_bridge,
            k_act=k_act,
            w_blocks=w[::BLOCK].copy(),
            a_blocks=a_blocks,
            w_end=float(w[n - 1]),
            a_total=float(act[n - 1]) or 1.0,
            slots=self.slots,
        )
        seconds = np.arange(n, dtype=np.int64)
        made.full = (made._bridge(seconds, w), act / made.a_total)
        self.recent_full.append(made)
        if len(self.recent_full) > _FULL_DAYS_KEPT:
            self.recent_full.popleft().full = None
        return made


# -- instruments -----------------------------------------------------------------------------
class _Kind(Enum):
    INDEX = "index"
    CASH = "cash"
    FUTURE = "future"
    OPTION = "option"


@dataclass(frozen=True, slots=True)
class _Liquidity:
    """Book and tape scale of a contract class (quantities in lots)."""

    spread_bps: float = 0.0  # cash and futures: spread as a share of price
    spread_base: int = 1  # options: ticks at the money
    spread_moneyness: float = 0.0  # options: extra ticks per standard deviation away
    spread_premium: float = 0.0  # options: extra spread as a share of premium
    depth_lots: float = 1.0
    volume_lots: float = 0.0
    oi_lots: float = 0.0


_INDEX_FUTURE = _Liquidity(spread_bps=0.2, depth_lots=20, volume_lots=80_000, oi_lots=150_000)
_STOCK_FUTURE = _Liquidity(spread_bps=0.6, depth_lots=5, volume_lots=8_000, oi_lots=40_000)
_INDEX_OPTION = _Liquidity(
    spread_base=1,
    spread_moneyness=0.5,
    spread_premium=0.0002,
    depth_lots=200,
    volume_lots=500_000,
    oi_lots=150_000,
)
_STOCK_OPTION = _Liquidity(
    spread_base=2,
    spread_moneyness=1.0,
    spread_premium=0.002,
    depth_lots=20,
    volume_lots=5_000,
    oi_lots=3_000,
)


@dataclass(slots=True)
class _Block:
    """One minute of one instrument's tape, as plain lists for the per-tick path."""

    ordinal: int
    index: int
    ticks: list[int]
    ask_side: list[bool]
    run_max: list[int]
    run_min: list[int]
    lots: list[int]
    ltq: list[int]
    oi: list[int]
    spread: list[int]
    gap: list[int]
    qty: list[list[int]]


@dataclass(slots=True)
class _IDay:
    """One session of one instrument: its mapping onto the underlying and the day so far."""

    ordinal: int
    open_ts: int
    n: int
    uday: _UDay | None
    offset: int  # instrument second + offset = underlying second
    # Log spot while the underlying has no session this day. Spots always come out of np.exp
    # of a log level, so a close reached by any route is the same float.
    spot_const: float
    volume_lots: float
    oi_open: float
    oi_change: float
    open_tick: int = -1
    prev_close: int = -1
    pre_hi: list[int] = field(default_factory=lambda: [-1])
    pre_lo: list[int] = field(default_factory=lambda: [2**62])


@dataclass(slots=True)
class _Seg:
    spot: F64
    price: F64
    ticks: I64
    ask_side: BoolArray
    lots: I64
    oi: I64
    moneyness: F64
    share: F64


@dataclass(slots=True, eq=False)
class _Spec:
    inst: Instrument
    kind: _Kind
    under: _Underlying
    tick: float
    tick_dec: Decimal
    lot: int
    strike: float
    is_call: bool
    cutoff: float | None
    atm_vol: float
    skew: float
    curvature: float
    liq: _Liquidity
    scale: float  # per-name liquidity factor
    salt: int
    days: dict[int, _IDay] = field(default_factory=dict)
    closes: dict[int, int] = field(default_factory=dict)
    day_bars: dict[int, tuple[int, ...]] = field(default_factory=dict)  # complete days only
    block: _Block | None = None


class SimulatedMarket(MarketData):
    """Deterministic prices for every equity, index, future and option of a master contract.

    `underlyings` maps (exchange, symbol) of each equity and index to its reference price
    (last close before `anchor`); derivatives are priced from `instrument.underlying` on
    `instrument.underlying_exchange`. `volatility` overrides the annualised volatility per
    underlying key. `seed` selects the universe: same seed, same prices.
    """

    def __init__(
        self,
        underlyings: Mapping[tuple[Exchange, str], Decimal],
        *,
        seed: int = 0,
        calendar: MarketCalendar | None = None,
        rate: float = 0.065,
        volatility: Mapping[tuple[Exchange, str], float] | None = None,
        anchor: date = DEFAULT_ANCHOR,
    ) -> None:
        self.seed = seed
        self.rate = rate
        self.anchor = anchor
        self.calendar = calendar or MarketCalendar()
        self._sessions = SessionTable(self.calendar)
        self._prices = {key: float(value) for key, value in underlyings.items()}
        self._vols = dict(volatility or {})
        self._underlyings: dict[tuple[Exchange, str], _Underlying] = {}
        self._recent_full: deque[_UDay] = deque()
        self._specs: dict[tuple[Exchange, str], _Spec] = {}

    # -- public -----------------------------------------------------------------------------
    def depth(self, instrument: Instrument, at: datetime) -> Depth:
        spec = self._spec(instrument)
        ordinal, second = self._locate(instrument.exchange, _epoch(at))
        iday = self._iday(spec, ordinal)
        b, k = divmod(second, BLOCK)
        blk = spec.block
        if blk is None or blk.ordinal != ordinal or blk.index != b:
            blk = self._load_block(spec, iday, b)
        return self._book(spec, iday, blk, k, iday.open_ts + second)

    def quote(self, instrument: Instrument, at: datetime) -> Quote:
        return self.depth(instrument, at).quote

    def forward(self, instrument: Instrument, at: datetime) -> float:
        """The model forward behind a derivative at `at` (spot for cash and indices)."""
        spec = self._spec(instrument)
        ordinal, second = self._locate(instrument.exchange, _epoch(at))
        iday = self._iday(spec, ordinal)
        spot, _ = self._spot(iday, second, second + 1)
        t = self._t_array(spec, np.array([float(iday.open_ts + second)]))
        return float((spot * np.exp(self.rate * t))[0])

    def time_to_expiry(self, instrument: Instrument, at: datetime) -> float:
        """ACT/365 years from the tick `at` shows to the expiry cut-off (0 if none)."""
        spec = self._spec(instrument)
        ordinal, second = self._locate(instrument.exchange, _epoch(at))
        open_ts = self._session(instrument.exchange, ordinal)[0]
        return self._years_left(spec, float(open_ts + second))

    def volatility(self, instrument: Instrument, at: datetime) -> float:
        """The model's volatility for `instrument` at `at`: the smile for options."""
        spec = self._spec(instrument)
        if spec.kind is not _Kind.OPTION:
            return spec.under.sigma
        ordinal, second = self._locate(instrument.exchange, _epoch(at))
        iday = self._iday(spec, ordinal)
        spot, _ = self._spot(iday, second, second + 1)
        t = np.array([self._years_left(spec, float(iday.open_ts + second))])
        fwd = spot * np.exp(self.rate * t)
        return float(self._smile(spec, fwd, t)[0][0])

    def candles(
        self, instrument: Instrument, interval: Interval, start: datetime, end: datetime
    ) -> list[Candle]:
        spec = self._spec(instrument)
        start_ts, end_ts = _epoch(start), _epoch(end)
        if end_ts <= start_ts:
            return []
        if interval.seconds is not None:
            return self._intraday_candles(spec, interval.seconds, start_ts, end_ts)
        return self._calendar_candles(spec, interval, start_ts, end_ts)

    # -- instruments ------------------------------------------------------------------------
    def _spec(self, inst: Instrument) -> _Spec:
        spec = self._specs.get((inst.exchange, inst.symbol))
        if spec is not None and (spec.inst is inst or spec.inst == inst):
            return spec
        spec = self._make_spec(inst)
        self._specs[(inst.exchange, inst.symbol)] = spec
        return spec

    def _make_spec(self, inst: Instrument) -> _Spec:
        if inst.tick_size <= 0:
            raise ValidationError("tick_size", f"{inst.symbol} has no positive tick size")
        if inst.instrumenttype.is_option and inst.strike <= 0:
            raise ValidationError("strike", f"{inst.symbol} has no positive strike")
        if inst.instrumenttype.is_option:
            kind = _Kind.OPTION
        elif inst.instrumenttype is InstrumentType.FUT:
            kind = _Kind.FUTURE
        elif inst.exchange.is_index or inst.instrumenttype is InstrumentType.INDEX:
            kind = _Kind.INDEX
        else:
            kind = _Kind.CASH
        under = self._underlying_for(inst, kind)
        index_linked = under.exchange.is_index
        salt = stable_key(self.seed, inst.exchange, inst.symbol)
        scale = 0.3 + 1.4 * ((salt >> 11) * _2_53)
        if kind is _Kind.CASH:
            price = math.exp(under.log_p0)
            liq = _Liquidity(
                spread_bps=0.6,
                depth_lots=max(1.0, 2e5 / price / max(inst.lotsize, 1)),
                volume_lots=5e9 / price / max(inst.lotsize, 1),
            )
        elif kind is _Kind.FUTURE:
            liq = _INDEX_FUTURE if index_linked else _STOCK_FUTURE
        elif kind is _Kind.OPTION:
            liq = _INDEX_OPTION if index_linked else _STOCK_OPTION
        else:
            liq = _Liquidity(depth_lots=0.0)
        cutoff = None
        if inst.expiry is not None:
            at = EXPIRY_CUTOFF.get(inst.exchange, time(15, 30))
            cutoff = datetime.combine(inst.expiry, at, tzinfo=IST).timestamp()
        return _Spec(
            inst=inst,
            kind=kind,
            under=under,
            tick=float(inst.tick_size),
            tick_dec=inst.tick_size,
            lot=max(inst.lotsize, 1),
            strike=float(inst.strike),
            is_call=inst.instrumenttype is InstrumentType.CE,
            cutoff=cutoff,
            atm_vol=under.sigma,
            skew=-0.10 if index_linked else -0.05,
            curvature=0.04 if index_linked else 0.05,
            liq=liq,
            scale=scale,
            salt=salt,
        )

    def _underlying_for(self, inst: Instrument, kind: _Kind) -> _Underlying:
        if kind in (_Kind.FUTURE, _Kind.OPTION):
            name = inst.underlying or inst.name
            if inst.underlying_exchange is not None:
                candidates = [(inst.underlying_exchange, name)]
            else:
                candidates = [(ex, name) for ex in _UNDERLYING_SEARCH]
            what = f"underlying {name} of {inst.exchange}:{inst.symbol}"
        else:
            candidates = [(inst.exchange, inst.symbol)]
            if inst.exchange.is_cash:
                other = Exchange.BSE if inst.exchange is Exchange.NSE else Exchange.NSE
                candidates.append((other, inst.symbol))
            what = f"{inst.exchange}:{inst.symbol}"
        for key in candidates:
            if key in self._prices:
                return self._underlying(key)
        raise NotFoundError(f"No simulated price for {what}: it has no reference price")

    def _underlying(self, key: tuple[Exchange, str]) -> _Underlying:
        found = self._underlyings.get(key)
        if found is None:
            found = _Underlying(
                key,
                self._prices[key],
                self._vols.get(key, _default_volatility(key)),
                self.seed,
                self._sessions,
                self.anchor,
                self._recent_full,
            )
            self._underlyings[key] = found
        return found

    # -- time -------------------------------------------------------------------------------
    def _session(self, exchange: Exchange, ordinal: int) -> Session:
        session = self._sessions.get(exchange, ordinal)
        assert session is not None, "located days always have a session"
        return session

    def _locate(self, exchange: Exchange, ts: float) -> tuple[int, int]:
        """The session second whose tick is shown at `ts`: inside a session the current
        second, otherwise the last second of the most recent session (the price holds)."""
        ordinal = ordinal_of(ts)
        session = self._sessions.get(exchange, ordinal)
        if session is not None:
            open_ts, n = session
            if ts >= open_ts:
                second = int(ts - open_ts)
                return ordinal, second if second < n else n - 1
        prev = self._sessions.previous(exchange, ordinal)
        return prev, self._session(exchange, prev)[1] - 1

    def _years_left(self, spec: _Spec, ts: float) -> float:
        if spec.cutoff is None:
            return 0.0
        return max(spec.cutoff - ts, 0.0) / black76.SECONDS_PER_YEAR

    # -- per-day state ----------------------------------------------------------------------
    def _iday(self, spec: _Spec, ordinal: int) -> _IDay:
        found = spec.days.get(ordinal)
        if found is None:
            found = self._make_iday(spec, ordinal)
            if len(spec.days) >= 4:
                evicted = min(spec.days)
                del spec.days[evicted]
                if spec.block is not None and spec.block.ordinal == evicted:
                    spec.block = None
            spec.days[ordinal] = found
        return found

    def _make_iday(self, spec: _Spec, ordinal: int) -> _IDay:
        open_ts, n = self._session(spec.inst.exchange, ordinal)
        under = spec.under
        uday = under.day(ordinal)
        offset = open_ts - uday.open_ts if uday else 0
        log_const = under.close_before(ordinal) if uday is None else 0.0
        iday = _IDay(ordinal, open_ts, n, uday, offset, log_const, 0.0, 0.0, 0.0)
        if spec.kind is not _Kind.INDEX:
            spot0, _ = self._spot(iday, 0, 1)
            liq = self._option_liquidity(spec, spot0, np.array([float(open_ts)]))[0]
            draws = uniforms(spec.salt, np.array([ordinal * 4, ordinal * 4 + 1], dtype=np.int64))
            iday.volume_lots = spec.liq.volume_lots * spec.scale * liq * (0.6 + draws[0])
            if spec.kind is not _Kind.CASH:
                iday.oi_open = spec.liq.oi_lots * spec.scale * liq * (0.9 + 0.2 * draws[1])
                iday.oi_change = iday.oi_open * 0.2 * (draws[0] - 0.4)
        return iday

    def _option_liquidity(self, spec: _Spec, spot: F64, ts: F64) -> F64:
        """1 at the money, falling away from it and with time to expiry (far months trade
        less); 1 for everything that is not an option."""
        if spec.kind is not _Kind.OPTION:
            return np.ones_like(spot)
        t = self._t_array(spec, ts)
        fwd = spot * np.exp(self.rate * t)
        _, m = self._smile(spec, fwd, t)
        out: F64 = np.maximum(np.exp(-0.25 * m * m), 0.002) / (1.0 + 4.0 * t)
        return out

    def _t_array(self, spec: _Spec, ts: F64) -> F64:
        if spec.cutoff is None:
            return np.zeros_like(ts)
        out: F64 = np.maximum(spec.cutoff - ts, 0.0) / black76.SECONDS_PER_YEAR
        return out

    def _smile(self, spec: _Spec, fwd: F64, t: F64) -> tuple[F64, F64]:
        """Volatility by strike: ATM vol tilted by skew and curvature in standardised
        moneyness m = ln(K/F) / (σ√T); puts (m < 0) richer, as in Indian index options."""
        root = np.sqrt(np.maximum(t, _MIN_T_SMILE))
        m = np.clip(np.log(spec.strike / fwd) / (spec.atm_vol * root), -4.0, 4.0)
        factor = np.clip(1.0 + spec.skew * m + spec.curvature * m * m, 0.5, 3.0)
        vol: F64 = spec.atm_vol * factor
        return vol, m

    # -- paths --------------------------------------------------------------------------------
    def _spot(self, iday: _IDay, lo: int, hi: int) -> tuple[F64, F64]:
        """Underlying spot and activity share for instrument seconds [lo, hi). Before the
        underlying opens it shows the previous close; after it closes, its close."""
        uday = iday.uday
        if uday is None:
            return np.exp(np.full(hi - lo, iday.spot_const)), np.zeros(hi - lo)
        a, b = lo + iday.offset, hi + iday.offset
        mid_lo, mid_hi = min(max(a, 0), uday.n), max(min(b, uday.n), 0)
        pre = max(min(b, 0) - a, 0)
        post = max(b - max(a, uday.n), 0)
        spots: list[F64] = []
        shares: list[F64] = []
        if pre:
            spots.append(np.exp(np.full(pre, uday.x_prev)))
            shares.append(np.zeros(pre))
        if mid_hi > mid_lo:
            spot, share = uday.segment(mid_lo, mid_hi)
            spots.append(spot)
            shares.append(share)
        if post:
            spots.append(np.exp(np.full(post, uday.x_close)))
            shares.append(np.ones(post))
        if len(spots) == 1:
            return spots[0], shares[0]
        return np.concatenate(spots), np.concatenate(shares)

    def _segment(self, spec: _Spec, iday: _IDay, lo: int, hi: int) -> _Seg:
        """The instrument's tape for seconds [lo, hi): every consumer (ticks, candles, day
        bars) goes through here, which is why they agree."""
        spot, share = self._spot(iday, lo, hi)
        ts = iday.open_ts + np.arange(lo, hi, dtype=np.float64)
        m = np.zeros(hi - lo)
        if spec.kind is _Kind.OPTION:
            t = self._t_array(spec, ts)
            fwd = spot * np.exp(self.rate * t)
            vol, m = self._smile(spec, fwd, t)
            price = black76.prices(fwd, spec.strike, t, vol, self.rate, spec.is_call)
        elif spec.kind is _Kind.FUTURE:
            price = spot * np.exp(self.rate * self._t_array(spec, ts))
        else:
            price = spot
        q = price / spec.tick
        ticks = np.maximum(np.floor(q + 0.5), 1.0)
        lots = np.floor(iday.volume_lots * share).astype(np.int64)
        oi = np.floor(iday.oi_open + iday.oi_change * share).astype(np.int64)
        return _Seg(spot, price, ticks.astype(np.int64), q < ticks, lots, oi, m, share)

    def _load_block(self, spec: _Spec, iday: _IDay, b: int) -> _Block:
        old = spec.block
        if old is not None and old.ordinal == iday.ordinal and old.index == len(iday.pre_hi) - 1:
            _append_block(iday, max(old.ticks), min(old.ticks))
        self._extend_prefix(spec, iday, b)
        lo, hi = b * BLOCK, min((b + 1) * BLOCK, iday.n)
        ext = 1 if lo > 0 else 0
        seg = self._segment(spec, iday, lo - ext, hi)
        ticks = seg.ticks[ext:]
        lots = seg.lots
        diff = np.diff(lots) if ext else np.concatenate(([lots[0]], np.diff(lots)))
        spread, gap, qty = self._book_shape(spec, seg, ext, lo, hi, iday.ordinal)
        blk = _Block(
            ordinal=iday.ordinal,
            index=b,
            ticks=ticks.tolist(),
            ask_side=seg.ask_side[ext:].tolist(),
            run_max=np.maximum.accumulate(ticks).tolist(),
            run_min=np.minimum.accumulate(ticks).tolist(),
            lots=lots[ext:].tolist(),
            ltq=(np.maximum(diff, 1) * spec.lot).tolist(),
            oi=(seg.oi[ext:] * spec.lot).tolist(),
            spread=spread,
            gap=gap,
            qty=qty,
        )
        spec.block = blk
        return blk

    def _extend_prefix(self, spec: _Spec, iday: _IDay, b: int) -> None:
        """Make the day high/low of all blocks before `b` known (one vector pass)."""
        done = len(iday.pre_hi) - 1
        if done >= b:
            return
        ticks = self._segment(spec, iday, done * BLOCK, b * BLOCK).ticks.reshape(-1, BLOCK)
        highs = np.maximum.accumulate(np.maximum(ticks.max(axis=1), iday.pre_hi[-1]))
        lows = np.minimum.accumulate(np.minimum(ticks.min(axis=1), iday.pre_lo[-1]))
        iday.pre_hi.extend(highs.tolist())
        iday.pre_lo.extend(lows.tolist())

    def _book_shape(
        self, spec: _Spec, seg: _Seg, ext: int, lo: int, hi: int, ordinal: int
    ) -> tuple[list[int], list[int], list[list[int]]]:
        """Spread (ticks), level spacing (ticks) and level sizes (units, whole lots) for each
        second."""
        count = hi - lo
        if spec.kind is _Kind.INDEX:
            return [0] * count, [0] * count, [[0] * (2 * LEVELS)] * count
        ticks = seg.ticks[ext:].astype(np.float64)
        liq = spec.liq
        seconds = np.arange(lo, hi, dtype=np.int64) + ordinal * DAY_SECONDS
        jitter = uniforms(spec.salt ^ 0x5EED, seconds) < 0.15
        depth = np.full(count, liq.depth_lots * spec.scale)
        if spec.kind is _Kind.OPTION:
            m = np.abs(seg.moneyness[ext:])
            spread = (
                liq.spread_base
                + np.floor(liq.spread_moneyness * m)
                + np.floor(seg.price[ext:] * liq.spread_premium / spec.tick)
            )
            depth *= np.maximum(np.exp(-0.25 * m * m), 0.01)
        else:
            spread = np.maximum(np.floor(ticks * liq.spread_bps * 1e-4 + 0.5), 1.0)
        spread = spread + jitter
        gap = 1 + (spread.astype(np.int64) - 1) // 3
        counters = seconds[:, None] * 16 + np.arange(2 * LEVELS, dtype=np.int64)[None, :]
        draw = uniforms(spec.salt, counters)
        deeper = 1.0 + 0.3 * (np.arange(2 * LEVELS) % LEVELS)
        lots = np.maximum(np.floor(depth[:, None] * (0.4 + 1.2 * draw) * deeper), 1.0)
        return (
            spread.astype(np.int64).tolist(),
            gap.tolist(),
            (lots.astype(np.int64) * spec.lot).tolist(),
        )

    # -- the tick -----------------------------------------------------------------------------
    def _book(self, spec: _Spec, iday: _IDay, blk: _Block, k: int, ts: int) -> Depth:
        td = spec.tick_dec
        lot = spec.lot
        last = blk.ticks[k]
        b = blk.index
        high = max(iday.pre_hi[b], blk.run_max[k])
        low = min(iday.pre_lo[b], blk.run_min[k])
        if iday.open_tick < 0:
            iday.open_tick = self._segment(spec, iday, 0, 1).ticks.tolist()[0]
        if iday.prev_close < 0:
            iday.prev_close = self._close_tick(
                spec, self._sessions.previous(spec.inst.exchange, iday.ordinal)
            )
        inst = spec.inst
        if spec.kind is _Kind.INDEX:
            bid = ask = _ZERO
            bids = asks = (_EMPTY_LEVEL,) * LEVELS
            volume = oi = ltq = 0
        else:
            spread = blk.spread[k]
            if blk.ask_side[k]:
                bid_t, ask_t = last - spread, last
            else:
                bid_t, ask_t = last, last + spread
            if bid_t < 1:
                bid_t, ask_t = 1, 1 + spread
            gap = blk.gap[k]
            qty = blk.qty[k]  # units, bids then asks
            bid_prices = range(bid_t, bid_t - LEVELS * gap, -gap)
            ask_prices = range(ask_t, ask_t + LEVELS * gap, gap)
            # List comprehensions, not generators: this runs ten thousand times a second.
            if bid_prices[-1] >= 1:
                bids = tuple([DepthLevel(td * p, n) for p, n in zip(bid_prices, qty, strict=False)])
            else:  # near the price floor: levels below one tick stay empty
                bids = tuple(
                    [
                        DepthLevel(td * p, n) if p >= 1 else _EMPTY_LEVEL
                        for p, n in zip(bid_prices, qty, strict=False)
                    ]
                )
            asks = tuple(
                [DepthLevel(td * p, n) for p, n in zip(ask_prices, qty[LEVELS:], strict=True)]
            )
            bid, ask = td * bid_t, td * ask_t
            volume = blk.lots[k] * lot
            oi = blk.oi[k] if spec.kind is not _Kind.CASH else 0
            ltq = blk.ltq[k]
        quote = Quote(
            symbol=inst.symbol,
            exchange=inst.exchange,
            ltp=td * last,
            bid=bid,
            ask=ask,
            open=td * iday.open_tick,
            high=td * high,
            low=td * low,
            prev_close=td * iday.prev_close,
            volume=volume,
            oi=oi,
            timestamp=datetime.fromtimestamp(ts, UTC),
            ltq=ltq,
            bid_qty=bids[0].quantity,
            ask_qty=asks[0].quantity,
        )
        return Depth(quote, bids, asks)

    def _close_tick(self, spec: _Spec, ordinal: int) -> int:
        found = spec.closes.get(ordinal)
        if found is None:
            iday = spec.days.get(ordinal) or self._make_iday(spec, ordinal)
            found = int(self._segment(spec, iday, iday.n - 1, iday.n).ticks[0])
            spec.closes[ordinal] = found
        return found

    # -- history ------------------------------------------------------------------------------
    def _intraday_candles(
        self, spec: _Spec, size: int, start_ts: float, end_ts: float
    ) -> list[Candle]:
        out: list[Candle] = []
        exchange = spec.inst.exchange
        for ordinal in range(ordinal_of(start_ts), ordinal_of(end_ts) + 1):
            session = self._sessions.get(exchange, ordinal)
            if session is None:
                continue
            open_ts, n = session
            first = max(math.ceil((start_ts - open_ts) / size), 0)
            last = min(-(-n // size), math.ceil((end_ts - open_ts) / size))
            if last <= first:
                continue
            lo = first * size
            hi = min(last * size, n, math.ceil(end_ts - open_ts))
            iday = spec.days.get(ordinal) or self._make_iday(spec, ordinal)
            out.extend(self._bars(spec, iday, lo, hi, size))
        return out

    def _bars(self, spec: _Spec, iday: _IDay, lo: int, hi: int, size: int) -> list[Candle]:
        ext = 1 if lo > 0 else 0
        seg = self._segment(spec, iday, lo - ext, hi)
        ticks = seg.ticks[ext:]
        starts = np.arange(0, hi - lo, size)
        ends = np.minimum(starts + size, hi - lo) - 1
        opens = ticks[starts].tolist()
        highs = np.maximum.reduceat(ticks, starts).tolist()
        lows = np.minimum.reduceat(ticks, starts).tolist()
        closes = ticks[ends].tolist()
        cum = seg.lots
        before = np.concatenate(([cum[0] if ext else 0], cum[ext:][ends[:-1]]))
        vols = (cum[ext:][ends] - before).tolist()
        ois = seg.oi[ext:][ends].tolist()
        td, lot = spec.tick_dec, spec.lot
        indexed = spec.kind is _Kind.INDEX
        cash = spec.kind is _Kind.CASH
        return [
            Candle(
                start=datetime.fromtimestamp(iday.open_ts + lo + int(s), UTC),
                open=td * o,
                high=td * h,
                low=td * lw,
                close=td * c,
                volume=0 if indexed else v * lot,
                oi=0 if indexed or cash else i * lot,
            )
            for s, o, h, lw, c, v, i in zip(
                starts.tolist(), opens, highs, lows, closes, vols, ois, strict=True
            )
        ]

    def _day_bar(self, spec: _Spec, ordinal: int, end_ts: float) -> tuple[int, ...] | None:
        """(open, high, low, close, volume lots, oi lots) of the session on `ordinal`, as far
        as it had traded before `end_ts`; None if it had not opened."""
        session = self._sessions.get(spec.inst.exchange, ordinal)
        if session is None:
            return None
        open_ts, n = session
        hi = min(n, math.ceil(end_ts - open_ts))
        if hi <= 0:
            return None
        if hi == n and ordinal in spec.day_bars:
            return spec.day_bars[ordinal]
        iday = spec.days.get(ordinal) or self._make_iday(spec, ordinal)
        seg = self._segment(spec, iday, 0, hi)
        t = seg.ticks
        bar = (
            int(t[0]),
            int(t.max()),
            int(t.min()),
            int(t[-1]),
            int(seg.lots[-1]),
            int(seg.oi[-1]),
        )
        if hi == n:
            spec.day_bars[ordinal] = bar
        return bar

    def _calendar_candles(
        self, spec: _Spec, interval: Interval, start_ts: float, end_ts: float
    ) -> list[Candle]:
        groups: dict[int, list[tuple[int, ...]]] = {}
        for ordinal in range(ordinal_of(start_ts), ordinal_of(end_ts) + 1):
            period = period_start(date.fromordinal(ordinal), interval).toordinal()
            if not start_ts <= midnight_ts(period) < end_ts:
                continue
            bar = self._day_bar(spec, ordinal, end_ts)
            if bar is not None:
                groups.setdefault(period, []).append(bar)
        td, lot = spec.tick_dec, spec.lot
        indexed = spec.kind is _Kind.INDEX
        cash = spec.kind is _Kind.CASH
        return [
            Candle(
                start=datetime.fromtimestamp(midnight_ts(period), UTC),
                open=td * bars[0][0],
                high=td * max(b[1] for b in bars),
                low=td * min(b[2] for b in bars),
                close=td * bars[-1][3],
                volume=0 if indexed else sum(b[4] for b in bars) * lot,
                oi=0 if indexed or cash else bars[-1][5] * lot,
            )
            for period, bars in groups.items()
        ]


_UNDERLYING_SEARCH = (
    Exchange.NSE_INDEX,
    Exchange.NSE,
    Exchange.BSE_INDEX,
    Exchange.BSE,
    Exchange.MCX_INDEX,
    Exchange.MCX,
    Exchange.CDS,
    Exchange.CRYPTO,
)


def _append_block(iday: _IDay, hi: int, lo: int) -> None:
    iday.pre_hi.append(max(iday.pre_hi[-1], hi))
    iday.pre_lo.append(min(iday.pre_lo[-1], lo))


def _default_volatility(key: tuple[Exchange, str]) -> float:
    exchange, symbol = key
    if symbol in INDEX_VOLATILITY:
        return INDEX_VOLATILITY[symbol]
    if exchange in _CLASS_VOLATILITY:
        return _CLASS_VOLATILITY[exchange]
    if exchange.is_index:
        return 0.15
    # Large caps trade at 20-35 %: spread names over that band, stably by symbol.
    return 0.20 + 0.15 * ((stable_key("vol", symbol) >> 11) * _2_53)


def _epoch(at: datetime) -> float:
    if at.tzinfo is None:
        raise ValidationError("at", "must be a timezone-aware instant")
    return at.timestamp()


def period_start(day: date, interval: Interval) -> date:
    """First calendar day of the D/W/M/Q/Y bar containing `day` (weeks start on Monday)."""
    if interval is Interval.W:
        return day - timedelta(days=day.weekday())
    if interval is Interval.M:
        return day.replace(day=1)
    if interval is Interval.Q:
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if interval is Interval.Y:
        return date(day.year, 1, 1)
    if interval is Interval.D:
        return day
    raise ValidationError("interval", f"{interval} is not a calendar interval")
