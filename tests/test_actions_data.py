"""Market data, symbol and calendar actions through a real Engine on the sandbox: the success
shapes OpenAlgo clients index into, and the error envelopes for each kind of bad input."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest

from openalgo_lab.domain.calendar import IST, MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.engine.actions.market import ticker_text
from openalgo_lab.engine.engine import Engine, Reply
from openalgo_lab.engine.settings import EngineSettings

NOW = datetime(2026, 11, 25, 11, 0, tzinfo=IST)  # a Wednesday, mid-morning
QUOTE_KEYS = {"open", "high", "low", "ltp", "ask", "bid", "prev_close", "volume", "oi"}
CANDLE_KEYS = {"timestamp", "open", "high", "low", "close", "volume", "oi"}
INSTRUMENT_KEYS = [
    "symbol",
    "brsymbol",
    "name",
    "exchange",
    "brexchange",
    "token",
    "expiry",
    "strike",
    "lotsize",
    "instrumenttype",
    "tick_size",
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    data_dir: Path = tmp_path_factory.mktemp("engine")
    settings = EngineSettings(data_dir=data_dir, market_hours=MarketHours.ALWAYS)
    return Engine(settings, clock=ManualClock(NOW))


def call(engine: Engine, name: str, payload: dict[str, Any] | None = None) -> Reply:
    return asyncio.run(engine.call(name, payload or {}))


def ok(engine: Engine, name: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    reply = call(engine, name, payload)
    assert reply.status == 200, reply.body
    assert reply.body["status"] == "success"
    return reply.body


def error(engine: Engine, name: str, payload: dict[str, Any], status: int) -> str:
    reply = call(engine, name, payload)
    assert reply.status == status, reply.body
    assert reply.body["status"] == "error"
    message: str = reply.body["message"]
    return message


def ist_ms(day: date, hh: int, mm: int) -> int:
    return int(datetime.combine(day, time(hh, mm), tzinfo=IST).timestamp() * 1000)


# -- quotes, multiquotes, depth -----------------------------------------------------------------
def test_quotes_shape_and_types(engine: Engine) -> None:
    body = ok(engine, "quotes", {"symbol": "RELIANCE", "exchange": "NSE"})
    data = body["data"]
    assert set(data) == QUOTE_KEYS
    assert body["mode"] == "analyze"
    for key in QUOTE_KEYS - {"volume", "oi"}:
        assert isinstance(data[key], float), key
    assert isinstance(data["volume"], int) and isinstance(data["oi"], int)
    assert data["low"] <= data["ltp"] <= data["high"]
    assert 0 < data["bid"] <= data["ask"]
    assert data["oi"] == 0  # cash has no open interest


def test_quotes_accepts_any_case(engine: Engine) -> None:
    lower = ok(engine, "quotes", {"symbol": "reliance", "exchange": "nse"})["data"]
    upper = ok(engine, "quotes", {"symbol": "RELIANCE", "exchange": "NSE"})["data"]
    assert lower == upper


def test_quotes_derivative_has_open_interest(engine: Engine) -> None:
    data = ok(engine, "quotes", {"symbol": "NIFTY01DEC2626000CE", "exchange": "NFO"})["data"]
    assert data["oi"] > 0 and data["volume"] > 0


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        ({"exchange": "NSE"}, 400, "symbol: is required"),
        ({"symbol": "RELIANCE"}, 400, "exchange: is required"),
        ({"symbol": "RELIANCE", "exchange": "NASDAQ"}, 400, "exchange: 'NASDAQ' is not one of"),
        ({"symbol": "NOSUCH", "exchange": "NSE"}, 404, "Symbol NOSUCH not found on NSE"),
        ({"symbol": "RELIANCE", "exchange": "NFO"}, 404, "Symbol RELIANCE not found on NFO"),
    ],
)
def test_quotes_errors(engine: Engine, payload: dict[str, Any], status: int, needle: str) -> None:
    assert needle in error(engine, "quotes", payload, status)


def test_multiquotes_mixes_data_and_error_entries(engine: Engine) -> None:
    symbols = [
        {"symbol": "RELIANCE", "exchange": "NSE"},
        {"symbol": "NOSUCH", "exchange": "NSE"},
        {"symbol": "NIFTY", "exchange": "NSE_INDEX"},
    ]
    results = ok(engine, "multiquotes", {"symbols": symbols})["results"]
    assert [(r["symbol"], r["exchange"]) for r in results] == [
        ("RELIANCE", "NSE"),
        ("NOSUCH", "NSE"),
        ("NIFTY", "NSE_INDEX"),
    ]
    assert set(results[0]["data"]) == QUOTE_KEYS
    assert results[1] == {
        "symbol": "NOSUCH",
        "exchange": "NSE",
        "error": "Symbol NOSUCH not found on NSE",
    }
    single = ok(engine, "quotes", {"symbol": "RELIANCE", "exchange": "NSE"})["data"]
    assert results[0]["data"] == single


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({}, "symbols: must be a list"),
        ({"symbols": []}, "symbols: must have 1 to"),
        (
            {"symbols": [{"symbol": "SBIN", "exchange": "NSE"}, {"symbol": "X"}]},
            "symbols[1].exchange",
        ),
        ({"symbols": [{"exchange": "NSE"}]}, "symbols[0].symbol: is required"),
        ({"symbols": ["SBIN"]}, "symbols[0]: must be an object"),
    ],
)
def test_multiquotes_malformed_entries_fail_the_call(
    engine: Engine, payload: dict[str, Any], needle: str
) -> None:
    assert needle in error(engine, "multiquotes", payload, 400)


def test_depth_five_levels_agree_with_quote(engine: Engine) -> None:
    data = ok(engine, "depth", {"symbol": "SBIN", "exchange": "NSE"})["data"]
    quote = ok(engine, "quotes", {"symbol": "SBIN", "exchange": "NSE"})["data"]
    assert len(data["bids"]) == len(data["asks"]) == 5
    bids = [lv["price"] for lv in data["bids"]]
    asks = [lv["price"] for lv in data["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0] == quote["bid"] and asks[0] == quote["ask"]
    assert data["totalbuyqty"] == sum(lv["quantity"] for lv in data["bids"])
    assert data["totalsellqty"] == sum(lv["quantity"] for lv in data["asks"])
    assert data["ltp"] == quote["ltp"] and isinstance(data["ltq"], int)
    assert {"open", "high", "low", "prev_close", "volume", "oi"} <= set(data)


def test_depth_unknown_symbol(engine: Engine) -> None:
    assert "not found" in error(engine, "depth", {"symbol": "NOSUCH", "exchange": "BSE"}, 404)


# -- history and intervals ------------------------------------------------------------------------
def history(engine: Engine, interval: str, start: str, end: str) -> list[dict[str, Any]]:
    payload = {
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "interval": interval,
        "start_date": start,
        "end_date": end,
    }
    rows: list[dict[str, Any]] = ok(engine, "history", payload)["data"]
    return rows


def test_daily_history_is_epoch_seconds_and_agrees_with_the_quote(engine: Engine) -> None:
    rows = history(engine, "D", "2026-11-20", "2026-11-25")
    quote = ok(engine, "quotes", {"symbol": "RELIANCE", "exchange": "NSE"})["data"]
    assert all(set(r) == CANDLE_KEYS for r in rows)
    assert all(type(r["timestamp"]) is int for r in rows)
    days = [datetime.fromtimestamp(r["timestamp"], UTC).astimezone(IST) for r in rows]
    # One bar per IST day (every day trades with MarketHours.ALWAYS), stamped at IST midnight;
    # the end date is included.
    assert [d.date() for d in days] == [date(2026, 11, d) for d in range(20, 26)]
    assert all(d.time() == time(0, 0) for d in days)
    today, yesterday = rows[-1], rows[-2]
    assert today["open"] == quote["open"]
    assert yesterday["close"] == quote["prev_close"]
    assert quote["low"] <= today["low"] <= today["high"] <= quote["high"]
    assert isinstance(today["volume"], int) and 0 < today["volume"] <= quote["volume"]


def test_intraday_history_candles_are_minutes_of_the_day(engine: Engine) -> None:
    rows = history(engine, "1m", "2026-11-25", "2026-11-25")
    quote = ok(engine, "quotes", {"symbol": "RELIANCE", "exchange": "NSE"})["data"]
    stamps = [r["timestamp"] for r in rows]
    midnight = int(datetime(2026, 11, 25, tzinfo=IST).timestamp())
    assert stamps[0] == midnight
    assert all(b - a == 60 for a, b in itertools.pairwise(stamps))
    assert stamps[-1] < int(NOW.timestamp())  # nothing from the future
    assert len(rows) == 11 * 60  # 00:00 to 11:00
    assert rows[0]["open"] == quote["open"]
    assert max(r["high"] for r in rows) <= quote["high"]
    assert min(r["low"] for r in rows) >= quote["low"]
    assert sum(r["volume"] for r in rows) <= quote["volume"]


def test_history_on_an_index_has_zero_volume(engine: Engine) -> None:
    payload = {
        "symbol": "NIFTY",
        "exchange": "NSE_INDEX",
        "interval": "1h",
        "start_date": "2026-11-24",
        "end_date": "2026-11-24",
    }
    rows = ok(engine, "history", payload)["data"]
    assert len(rows) == 24
    assert all(r["volume"] == 0 and r["oi"] == 0 for r in rows)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"interval": "7m"}, "interval: '7m' is not an interval"),
        ({"interval": "1M"}, "interval: '1M' is not an interval"),
        ({"interval": None}, "interval: is required"),
        ({"start_date": "25-11-2026"}, "start_date: must be a date as YYYY-MM-DD"),
        ({"end_date": "2026-02-30"}, "end_date: '2026-02-30' is not a calendar date"),
        ({"start_date": None}, "start_date: is required"),
        ({"start_date": "2026-11-26"}, "start_date: 2026-11-26 is after end_date 2026-11-25"),
        ({"start_date": "2025-01-01", "interval": "1s"}, "more than 200000 in one request"),
        ({"source": "cloud"}, "source: must be api or db"),
        ({"source": "db"}, "source: db (local candle store) is not available"),
        ({"symbol": "NOSUCH"}, "Symbol NOSUCH not found on NSE"),
    ],
)
def test_history_errors(engine: Engine, changes: dict[str, Any], needle: str) -> None:
    payload: dict[str, Any] = {
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "interval": "D",
        "start_date": "2026-11-20",
        "end_date": "2026-11-25",
    }
    for key, value in changes.items():
        if value is None:
            payload.pop(key)
        else:
            payload[key] = value
    status = 404 if "not found" in needle else 400
    assert needle in error(engine, "history", payload, status)


def test_intervals_grouped_as_openalgo(engine: Engine) -> None:
    data = ok(engine, "intervals")["data"]
    assert list(data) == ["seconds", "minutes", "hours", "days", "weeks", "months"]
    assert "1m" in data["minutes"] and "1h" in data["hours"]
    assert data["days"] == ["D"] and data["weeks"] == ["W"] and "M" in data["months"]


def test_ticker_json_and_text(engine: Engine) -> None:
    payload = {
        "symbol": "NSE:RELIANCE",
        "interval": "D",
        "from": "2026-11-23",
        "to": "2026-11-24",
        "sort": "desc",
    }
    rows = ok(engine, "ticker", payload)["data"]
    assert [set(r) for r in rows] == [{"timestamp", "open", "high", "low", "close", "volume"}] * 2
    assert rows[0]["timestamp"] > rows[1]["timestamp"]
    text = ticker_text(rows, "NSE", "RELIANCE", "D")
    first = text.splitlines()[0].split(",")
    assert first[:2] == ["NSE:RELIANCE", "2026-11-24"] and len(first) == 7
    # An epoch `to` is inclusive and its bar is whole, not cut at that instant.
    start = int(datetime(2026, 11, 25, 9, 0, tzinfo=IST).timestamp())
    minute = {"symbol": "NSE:RELIANCE", "interval": "1m", "from": str(start), "to": start + 120}
    bars = ok(engine, "ticker", minute)["data"]
    assert [b["timestamp"] for b in bars] == [start, start + 60, start + 120]
    full = history(engine, "1m", "2026-11-25", "2026-11-25")
    assert bars[-1]["volume"] == next(r for r in full if r["timestamp"] == start + 120)["volume"]
    intraday = ticker_text(bars, "NSE", "RELIANCE", "1m").splitlines()[0].split(",")
    assert intraday[1:3] == ["2026-11-25", "09:00:00"]


def test_ticker_errors(engine: Engine) -> None:
    base = {"from": "2026-11-20", "to": "2026-11-25"}
    assert "EXCHANGE:SYMBOL" in error(engine, "ticker", {"symbol": "RELIANCE", **base}, 400)
    bad = {"symbol": "NSE:RELIANCE", "interval": "2m", **base}
    assert "interval: must be one of" in error(engine, "ticker", bad, 400)


# -- symbol, search, expiry, instruments --------------------------------------------------------
def test_symbol_record(engine: Engine) -> None:
    data = ok(engine, "symbol", {"symbol": "NIFTY01DEC2626000CE", "exchange": "NFO"})["data"]
    assert data["symbol"] == "NIFTY01DEC2626000CE" and data["name"] == "NIFTY"
    assert data["expiry"] == "01-DEC-26" and data["strike"] == 26000.0
    assert data["instrumenttype"] == "CE" and data["lotsize"] == 65
    assert data["tick_size"] == 0.05 and data["freeze_qty"] == 1800
    assert isinstance(data["id"], int) and isinstance(data["token"], str)
    cash = ok(engine, "symbol", {"symbol": "SBIN", "exchange": "NSE"})["data"]
    assert cash["brsymbol"] == "SBIN-EQ" and cash["expiry"] == "" and cash["strike"] == 0.0


def test_symbol_errors(engine: Engine) -> None:
    message = error(engine, "symbol", {"symbol": "NIFTY01DEC2626001CE", "exchange": "NFO"}, 404)
    assert message == "Symbol NIFTY01DEC2626001CE not found on NFO"
    assert "exchange: is required" in error(engine, "symbol", {"symbol": "SBIN"}, 400)


def test_search(engine: Engine) -> None:
    body = ok(engine, "search", {"query": "NIFTY 26000 DEC CE", "exchange": "NFO"})
    assert body["message"] == f"Found {len(body['data'])} matching symbols"
    assert body["data"] and all(r["instrumenttype"] == "CE" for r in body["data"])
    assert all(r["strike"] == 26000.0 and "-DEC-" in r["expiry"] for r in body["data"])
    assert "id" not in body["data"][0] and "freeze_qty" in body["data"][0]
    capped = ok(engine, "search", {"query": "NIFTY"})
    assert len(capped["data"]) == 500 and capped["message"] == "Found 500 matching symbols"
    none = ok(engine, "search", {"query": "QQQQZZZZ"})
    assert none["message"] == "No matching symbols found" and none["data"] == []
    assert "query: is required" in error(engine, "search", {}, 400)
    assert "exchange: 'XX' is not one of" in error(
        engine, "search", {"query": "a", "exchange": "XX"}, 400
    )


def test_expiry(engine: Engine) -> None:
    body = ok(engine, "expiry", {"symbol": "NIFTY", "exchange": "NFO", "instrumenttype": "options"})
    dates = body["data"]
    parsed = [datetime.strptime(d, "%d-%b-%y").date() for d in dates]
    assert parsed == sorted(parsed) and parsed[0] == date(2026, 12, 1)
    assert all(d == d.upper() and len(d) == 9 for d in dates)
    assert body["message"] == f"Found {len(dates)} expiry dates for NIFTY options in NFO"
    futures = ok(
        engine, "expiry", {"symbol": "nifty", "exchange": "NFO", "instrumenttype": "FUTURES"}
    )
    assert futures["data"] == ["29-DEC-26", "25-JAN-27", "23-FEB-27"]
    none = ok(
        engine, "expiry", {"symbol": "NOSUCH", "exchange": "BFO", "instrumenttype": "futures"}
    )
    assert (
        none["data"] == [] and none["message"] == "No expiry dates found for NOSUCH futures in BFO"
    )


NIFTY_OPTIONS = {"symbol": "NIFTY", "exchange": "NFO", "instrumenttype": "options"}


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"exchange": "NSE_INDEX"}, "exchange: must be an F&O exchange"),
        ({"instrumenttype": "calls"}, "instrumenttype: must be futures or options"),
        ({"symbol": ""}, "symbol: is required"),
    ],
)
def test_expiry_errors(engine: Engine, changes: dict[str, Any], needle: str) -> None:
    assert needle in error(engine, "expiry", {**NIFTY_OPTIONS, **changes}, 400)


def test_instruments(engine: Engine) -> None:
    nse = ok(engine, "instruments", {"exchange": "NSE"})["data"]
    assert nse and all(list(r) == INSTRUMENT_KEYS for r in nse)
    assert {r["exchange"] for r in nse} == {"NSE"}
    everything = ok(engine, "instruments")["data"]
    assert len(everything) == len(engine.master)
    assert {r["exchange"] for r in everything} >= {"NSE", "BSE", "NFO", "BFO", "NSE_INDEX"}
    assert "exchange: 'XX' is not one of" in error(engine, "instruments", {"exchange": "XX"}, 400)


# -- market calendar ------------------------------------------------------------------------------
def test_holidays_2026(engine: Engine) -> None:
    body = ok(engine, "market/holidays", {"year": "2026"})  # the client may send a string
    assert body["year"] == 2026 and body["timezone"] == "Asia/Kolkata"
    by_date = {h["date"]: h for h in body["data"]}
    gurpurb = by_date["2026-11-24"]
    assert gurpurb["holiday_type"] == "TRADING_HOLIDAY"
    assert {"NSE", "BSE", "NFO", "BFO", "CDS"} <= set(gurpurb["closed_exchanges"])
    # MCX trades its evening session on most exchange holidays.
    mcx = next(o for o in gurpurb["open_exchanges"] if o["exchange"] == "MCX")
    assert mcx["start_time"] == ist_ms(date(2026, 11, 24), 17, 0)
    assert mcx["end_time"] > mcx["start_time"]
    assert "MCX" in by_date["2026-12-25"]["closed_exchanges"]
    assert by_date["2026-12-25"]["open_exchanges"] == []
    settlement = by_date["2026-02-19"]
    assert settlement["holiday_type"] == "SETTLEMENT_HOLIDAY"
    assert settlement["closed_exchanges"] == settlement["open_exchanges"] == []
    muhurat = by_date["2026-11-08"]
    assert muhurat["holiday_type"] == "SPECIAL_SESSION"
    nse = next(o for o in muhurat["open_exchanges"] if o["exchange"] == "NSE")
    assert nse["start_time"] == ist_ms(date(2026, 11, 8), 18, 0)
    assert list(by_date) == sorted(by_date)


def test_holidays_default_year_and_errors(engine: Engine) -> None:
    assert ok(engine, "market/holidays")["year"] == 2026  # the engine clock's year
    later = ok(engine, "market/holidays", {"year": 2031})["data"]
    assert "2031-10-02" in {h["date"] for h in later}  # fixed-date holidays in unpublished years
    assert "year: must be >= 2020" in error(engine, "market/holidays", {"year": 2019}, 400)
    assert "year: must be <= 2050" in error(engine, "market/holidays", {"year": "2051"}, 400)
    assert "year: must be a whole number" in error(engine, "market/holidays", {"year": 2026.5}, 400)


def test_timings(engine: Engine) -> None:
    # Exchange hours even though the sandbox itself runs MarketHours.ALWAYS.
    assert ok(engine, "market/timings", {"date": "2026-11-29"})["data"] == []  # a Sunday
    holiday = ok(engine, "market/timings", {"date": "2026-11-24"})["data"]
    assert "NSE" not in {t["exchange"] for t in holiday} and "MCX" in {
        t["exchange"] for t in holiday
    }
    assert ok(engine, "market/timings", {"date": "2026-12-25"})["data"] == []
    day = date(2026, 11, 25)
    rows = {t["exchange"]: t for t in ok(engine, "market/timings", {"date": "2026-11-25"})["data"]}
    assert rows["NSE"] == {
        "exchange": "NSE",
        "start_time": ist_ms(day, 9, 15),
        "end_time": ist_ms(day, 15, 30),
    }
    assert rows["NFO"]["end_time"] == ist_ms(day, 15, 40)
    assert rows["CDS"]["start_time"] == ist_ms(day, 9, 0)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({}, "date: is required"),
        ({"date": "25/11/2026"}, "date: must be a date as YYYY-MM-DD"),
        ({"date": "2026-13-01"}, "is not a calendar date"),
        ({"date": "2019-12-31"}, "date: must be between 2020-01-01 and 2050-12-31"),
    ],
)
def test_timings_errors(engine: Engine, payload: dict[str, Any], needle: str) -> None:
    assert needle in error(engine, "market/timings", payload, 400)
