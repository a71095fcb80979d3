"""Replay mode: the sandbox trades against stored history instead of the simulation.

Bars are all we have, so the ticks inside a bar follow a fixed convention: open, then the
extreme nearer the open, then the other extreme, then the close, moving at constant speed over
the bar's seconds. It is deterministic (a replay is repeatable), every tick lies inside its
bar, the path touches all four prices, and the last second of a bar is its close, so candles
served back agree with the ticks a strategy saw. The book is synthesised around the LTP on the
instrument's tick grid.

Candles are served at the stored interval or coarser; a finer interval would mean inventing
data, so it is refused. A bar still in progress at `end` is cut at `end` along the same path,
which keeps a replay from showing the future.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path

from openalgo_lab.brokers.sandbox.market import (
    LEVELS,
    MarketData,
    Session,
    SessionTable,
    midnight_ts,
    ordinal_of,
    period_start,
)
from openalgo_lab.domain.calendar import IST, MarketCalendar
from openalgo_lab.domain.enums import Exchange, Interval
from openalgo_lab.domain.errors import NotFoundError, ValidationError
from openalgo_lab.domain.models import Candle, Depth, DepthLevel, Instrument, Quote
from openalgo_lab.progress import track

HISTORY_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume", "oi")
_DAY_SECONDS = 86_400
_FALLBACK_HOURS = (time(9, 15), time(15, 30))
_EMPTY_LEVEL = DepthLevel(Decimal(0), 0, 0)
_INTRADAY = {i.seconds: i for i in Interval if i.seconds is not None}

Corner = tuple[int, float]  # (second within the bar, price in ticks)


def intrabar_path(
    open_: float, high: float, low: float, close: float, seconds: int
) -> tuple[Corner, ...]:
    """Corners of the path through one bar: O → nearer of H/L → the other → C.

    Each leg gets seconds in proportion to its length (constant speed), and every leg that
    moves gets at least one second when the bar is long enough (four seconds or more), so the
    path really visits all four prices. With one second the only price shown is the close.
    """
    if seconds <= 1:
        return ((0, close),)
    first, second = (high, low) if abs(high - open_) <= abs(open_ - low) else (low, high)
    legs = (abs(first - open_), abs(second - first), abs(close - second))
    span = seconds - 1
    total = sum(legs)
    if total == 0:
        return ((0, open_), (span, close))
    s1 = round(span * legs[0] / total)
    s2 = round(span * (legs[0] + legs[1]) / total)
    g0, g1, g2 = (1 if leg > 0 else 0 for leg in legs)
    if g0 + g1 + g2 <= span:
        s1 = min(max(s1, g0), span - g1 - g2)
        s2 = min(max(s2, s1 + g1), span - g2)
    return ((0, open_), (s1, first), (s2, second), (span, close))


def path_at(corners: Sequence[Corner], k: int) -> float:
    """The path's price at second `k` (linear between corners)."""
    prev_s, prev_p = corners[0]
    if k <= prev_s:
        return prev_p
    for s, p in corners[1:]:
        if k <= s:
            if s == prev_s:
                return p
            return prev_p + (p - prev_p) * (k - prev_s) / (s - prev_s)
        prev_s, prev_p = s, p
    return prev_p


def path_extremes(corners: Sequence[Corner], k: int) -> tuple[float, float]:
    """Highest and lowest price of the path over seconds [0, k]."""
    now = path_at(corners, k)
    seen = [p for s, p in corners if s <= k]
    seen.append(now)
    return max(seen), min(seen)


def read_history_csv(path: str | Path) -> list[Candle]:
    """Read OpenAlgo history columns (timestamp, open, high, low, close, volume[, oi]).

    `timestamp` may be epoch seconds, epoch milliseconds or ISO 8601; an ISO time without a
    zone is taken as IST, the exchange's clock.
    """
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in HISTORY_COLUMNS[:6] if c not in (reader.fieldnames or [])]
        if missing:
            raise ValidationError("csv", f"{path} lacks columns {', '.join(missing)}")
        return [_row_candle(row, path, n) for n, row in enumerate(reader, start=2)]


