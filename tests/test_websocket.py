"""The OpenAlgo feed at `{base_url}openalgo/ws` against a real Jupyter server (pytest-jupyter),
and the official 1.0.47 client's `FeedAPI` against a `jupyter server` subprocess.

Every socket here is opened without the Jupyter token: outside callers only have an API key.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse
from tornado.websocket import WebSocketClientConnection

from openalgo_lab.server_ext import websocket as feed
from openalgo_lab.server_ext.app import OpenAlgoLabApp
from openalgo_lab.store.apikeys import create_key
from tests.live_server import LiveServer

pytest_plugins = ["pytest_jupyter.jupyter_server"]

EXTENSION = "openalgo_lab.server_ext"
ORDER = {
    "strategy": "test",
    "symbol": "SBIN",
    "exchange": "NSE",
    "action": "BUY",
    "quantity": "1",
    "pricetype": "MARKET",
    "product": "MIS",
}
WAIT = 5.0
Fetch = Callable[..., Awaitable[HTTPResponse]]
WsFetch = Callable[..., Awaitable[WebSocketClientConnection]]


@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {EXTENSION: True, "jupyter_server_terminals": False}},
        "OpenAlgoLabApp": {
            "data_dir": str(tmp_path / "lab-data"),
            "market_hours": "always",
            "order_rate_limit": "1000 per second",
            "api_rate_limit": "1000 per second",
        },
    }


class Feed:
    """The started extension, a trading key, and a way to open sockets without a token."""

    def __init__(self, app: OpenAlgoLabApp, fetch: Fetch, ws_fetch: WsFetch) -> None:
        assert app.services is not None, app.startup_error
        self.app = app
        self.services = app.services
        self.fetch = fetch
        self.ws_fetch = ws_fetch
        self.key = create_key(
            self.services.engine.state,
            "default",
            "trading",
            "ws test",
            pepper=self.services.pepper,
            rounds=4,
        )

    async def connect(self) -> WebSocketClientConnection:
        return await self.ws_fetch("openalgo", "ws", headers={"Authorization": ""})

    async def authenticated(self) -> WebSocketClientConnection:
        ws = await self.connect()
        await send(ws, {"action": "authenticate", "api_key": self.key})
        reply = await receive(ws)
        assert reply["type"] == "auth" and reply["status"] == "success", reply
        return ws

    async def place_order(self) -> str:
        response = await self.fetch(
            "openalgo",
            "api",
            "v1",
            "placeorder",
            method="POST",
            body=json.dumps({**ORDER, "apikey": self.key}),
            headers={"Authorization": ""},
        )
        body = json.loads(response.body)
        assert body["status"] == "success", body
        return str(body["orderid"])


@pytest.fixture
def lab(jp_serverapp: Any, jp_fetch: Fetch, jp_ws_fetch: WsFetch, jp_asyncio_loop: Any) -> Feed:
    # the fixtures never run ServerApp._post_start, which is what starts extensions
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.start_all_extensions())
    return Feed(jp_serverapp.web_app.settings["openalgo_lab"], jp_fetch, jp_ws_fetch)


async def send(ws: WebSocketClientConnection, message: Any) -> None:
    await ws.write_message(message if isinstance(message, str) else json.dumps(message))


async def receive(ws: WebSocketClientConnection, timeout: float = WAIT) -> Any:
    raw = await asyncio.wait_for(ws.read_message(), timeout)
    return None if raw is None else json.loads(raw)


async def receive_where(
    ws: WebSocketClientConnection, match: Callable[[Any], bool], timeout: float = WAIT
) -> Any:
    """The first message `match` accepts, skipping ticks and acks in between."""
    async with asyncio.timeout(timeout):
        while True:
            message = await receive(ws, timeout)
            assert message is not None, "the server closed the socket"
            if match(message):
                return message


def is_tick(mode: int, symbol: str = "SBIN") -> Callable[[Any], bool]:
    return lambda m: m.get("type") == "market_data" and m["mode"] == mode and m["symbol"] == symbol


# -- authentication -------------------------------------------------------------------------------
async def test_authenticate_success(lab: Feed) -> None:
    ws = await lab.connect()
    await send(ws, {"action": "authenticate", "api_key": lab.key})
    reply = await receive(ws)
    assert reply["type"] == "auth" and reply["status"] == "success"
    assert reply["user_id"] == "default" and reply["supported_features"]["depth"] is True
    ws.close()


async def test_bad_key_gets_error_and_close(lab: Feed) -> None:
    ws = await lab.connect()
    await send(ws, {"action": "auth", "apikey": "0" * 64})
    reply = await receive(ws)
    assert reply["status"] == "error" and reply["code"] == "AUTHENTICATION_ERROR"
    assert await receive(ws) is None
    assert ws.close_code == feed.AUTH_CLOSE_CODE
    ws.close()


async def test_subscribe_before_auth_is_refused_and_socket_stays_open(lab: Feed) -> None:
    ws = await lab.connect()
    await send(ws, {"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1})
    reply = await receive(ws)
    assert reply["status"] == "error" and reply["code"] == "NOT_AUTHENTICATED"
    await send(ws, {"action": "ping"})
    assert (await receive(ws))["type"] == "pong"
    ws.close()


# -- market data ----------------------------------------------------------------------------------
async def test_subscribe_single_shape_ltp(lab: Feed) -> None:
    ws = await lab.authenticated()
    await send(
        ws, {"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1, "depth": 5}
    )
    ack = await receive(ws)
    assert ack["type"] == "subscribe" and ack["status"] == "success"
    assert ack["subscriptions"][0]["mode"] == "LTP"
    tick = await receive_where(ws, is_tick(1))
    assert tick["exchange"] == "NSE"
    assert tick["data"]["ltp"] > 0 and isinstance(tick["data"]["timestamp"], int)
    ws.close()


async def test_subscribe_list_shape_quote_and_depth(lab: Feed) -> None:
    ws = await lab.authenticated()
    await send(
        ws,
        {
            "action": "subscribe",
            "symbols": [{"symbol": "SBIN", "exchange": "NSE"}],
            "mode": "Quote",
            "request_id": "q1",
        },
    )
    ack = await receive(ws)
    assert ack["status"] == "success" and ack["request_id"] == "q1"
    quote = await receive_where(ws, is_tick(2))
    fields = {"open", "high", "low", "close", "ltp", "volume", "change", "timestamp"}
    assert fields <= set(quote["data"])
    await send(
        ws, {"action": "subscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}], "mode": 3}
    )
    depth = await receive_where(ws, is_tick(3))
    for side in ("buy", "sell"):
        levels = depth["data"]["depth"][side]
        assert len(levels) == 5
        assert set(levels[0]) == {"price", "quantity", "orders"}
    ws.close()


async def test_subscribe_reports_bad_entries_and_bad_mode(lab: Feed) -> None:
    ws = await lab.authenticated()
    await send(
        ws,
        {
            "action": "subscribe",
            "symbols": [
                {"symbol": "SBIN", "exchange": "NSE"},
                {"symbol": "NOSUCH", "exchange": "NSE"},
                {"symbol": "SBIN", "exchange": "XYZ"},
            ],
            "mode": "ltp",
        },
    )
    ack = await receive_where(ws, lambda m: m.get("type") == "subscribe")
    assert ack["status"] == "partial"
    assert [s["status"] for s in ack["subscriptions"]] == ["success", "error", "error"]
    await send(ws, {"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 7})
    error = await receive_where(ws, lambda m: m.get("status") == "error")
    assert error["code"] == "INVALID_MODE"
    ws.close()


async def test_unsubscribe_stops_ticks(lab: Feed) -> None:
    ws = await lab.authenticated()
    await send(ws, {"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1})
    await receive_where(ws, is_tick(1))
    await send(ws, {"action": "unsubscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1})
    ack = await receive_where(ws, lambda m: m.get("type") == "unsubscribe")
    assert ack["status"] == "success"
    with pytest.raises(TimeoutError):
        # several poll intervals: any message now would be a tick after the unsubscribe
        await receive(ws, timeout=1.5)  # the sandbox moves every second
    ws.close()


async def test_unsubscribe_list_shape_with_mode_per_entry(lab: Feed) -> None:
    ws = await lab.authenticated()
    await send(
        ws, {"action": "subscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}], "mode": 2}
    )
    await receive_where(ws, is_tick(2))
    await send(
        ws,
        {"action": "unsubscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE", "mode": 2}]},
    )
    await receive_where(ws, lambda m: m.get("type") == "unsubscribe")
    with pytest.raises(TimeoutError):
        await receive(ws, timeout=1.5)  # the sandbox moves every second
    ws.close()


# -- control messages -----------------------------------------------------------------------------
async def test_ping_pong(lab: Feed) -> None:
    ws = await lab.authenticated()
    await send(ws, {"action": "ping", "timestamp": 123, "_pingId": "p"})
    reply = await receive(ws)
    assert reply["type"] == "pong" and reply["client_timestamp"] == 123
    assert reply["_pingId"] == "p" and isinstance(reply["server_timestamp"], int)
    ws.close()


async def test_bad_json_and_unknown_action_keep_the_socket_open(lab: Feed) -> None:
    ws = await lab.authenticated()
    await send(ws, "{not json")
    reply = await receive(ws)
    assert reply["status"] == "error" and "JSON" in reply["message"]
    await send(ws, "[1, 2]")
    assert (await receive(ws))["status"] == "error"
    await send(ws, {"action": "dance", "request_id": 9})
    reply = await receive(ws)
    assert reply["code"] == "INVALID_ACTION" and reply["request_id"] == 9
    await send(ws, {"action": "ping"})
    assert (await receive(ws))["type"] == "pong"
    ws.close()


async def test_subscribe_orders_forwards_order_updates(lab: Feed) -> None:
    ws = await lab.authenticated()
    await send(ws, {"action": "subscribe_orders", "request_id": "o"})
    ack = await receive(ws)
    assert ack["type"] == "subscribe_orders" and ack["status"] == "success"
    orderid = await lab.place_order()
    update = await receive_where(
        ws, lambda m: m.get("type") == "order_update" and m["orderid"] == orderid
    )
    assert update["symbol"] == "SBIN" and update["action"] == "BUY"
    assert update["mode"] == "analyze" and "order_status" in update
    await send(ws, {"action": "unsubscribe_orders"})
    await receive_where(ws, lambda m: m.get("type") == "unsubscribe_orders")
    ws.close()


async def test_closing_cancels_the_connections_tasks(lab: Feed) -> None:
    bus = lab.services.engine.events
    before = len(bus._subscriptions)
    ws = await lab.authenticated()
    await send(ws, {"action": "subscribe_orders"})
    await receive(ws)
    assert len(bus._subscriptions) == before + 1
    ws.close()
    async with asyncio.timeout(WAIT):
        while len(bus._subscriptions) != before:
            await asyncio.sleep(0.05)
    tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("openalgo-ws-")]
    await asyncio.sleep(0.05)
    assert all(t.done() for t in tasks)


# -- the outbox -----------------------------------------------------------------------------------
def test_outbox_conflates_ticks_and_counts_drops() -> None:
    box = feed.Outbox(limit=3)
    a = feed.Stream(feed.Exchange.NSE, "SBIN", feed.FeedMode.LTP)
    b = feed.Stream(feed.Exchange.NSE, "INFY", feed.FeedMode.LTP)
    for ltp in (1, 2, 3):
        box.put_tick(a, {"ltp": ltp})
    assert len(box) == 1 and box.conflated == 2
    box.put({"type": "pong"})
    box.put_tick(b, {"ltp": 9})
    box.put({"type": "ack"})  # full: the oldest tick (a) goes
    assert box.dropped == 1 and len(box) == 3

    async def drain() -> list[Any]:
        return [await box.get() for _ in range(3)]

    assert asyncio.run(drain()) == [{"type": "pong"}, {"type": "ack"}, {"ltp": 9}]


def test_parse_mode_accepts_ints_and_names() -> None:
    assert feed.parse_mode(1) is feed.FeedMode.LTP
    assert feed.parse_mode("quote") is feed.FeedMode.QUOTE
    assert feed.parse_mode("3") is feed.FeedMode.DEPTH
    for bad in (0, 4, True, "full", None):
        with pytest.raises(feed.ProtocolError):
            feed.parse_mode(bad)


# -- the official client --------------------------------------------------------------------------
FEED_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from openalgo import api

    host, ws_url, key = sys.argv[1], sys.argv[2], sys.argv[3]
    client = api(api_key=key, host=host, ws_url=ws_url)
    out = {"connected": client.connect()}
    ticks = []
    out["subscribed"] = client.subscribe_ltp(
        [{"exchange": "NSE", "symbol": "SBIN"}], on_data_received=ticks.append
    )
    deadline = time.monotonic() + 10
    while not ticks and time.monotonic() < deadline:
        time.sleep(0.1)
    out["ticks"] = ticks[:1]
    out["ltp"] = client.get_ltp()
    out["unsubscribed"] = client.unsubscribe_ltp([{"exchange": "NSE", "symbol": "SBIN"}])
    client.disconnect()
    bad = api(api_key="0" * 64, host=host, ws_url=ws_url)
    out["bad_key_connected"] = bad.connect()
    print(json.dumps(out, default=str))
    """
)


@pytest.mark.slow
def test_official_client_feed(live_server: LiveServer) -> None:
    ws_url = live_server.url.replace("http://", "ws://") + "/ws"
    done = subprocess.run(
        [sys.executable, "-c", FEED_SCRIPT, live_server.url, ws_url, live_server.key],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["connected"] is True and out["subscribed"] is True
    assert out["ticks"] and out["ticks"][0]["mode"] == 1, out
    assert out["ltp"]["ltp"]["NSE"]["SBIN"]["ltp"] > 0
    assert out["bad_key_connected"] is False
