"""Market data actions: quotes, multiquotes, depth, history, intervals, ticker (reference §2.3).

Every symbol is checked against the master contract before the data broker is asked, so an
unknown symbol is the same 404 whichever broker serves data. Prices leave as JSON floats of
their exact tick-grid decimals (not rounded to the paisa: currency ticks are ₹0.0025), volumes
and open interest as ints, and candle timestamps as epoch seconds, which is what the official
client's `history()` turns into its DataFrame index.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from openalgo_lab.brokers.base import Broker, InstrumentKey
from openalgo_lab.domain.calendar import IST
from openalgo_lab.domain.enums import Exchange, Interval
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.models import Candle, Depth, DepthLevel, Instrument, Quote
from openalgo_lab.engine.actions.registry import JSON, ActionContext, Payload, action

DEPTH_LEVELS = 5
MAX_MULTIQUOTES = 500
# One request may ask for about this many bars: the sandbox builds candles on the event loop,
# and a live broker would page through its own limits for much longer. 200k one-second bars
# is over two full days; 200k one-minute bars is more than four months.
MAX_HISTORY_BARS = 200_000
HISTORY_SOURCES = ("api", "db")
# GET /ticker follows OpenAlgo's own limits: its intervals, and ranges clamped (not refused)
# to the last 30 days intraday and 10 years for D/W/M.
TICKER_INTERVALS = ("1m", "5m", "15m", "30m", "1h", "4h", "D", "W", "M")
TICKER_INTRADAY_DAYS = 30
TICKER_CALENDAR_DAYS = 10 * 365
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EPOCH = re.compile(r"\d{10}|\d{13}")
_INTERVAL_GROUPS = ("seconds", "minutes", "hours", "days", "weeks", "months")


# -- shared helpers (also used by the options actions) ---------------------------------------
def symbol_of(p: Payload, field: str = "symbol") -> str:
    """OpenAlgo symbols are upper case; accept any case from hand-typed requests."""
    return p.text(field).upper()


def instrument_of(ctx: ActionContext, exchange: Exchange, symbol: str) -> Instrument:
    """The master-contract row, or OpenAlgo's 404 `Symbol X not found on EXCH`."""
    return ctx.master.get(exchange, symbol)


def quote_data(q: Quote) -> JSON:
    """OpenAlgo's `/quotes` `data` object."""
    return {
        "open": float(q.open),
        "high": float(q.high),
        "low": float(q.low),
        "ltp": float(q.ltp),
        "ask": float(q.ask),
        "bid": float(q.bid),
        "prev_close": float(q.prev_close),
        "volume": int(q.volume),
        "oi": int(q.oi),
    }


def _levels(levels: Sequence[DepthLevel]) -> list[JSON]:
    """Exactly five levels: clients index [0..4] without checking the length."""
    rows = [{"price": float(lv.price), "quantity": int(lv.quantity)} for lv in levels]
    rows = rows[:DEPTH_LEVELS]
    rows += [{"price": 0.0, "quantity": 0}] * (DEPTH_LEVELS - len(rows))
    return rows


def depth_data(d: Depth) -> JSON:
    q = d.quote
    return {
        "open": float(q.open),
        "high": float(q.high),
        "low": float(q.low),
        "ltp": float(q.ltp),
        "ltq": int(q.ltq),
        "prev_close": float(q.prev_close),
        "volume": int(q.volume),
        "oi": int(q.oi),
        "totalbuyqty": int(d.totalbuyqty),
        "totalsellqty": int(d.totalsellqty),
        "bids": _levels(d.bids),
        "asks": _levels(d.asks),
    }


def candle_row(c: Candle) -> JSON:
    return {
        "timestamp": c.timestamp,
        "open": float(c.open),
        "high": float(c.high),
        "low": float(c.low),
        "close": float(c.close),
        "volume": int(c.volume),
        "oi": int(c.oi),
    }


# -- quotes ------------------------------------------------------------------------------------
@action("quotes")
async def quotes(ctx: ActionContext, p: Payload) -> JSON:
    """Last price, top of book and the day's statistics for one symbol."""
    exchange = p.exchange()
    inst = instrument_of(ctx, exchange, symbol_of(p))
    quote = await ctx.data.quote(inst.exchange, inst.symbol)
    return {"data": quote_data(quote)}


@action("multiquotes")
async def multiquotes(ctx: ActionContext, p: Payload) -> JSON:
    """Quotes for many symbols in one broker call; an unknown symbol is an error entry."""
    items = p.items("symbols", maximum=MAX_MULTIQUOTES)
    requested = [_pair(item, i) for i, item in enumerate(items)]
    known = [(e, s) for s, e in requested if ctx.master.find(e, s) is not None]
    found = await ctx.data.quotes(_unique(known)) if known else {}
    return {"results": [_multiquote_result(s, e, found) for s, e in requested]}


