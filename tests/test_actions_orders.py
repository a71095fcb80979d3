"""Order and account actions through a real Engine on the sandbox (OpenAlgo shapes)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from openalgo_lab.domain.calendar import IST, MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.engine.engine import Engine, Reply
from openalgo_lab.engine.settings import EngineSettings

NOW = datetime(2026, 11, 25, 11, 0, tzinfo=IST)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    settings = EngineSettings(data_dir=tmp_path, market_hours=MarketHours.ALWAYS)
    return Engine(settings, clock=ManualClock(NOW))


def call(engine: Engine, name: str, payload: dict[str, Any] | None = None, **kw: Any) -> Reply:
    return asyncio.run(engine.call(name, payload or {}, **kw))


def ok(engine: Engine, name: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    reply = call(engine, name, payload)
    assert reply.status == 200, reply.body
    assert reply.body["status"] == "success", reply.body
    return reply.body


def order(**kw: Any) -> dict[str, Any]:
    base = {
        "strategy": "t",
        "symbol": "SBIN",
        "exchange": "NSE",
        "action": "BUY",
        "quantity": "10",
        "pricetype": "MARKET",
        "product": "MIS",
    }
    base.update(kw)
    return base


def test_placeorder_and_status(engine: Engine) -> None:
    body = ok(engine, "placeorder", order())
    assert body["mode"] == "analyze" and isinstance(body["orderid"], str)
    status = ok(engine, "orderstatus", {"orderid": body["orderid"], "strategy": "t"})["data"]
    assert status["order_status"] == "complete" and status["quantity"] == 10
    assert status["average_price"] > 0
    assert (
        ok(
            engine,
            "openposition",
            {"strategy": "t", "symbol": "SBIN", "exchange": "NSE", "product": "MIS"},
        )["quantity"]
        == "10"
    )


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (order(quantity="0"), "quantity: must be > 0"),
        (order(quantity="1.5"), "quantity: must be a whole number"),
        (order(exchange="XYZ"), "exchange: 'XYZ' is not one of"),
        (order(symbol="NOPE"), "symbol: NOPE not found on NSE"),
        (order(pricetype="LIMIT"), "price: must be > 0 for a LIMIT order"),
        (order(pricetype="LIMIT", price="800.03"), "tick size"),
        (order(product="NRML"), "NRML is for F&O"),
    ],
)
def test_placeorder_errors_name_the_field(
    engine: Engine, payload: dict[str, Any], needle: str
) -> None:
    reply = call(engine, "placeorder", payload)
    assert reply.status == 400
    assert reply.body["status"] == "error" and needle in reply.body["message"]
    assert ok(engine, "orderbook")["data"]["orders"] == []  # nothing was placed


def test_unknown_action_is_404(engine: Engine) -> None:
    reply = call(engine, "nosuchaction")
    assert reply.status == 404 and "Unknown action" in reply.body["message"]


def test_smart_order_reaches_the_target(engine: Engine) -> None:
    def smart(size: int) -> dict[str, Any]:
        return ok(engine, "placesmartorder", order(position_size=str(size), quantity="0"))

    assert "orderid" in smart(30)
    assert "orderid" in smart(10)  # sells 20
    assert smart(10)["message"] == "Positions Already Matched. No Action needed."
    assert "orderid" in smart(-5)
    pos = ok(
        engine,
        "openposition",
        {"strategy": "t", "symbol": "SBIN", "exchange": "NSE", "product": "MIS"},
    )
    assert pos["quantity"] == "-5"


def test_modify_cancel_and_cancel_all(engine: Engine) -> None:
    quote = ok(engine, "quotes", {"symbol": "SBIN", "exchange": "NSE"})["data"]
    low = round(quote["ltp"] * 0.9, 1)
    oid = ok(engine, "placeorder", order(pricetype="LIMIT", price=str(low)))["orderid"]
    mod = {
        **order(pricetype="LIMIT", price=str(round(low - 1, 1))),
        "orderid": oid,
        "disclosed_quantity": "0",
        "trigger_price": "0",
    }
    assert ok(engine, "modifyorder", mod)["orderid"] == oid
    assert ok(engine, "cancelorder", {"orderid": oid, "strategy": "t"})["orderid"] == oid
    again = call(engine, "cancelorder", {"orderid": oid, "strategy": "t"})
    assert again.status == 400 and "already cancelled" in again.body["message"]
    missing = call(engine, "cancelorder", {"orderid": "123", "strategy": "t"})
    assert missing.status == 404
    for _ in range(3):
        ok(engine, "placeorder", order(pricetype="LIMIT", price=str(low)))
    body = ok(engine, "cancelallorder", {"strategy": "t"})
    assert len(body["canceled_orders"]) == 3 and body["failed_cancellations"] == []
    stats = ok(engine, "orderbook")["data"]["statistics"]
    assert stats["total_open_orders"] == 0 and stats["total_buy_orders"] == 4


def test_basket_places_buys_first(engine: Engine) -> None:
    body = ok(
        engine,
        "basketorder",
        {
            "strategy": "t",
            "orders": [
                {"symbol": "SBIN", "exchange": "NSE", "action": "SELL", "quantity": "1"},
                {"symbol": "INFY", "exchange": "NSE", "action": "BUY", "quantity": "1"},
                {"symbol": "NOPE", "exchange": "NSE", "action": "BUY", "quantity": "1"},
            ],
        },
    )
    results = body["results"]
    assert [r["status"] for r in results] == ["success", "success", "error"]
    book = ok(engine, "orderbook")["data"]["orders"]
    assert [o["symbol"] for o in book] == ["INFY", "SBIN"]  # the BUY went first


def test_split_order_remainder_last(engine: Engine) -> None:
    body = ok(engine, "splitorder", order(quantity="105", splitsize="20"))
    assert body["total_quantity"] == 105 and body["split_size"] == 20
    assert [r["quantity"] for r in body["results"]] == [20, 20, 20, 20, 20, 5]
    too_many = call(engine, "splitorder", order(quantity="1000", splitsize="1"))
    assert too_many.status == 400 and "at most 100" in too_many.body["message"]


def test_close_position_and_books(engine: Engine) -> None:
    assert ok(engine, "closeposition", {"strategy": "t"})["message"] == "No Open Positions Found"
    ok(engine, "placeorder", order(quantity="10"))
    ok(engine, "placeorder", order(symbol="INFY", action="SELL", quantity="5"))
    assert ok(engine, "closeposition", {"strategy": "t"})["message"] == (
        "All Open Positions Squared Off"
    )
    positions = ok(engine, "positionbook")["data"]
    assert {p["symbol"]: p["quantity"] for p in positions} == {"SBIN": 0, "INFY": 0}
    trades = ok(engine, "tradebook")["data"]
    assert len(trades) == 4 and all(t["charges"] > 0 for t in trades)
    funds = ok(engine, "funds")["data"]
    assert set(funds) == {
        "availablecash",
        "collateral",
        "m2mrealized",
        "m2munrealized",
        "utiliseddebits",
    }
    assert funds["utiliseddebits"] == 0
    holdings = ok(engine, "holdings")["data"]
    assert holdings["holdings"] == [] and holdings["statistics"]["totalholdingvalue"] == 0


def test_options_order_by_offset(engine: Engine) -> None:
    body = ok(
        engine,
        "optionsorder",
        {
            "strategy": "t",
            "underlying": "NIFTY",
            "exchange": "NSE_INDEX",
            "expiry_date": "01DEC26",
            "offset": "OTM2",
            "option_type": "CE",
            "action": "BUY",
            "quantity": "65",
            "product": "NRML",
        },
    )
    assert body["symbol"].startswith("NIFTY01DEC26") and body["symbol"].endswith("CE")
    assert body["exchange"] == "NFO" and body["underlying_ltp"] > 0
    strike = int(body["symbol"][len("NIFTY01DEC26") : -2])
    assert strike > body["underlying_ltp"]  # OTM call: above the money
    multi = ok(
        engine,
        "optionsmultiorder",
        {
            "strategy": "t",
            "underlying": "NIFTY",
            "exchange": "NSE_INDEX",
            "expiry_date": "01DEC26",
            "legs": [
                {"offset": "ATM", "option_type": "CE", "action": "SELL", "quantity": 65},
                {"offset": "OTM3", "option_type": "CE", "action": "BUY", "quantity": 65},
            ],
        },
    )
    assert [r["status"] for r in multi["results"]] == ["success", "success"]
    book = ok(engine, "orderbook")["data"]["orders"]
    assert [o["action"] for o in book[1:]] == ["BUY", "SELL"]  # the hedge went first
    bad = call(
        engine,
        "optionsorder",
        {
            "strategy": "t",
            "underlying": "NIFTY",
            "exchange": "NSE_INDEX",
            "expiry_date": "01DEC26",
            "offset": "OTM2",
            "option_type": "CE",
            "action": "BUY",
            "quantity": "65",
            "product": "CNC",
        },
    )
    assert bad.status == 400 and "MIS or NRML" in bad.body["message"]


def test_analyzer_toggle_and_live_without_broker(engine: Engine) -> None:
    status = ok(engine, "analyzer")["data"]
    assert status["analyze_mode"] is True and status["mode"] == "analyze"
    toggled = ok(engine, "analyzer/toggle", {"mode": False})
    assert toggled["data"]["mode"] == "live"
    reply = call(engine, "placeorder", order())
    assert reply.status == 403
    assert "no live broker session" in reply.body["message"]  # not "Invalid openalgo apikey"
    ok(engine, "analyzer/toggle", {"mode": True})
    ok(engine, "placeorder", order())


def test_risk_limits_and_kill_switch(engine: Engine) -> None:
    too_big = call(engine, "placeorder", order(quantity="200000"))
    assert too_big.status == 400 and "per-order limit" in too_big.body["message"]
    ok(engine, "placeorder", order(quantity="10"))
    killed = ok(engine, "killswitch", {"enabled": True})["data"]
    assert killed["enabled"] is True and killed["exit_orders"] == 1
    blocked = call(engine, "placeorder", order())
    assert blocked.status == 400 and "Kill switch" in blocked.body["message"]
    ok(engine, "killswitch", {"enabled": False})
    ok(engine, "placeorder", order())


def test_margin_and_ping(engine: Engine) -> None:
    assert ok(engine, "ping")["data"] == {"message": "pong", "broker": "sandbox"}
    margin = ok(
        engine,
        "margin",
        {
            "positions": [
                {
                    "symbol": "SBIN",
                    "exchange": "NSE",
                    "action": "BUY",
                    "quantity": "100",
                    "product": "MIS",
                    "pricetype": "LIMIT",
                    "price": "800",
                },
            ]
        },
    )["data"]
    assert margin["total_margin_required"] == 16000.0  # 100 x 800 / 5x


def test_multiple_accounts_are_separate(tmp_path: Path) -> None:
    settings = EngineSettings(
        data_dir=tmp_path, market_hours=MarketHours.ALWAYS, accounts=("alice", "bob")
    )
    engine = Engine(settings, clock=ManualClock(NOW))
    asyncio.run(engine.call("placeorder", order(), account="alice"))
    alice = asyncio.run(engine.call("orderbook", {}, account="alice")).body
    bob = asyncio.run(engine.call("orderbook", {}, account="bob")).body
    assert len(alice["data"]["orders"]) == 1 and bob["data"]["orders"] == []
    missing = asyncio.run(engine.call("orderbook", {}, account="carol"))
    assert missing.status == 404
