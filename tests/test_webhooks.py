"""Strategy webhooks, ChartInk alerts and the Action Center against a real Jupyter server.

Alerts are sent with no Jupyter token (as TradingView or ChartInk would); strategies and
Action Center decisions go through the Jupyter-authenticated routes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse

from openalgo_lab.domain.calendar import IST
from openalgo_lab.engine.engine import Engine
from openalgo_lab.server_ext.app import OpenAlgoLabApp

pytest_plugins = ["pytest_jupyter.jupyter_server"]

EXTENSION = "openalgo_lab.server_ext"
Fetch = Callable[..., Awaitable[HTTPResponse]]
SYMBOLS = {
    "RELIANCE": {"exchange": "NSE", "quantity": 5, "product": "MIS"},
    "SBIN": {"exchange": "NSE", "quantity": 3, "product": "MIS"},
    "TCS": {"exchange": "NSE", "quantity": 2, "product": "MIS"},
}


@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {EXTENSION: True, "jupyter_server_terminals": False}},
        "OpenAlgoLabApp": {
            "data_dir": str(tmp_path / "lab-data"),
            "market_hours": "always",
            "order_rate_limit": "1000 per second",
            "smart_order_rate_limit": "1000 per second",
            "api_rate_limit": "1000 per second",
        },
    }


class Lab:
    """The started extension, with helpers for the strategy and webhook routes."""

    def __init__(self, app: OpenAlgoLabApp, fetch: Fetch) -> None:
        assert app.services is not None, app.startup_error
        self.engine: Engine = app.services.engine
        self.fetch = fetch

    async def create(self, **body: Any) -> dict[str, Any]:
        body.setdefault("symbols", SYMBOLS)
        r = await self.fetch("openalgo", "strategies", method="POST", body=json.dumps(body))
        assert r.code == 201
        data: dict[str, Any] = json.loads(r.body)
        return data

    async def alert(
        self, token: str, body: Any, *, kind: str = "strategy", text: bool = False
    ) -> tuple[int, dict[str, Any]]:
        raw = body if text else json.dumps(body)
        content_type = "text/plain; charset=utf-8" if text else "application/json"
        r = await self.fetch(
            "openalgo",
            kind,
            "webhook",
            token,
            method="POST",
            body=raw,
            headers={"Authorization": "", "Content-Type": content_type},
            raise_error=False,
        )
        assert r.headers["Content-Type"].startswith("application/json"), r.body
        return r.code, json.loads(r.body)

    async def orders(self) -> list[dict[str, Any]]:
        reply = await self.engine.call("orderbook", {}, account="default")
        assert reply.ok, reply.body
        orders: list[dict[str, Any]] = reply.body["data"]["orders"]
        return orders

    async def action_center(self, **body: Any) -> tuple[int, dict[str, Any]]:
        if body:
            r = await self.fetch(
                "openalgo", "actioncenter", method="POST", body=json.dumps(body), raise_error=False
            )
        else:
            r = await self.fetch("openalgo", "actioncenter")
        return r.code, json.loads(r.body)


@pytest.fixture
def lab(jp_serverapp: Any, jp_fetch: Fetch, jp_asyncio_loop: Any) -> Lab:
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.start_all_extensions())
    return Lab(jp_serverapp.web_app.settings["openalgo_lab"], jp_fetch)


def window_excluding_now() -> tuple[str, str]:
    """A one-minute IST window that cannot contain the current time."""
    hour = datetime.now(IST).hour
    return ("01:00", "01:01") if hour >= 12 else ("13:00", "13:01")


# -- strategies ---------------------------------------------------------------------------------
async def test_create_and_list_strategy(lab: Lab, jp_base_url: str) -> None:
    created = await lab.create(name="Trend one", mode="LONG", platform="tradingview")
    token = created["webhook_token"]
    assert len(token) >= 40
    assert created["webhook_path"] == f"{jp_base_url}openalgo/strategy/webhook/{token}"
    assert created["data"]["symbols"]["RELIANCE"]["quantity"] == 5
    listing = json.loads((await lab.fetch("openalgo", "strategies")).body)["data"]
    assert [s["name"] for s in listing] == ["Trend one"]
    one = await lab.fetch("openalgo", "strategies", str(created["data"]["id"]))
    assert json.loads(one.body)["data"]["mode"] == "LONG"


async def test_strategy_routes_need_jupyter_auth(lab: Lab) -> None:
    r = await lab.fetch("openalgo", "strategies", headers={"Authorization": ""}, raise_error=False)
    assert r.code == 403


async def test_create_strategy_validates(lab: Lab) -> None:
    for bad in (
        {"name": "x"},
        {"name": "Good name", "mode": "SIDEWAYS"},
        {"name": "Good name", "start_time": "9am"},
    ):
        r = await lab.fetch(
            "openalgo", "strategies", method="POST", body=json.dumps(bad), raise_error=False
        )
        assert r.code == 400, bad


# -- alerts -------------------------------------------------------------------------------------
async def test_json_alert_places_an_order(lab: Lab) -> None:
    token = (await lab.create(name="Json alert", mode="LONG"))["webhook_token"]
    code, body = await lab.alert(token, {"symbol": "RELIANCE", "action": "BUY"})
    assert code == 200, body
    assert body["status"] == "success" and body["orders"][0]["orderid"]
    [order] = await lab.orders()
    assert order["symbol"] == "RELIANCE" and order["action"] == "BUY"
    assert int(order["quantity"]) == 5 and order["strategy"] == "Json alert"


async def test_text_plain_tradingview_alert(lab: Lab) -> None:
    token = (await lab.create(name="Text alert", mode="LONG"))["webhook_token"]
    code, body = await lab.alert(token, "buy SBIN 7", text=True)
    assert code == 200, body
    [order] = await lab.orders()
    assert order["symbol"] == "SBIN" and int(order["quantity"]) == 7


async def test_both_mode_uses_smart_orders(lab: Lab) -> None:
    token = (await lab.create(name="Both ways", mode="BOTH"))["webhook_token"]
    code, body = await lab.alert(token, {"symbol": "TCS", "action": "BUY", "position_size": "4"})
    assert code == 200, body
    assert body["orders"][0]["action"] == "placesmartorder"
    code, body = await lab.alert(token, {"symbol": "TCS", "action": "SELL", "position_size": "3"})
    assert code == 400 and "position_size" in body["message"]


async def test_chartink_alert_with_two_stocks(lab: Lab) -> None:
    created = await lab.create(name="Scanner", mode="LONG", platform="chartink")
    assert "/openalgo/chartink/webhook/" in created["webhook_path"]
    alert = {
        "stocks": "RELIANCE,SBIN,UNMAPPED",
        "trigger_prices": "1500.5,950.2,10",
        "triggered_at": "10:15 am",
        "scan_name": "Breakout BUY",
        "scan_url": "breakout-buy",
        "alert_name": "Breakout",
    }
    code, body = await lab.alert(created["webhook_token"], alert, kind="chartink")
    assert code == 200, body
    assert body["skipped"] == ["UNMAPPED"]
    orders = await lab.orders()
    assert sorted((o["symbol"], int(o["quantity"])) for o in orders) == [
        ("RELIANCE", 5),
        ("SBIN", 3),
    ]


async def test_duplicate_alert_within_window_orders_once(lab: Lab) -> None:
    token = (await lab.create(name="Retried", mode="LONG", dedupe_seconds=600))["webhook_token"]
    alert = {"symbol": "RELIANCE", "action": "BUY", "position_size": "2"}
    first = await lab.alert(token, alert)
    second = await lab.alert(token, alert)
    assert first[0] == second[0] == 200
    assert first[1]["orders"][0]["orderid"] == second[1]["orders"][0]["orderid"]
    assert len(await lab.orders()) == 1


async def test_long_only_refuses_short_entry(lab: Lab) -> None:
    token = (await lab.create(name="Longs only", mode="LONG"))["webhook_token"]
    code, body = await lab.alert(token, {"symbol": "SBIN", "action": "SELL", "position_size": "-5"})
    assert code == 400 and "LONG only" in body["message"]
    code, body = await lab.alert(token, "SHORT SBIN 5", text=True)
    assert code == 400 and body["status"] == "error"
    assert await lab.orders() == []


async def test_short_only_refuses_long_entry(lab: Lab) -> None:
    token = (await lab.create(name="Shorts only", mode="SHORT"))["webhook_token"]
    code, body = await lab.alert(token, {"symbol": "SBIN", "action": "BUY", "position_size": "5"})
    assert code == 400 and "SHORT only" in body["message"]
    code, body = await lab.alert(token, {"symbol": "SBIN", "action": "SELL"})
    assert code == 200, body
    [order] = await lab.orders()
    assert order["action"] == "SELL" and int(order["quantity"]) == 3


async def test_alert_outside_window_is_refused(lab: Lab) -> None:
    start, end = window_excluding_now()
    token = (await lab.create(name="Windowed", mode="LONG", start_time=start, end_time=end))[
        "webhook_token"
    ]
    code, body = await lab.alert(token, {"symbol": "SBIN", "action": "BUY"})
    assert code == 400 and "outside the trading window" in body["message"]
    assert await lab.orders() == []


async def test_unknown_token_is_404(lab: Lab) -> None:
    code, body = await lab.alert("no-such-token", {"symbol": "SBIN", "action": "BUY"})
    assert code == 404 and body == {"status": "error", "message": "Unknown webhook"}


@pytest.mark.parametrize(
    ("raw", "text", "field"),
    [
        ('{"symbol": "SBIN"', False, "not valid JSON"),
        ("[1, 2]", False, "JSON object"),
        ({"symbol": "SBIN", "action": "HOLD"}, False, "action"),
        ({"action": "BUY"}, False, "symbol"),
        ({"symbol": "NOTMAPPED", "action": "BUY"}, False, "not mapped"),
        ({"symbol": "SBIN", "action": "BUY", "position_size": "lots"}, False, "position_size"),
        ("BUY", True, "ACTION SYMBOL"),
        ("", True, "empty"),
    ],
)
async def test_malformed_alerts_are_400(lab: Lab, raw: Any, text: bool, field: str) -> None:
    token = (await lab.create(name="Strict", mode="LONG"))["webhook_token"]
    body_text = raw if isinstance(raw, str) else json.dumps(raw)
    code, body = await lab.alert(token, body_text, text=True)
    assert code == 400, body
    assert body["status"] == "error" and field in body["message"]
    assert await lab.orders() == []


async def test_chartink_route_needs_chartink_body(lab: Lab) -> None:
    token = (await lab.create(name="Scan only", platform="chartink"))["webhook_token"]
    code, body = await lab.alert(token, {"symbol": "SBIN", "action": "BUY"}, kind="chartink")
    assert code == 400 and "stocks" in body["message"]
    code, body = await lab.alert(token, {"stocks": "SBIN", "scan_name": "nothing"}, kind="chartink")
    assert code == 400 and "scan_name" in body["message"]


# -- semi-auto and the Action Center ------------------------------------------------------------
async def test_semi_auto_queues_then_approve_places_and_reject_drops(lab: Lab) -> None:
    token = (await lab.create(name="Needs approval", mode="LONG", semi_auto=True))["webhook_token"]
    code, first = await lab.alert(token, {"symbol": "RELIANCE", "action": "BUY"})
    assert code == 200 and first["mode"] == "semi_auto", first
    code, second = await lab.alert(token, "BUY SBIN 1", text=True)
    assert code == 200 and second["pending_order_id"] != first["pending_order_id"]
    assert await lab.orders() == []
    _, pending = await lab.action_center()
    assert [p["id"] for p in pending["data"]] == [
        first["pending_order_id"],
        second["pending_order_id"],
    ]

    code, approved = await lab.action_center(id=first["pending_order_id"], decision="approve")
    assert code == 200 and approved["orderid"], approved
    [order] = await lab.orders()
    assert order["symbol"] == "RELIANCE" and order["orderid"] == approved["orderid"]

    code, rejected = await lab.action_center(id=second["pending_order_id"], decision="reject")
    assert code == 200 and rejected["data"]["status"] == "rejected"
    assert len(await lab.orders()) == 1
    _, pending = await lab.action_center()
    assert pending["data"] == []

    code, again = await lab.action_center(id=first["pending_order_id"], decision="approve")
    assert code == 409 and "already approved" in again["message"]
    code, _ = await lab.action_center(id=999, decision="approve")
    assert code == 404
    code, _ = await lab.action_center(id=first["pending_order_id"], decision="maybe")
    assert code == 400
    for bad in ("abc", None, True, -1, 1.5):
        code, body = await lab.action_center(id=bad, decision="approve")
        assert code == 400 and body["message"].startswith("id: must be the pending order's")


# -- the official client ------------------------------------------------------------------------
@pytest.mark.slow
async def test_official_client_strategyorder(
    lab: Lab, http_server_port: tuple[Any, int], jp_base_url: str
) -> None:
    """openalgo 1.0.47's `Strategy(host_url, token).strategyorder(...)`, unchanged; it is
    synchronous (httpx), so it runs on a thread while the server answers on this loop."""
    openalgo = pytest.importorskip("openalgo")
    token = (await lab.create(name="Client strategy", mode="BOTH"))["webhook_token"]
    host = f"http://localhost:{http_server_port[-1]}{jp_base_url}openalgo"
    sender = openalgo.Strategy(host_url=host, webhook_id=token)
    answer = await asyncio.to_thread(sender.strategyorder, "SBIN", "BUY", 3)
    assert answer["status"] == "success", answer
    [order] = await lab.orders()
    assert order["symbol"] == "SBIN" and order["action"] == "BUY"


async def test_semi_auto_duplicate_alert_queues_once(lab: Lab) -> None:
    token = (await lab.create(name="Approve once", mode="LONG", semi_auto=True))["webhook_token"]
    _, first = await lab.alert(token, {"symbol": "TCS", "action": "BUY"})
    _, second = await lab.alert(token, {"symbol": "TCS", "action": "BUY"})
    assert first["pending_order_id"] == second["pending_order_id"]
    _, pending = await lab.action_center()
    assert len(pending["data"]) == 1


# -- rate limit ---------------------------------------------------------------------------------
async def test_webhook_rate_limit_per_token(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENALGO_LAB_WEBHOOK_RATE_LIMIT", "2 per minute")
    one = (await lab.create(name="Limited one", mode="LONG"))["webhook_token"]
    two = (await lab.create(name="Limited two", mode="LONG"))["webhook_token"]
    alert = {"symbol": "SBIN", "action": "SELL"}  # a flat exit: answered, orders nothing
    codes = [(await lab.alert(one, alert))[0] for _ in range(3)]
    assert codes == [200, 200, 429]
    assert (await lab.alert(two, alert))[0] == 200