def _pair(item: Payload, index: int) -> tuple[str, Exchange]:
    """One entry's symbol and exchange; a malformed entry fails the call, naming it."""
    try:
        return symbol_of(item), item.exchange()
    except ValidationError as err:
        raise ValidationError(f"symbols[{index}].{err.field}", err.reason) from None


def _unique(keys: Sequence[InstrumentKey]) -> list[InstrumentKey]:
    return list(dict.fromkeys(keys))


def _multiquote_result(symbol: str, exchange: Exchange, found: dict[InstrumentKey, Quote]) -> JSON:
    quote = found.get((exchange, symbol))
    if quote is not None:
        return {"symbol": symbol, "exchange": exchange.value, "data": quote_data(quote)}
    return {
        "symbol": symbol,
        "exchange": exchange.value,
        "error": f"Symbol {symbol} not found on {exchange}",
    }


@action("depth")
async def depth(ctx: ActionContext, p: Payload) -> JSON:
    """Five levels of the order book a side, with the day's statistics."""
    exchange = p.exchange()
    inst = instrument_of(ctx, exchange, symbol_of(p))
    book = await ctx.data.depth(inst.exchange, inst.symbol)
    return {"data": depth_data(book)}


# -- history -----------------------------------------------------------------------------------
def parse_interval(value: object, broker: Broker, field: str = "interval") -> Interval:
    """An interval of OpenAlgo's schema that this broker also serves (OpenAlgo: "Unsupported
    timeframe"); the message lists what the broker does support."""
    if value is None or value == "":
        raise ValidationError(field, "is required")
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    text = value.strip()
    # Case matters: "1m" is a minute and "M" a month, so the spelling must be exact.
    found = next((i for i in Interval if i.value == text), None)
    supported = broker.intervals()
    listed = ", ".join(i.value for i in supported)
    if found is None:
        raise ValidationError(field, f"{value!r} is not an interval; use one of {listed}")
    if found not in supported:
        raise ValidationError(
            field, f"{found.value} is not supported by broker {broker.name}; use one of {listed}"
        )
    return found