def _row_candle(row: Mapping[str, str], path: str | Path, line: int) -> Candle:
    try:
        return Candle(
            start=_parse_instant(row["timestamp"].strip()),
            open=Decimal(row["open"].strip()),
            high=Decimal(row["high"].strip()),
            low=Decimal(row["low"].strip()),
            close=Decimal(row["close"].strip()),
            volume=int(float(row["volume"] or 0)),
            oi=int(float(row.get("oi") or 0)),
        )
    except (ArithmeticError, ValueError) as exc:
        raise ValidationError("csv", f"{path} line {line}: {exc}") from None


def _parse_instant(text: str) -> datetime:
    if text.isdigit():
        value = int(text)
        return datetime.fromtimestamp(value / 1000 if value > 10**11 else value, UTC)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=IST)
    return parsed.astimezone(UTC)


@dataclass(slots=True)
class _Series:
    """One instrument's stored bars with per-day running figures, ready for random access."""

    symbol: str
    interval: Interval
    candles: list[Candle]
    starts: list[int]
    ends: list[int]
    ohlc: list[tuple[float, float, float, float]]
    day: list[int]
    day_high: list[float]  # high of the same day's bars before this one (-inf if none)
    day_low: list[float]
    day_volume: list[int]
    day_open: list[float]
    prev_close: list[float]


