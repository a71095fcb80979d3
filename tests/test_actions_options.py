"""Options actions through a real Engine on the sandbox: strike selection by offset, the
option chain's ATM and labels, the synthetic future, and Greeks that respect put-call parity."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from openalgo_lab.brokers.base import InstrumentKey
from openalgo_lab.domain.calendar import IST, MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.domain.enums import Exchange, OptionType
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.models import Quote
from openalgo_lab.engine.actions import ActionContext
from openalgo_lab.engine.actions.options import ResolvedOption, resolve_option
from openalgo_lab.engine.engine import Engine, Reply
from openalgo_lab.engine.settings import EngineSettings

NOW = datetime(2026, 11, 25, 11, 0, tzinfo=IST)
EXPIRY = "01DEC26"  # the nearest NIFTY weekly, 40 strikes each side of 26000 at 50 apart
STEP = 50.0
NIFTY = {"underlying": "NIFTY", "exchange": "NSE_INDEX", "expiry_date": EXPIRY}


def make_engine(path: Path, now: datetime = NOW) -> Engine:
    settings = EngineSettings(data_dir=path, market_hours=MarketHours.ALWAYS)
    return Engine(settings, clock=ManualClock(now))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return make_engine(tmp_path_factory.mktemp("engine"))


def call(engine: Engine, name: str, payload: dict[str, Any]) -> Reply:
    return asyncio.run(engine.call(name, payload))


def ok(engine: Engine, name: str, payload: dict[str, Any]) -> dict[str, Any]:
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


def nifty_ltp(engine: Engine) -> float:
    ltp: float = ok(engine, "quotes", {"symbol": "NIFTY", "exchange": "NSE_INDEX"})["data"]["ltp"]
    return ltp


def nearest_listed(ltp: float) -> float:
    return round(ltp / STEP) * STEP  # the sample lists every 50 around the money


def strike_of(symbol: str, option_type: str) -> float:
    return float(symbol.removeprefix(f"NIFTY{EXPIRY}").removesuffix(option_type))


def pick(engine: Engine, offset: str, option_type: str, **extra: Any) -> dict[str, Any]:
    payload = {**NIFTY, "offset": offset, "option_type": option_type, **extra}
    return ok(engine, "optionsymbol", payload)


# -- optionsymbol and resolve_option --------------------------------------------------------------
def test_optionsymbol_atm_is_the_listed_strike_nearest_the_ltp(engine: Engine) -> None:
    body = pick(engine, "ATM", "CE")
    ltp = nifty_ltp(engine)
    assert body["underlying_ltp"] == ltp
    assert strike_of(body["symbol"], "CE") == nearest_listed(ltp)
    assert body["exchange"] == "NFO" and body["lotsize"] == 65
    assert body["tick_size"] == 0.05 and body["freeze_qty"] == 1800


@pytest.mark.parametrize(
    ("offset", "option_type", "steps"),
    [
        ("ITM2", "CE", -2),  # calls are in the money below the spot
        ("OTM3", "CE", +3),
        ("ITM2", "PE", +2),  # puts above it
        ("OTM3", "PE", -3),
        ("atm", "pe", 0),  # any case
    ],
)
def test_offset_direction(engine: Engine, offset: str, option_type: str, steps: int) -> None:
    atm = nearest_listed(nifty_ltp(engine))
    symbol = pick(engine, offset, option_type)["symbol"]
    assert strike_of(symbol, option_type.upper()) == atm + steps * STEP


def test_strike_int_rounds_the_ltp_to_that_interval(engine: Engine) -> None:
    ltp = nifty_ltp(engine)
    atm = round(ltp / 100) * 100
    symbol = pick(engine, "ITM1", "CE", strike_int="100")["symbol"]  # the client sends strings
    assert strike_of(symbol, "CE") == atm - 100


def test_expiry_embedded_in_the_underlying(engine: Engine) -> None:
    payload = {"underlying": "NIFTY29DEC26FUT", "exchange": "NFO", "offset": "ATM"}
    body = ok(engine, "optionsymbol", {**payload, "option_type": "CE"})
    assert body["symbol"] == f"NIFTY29DEC26{int(nearest_listed(nifty_ltp(engine)))}CE"


@pytest.mark.parametrize(
    ("changes", "status", "needle"),
    [
        ({"offset": "ITM51"}, 400, "offset: must be ATM, ITM1..ITM50 or OTM1..OTM50"),
        ({"offset": "NEAR"}, 400, "offset: must be ATM"),
        ({"offset": "OTM50"}, 400, "offset: OTM50 is beyond the listed strikes"),
        ({"offset": None}, 400, "offset: is required"),
        ({"option_type": "CALL"}, 400, "option_type: 'CALL' is not one of CE, PE"),
        ({"expiry_date": None}, 400, "expiry_date: is required"),
        ({"expiry_date": "2026-12-01"}, 400, "expiry_date: must be a date like 01DEC26"),
        ({"expiry_date": "02DEC26"}, 404, "No strikes found for NIFTY expiring 02DEC26 on NFO"),
        ({"exchange": "MCX_INDEX"}, 400, "exchange: MCX_INDEX lists no options"),
        ({"underlying": "NOSUCH"}, 404, "No strikes found for NOSUCH"),
        ({"strike_int": "-50"}, 400, "strike_int: must be > 0"),
    ],
)
def test_optionsymbol_errors(
    engine: Engine, changes: dict[str, Any], status: int, needle: str
) -> None:
    payload: dict[str, Any] = {**NIFTY, "offset": "ATM", "option_type": "CE"}
    for key, value in changes.items():
        if value is None:
            payload.pop(key)
        else:
            payload[key] = value
    assert needle in error(engine, "optionsymbol", payload, status)


def test_resolve_option_for_order_actions(engine: Engine) -> None:
    ctx = ActionContext(engine, engine.account())
    resolved = asyncio.run(
        resolve_option(ctx, "NIFTY", Exchange.NSE_INDEX, EXPIRY, "OTM1", "PE", None)
    )
    assert isinstance(resolved, ResolvedOption)
    assert resolved.option_type is OptionType.PE and resolved.exchange is Exchange.NFO
    assert resolved.instrument.symbol == resolved.symbol
    assert resolved.instrument.strike == resolved.atm_strike - Decimal(50)
    assert resolved.lotsize == 65 and resolved.tick_size == Decimal("0.05")
    # A caller with the LTP in hand (optionsmultiorder) passes it and fetches nothing.
    again = asyncio.run(
        resolve_option(
            ctx,
            "NIFTY",
            Exchange.NFO,
            EXPIRY,
            "ITM1",
            "CE",
            None,
            underlying_ltp=Decimal("25012"),
        )
    )
    assert again.atm_strike == Decimal(25000) and again.instrument.strike == Decimal(24950)
    with pytest.raises(ValidationError, match="offset"):
        asyncio.run(resolve_option(ctx, "NIFTY", Exchange.NFO, EXPIRY, "ITM0", "CE", None))


# -- optionchain ---------------------------------------------------------------------------------
class QuoteSpy:
    """Counts the data broker's calls while passing them through to the sandbox."""

    def __init__(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        broker = engine.account().data_broker
        self.batches: list[int] = []
        self.singles = 0
        real_quotes, real_quote = broker.quotes, broker.quote

        async def quotes(keys: Sequence[InstrumentKey]) -> dict[InstrumentKey, Quote]:
            self.batches.append(len(keys))
            return await real_quotes(keys)

        async def quote(exchange: Exchange, symbol: str) -> Quote:
            self.singles += 1
            return await real_quote(exchange, symbol)

        monkeypatch.setattr(broker, "quotes", quotes)
        monkeypatch.setattr(broker, "quote", quote)


def test_optionchain_window_labels_and_one_quote_batch(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = QuoteSpy(engine, monkeypatch)
    body = ok(engine, "optionchain", {**NIFTY, "strike_count": "3"})  # a string, as typed
    assert spy.batches == [14] and spy.singles == 1  # the underlying, then every leg at once
    ltp = nifty_ltp(engine)
    atm = nearest_listed(ltp)
    assert body["underlying"] == "NIFTY" and body["underlying_ltp"] == ltp
    assert body["atm_strike"] == atm and body["expiry_date"] == EXPIRY
    assert body["expiry_ts"] == int(datetime(2026, 12, 1, 15, 30, tzinfo=IST).timestamp())
    assert body["server_ts"] == int(NOW.timestamp())
    assert body["quotes_included"] is True and body["greeks_included"] is False
    assert body["forward_price"] is None and body["underlying_prev_close"] > 0
    chain = body["chain"]
    assert [row["strike"] for row in chain] == [atm + k * STEP for k in range(-3, 4)]
    assert [row["ce"]["label"] for row in chain] == [
        "ITM3", "ITM2", "ITM1", "ATM", "OTM1", "OTM2", "OTM3"
    ]  # fmt: skip
    assert [row["pe"]["label"] for row in chain] == [
        "OTM3", "OTM2", "OTM1", "ATM", "ITM1", "ITM2", "ITM3"
    ]  # fmt: skip
    leg = chain[3]["ce"]
    assert set(leg) == {
        "symbol", "label", "ltp", "bid", "ask", "bid_qty", "ask_qty", "open", "high", "low",
        "prev_close", "volume", "oi", "lotsize", "tick_size",
    }  # fmt: skip
    assert leg["symbol"] == f"NIFTY{EXPIRY}{int(atm)}CE"
    quote = ok(engine, "quotes", {"symbol": leg["symbol"], "exchange": "NFO"})["data"]
    assert leg["ltp"] == quote["ltp"] and leg["oi"] == quote["oi"]
    assert leg["bid"] <= leg["ask"] and leg["bid_qty"] > 0 and leg["lotsize"] == 65
    # Calls fall and puts rise in value up the strikes.
    calls = [row["ce"]["ltp"] for row in chain]
    puts = [row["pe"]["ltp"] for row in chain]
    assert calls == sorted(calls, reverse=True) and puts == sorted(puts)


def test_optionchain_whole_chain_without_strike_count(engine: Engine) -> None:
    reliance = {"underlying": "RELIANCE", "exchange": "NSE", "expiry_date": "29DEC26"}
    body = ok(engine, "optionchain", reliance)
    strikes = [row["strike"] for row in body["chain"]]
    assert strikes == sorted(strikes) and len(strikes) == 41  # 20 each side of the reference
    labels = [row["ce"]["label"] for row in body["chain"]]
    assert labels.count("ATM") == 1
    assert body["chain"][labels.index("ATM")]["strike"] == body["atm_strike"]


def test_optionchain_greeks_respect_put_call_parity(engine: Engine) -> None:
    payload = {**NIFTY, "strike_count": 4, "with_greeks": "true", "interest_rate": "6.5"}
    body = ok(engine, "optionchain", payload)
    assert body["greeks_included"] is True
    t = (datetime(2026, 12, 1, 15, 30, tzinfo=IST) - NOW).total_seconds() / (365 * 86400)
    discount = math.exp(-0.065 * t)
    atm_row = next(row for row in body["chain"] if row["strike"] == body["atm_strike"])
    forward = body["atm_strike"] + (atm_row["ce"]["ltp"] - atm_row["pe"]["ltp"]) / discount
    assert body["forward_price"] == pytest.approx(forward, abs=1e-3)
    for row in body["chain"]:
        ce, pe = row["ce"], row["pe"]
        for leg in (ce, pe):
            assert 5 < leg["implied_volatility"] < 40  # percent, NIFTY-like
            assert leg["gamma"] > 0 and leg["vega"] > 0 and leg["theta"] < 0
        assert 0 < ce["delta"] < 1 and -1 < pe["delta"] < 0
        # Same strike, same forward: the two IVs agree to the tick, so deltas differ by the
        # discount factor and gammas coincide.
        assert ce["implied_volatility"] == pytest.approx(pe["implied_volatility"], abs=0.3)
        assert ce["delta"] - pe["delta"] == pytest.approx(discount, abs=0.01)
        assert ce["gamma"] == pytest.approx(pe["gamma"], rel=0.05)


@pytest.mark.parametrize(
    ("changes", "status", "needle"),
    [
        ({"strike_count": 0}, 400, "strike_count: must be >= 1"),
        ({"strike_count": 101}, 400, "strike_count: must be <= 100"),
        ({"strike_count": "two"}, 400, "strike_count: must be a number"),
        ({"with_greeks": "maybe"}, 400, "with_greeks: must be true or false"),
        ({"interest_rate": 150}, 400, "interest_rate: must be between 0 and 100"),
        ({"expiry_date": None}, 400, "expiry_date: is required"),
        ({"exchange": "NSE"}, 404, "Symbol NIFTY not found on NSE"),
    ],
)
def test_optionchain_errors(
    engine: Engine, changes: dict[str, Any], status: int, needle: str
) -> None:
    payload: dict[str, Any] = {**NIFTY, "strike_count": 2}
    for key, value in changes.items():
        if value is None:
            payload.pop(key)
        else:
            payload[key] = value
    assert needle in error(engine, "optionchain", payload, status)


# -- syntheticfuture --------------------------------------------------------------------------
def test_synthetic_future_is_strike_plus_call_minus_put(engine: Engine) -> None:
    body = ok(engine, "syntheticfuture", NIFTY)
    atm = body["atm_strike"]
    assert atm == nearest_listed(body["underlying_ltp"]) and body["expiry"] == EXPIRY
    legs = {}
    for kind in ("CE", "PE"):
        symbol = f"NIFTY{EXPIRY}{int(atm)}{kind}"
        legs[kind] = ok(engine, "quotes", {"symbol": symbol, "exchange": "NFO"})["data"]["ltp"]
    assert body["synthetic_future_price"] == pytest.approx(atm + legs["CE"] - legs["PE"], abs=0.005)
    # With the rate at 0 the chain's parity forward is the same number.
    chain = ok(engine, "optionchain", {**NIFTY, "strike_count": 1, "with_greeks": True})
    assert chain["forward_price"] == pytest.approx(body["synthetic_future_price"], abs=0.005)
    assert "expiry_date: is required" in error(
        engine, "syntheticfuture", {"underlying": "NIFTY", "exchange": "NSE_INDEX"}, 400
    )


# -- optiongreeks and multioptiongreeks -------------------------------------------------------
def greeks(engine: Engine, symbol: str, **extra: Any) -> dict[str, Any]:
    return ok(engine, "optiongreeks", {"symbol": symbol, "exchange": "NFO", **extra})


def test_optiongreeks_shape_and_parity(engine: Engine) -> None:
    atm = int(nearest_listed(nifty_ltp(engine)))
    call_ = greeks(engine, f"NIFTY{EXPIRY}{atm}CE", interest_rate="6.5")
    put = greeks(engine, f"NIFTY{EXPIRY}{atm}PE", interest_rate=6.5)
    assert set(call_) >= {
        "symbol", "exchange", "underlying", "strike", "option_type", "expiry_date",
        "days_to_expiry", "spot_price", "option_price", "interest_rate", "implied_volatility",
        "greeks",
    }  # fmt: skip
    assert set(call_["greeks"]) == {"delta", "gamma", "theta", "vega", "rho"}
    assert call_["underlying"] == "NIFTY" and call_["strike"] == atm
    assert call_["option_type"] == "CE" and call_["expiry_date"] == "01-Dec-2026"
    days = (datetime(2026, 12, 1, 15, 30, tzinfo=IST) - NOW).total_seconds() / 86400
    assert call_["days_to_expiry"] == pytest.approx(days, abs=1e-4)
    assert call_["interest_rate"] == 6.5
    # Both legs are priced off one forward: the expiry's ATM put-call parity.
    assert call_["spot_price"] == put["spot_price"]
    assert 5 < call_["implied_volatility"] < 40
    assert call_["implied_volatility"] == pytest.approx(put["implied_volatility"], abs=0.3)
    discount = math.exp(-0.065 * days / 365)
    assert call_["greeks"]["delta"] - put["greeks"]["delta"] == pytest.approx(discount, abs=0.01)
    assert call_["greeks"]["gamma"] == pytest.approx(put["greeks"]["gamma"], rel=0.05)
    assert call_["greeks"]["theta"] < 0 and call_["greeks"]["vega"] > 0
    assert call_["greeks"]["rho"] > 0 > put["greeks"]["rho"]


def test_optiongreeks_at_or_below_intrinsic(engine: Engine) -> None:
    symbol = f"NIFTY{EXPIRY}26000CE"
    ltp = ok(engine, "quotes", {"symbol": symbol, "exchange": "NFO"})["data"]["ltp"]
    deep = greeks(engine, symbol, forward_price=26000 + ltp + 100)
    assert deep["implied_volatility"] == 0
    assert deep["greeks"] == {"delta": 1.0, "gamma": 0.0, "theta": 0.0, "vega": 0.0, "rho": 0.0}
    assert deep["spot_price"] == pytest.approx(26000 + ltp + 100)
    put_symbol = f"NIFTY{EXPIRY}26000PE"
    put_ltp = ok(engine, "quotes", {"symbol": put_symbol, "exchange": "NFO"})["data"]["ltp"]
    deep_put = greeks(engine, put_symbol, forward_price=str(26000 - put_ltp - 100))
    assert deep_put["implied_volatility"] == 0 and deep_put["greeks"]["delta"] == -1.0


def test_optiongreeks_with_a_custom_underlying(engine: Engine) -> None:
    future = ok(engine, "quotes", {"symbol": "NIFTY29DEC26FUT", "exchange": "NFO"})["data"]
    body = greeks(
        engine,
        f"NIFTY{EXPIRY}26000CE",
        underlying_symbol="NIFTY29DEC26FUT",
        underlying_exchange="NFO",
    )
    assert body["spot_price"] == future["ltp"]


@pytest.mark.parametrize(
    ("changes", "status", "needle"),
    [
        ({"exchange": "NSE"}, 400, "exchange: must be an F&O exchange"),
        ({"symbol": "NIFTY29DEC26FUT"}, 400, "symbol: NIFTY29DEC26FUT is not an option"),
        ({"symbol": f"NIFTY{EXPIRY}26001CE"}, 404, f"NIFTY{EXPIRY}26001CE not found on NFO"),
        ({"expiry_time": "25:00"}, 400, "expiry_time: must be HH:MM"),
        ({"forward_price": -1}, 400, "forward_price: must be >= 0"),
        ({"underlying_exchange": "XX"}, 400, "underlying_exchange: 'XX' is not one of"),
    ],
)
def test_optiongreeks_errors(
    engine: Engine, changes: dict[str, Any], status: int, needle: str
) -> None:
    payload = {"symbol": f"NIFTY{EXPIRY}26000CE", "exchange": "NFO", **changes}
    assert needle in error(engine, "optiongreeks", payload, status)


def test_optiongreeks_after_expiry(tmp_path: Path) -> None:
    after = make_engine(tmp_path, datetime(2026, 12, 1, 15, 31, tzinfo=IST))
    symbol = f"NIFTY{EXPIRY}26000CE"
    message = error(after, "optiongreeks", {"symbol": symbol, "exchange": "NFO"}, 400)
    assert "Option has expired on 01-Dec-2026 15:30 IST" in message
    batch = ok(after, "multioptiongreeks", {"symbols": [{"symbol": symbol, "exchange": "NFO"}]})
    [item] = batch["data"]
    assert item["status"] == "success" and item["days_to_expiry"] == 0
    assert item["implied_volatility"] == 0 and item["greeks"]["delta"] == 0


def test_multioptiongreeks_partial(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = QuoteSpy(engine, monkeypatch)
    symbols = [
        {"symbol": f"NIFTY{EXPIRY}26000CE", "exchange": "NFO"},
        {"symbol": f"NIFTY{EXPIRY}99999CE", "exchange": "NFO"},
        {"symbol": f"NIFTY{EXPIRY}26000PE", "exchange": "nfo"},
    ]
    body = call(engine, "multioptiongreeks", {"symbols": symbols, "interest_rate": "0"})
    assert body.status == 200 and body.body["status"] == "partial"
    assert len(spy.batches) == 2 and spy.singles == 0  # spots, then every option at once
    data = body.body["data"]
    assert [d["status"] for d in data] == ["success", "error", "success"]
    assert data[1]["message"] == f"Symbol NIFTY{EXPIRY}99999CE not found on NFO"
    assert body.body["summary"] == {"total": 3, "success": 2, "failed": 1}
    assert "1 option Greeks calculation(s) failed" in body.body["message"]
    single = greeks(engine, f"NIFTY{EXPIRY}26000CE")
    assert data[0]["greeks"] == single["greeks"]


def test_multioptiongreeks_all_failed_and_malformed(engine: Engine) -> None:
    bad = {"symbols": [{"symbol": "NOSUCH", "exchange": "NFO"}]}
    reply = call(engine, "multioptiongreeks", bad)
    assert reply.status == 200 and reply.body["status"] == "error"  # as OpenAlgo answers
    assert reply.body["message"].startswith("All option Greeks calculations failed")
    malformed = {"symbols": [{"symbol": f"NIFTY{EXPIRY}26000CE", "exchange": "NSE"}]}
    assert "symbols[0].exchange" in error(engine, "multioptiongreeks", malformed, 400)
    too_many = {"symbols": [{"symbol": "X", "exchange": "NFO"}] * 51}
    assert "symbols: must have 1 to 50 items" in error(engine, "multioptiongreeks", too_many, 400)
