"""The simulated market: determinism, the book, derivatives pricing, and candles that agree
with the ticks."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from openalgo_lab.brokers.sandbox.market import SimulatedMarket
from openalgo_lab.domain.calendar import IST, MarketCalendar, MarketHours
from openalgo_lab.domain.enums import Exchange, InstrumentType, Interval
from openalgo_lab.domain.errors import NotFoundError, ValidationError
from openalgo_lab.domain.models import Depth, Instrument
from openalgo_lab.domain.money import is_multiple

D = Decimal
RATE = 0.065
REFS = {
    (Exchange.NSE_INDEX, "NIFTY"): D("26000"),
    (Exchange.NSE_INDEX, "INDIAVIX"): D("12.50"),
    (Exchange.NSE, "RELIANCE"): D("1400"),
    (Exchange.NSE, "SBIN"): D("180"),
}
NIFTY = Instrument("NIFTY", Exchange.NSE_INDEX, "NIFTY", InstrumentType.INDEX, "1", D("0.05"))
VIX = Instrument("INDIAVIX", Exchange.NSE_INDEX, "INDIAVIX", InstrumentType.INDEX, "2", D("0.0025"))
RELIANCE = Instrument("RELIANCE", Exchange.NSE, "RELIANCE", InstrumentType.EQ, "3", D("0.05"))
SBIN = Instrument("SBIN", Exchange.NSE, "SBIN", InstrumentType.EQ, "4", D("0.01"))
WEEKLY = date(2026, 12, 1)
MONTHLY = date(2026, 12, 29)


def future(name: str, under: Exchange, expiry: date, lot: int, tick: str = "0.05") -> Instrument:
    sym = f"{name}{expiry:%d%b%y}FUT".upper()
    return Instrument(
        sym,
        Exchange.NFO,
        name,
        InstrumentType.FUT,
        sym,
        D(tick),
        lotsize=lot,
        expiry=expiry,
        underlying=name,
        underlying_exchange=under,
    )


def option(
    name: str, under: Exchange, expiry: date, strike: int, kind: str, lot: int, tick: str = "0.05"
) -> Instrument:
    sym = f"{name}{expiry:%d%b%y}{strike}{kind}".upper()
    return Instrument(
        sym,
        Exchange.NFO,
        name,
        InstrumentType(kind),
        sym,
        D(tick),
        lotsize=lot,
        expiry=expiry,
        strike=D(strike),
        underlying=name,
        underlying_exchange=under,
    )


NIFTY_FUT = future("NIFTY", Exchange.NSE_INDEX, MONTHLY, 65)
RELIANCE_FUT = future("RELIANCE", Exchange.NSE, MONTHLY, 500)
CHAIN = {
    (k, kind): option("NIFTY", Exchange.NSE_INDEX, WEEKLY, k, kind, 65)
    for k in range(24000, 28001, 250)
    for kind in ("CE", "PE")
}
ATM_CE = CHAIN[(26000, "CE")]
FAR_CE = CHAIN[(28000, "CE")]
RELIANCE_CE = option("RELIANCE", Exchange.NSE, MONTHLY, 1400, "CE", 500)
TRADABLE = [RELIANCE, SBIN, NIFTY_FUT, RELIANCE_FUT, ATM_CE, FAR_CE, RELIANCE_CE]
EVERYTHING = [NIFTY, VIX, *TRADABLE]


def ist(day: str, hms: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hms}").replace(tzinfo=IST).astimezone(UTC)


def market(seed: int = 11, **kw: object) -> SimulatedMarket:
    return SimulatedMarket(REFS, seed=seed, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def mkt() -> SimulatedMarket:
    return market()


def instants(day: str = "2026-11-25", count: int = 25, seed: int = 1) -> list[datetime]:
    rng = random.Random(seed)
    base = ist(day, "09:15:00")
    return sorted(base + timedelta(seconds=rng.uniform(0, 6 * 3600 + 900)) for _ in range(count))


# -- determinism ------------------------------------------------------------------------------
def test_same_seed_same_ticks_in_any_order() -> None:
    times = instants(count=15)
    a, b = market(seed=5), market(seed=5)
    forward = {(i.symbol, t): a.depth(i, t) for t in times for i in EVERYTHING}
    backward = {(i.symbol, t): b.depth(i, t) for t in reversed(times) for i in reversed(EVERYTHING)}
    assert forward == backward


def test_different_seeds_differ() -> None:
    t = ist("2026-11-25", "11:00:00")
    for inst in (NIFTY, RELIANCE, ATM_CE):
        assert market(seed=1).depth(inst, t).quote.ltp != market(seed=2).depth(inst, t).quote.ltp


def test_reference_price_is_the_close_before_the_anchor(mkt: SimulatedMarket) -> None:
    # 24 Nov 2026 is a holiday: the last close before the anchor is 23 Nov.
    quote = mkt.depth(NIFTY, ist("2026-11-24", "12:00:00")).quote
    assert quote.ltp == D("26000.00") and quote.timestamp == ist("2026-11-23", "15:29:59")
    assert mkt.depth(RELIANCE, ist("2026-11-25", "10:00:00")).quote.prev_close == D("1400.00")


# -- the book ---------------------------------------------------------------------------------
def check_book(depth: Depth, inst: Instrument) -> None:
    q, tick, lot = depth.quote, inst.tick_size, inst.lotsize
    prices = [q.ltp, q.open, q.high, q.low, q.prev_close, q.bid, q.ask]
    prices += [lvl.price for lvl in depth.bids + depth.asks]
    assert all(is_multiple(p, tick) for p in prices), prices
    assert q.low <= q.ltp <= q.high and q.low <= q.open <= q.high
    assert len(depth.bids) == len(depth.asks) == 5
    if inst.exchange.is_index:
        assert q.bid == q.ask == 0 and q.volume == 0 and depth.totalbuyqty == 0
        return
    assert q.bid <= q.ltp <= q.ask and q.bid < q.ask and q.bid >= tick
    bids = [lvl.price for lvl in depth.bids if lvl.quantity]
    asks = [lvl.price for lvl in depth.asks]
    assert bids == sorted(bids, reverse=True) and len(set(bids)) == len(bids)
    assert asks == sorted(asks) and len(set(asks)) == len(asks)
    assert bids[0] == q.bid and asks[0] == q.ask
    assert all(lvl.quantity > 0 and lvl.quantity % lot == 0 for lvl in depth.asks)
    assert all(lvl.quantity % lot == 0 for lvl in depth.bids)
    assert q.volume % lot == 0 and q.ltq % lot == 0 and q.ltq > 0
    assert q.bid_qty == depth.bids[0].quantity and q.ask_qty == depth.asks[0].quantity
    if inst.is_derivative:
        assert q.oi > 0 and q.oi % lot == 0
    else:
        assert q.oi == 0


@pytest.mark.parametrize("inst", EVERYTHING, ids=lambda i: i.symbol)
def test_book_invariants(mkt: SimulatedMarket, inst: Instrument) -> None:
    for t in instants(count=40, seed=sum(map(ord, inst.symbol))):
        check_book(mkt.depth(inst, t), inst)


def test_volume_accumulates_and_prices_move(mkt: SimulatedMarket) -> None:
    t0 = ist("2026-11-25", "09:15:00")
    quotes = [mkt.depth(RELIANCE, t0 + timedelta(seconds=s)).quote for s in range(0, 1800, 7)]
    volumes = [q.volume for q in quotes]
    assert volumes == sorted(volumes) and volumes[-1] > volumes[0]
    assert len({q.ltp for q in quotes}) > 20
    highs = [q.high for q in quotes]
    lows = [q.low for q in quotes]
    assert highs == sorted(highs) and lows == sorted(lows, reverse=True)


def test_far_otm_options_are_thinner_and_wider(mkt: SimulatedMarket) -> None:
    t = ist("2026-11-25", "11:00:00")
    atm, far = mkt.depth(ATM_CE, t), mkt.depth(FAR_CE, t)
    assert far.totalbuyqty + far.totalsellqty < atm.totalbuyqty + atm.totalsellqty
    assert far.quote.ask - far.quote.bid >= atm.quote.ask - atm.quote.bid
    assert atm.quote.ask - atm.quote.bid <= 2 * ATM_CE.tick_size
    assert far.quote.volume < atm.quote.volume


# -- derivatives ------------------------------------------------------------------------------
@pytest.mark.parametrize("when", ["2026-11-25T09:20:00", "2026-11-27T13:05:41", "2026-12-01T15:00"])
def test_put_call_parity_within_a_tick(mkt: SimulatedMarket, when: str) -> None:
    t = datetime.fromisoformat(when).replace(tzinfo=IST)
    tick = float(ATM_CE.tick_size)
    fwd = mkt.forward(ATM_CE, t)
    years = mkt.time_to_expiry(ATM_CE, t)
    for strike in range(24000, 28001, 250):
        call = float(mkt.depth(CHAIN[(strike, "CE")], t).quote.ltp)
        put = float(mkt.depth(CHAIN[(strike, "PE")], t).quote.ltp)
        parity = math.exp(-RATE * years) * (fwd - strike)
        floored = min(call, put) <= tick
        assert abs(call - put - parity) <= (1.5 if floored else 1.0) * tick + 1e-9, strike


def test_options_never_below_intrinsic_or_a_tick(mkt: SimulatedMarket) -> None:
    for t in instants("2026-12-01", count=8):  # expiry day: time value collapses
        fwd = mkt.forward(ATM_CE, t)
        years = mkt.time_to_expiry(ATM_CE, t)
        spot = float(mkt.depth(NIFTY, t).quote.ltp)
        for (strike, kind), inst in CHAIN.items():
            ltp = float(mkt.depth(inst, t).quote.ltp)
            raw = fwd - strike if kind == "CE" else strike - fwd
            assert ltp >= 0.05
            assert ltp >= math.exp(-RATE * years) * max(raw, 0.0) - 0.025
            if kind == "CE":
                assert ltp >= spot - strike - 0.05


def test_option_price_is_black76_on_the_model_vol(mkt: SimulatedMarket) -> None:
    from openalgo_lab.domain import black76

    t = ist("2026-11-26", "10:30:00")
    for inst in (ATM_CE, FAR_CE, CHAIN[(24500, "PE")]):
        fair = black76.price(
            mkt.forward(inst, t),
            float(inst.strike),
            mkt.time_to_expiry(inst, t),
            mkt.volatility(inst, t),
            RATE,
            inst.instrumenttype is InstrumentType.CE,
        )
        assert abs(float(mkt.depth(inst, t).quote.ltp) - max(fair, 0.05)) <= 0.025 + 1e-9
    # The smile: both wings above the money, the put wing steeper (Indian index skew).
    atm, put_wing, call_wing = (
        mkt.volatility(i, t) for i in (ATM_CE, CHAIN[(24000, "PE")], FAR_CE)
    )
    assert put_wing > call_wing >= atm


def test_futures_trade_above_spot_by_carry(mkt: SimulatedMarket) -> None:
    for t in instants(count=10):
        spot = float(mkt.depth(NIFTY, t).quote.ltp)
        fut = float(mkt.depth(NIFTY_FUT, t).quote.ltp)
        years = mkt.time_to_expiry(NIFTY_FUT, t)
        assert years > 0 and fut > spot
        assert fut == pytest.approx(spot * math.exp(RATE * years), abs=0.05 + 0.025 * 2)
    after = ist("2026-12-29", "15:35:00")  # past the cut-off: the future is the spot
    assert mkt.time_to_expiry(NIFTY_FUT, after) == 0.0
    assert mkt.depth(NIFTY_FUT, after).quote.ltp == mkt.depth(NIFTY, after).quote.ltp


# -- sessions ---------------------------------------------------------------------------------
def test_prices_hold_outside_the_session(mkt: SimulatedMarket) -> None:
    last = mkt.depth(RELIANCE, ist("2026-11-23", "15:29:59"))
    for t in ("2026-11-23T15:30:00", "2026-11-23T20:00", "2026-11-24T11:00", "2026-11-25T09:14:59"):
        assert mkt.depth(RELIANCE, datetime.fromisoformat(t).replace(tzinfo=IST)) == last
    opening = mkt.depth(RELIANCE, ist("2026-11-25", "09:15:00")).quote
    assert opening.prev_close == last.quote.ltp
    assert opening.open == opening.ltp == opening.high == opening.low


def test_derivatives_follow_their_own_session(mkt: SimulatedMarket) -> None:
    # NFO trades to 15:40 while the index stops at 15:30: the future keeps its last spot.
    a = mkt.depth(NIFTY_FUT, ist("2026-11-25", "15:35:00")).quote
    b = mkt.depth(NIFTY_FUT, ist("2026-11-25", "16:30:00")).quote
    assert b.timestamp == ist("2026-11-25", "15:39:59")
    assert abs(a.ltp - b.ltp) <= NIFTY_FUT.tick_size


def test_always_open_moves_at_night() -> None:
    m = market(calendar=MarketCalendar(hours=MarketHours.ALWAYS))
    base = ist("2026-11-24", "02:00:00")  # a holiday, at night
    ltps = {m.depth(RELIANCE, base + timedelta(minutes=n)).quote.ltp for n in range(30)}
    assert len(ltps) > 5


# -- candles ----------------------------------------------------------------------------------
@pytest.mark.parametrize("inst", [RELIANCE, NIFTY, ATM_CE, NIFTY_FUT], ids=lambda i: i.symbol)
@pytest.mark.parametrize("interval", [Interval.S5, Interval.M1, Interval.M15, Interval.H1])
def test_candles_agree_with_ticks(inst: Instrument, interval: Interval) -> None:
    ticks, history = market(seed=3), market(seed=3)  # separate caches: no shared state
    start, end = ist("2026-11-25", "09:00:00"), ist("2026-11-25", "16:00:00")
    bars = history.candles(inst, interval, start, end)
    size = interval.seconds
    assert size is not None and bars
    session_open = ist("2026-11-25", "09:15:00")
    assert bars[0].start == session_open
    assert all((b.start - session_open).total_seconds() % size == 0 for b in bars)
    rng = random.Random(size)
    for bar in rng.sample(bars, min(len(bars), 12)):
        length = min(size, (ist("2026-11-25", "15:40:00") - bar.start).total_seconds())
        last = bar.start + timedelta(seconds=length - 1)
        q_last = ticks.depth(inst, last + timedelta(milliseconds=500)).quote
        q_first = ticks.depth(inst, bar.start).quote
        if q_last.timestamp == last:  # the bar's last second is inside the session
            assert bar.close == q_last.ltp
        assert bar.open == q_first.ltp
        for _ in range(5):
            t = bar.start + timedelta(seconds=rng.uniform(0, length))
            assert bar.low <= ticks.depth(inst, t).quote.ltp <= bar.high
        before = ticks.depth(inst, bar.start - timedelta(milliseconds=1)).quote
        if not inst.exchange.is_index and q_last.timestamp == last:
            started = before.volume if before.timestamp.date() == bar.start.date() else 0
            assert q_last.volume - started == bar.volume


def test_intervals_nest_and_volumes_sum(mkt: SimulatedMarket) -> None:
    start, end = ist("2026-11-25", "00:00:00"), ist("2026-11-26", "00:00:00")
    one = mkt.candles(RELIANCE, Interval.M1, start, end)
    five = mkt.candles(RELIANCE, Interval.M5, start, end)
    assert len(one) == 375 and len(five) == 75
    for i, bar in enumerate(five):
        group = one[5 * i : 5 * i + 5]
        assert bar.open == group[0].open and bar.close == group[-1].close
        assert bar.high == max(b.high for b in group) and bar.low == min(b.low for b in group)
        assert bar.volume == sum(b.volume for b in group)
    (day,) = mkt.candles(RELIANCE, Interval.D, start, end)
    close = mkt.depth(RELIANCE, ist("2026-11-25", "18:00:00")).quote
    assert (day.open, day.high, day.low, day.close, day.volume) == (
        close.open,
        close.high,
        close.low,
        close.ltp,
        close.volume,
    )
    assert day.volume == sum(b.volume for b in one)
    assert day.start == ist("2026-11-25", "00:00:00")


def test_candles_stop_at_end(mkt: SimulatedMarket) -> None:
    now = ist("2026-11-26", "10:07:30")
    bars = mkt.candles(ATM_CE, Interval.M5, ist("2026-11-26", "09:00"), now)
    assert bars[-1].start == ist("2026-11-26", "10:05:00")
    tick = mkt.depth(ATM_CE, now - timedelta(seconds=1)).quote
    assert bars[-1].close == tick.ltp
    (day,) = mkt.candles(ATM_CE, Interval.D, ist("2026-11-26", "00:00"), now)
    assert (day.high, day.low, day.close) == (tick.high, tick.low, tick.ltp)


def test_weekly_and_monthly_aggregate_daily(mkt: SimulatedMarket) -> None:
    start, end = ist("2026-08-01", "00:00:00"), ist("2026-11-01", "00:00:00")
    daily = mkt.candles(SBIN, Interval.D, start, end)
    assert all(b.start.astimezone(IST).weekday() < 5 for b in daily)
    for interval in (Interval.W, Interval.M, Interval.Q):
        for bar in mkt.candles(SBIN, interval, start, end):
            nxt = {
                Interval.W: bar.start + timedelta(days=7),
                Interval.M: (bar.start.astimezone(IST) + timedelta(days=32)).replace(day=1),
                Interval.Q: (bar.start.astimezone(IST) + timedelta(days=93)).replace(day=1),
            }[interval]
            days = [d for d in daily if bar.start <= d.start < nxt]
            assert days, bar
            assert (bar.open, bar.close) == (days[0].open, days[-1].close)
            assert bar.high == max(d.high for d in days) and bar.low == min(d.low for d in days)
            assert bar.volume == sum(d.volume for d in days)
    months = mkt.candles(SBIN, Interval.M, start, end)
    assert [m.start.astimezone(IST).month for m in months] == [8, 9, 10]
    (year,) = mkt.candles(SBIN, Interval.Y, ist("2026-01-01", "00:00"), ist("2026-02-01", "00:00"))
    assert year.start == ist("2026-01-01", "00:00:00")


def test_every_interval_is_served(mkt: SimulatedMarket) -> None:
    start, end = ist("2026-11-25", "09:15:00"), ist("2026-11-25", "09:30:00")
    for interval in Interval:
        if interval.seconds is not None:
            bars = mkt.candles(NIFTY_FUT, interval, start, end)
            assert bars and bars[0].start == start and bars[-1].start < end
            assert all(b.oi > 0 for b in bars)
    assert mkt.candles(NIFTY, Interval.M1, end, start) == []


# -- volatility -------------------------------------------------------------------------------
def annualised(m: SimulatedMarket, inst: Instrument) -> float:
    bars = m.candles(inst, Interval.D, ist("2025-11-20", "00:00"), ist("2026-11-24", "00:00"))
    closes = np.array([float(b.close) for b in bars])
    assert len(closes) > 240
    return float(np.diff(np.log(closes)).std() * math.sqrt(252))


def test_volatility_is_realistic() -> None:
    m = market(seed=21)
    index_vol = annualised(m, NIFTY)
    stock_vol = annualised(m, RELIANCE)
    vix_vol = annualised(m, VIX)
    assert 0.09 < index_vol < 0.18
    assert 0.15 < stock_vol < 0.42
    assert vix_vol > 0.5
    # VIX mean-reverts: it stays near its level over a year.
    weeks = m.candles(VIX, Interval.W, ist("2025-11-24", "00:00"), ist("2026-11-24", "00:00"))
    assert min(float(w.close) for w in weeks) > 5 and max(float(w.close) for w in weeks) < 30


# -- errors -----------------------------------------------------------------------------------
def test_unknown_underlying_is_not_found(mkt: SimulatedMarket) -> None:
    tcs = Instrument("TCS", Exchange.NSE, "TCS", InstrumentType.EQ, "9", D("0.05"))
    with pytest.raises(NotFoundError, match="TCS"):
        mkt.depth(tcs, ist("2026-11-25", "10:00:00"))
    orphan = option("TCS", Exchange.NSE, MONTHLY, 3000, "CE", 175)
    with pytest.raises(NotFoundError, match="TCS"):
        mkt.depth(orphan, ist("2026-11-25", "10:00:00"))


def test_bse_listing_shares_the_nse_reference(mkt: SimulatedMarket) -> None:
    bse = Instrument("RELIANCE", Exchange.BSE, "RELIANCE", InstrumentType.EQ, "5", D("0.05"))
    t = ist("2026-11-25", "12:00:00")
    assert mkt.depth(bse, t).quote.ltp == mkt.depth(RELIANCE, t).quote.ltp


def test_naive_instant_is_refused(mkt: SimulatedMarket) -> None:
    with pytest.raises(ValidationError):
        mkt.depth(RELIANCE, datetime(2026, 11, 25, 10, 0))