class ReplayMarket(MarketData):
    """Stored candles played back as ticks and served back as candles.

    `bars` maps (exchange, symbol) to that instrument's candles. `interval` is the stored bar
    size; by default it is inferred from the spacing of each series. `calendar` places daily
    bars inside their session and aligns aggregated intraday bars to the session open.
    """

    def __init__(
        self,
        bars: Mapping[tuple[Exchange, str], Sequence[Candle]],
        *,
        interval: Interval | None = None,
        calendar: MarketCalendar | None = None,
        spread_ticks: int = 1,
    ) -> None:
        if spread_ticks < 1:
            raise ValidationError("spread_ticks", "must be at least 1")
        self.calendar = calendar or MarketCalendar()
        self.spread_ticks = spread_ticks
        self._sessions = SessionTable(self.calendar)
        self._series = {
            key: self._build(key, list(candles), interval) for key, candles in bars.items()
        }

    @classmethod
    def from_csv(
        cls,
        files: Mapping[tuple[Exchange, str], str | Path],
        *,
        interval: Interval | None = None,
        calendar: MarketCalendar | None = None,
        spread_ticks: int = 1,
        progress: bool | None = None,
    ) -> ReplayMarket:
        """One CSV of candles per instrument; `progress` counts the files read (see
        `openalgo_lab.progress`)."""
        items = track(files.items(), desc="loading history", unit=" files", enabled=progress)
        data = {key: read_history_csv(path) for key, path in items}
        return cls(data, interval=interval, calendar=calendar, spread_ticks=spread_ticks)

    def interval_of(self, exchange: Exchange, symbol: str) -> Interval:
        """The stored bar size of one instrument (the finest interval it can serve)."""
        return self._get(exchange, symbol).interval

    # -- building -------------------------------------------------------------------------
    def _build(
        self, key: tuple[Exchange, str], candles: list[Candle], interval: Interval | None
    ) -> _Series:
        exchange, symbol = key
        if not candles:
            raise ValidationError("bars", f"no candles for {exchange}:{symbol}")
        candles.sort(key=lambda c: c.start)
        for prev, cur in itertools.pairwise(candles):
            if prev.start == cur.start:
                raise ValidationError("bars", f"{symbol}: two bars start at {cur.start}")
        for c in candles:
            if not c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high:
                raise ValidationError("bars", f"{symbol}: inconsistent OHLC at {c.start}")
        stored = interval or _infer_interval(symbol, candles)
        if stored.seconds is None and stored is not Interval.D:
            raise ValidationError("interval", f"replay stores intraday or D bars, not {stored}")
        starts: list[int] = []
        ends: list[int] = []
        for c in candles:
            s, e = self._span(exchange, c, stored)
            starts.append(s)
            ends.append(e)
        return _running(symbol, stored, candles, starts, ends)

    def _span(self, exchange: Exchange, candle: Candle, stored: Interval) -> tuple[int, int]:
        """Seconds a stored bar covers: its interval, cut at the session close; a daily bar
        covers its day's session."""
        start = int(candle.start.timestamp())
        ordinal = ordinal_of(start)
        session = self._sessions.get(exchange, ordinal)
        if stored.seconds is None:
            if session is None:
                session = _fallback_session(ordinal)
            return session[0], session[0] + session[1]
        end = start + stored.seconds
        if session is not None and session[0] <= start < session[0] + session[1]:
            end = min(end, session[0] + session[1])
        return start, end

    def _get(self, exchange: Exchange, symbol: str) -> _Series:
        found = self._series.get((exchange, symbol))
        if found is None:
            raise NotFoundError(f"No replay data for {exchange}:{symbol}")
        return found

    # -- ticks ----------------------------------------------------------------------------
    def depth(self, instrument: Instrument, at: datetime) -> Depth:
        series = self._get(instrument.exchange, instrument.symbol)
        if at.tzinfo is None:
            raise ValidationError("at", "must be a timezone-aware instant")
        ts = at.timestamp()
        tick = float(instrument.tick_size)
        i = bisect.bisect_right(series.starts, ts) - 1
        if i < 0:
            return self._before_data(instrument, series, tick)
        start, end = series.starts[i], series.ends[i]
        n = end - start
        k = min(int(ts - start), n - 1)
        corners = _ticked(intrabar_path(*series.ohlc[i], n), tick)
        now = path_at(corners, k)
        if k > 0:
            before = path_at(corners, k - 1)
        else:
            before = _to_ticks(series.ohlc[i - 1][3] if i > 0 else series.ohlc[0][0], tick)
        high, low = path_extremes(corners, k)
        if series.day_high[i] > -math.inf:
            high = max(high, _to_ticks(series.day_high[i], tick))
            low = min(low, _to_ticks(series.day_low[i], tick))
        volume = series.day_volume[i] + series.candles[i].volume * (k + 1) // n
        per_second = series.candles[i].volume / n
        return self._book(
            instrument,
            ltp=round(now),
            rising=now >= before,
            day=(_to_ticks(series.day_open[i], tick), round(high), round(low)),
            prev_close=_to_ticks(series.prev_close[i], tick),
            volume=volume,
            oi=series.candles[i].oi,
            per_second=per_second,
            ts=start + k,
        )

    def _before_data(self, instrument: Instrument, series: _Series, tick: float) -> Depth:
        """Before the first bar the first open is shown, as if the market had not moved."""
        first = _to_ticks(series.ohlc[0][0], tick)
        return self._book(
            instrument,
            ltp=first,
            rising=True,
            day=(first, first, first),
            prev_close=first,
            volume=0,
            oi=series.candles[0].oi,
            per_second=series.candles[0].volume / max(series.ends[0] - series.starts[0], 1),
            ts=series.starts[0],
        )

    def _book(
        self,
        instrument: Instrument,
        *,
        ltp: int,
        rising: bool,
        day: tuple[int, int, int],
        prev_close: int,
        volume: int,
        oi: int,
        per_second: float,
        ts: int,
    ) -> Depth:
        td = instrument.tick_size
        lot = max(instrument.lotsize, 1)
        ltp = max(ltp, 1)
        spread = self.spread_ticks
        # A rising price printed at the ask, a falling one at the bid.
        bid_t, ask_t = (ltp - spread, ltp) if rising else (ltp, ltp + spread)
        if bid_t < 1:
            bid_t, ask_t = 1, 1 + spread
        base = max(1, round(per_second / lot))
        bids = tuple(
            DepthLevel(td * (bid_t - i), base * (i + 1) * lot) if bid_t - i >= 1 else _EMPTY_LEVEL
            for i in range(LEVELS)
        )
        asks = tuple(DepthLevel(td * (ask_t + i), base * (i + 1) * lot) for i in range(LEVELS))
        open_t, high_t, low_t = day
        quote = Quote(
            symbol=instrument.symbol,
            exchange=instrument.exchange,
            ltp=td * ltp,
            bid=td * bid_t,
            ask=td * ask_t,
            open=td * open_t,
            high=td * max(high_t, ltp),
            low=td * min(low_t, ltp),
            prev_close=td * prev_close,
            volume=volume,
            oi=oi,
            timestamp=datetime.fromtimestamp(ts, UTC),
            ltq=lot * base,
            bid_qty=bids[0].quantity,
            ask_qty=asks[0].quantity,
        )
        return Depth(quote, bids, asks)

    # -- candles --------------------------------------------------------------------------
    def candles(
        self, instrument: Instrument, interval: Interval, start: datetime, end: datetime
    ) -> list[Candle]:
        series = self._get(instrument.exchange, instrument.symbol)
        self._check_interval(series, interval)
        start_ts, end_ts = start.timestamp(), end.timestamp()
        if end_ts <= start_ts:
            return []
        visible = list(self._visible(series, instrument, end_ts))
        if interval.seconds is not None:
            size = interval.seconds
            keyed = ((self._bucket(instrument.exchange, c.start, size), c) for c in visible)
        else:
            daily = _group((_midnight(c.start), c) for c in visible)
            keyed = ((_period(c.start, interval), c) for c in daily)
        return [c for c in _group(keyed) if start_ts <= c.start.timestamp() < end_ts]

    def _check_interval(self, series: _Series, interval: Interval) -> None:
        stored = series.interval
        if stored is Interval.D:
            if interval.seconds is not None:
                raise ValidationError(
                    "interval",
                    f"{interval} is finer than the stored D bars of {series.symbol}; "
                    "replay serves D, W, M, Q or Y",
                )
            return
        assert stored.seconds is not None
        if interval.seconds is not None and (
            interval.seconds < stored.seconds or interval.seconds % stored.seconds
        ):
            raise ValidationError(
                "interval",
                f"{interval} cannot be built from the stored {stored} bars of {series.symbol}; "
                f"use {stored} or a multiple of it",
            )

    def _visible(self, series: _Series, instrument: Instrument, end_ts: float) -> Iterable[Candle]:
        """Stored bars that had started before `end`, the last one cut at `end`."""
        tick = float(instrument.tick_size)
        td = instrument.tick_size
        for i, candle in enumerate(series.candles):
            start, stop = series.starts[i], series.ends[i]
            if start >= end_ts:
                break
            if stop <= end_ts:
                yield candle
                continue
            n = stop - start
            seen = math.ceil(end_ts - start)
            corners = _ticked(intrabar_path(*series.ohlc[i], n), tick)
            high, low = path_extremes(corners, seen - 1)
            yield Candle(
                start=candle.start,
                open=td * round(path_at(corners, 0)),
                high=td * round(high),
                low=td * round(low),
                close=td * round(path_at(corners, seen - 1)),
                volume=candle.volume * seen // n,
                oi=candle.oi,
            )

    def _bucket(self, exchange: Exchange, at: datetime, size: int) -> datetime:
        """Start of the aggregated intraday bar holding `at`: counted from the session open
        (09:15 for NSE), or from midnight IST outside any session."""
        ts = int(at.timestamp())
        ordinal = ordinal_of(ts)
        session = self._sessions.get(exchange, ordinal)
        anchor = midnight_ts(ordinal)
        if session is not None and session[0] <= ts < session[0] + session[1]:
            anchor = session[0]
        return datetime.fromtimestamp(anchor + (ts - anchor) // size * size, UTC)


# -- helpers ------------------------------------------------------------------------------------
def _infer_interval(symbol: str, candles: Sequence[Candle]) -> Interval:
    gaps = [
        int((b.start - a.start).total_seconds())
        for a, b in itertools.pairwise(candles)
        if ordinal_of(a.start.timestamp()) == ordinal_of(b.start.timestamp())
    ]
    if gaps:
        step = min(gaps)
        found = _INTRADAY.get(step)
        if found is None:
            raise ValidationError(
                "interval", f"{symbol}: bars {step}s apart match no OpenAlgo interval"
            )
        return found
    if len(candles) < 2:
        raise ValidationError("interval", f"{symbol}: one bar cannot show its interval; pass it")
    return Interval.D


def _running(
    symbol: str, stored: Interval, candles: list[Candle], starts: list[int], ends: list[int]
) -> _Series:
    ohlc = [(float(c.open), float(c.high), float(c.low), float(c.close)) for c in candles]
    days = [ordinal_of(s) for s in starts]
    day_high: list[float] = []
    day_low: list[float] = []
    day_volume: list[int] = []
    day_open: list[float] = []
    prev_close: list[float] = []
    hi, lo, vol, first, last_close, prev_day_close = -math.inf, math.inf, 0, 0.0, ohlc[0][0], 0.0
    current = None
    for i, day in enumerate(days):
        if day != current:
            current = day
            prev_day_close = last_close
            hi, lo, vol, first = -math.inf, math.inf, 0, ohlc[i][0]
        day_high.append(hi)
        day_low.append(lo)
        day_volume.append(vol)
        day_open.append(first)
        prev_close.append(prev_day_close)
        hi, lo = max(hi, ohlc[i][1]), min(lo, ohlc[i][2])
        vol += candles[i].volume
        last_close = ohlc[i][3]
    return _Series(
        symbol,
        stored,
        candles,
        starts,
        ends,
        ohlc,
        days,
        day_high,
        day_low,
        day_volume,
        day_open,
        prev_close,
    )


def _to_ticks(price: float, tick: float) -> int:
    return math.floor(price / tick + 0.5)


def _ticked(corners: Sequence[Corner], tick: float) -> tuple[Corner, ...]:
    """Corners on the tick grid, so interpolation passes through them exactly."""
    return tuple((s, float(_to_ticks(p, tick))) for s, p in corners)


def _fallback_session(ordinal: int) -> Session:
    day = date.fromordinal(ordinal)
    open_ = datetime.combine(day, _FALLBACK_HOURS[0], tzinfo=IST)
    close = datetime.combine(day, _FALLBACK_HOURS[1], tzinfo=IST)
    return int(open_.timestamp()), int((close - open_).total_seconds())


def _midnight(at: datetime) -> datetime:
    return datetime.fromtimestamp(midnight_ts(ordinal_of(at.timestamp())), UTC)


def _period(at: datetime, interval: Interval) -> datetime:
    day = date.fromordinal(ordinal_of(at.timestamp()))
    return datetime.fromtimestamp(midnight_ts(period_start(day, interval).toordinal()), UTC)


def _group(keyed: Iterable[tuple[datetime, Candle]]) -> list[Candle]:
    """Merge consecutive candles sharing a bucket start into one bar (input in time order)."""
    out: list[Candle] = []
    for start, c in keyed:
        if out and out[-1].start == start:
            prev = out[-1]
            out[-1] = Candle(
                start=start,
                open=prev.open,
                high=max(prev.high, c.high),
                low=min(prev.low, c.low),
                close=c.close,
                volume=prev.volume + c.volume,
                oi=c.oi,
            )
        else:
            out.append(
                Candle(start, c.open, c.high, c.low, c.close, c.volume, c.oi)
                if c.start != start
                else c
            )
    return out
