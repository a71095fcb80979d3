"""Replay mode: stored bars played back as ticks, and served back as candles."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openalgo_lab.brokers.sandbox.replay import (
    ReplayMarket,
    intrabar_path,
    path_at,
    read_history_csv,
)
from openalgo_lab.domain.calendar import IST
from openalgo_lab.domain.enums import Exchange, InstrumentType, Interval
from openalgo_lab.domain.errors import NotFoundError, ValidationError
from openalgo_lab.domain.models import Candle, Instrument
from openalgo_lab.domain.money import is_multiple

D = Decimal
SBIN = Instrument("SBIN", Exchange.NSE, "SBIN", InstrumentType.EQ, "3045", D("0.05"))
FUT = Instrument(
    "NIFTY29DEC26FUT",
    Exchange.NFO,
    "NIFTY",
    InstrumentType.FUT,
    "1",
    D("0.05"),
    lotsize=65,
    underlying="NIFTY",
    underlying_exchange=Exchange.NSE_INDEX,
)


def ist(day: str, hms: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hms}").replace(tzinfo=IST).astimezone(UTC)


def minute_bars(day: str, count: int, start: str = "09:15:00") -> list[Candle]:
    """A deterministic walk of one-minute bars, some opening near the high, some near the low."""
    out: list[Candle] = []
    price = D("800.00")
    t0 = ist(day, start)
    for i in range(count):
        o = price
        c = o + D("0.05") * ((i * 7) % 11 - 5)
        h = max(o, c) + D("0.05") * (i % 4 + 1)
        lo = min(o, c) - D("0.05") * ((i * 3) % 5 + 1)
        out.append(Candle(t0 + timedelta(minutes=i), o, h, lo, c, 1000 + 10 * i, 0))
        price = c
    return out


DAY1 = minute_bars("2026-11-25", 30)
DAY2 = minute_bars("2026-11-26", 30)


@pytest.fixture
def replay() -> ReplayMarket:
    return ReplayMarket({SBIN.key: DAY1 + DAY2})


def second_by_second(m: ReplayMarket, bar: Candle) -> list[Decimal]:
    return [m.depth(SBIN, bar.start + timedelta(seconds=s)).quote.ltp for s in range(60)]


def test_path_hits_open_high_low_close_in_order(replay: ReplayMarket) -> None:
    for bar in DAY1[:12]:
        path = second_by_second(replay, bar)
        assert path[0] == bar.open and path[-1] == bar.close
        assert max(path) == bar.high and min(path) == bar.low
        first_high, first_low = path.index(bar.high), path.index(bar.low)
        if abs(bar.high - bar.open) <= abs(bar.open - bar.low):
            assert first_high < first_low
        else:
            assert first_low < first_high
        moves = [b - a for a, b in itertools.pairwise(path) if b != a]
        turns = sum(1 for a, b in itertools.pairwise(moves) if a * b < 0)
        assert turns <= 2  # O → extreme → extreme → C, nothing else


def test_book_around_the_ltp(replay: ReplayMarket) -> None:
    for bar in DAY1[:5]:
        for s in range(0, 60, 7):
            depth = replay.depth(SBIN, bar.start + timedelta(seconds=s))
            q = depth.quote
            assert q.bid <= q.ltp <= q.ask and q.ask - q.bid == SBIN.tick_size
            assert q.low <= q.ltp <= q.high
            assert all(is_multiple(lvl.price, SBIN.tick_size) for lvl in depth.bids + depth.asks)
            assert [lvl.price for lvl in depth.bids] == sorted(
                (lvl.price for lvl in depth.bids), reverse=True
            )
            assert q.timestamp == bar.start + timedelta(seconds=s)


def test_lot_multiples_for_derivatives() -> None:
    m = ReplayMarket({FUT.key: DAY1})
    depth = m.depth(FUT, ist("2026-11-25", "09:20:30"))
    assert all(lvl.quantity % 65 == 0 and lvl.quantity > 0 for lvl in depth.asks)


def test_day_statistics_and_prev_close(replay: ReplayMarket) -> None:
    at = ist("2026-11-25", "09:24:30")
    q = replay.depth(SBIN, at).quote
    done = DAY1[:9]
    assert q.open == DAY1[0].open
    assert q.high >= max(b.high for b in done) and q.low <= min(b.low for b in done)
    assert q.volume >= sum(b.volume for b in done)
    assert q.prev_close == DAY1[0].open  # no earlier day: the first open stands in
    nxt = replay.depth(SBIN, ist("2026-11-26", "09:15:00")).quote
    assert nxt.prev_close == DAY1[-1].close and nxt.volume < DAY2[0].volume


def test_holds_between_and_around_bars(replay: ReplayMarket) -> None:
    after = replay.depth(SBIN, ist("2026-11-25", "15:00:00")).quote
    assert after.ltp == DAY1[-1].close and after.volume == sum(b.volume for b in DAY1)
    before = replay.depth(SBIN, ist("2026-11-20", "10:00:00")).quote
    assert before.ltp == DAY1[0].open and before.volume == 0


def test_ticks_lie_in_their_candles(replay: ReplayMarket) -> None:
    bars = replay.candles(SBIN, Interval.M5, ist("2026-11-25", "00:00"), ist("2026-11-27", "00:00"))
    assert len(bars) == 12
    for bar in bars:
        for s in range(0, 300, 13):
            ltp = replay.depth(SBIN, bar.start + timedelta(seconds=s)).quote.ltp
            assert bar.low <= ltp <= bar.high
        last = replay.depth(SBIN, bar.start + timedelta(seconds=299)).quote.ltp
        assert last == bar.close


def test_aggregation_to_coarser_intervals(replay: ReplayMarket) -> None:
    start, end = ist("2026-11-25", "00:00"), ist("2026-11-27", "00:00")
    five = replay.candles(SBIN, Interval.M5, start, end)
    first = DAY1[:5]
    assert five[0] == Candle(
        DAY1[0].start,
        first[0].open,
        max(b.high for b in first),
        min(b.low for b in first),
        first[-1].close,
        sum(b.volume for b in first),
        0,
    )
    same = replay.candles(SBIN, Interval.M1, start, end)
    assert same == DAY1 + DAY2
    days = replay.candles(SBIN, Interval.D, start, end)
    assert [d.start for d in days] == [ist("2026-11-25", "00:00"), ist("2026-11-26", "00:00")]
    assert days[1].open == DAY2[0].open and days[1].close == DAY2[-1].close
    assert days[0].volume == sum(b.volume for b in DAY1)
    (week,) = replay.candles(SBIN, Interval.W, ist("2026-11-23", "00:00"), end)
    assert week.high == max(d.high for d in days) and week.volume == sum(d.volume for d in days)
    hour = replay.candles(SBIN, Interval.H1, start, end)
    assert [h.start for h in hour] == [ist("2026-11-25", "09:15"), ist("2026-11-26", "09:15")]


def test_partial_bar_at_end_is_cut_along_the_path(replay: ReplayMarket) -> None:
    end = ist("2026-11-25", "09:17:20")
    bars = replay.candles(SBIN, Interval.M1, ist("2026-11-25", "09:00"), end)
    assert len(bars) == 3
    cut = bars[-1]
    ticks = [
        replay.depth(SBIN, ist("2026-11-25", "09:17:00") + timedelta(seconds=s)).quote.ltp
        for s in range(20)
    ]
    assert cut.open == ticks[0] and cut.close == ticks[-1]
    assert cut.high == max(ticks) and cut.low == min(ticks)
    assert cut.volume < DAY1[2].volume


def test_finer_intervals_are_refused(replay: ReplayMarket) -> None:
    start, end = ist("2026-11-25", "00:00"), ist("2026-11-26", "00:00")
    with pytest.raises(ValidationError, match=r"cannot be built"):
        replay.candles(SBIN, Interval.S30, start, end)
    with pytest.raises(ValidationError, match="1m"):
        replay.candles(SBIN, Interval.S45, start, end)
    assert replay.candles(SBIN, Interval.M3, start, end)
    daily = ReplayMarket(
        {
            SBIN.key: [
                Candle(ist(f"2026-11-{d}", "00:00"), D(800), D(810), D(790), D(805), 10)
                for d in (23, 25, 26)
            ]
        }
    )
    assert daily.interval_of(Exchange.NSE, "SBIN") is Interval.D
    with pytest.raises(ValidationError, match="finer than the stored D bars of SBIN"):
        daily.candles(SBIN, Interval.H1, start, end)
    assert len(daily.candles(SBIN, Interval.W, ist("2026-11-23", "00:00"), end)) == 1


def test_daily_bars_play_over_the_session() -> None:
    bars = [Candle(ist("2026-11-25", "00:00"), D(800), D(820), D(790), D(805), 22_500)]
    m = ReplayMarket({SBIN.key: bars}, interval=Interval.D)
    before_open = m.depth(SBIN, ist("2026-11-25", "09:00")).quote
    assert before_open.ltp == D(800)
    opening = ist("2026-11-25", "09:15")
    seen = {m.depth(SBIN, opening + timedelta(seconds=k)).quote.ltp for k in range(22_500)}
    assert {D(800), D(820), D(790), D(805)} <= seen
    assert m.depth(SBIN, ist("2026-11-25", "15:30")).quote.ltp == D(805)


def test_missing_symbol_is_not_found(replay: ReplayMarket) -> None:
    other = Instrument("TCS", Exchange.NSE, "TCS", InstrumentType.EQ, "9", D("0.05"))
    with pytest.raises(NotFoundError, match="TCS"):
        replay.depth(other, ist("2026-11-25", "10:00"))
    with pytest.raises(NotFoundError, match="TCS"):
        replay.candles(other, Interval.M1, ist("2026-11-25", "10:00"), ist("2026-11-25", "11:00"))


def test_bad_data_is_refused() -> None:
    bad = Candle(ist("2026-11-25", "09:15"), D(800), D(790), D(780), D(785), 1)
    with pytest.raises(ValidationError, match="inconsistent"):
        ReplayMarket({SBIN.key: [bad]}, interval=Interval.M1)
    odd = [DAY1[0], Candle(DAY1[0].start + timedelta(seconds=7), D(800), D(801), D(799), D(800), 1)]
    with pytest.raises(ValidationError, match="7s"):
        ReplayMarket({SBIN.key: odd})


def test_csv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sbin.csv"
    lines = ["timestamp,open,high,low,close,volume,oi"]
    lines += [f"{b.timestamp},{b.open},{b.high},{b.low},{b.close},{b.volume},{b.oi}" for b in DAY1]
    path.write_text("\n".join(lines) + "\n")
    assert read_history_csv(path) == DAY1
    m = ReplayMarket.from_csv({SBIN.key: path})
    assert (
        m.candles(SBIN, Interval.M1, ist("2026-11-25", "00:00"), ist("2026-11-26", "00:00")) == DAY1
    )
    iso = tmp_path / "iso.csv"
    iso.write_text("timestamp,open,high,low,close,volume\n2026-11-25 09:15:00,1,2,1,2,5\n")
    (candle,) = read_history_csv(iso)
    assert candle.start == ist("2026-11-25", "09:15:00") and candle.oi == 0
    broken = tmp_path / "broken.csv"
    broken.write_text("timestamp,open,high\n1,2,3\n")
    with pytest.raises(ValidationError, match="lacks columns"):
        read_history_csv(broken)


@settings(max_examples=300, deadline=None)
@given(
    o=st.integers(1, 2000),
    c=st.integers(1, 2000),
    up=st.integers(0, 300),
    down=st.integers(0, 300),
    seconds=st.integers(4, 14_400),
)
def test_intrabar_path_visits_all_four_prices(
    o: int, c: int, up: int, down: int, seconds: int
) -> None:
    h = max(o, c) + up
    lo = max(min(o, c) - down, 0)
    corners = intrabar_path(float(o), float(h), float(lo), float(c), seconds)
    assert path_at(corners, 0) == o and path_at(corners, seconds - 1) == c
    assert {p for _, p in corners} == {float(o), float(h), float(lo), float(c)}
    assert [s for s, _ in corners] == sorted(s for s, _ in corners)
    assert corners[-1][0] == seconds - 1
    for s, p in corners:  # each corner is really shown at its second
        assert path_at(corners, s) == p
    if seconds < 500:
        values = [path_at(corners, k) for k in range(seconds)]
        assert min(values) == lo and max(values) == h
