"""The remote Client's feed across a real server restart, and inside a real kernel.

The restart test stops the `jupyter server` and starts it again on the same port and data
directory; the Client's feed must notice, reconnect by itself, subscribe again and deliver
order events and ticks for what happens afterwards. The kernel test runs the Client in a
kernel the server itself launched, so discovery, session tokens and the feed on the kernel's
own event loop are all the real thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

import openalgo_lab
from openalgo_lab.client.feed import Feed
from tests import live_server
from tests.live_server import TOKEN, LiveServer, running_server

LIMITS = {"order_rate_limit": "1000 per second", "api_rate_limit": "1000 per second"}
ORDER = {
    "strategy": "feed-test",
    "symbol": "SBIN",
    "exchange": "NSE",
    "action": "BUY",
    "price_type": "MARKET",
    "product": "MIS",
    "quantity": 1,
}
WAIT = 20.0


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def topics_of(events: list[tuple[str, dict[str, Any]]], orderid: str) -> set[str]:
    return {topic for topic, data in list(events) if data.get("orderid") == orderid}


@pytest.mark.slow  # two server starts
def test_the_feed_reconnects_after_a_server_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = live_server.free_port()
    monkeypatch.setattr(live_server, "free_port", lambda: port)  # restart on the same port
    events: list[tuple[str, dict[str, Any]]] = []
    ticks: list[dict[str, Any]] = []
    lock = threading.Lock()

    def on_event(topic: str, data: Any) -> None:
        with lock:
            events.append((topic, data))

    def on_tick(topic: str, data: Any) -> None:
        with lock:
            ticks.append(data)

    with contextlib.ExitStack() as stack:
        servers = contextlib.ExitStack()
        stack.callback(servers.close)  # runs last: the client closes first
        server = servers.enter_context(running_server(tmp_path, LIMITS))
        client = stack.enter_context(openalgo_lab.connect(server.url, server.key))
        client.subscribe(on_event)
        client.subscribe_ticks([{"exchange": "NSE", "symbol": "SBIN"}], "LTP", on_tick)
        feed = client.transport.feed()  # type: ignore[attr-defined]
        assert isinstance(feed, Feed)
        before = client.placeorder(**ORDER)["orderid"]
        assert wait_for(lambda: topics_of(events, before) == {"order", "trade"}), events
        assert wait_for(lambda: bool(ticks))
        servers.close()  # the server goes away under the connected Client
        assert wait_for(lambda: not feed.status.connected)
        down = client.funds()
        assert down["status"] == "error" and down["error_type"] == "connection_error"

        restarted = servers.enter_context(running_server(tmp_path, LIMITS))
        assert restarted.port == server.port
        during = client.placeorder(**ORDER)  # may land before the feed is back: caught up
        assert during["status"] == "success", during
        assert wait_for(lambda: feed.status.connected and feed.status.connections >= 2)
        after = client.placeorder(**ORDER)["orderid"]
        assert wait_for(lambda: topics_of(events, during["orderid"]) == {"order", "trade"})
        assert wait_for(lambda: topics_of(events, after) == {"order", "trade"}), events
        with lock:
            ticks.clear()
        assert wait_for(lambda: bool(ticks)), "no ticks after the restart"
        trades = [d for t, d in events if t == "trade"]
        assert len({d["tradeid"] for d in trades}) == len(trades)  # none delivered twice


# -- a kernel launched by the server -------------------------------------------------------------
class ServerKernel:
    """A kernel started through the server's REST API, run over its channels WebSocket."""

    def __init__(self, server: LiveServer) -> None:
        self._headers = {"Authorization": f"token {TOKEN}"}
        created = httpx.post(
            f"{server.root}api/kernels", json={"name": "python3"}, headers=self._headers
        )
        assert created.status_code == 201, created.text
        self.id = created.json()["id"]
        self._root = server.root
        self._session = uuid.uuid4().hex
        self._loop = asyncio.new_event_loop()
        url = server.root.replace("http://", "ws://") + f"api/kernels/{self.id}/channels"
        request = HTTPRequest(url, headers=self._headers, connect_timeout=10)

        async def open_channels() -> WebSocketClientConnection:
            return await websocket_connect(request)

        self._ws = self._loop.run_until_complete(open_channels())

    def run(self, code: str, timeout: float = 60.0) -> str:
        """Execute a cell; its stdout, or AssertionError with the kernel's traceback."""
        return self._loop.run_until_complete(asyncio.wait_for(self._run(code), timeout))

    async def _run(self, code: str) -> str:
        msg_id = uuid.uuid4().hex
        message = {
            "header": {
                "msg_id": msg_id,
                "msg_type": "execute_request",
                "username": "test",
                "session": self._session,
                "date": datetime.now(UTC).isoformat(),
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
            "channel": "shell",
            "buffers": [],
        }
        await self._ws.write_message(json.dumps(message))
        out: list[str] = []
        replied = idle = False
        while not (replied and idle):
            raw = await self._ws.read_message()
            assert raw is not None, "the kernel channel closed"
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                out.append(content["text"])
            elif kind == "error":
                raise AssertionError("\n".join(content.get("traceback", [])))
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
        return "".join(out)

    def close(self) -> None:
        async def close_channels() -> None:  # tornado writes the close frame on the loop
            self._ws.close()

        self._loop.run_until_complete(close_channels())
        self._loop.close()
        httpx.delete(f"{self._root}api/kernels/{self.id}", headers=self._headers)


@pytest.fixture(scope="module")
def server_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kernel-server")


@pytest.fixture(scope="module")
def server(server_root: Path) -> Iterator[LiveServer]:
    with running_server(server_root, LIMITS) as live:
        yield live


def test_a_kernel_of_the_server_trades_and_gets_events_on_its_loop(
    server: LiveServer, server_root: Path
) -> None:
    kernel = ServerKernel(server)
    try:
        setup = kernel.run(
            """
import json, threading
import openalgo_lab
client = openalgo_lab.connect()
events, ticks, threads = [], [], set()
def on_event(topic, data):
    threads.add(threading.current_thread().name)
    events.append((topic, data))
client.subscribe(on_event)
client.subscribe_ticks([{"exchange": "NSE", "symbol": "SBIN"}], "Quote",
                       lambda topic, data: ticks.append(data))
placed = client.placeorder(strategy="kernel", symbol="SBIN", action="BUY", exchange="NSE",
                           price_type="MARKET", product="MIS", quantity=1)
print(json.dumps({"repr": repr(client), "placed": placed,
                  "private": client.transport.feed().on_private_loop}))
"""
        )
        out = json.loads(setup.strip().splitlines()[-1])
        assert out["placed"]["status"] == "success", out
        assert "session tokens (trading) for default" in out["repr"]
        assert out["private"] is False  # the feed runs on the kernel's own loop
        probe = """print(json.dumps({
    "topics": sorted({t for t, d in events if d.get("orderid") == placed["orderid"]}),
    "ticks": len(ticks), "threads": sorted(threads)}))"""

        def state() -> dict[str, Any]:
            seen: dict[str, Any] = json.loads(kernel.run(probe).strip())
            return seen

        assert wait_for(lambda: state()["topics"] == ["order", "trade"] and state()["ticks"] > 0)
        assert state()["threads"] == ["MainThread"]  # between cells, on the kernel's thread
        kernel.run("client.close()")
    except AssertionError as err:  # the server's side of the story helps more than ours
        log = (server_root / "server.log").read_text(errors="replace")[-4000:]
        raise AssertionError(f"{err}\n--- server log ---\n{log}") from None
    finally:
        kernel.close()