def parse_day(value: object, field: str) -> date:
    """A `YYYY-MM-DD` calendar day (the official client sends dates as such strings)."""
    if value is None or value == "":
        raise ValidationError(field, "is required")
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
        raise ValidationError(field, f"must be a date as YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(field, f"{value!r} is not a calendar date") from None


def ist_midnight(day: date) -> datetime:
    """The UTC instant an IST calendar day starts: history ranges are exchange days."""
    return datetime.combine(day, time(0), tzinfo=IST).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    inst: Instrument
    interval: Interval
    start: datetime  # inclusive UTC instant
    end: datetime  # exclusive UTC instant


def _check_size(interval: Interval, start: datetime, end: datetime) -> None:
    size = interval.seconds
    if size is None:
        return
    bars = (end - start).total_seconds() / size
    if bars > MAX_HISTORY_BARS:
        days = max(int(MAX_HISTORY_BARS * size // 86_400), 1)
        raise ValidationError(
            "start_date",
            f"the range holds up to {int(bars)} {interval.value} bars, more than "
            f"{MAX_HISTORY_BARS} in one request; ask for at most {days} days at a time",
        )


async def fetch_candles(ctx: ActionContext, req: HistoryRequest) -> list[Candle]:
    _check_size(req.interval, req.start, req.end)
    candles = await ctx.data.history(
        req.inst.exchange, req.inst.symbol, req.interval, req.start, req.end
    )
    return sorted(candles, key=lambda c: c.start)


@action("history")
async def history(ctx: ActionContext, p: Payload) -> JSON:
    """OHLCV candles between two IST days, both included; timestamps in epoch seconds."""
    exchange = p.exchange()
    inst = instrument_of(ctx, exchange, symbol_of(p))
    interval = parse_interval(p.raw("interval"), ctx.data)
    first = parse_day(p.raw("start_date"), "start_date")
    last = parse_day(p.raw("end_date"), "end_date")
    if first > last:
        raise ValidationError(
            "start_date", f"{first.isoformat()} is after end_date {last.isoformat()}"
        )
    source = p.text("source", default="api").lower()
    if source not in HISTORY_SOURCES:
        raise ValidationError("source", f"must be api or db, got {source!r}")
    if source == "db":
        # OpenAlgo's "db" reads a local Historify store; the history database here keeps
        # orders and trades, not candles yet, so say so rather than answer from elsewhere.
        raise ValidationError("source", "db (local candle store) is not available; use api")
    req = HistoryRequest(inst, interval, ist_midnight(first), ist_midnight(last + timedelta(1)))
    candles = await fetch_candles(ctx, req)
    return {"data": [candle_row(c) for c in candles]}


@action("intervals")
async def intervals(ctx: ActionContext, p: Payload) -> JSON:
    """The history intervals the data broker serves, grouped as OpenAlgo groups them."""
    groups: dict[str, list[str]] = {g: [] for g in _INTERVAL_GROUPS}
    for interval in ctx.data.intervals():
        groups[interval.group].append(interval.value)
    return {"data": groups}


# -- GET /ticker -------------------------------------------------------------------------------
def _ticker_key(value: str) -> tuple[Exchange, str]:
    exch, sep, sym = value.strip().partition(":")
    if not sep or not exch or not sym:
        raise ValidationError("symbol", f"must be EXCHANGE:SYMBOL like NSE:SBIN, got {value!r}")
    try:
        return Exchange(exch.upper()), sym.upper()
    except ValueError:
        raise ValidationError("symbol", f"{exch!r} is not an exchange") from None


def _ticker_instant(value: object, field: str) -> tuple[datetime, bool]:
    """`YYYY-MM-DD` (an IST day's start) or an epoch in seconds (10 digits) or ms (13); the
    flag says which, since a day bound covers the whole day and an epoch only its instant."""
    text = str(value).strip() if isinstance(value, str | int) else ""
    if _EPOCH.fullmatch(text):
        seconds = int(text) / (1000 if len(text) == 13 else 1)
        return datetime.fromtimestamp(seconds, UTC), True
    return ist_midnight(parse_day(value, field)), False


def _ticker_range(p: Payload, interval: Interval) -> tuple[datetime, datetime, datetime]:
    """(start, fetch end, last bar start): `to` is inclusive, and the last bar is fetched
    whole rather than cut at `to`, so a range never ends in a partial bar."""
    start, _ = _ticker_instant(p.raw("from"), "from")
    to, epoch = _ticker_instant(p.raw("to"), "to")
    if not epoch:
        last, fetch_end = to + timedelta(days=1) - timedelta(seconds=1), to + timedelta(days=1)
    elif interval.seconds is not None:
        last, fetch_end = to, to + timedelta(seconds=interval.seconds)
    else:
        last = to
        fetch_end = ist_midnight(to.astimezone(IST).date() + timedelta(days=1))
    longest = TICKER_INTRADAY_DAYS if interval.seconds else TICKER_CALENDAR_DAYS
    start = max(start, fetch_end - timedelta(days=longest + 1))
    if start > last:
        raise ValidationError("from", "must not be after to")
    return start, fetch_end, last


@action("ticker")
async def ticker(ctx: ActionContext, p: Payload) -> JSON:
    """Bars for `EXCH:SYMBOL` as OpenAlgo's GET /ticker serves them (the REST layer renders
    `format=txt` with `ticker_text`)."""
    exchange, symbol = _ticker_key(p.text("symbol"))
    inst = instrument_of(ctx, exchange, symbol)
    raw = p.text("interval", default="D")
    if raw not in TICKER_INTERVALS:
        raise ValidationError("interval", f"must be one of {', '.join(TICKER_INTERVALS)}")
    interval = parse_interval(raw, ctx.data)
    start, fetch_end, last = _ticker_range(p, interval)
    order = p.text("sort", default="asc").lower()
    if order not in ("asc", "desc"):
        raise ValidationError("sort", f"must be asc or desc, got {order!r}")
    candles = await fetch_candles(ctx, HistoryRequest(inst, interval, start, fetch_end))
    candles = [c for c in candles if c.start <= last]
    if order == "desc":
        candles.reverse()
    rows = [{k: v for k, v in candle_row(c).items() if k != "oi"} for c in candles]
    return {"data": rows}


def ticker_text(rows: Sequence[JSON], exchange: str, symbol: str, interval: str) -> str:
    """OpenAlgo's `format=txt` body: `EXCH:SYM,Date[,Time],O,H,L,C,V` per line, IST times; the
    daily form has no time column (the Amibroker/ChartInk import format)."""
    lines = []
    for row in rows:
        at = datetime.fromtimestamp(int(row["timestamp"]), UTC).astimezone(IST)
        stamp = at.strftime("%Y-%m-%d") if interval == "D" else at.strftime("%Y-%m-%d,%H:%M:%S")
        prices = ",".join(str(row[k]) for k in ("open", "high", "low", "close"))
        lines.append(f"{exchange}:{symbol},{stamp},{prices},{int(row['volume'])}")
    return "\n".join(lines)


__all__ = [
    "HistoryRequest",
    "candle_row",
    "depth_data",
    "fetch_candles",
    "instrument_of",
    "ist_midnight",
    "parse_day",
    "parse_interval",
    "quote_data",
    "symbol_of",
    "ticker_text",
]
