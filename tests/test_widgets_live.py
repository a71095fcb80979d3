"""The panels on a remote Client against a real Jupyter server with the extension.

The same panels as in test_widgets, but every call goes over HTTP and every update arrives
over the server's WebSocket feed: the ticket's order shows in the order book through the
feed's order updates, the operations panel shows the REST traffic the panels themselves
made, and approvals go through the server's Jupyter-authenticated Action Center route.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import openalgo_lab
from openalgo_lab.client.api import Client
from openalgo_lab.client.approvals import ServerQueue
from openalgo_lab.client.credentials import SessionTokens
from openalgo_lab.client.remote import RemoteTransport, new_http_client
from openalgo_lab.widgets import Approvals, Operations, OrderBook, OrderTicket, PositionBook
from tests.live_server import TOKEN, LiveServer, running_server

pytestmark = pytest.mark.slow

TIMEOUT = 15.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("widgets-live")) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[Client]:
    c = openalgo_lab.connect(url=server.url, api_key=server.key)
    try:
        yield c
    finally:
        c.close()


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_ticket_order_shows_in_the_book_over_the_feed(client: Client) -> None:
    ticket = OrderTicket(client, quote_interval=0)
    book = OrderBook(client)
    positions = PositionBook(client, mtm_interval=None)
    try:
        ticket.symbol.value = "SBIN"
        ticket.quantity.value = "2"
        assert ticket.check.ok, ticket.check.errors
        ticket.buy.click()
        ticket.submit.click()
        assert "margin required" in ticket.review_info.value
        ticket.confirm.click()
        ticket.confirm.click()  # a double click sends nothing more
        orderid = ticket.last_orderid
        assert orderid, ticket.status.text
        wait_for(lambda: ticket.fate and ticket.fate["order_status"] == "complete", "the fate")
        wait_for(lambda: f'data-key="{orderid}"' in book.table.html.value, "the book row")
        wait_for(lambda: (book.row(orderid) or {}).get("order_status") == "complete", "filled")
        wait_for(lambda: (positions.row("NSE:SBIN:MIS") or {}).get("quantity") == 2, "the position")
        mine = [o for o in client.orders_df().to_dict("records") if o["orderid"] == orderid]
        assert len(mine) == 1
    finally:
        for panel in (ticket, book, positions):
            panel.close()


def test_operations_shows_the_server_traffic(client: Client) -> None:
    for _ in range(5):
        assert client.quotes(symbol="INFY", exchange="NSE")["status"] == "success"
    panel = Operations(client, refresh_interval=None)
    try:
        routes = {r["route"]: r for r in panel.data["routes"]}
        assert routes, panel.status.text
        assert any("quotes" in route for route in routes), routes
        assert panel.data["requests"] and panel.chart.figure.data
        assert "quotes" in panel.routes.value
    finally:
        panel.close()


def _semi_auto_alerts(server: LiveServer, count: int) -> None:
    headers = {"Authorization": f"token {TOKEN}"}
    created = httpx.post(
        f"{server.root}openalgo/strategies",
        json={
            "name": f"Approve me {time.monotonic_ns()}",
            "mode": "LONG",
            "semi_auto": True,
            "symbols": {"SBIN": {"exchange": "NSE", "quantity": 1, "product": "MIS"}},
        },
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    token = created.json()["webhook_token"]
    for i in range(count):  # distinct alerts (a repeated one is deduplicated)
        alert = httpx.post(
            f"{server.root}openalgo/strategy/webhook/{token}",
            content=f"BUY SBIN {i + 1}",
            headers={"Content-Type": "text/plain"},
            timeout=30,
        )
        assert alert.status_code == 200 and alert.json()["mode"] == "semi_auto", alert.text


def test_approvals_through_the_server_route(server: LiveServer, client: Client) -> None:
    _semi_auto_alerts(server, 2)
    panel = Approvals(client, refresh_interval=None, server=server.root, token=TOKEN)
    try:
        assert isinstance(panel.queue, ServerQueue)
        assert len(panel.orders) >= 2, panel.status.text
        first, second = panel.orders[-2]["id"], panel.orders[-1]["id"]
        before = len(client.orders_df())
        answer = panel.decide(first, approve=True)
        assert answer is not None and answer["status"] == "success", panel.status.text
        assert len(client.orders_df()) == before + 1
        panel.decide(second, approve=False, reason="not today")
        assert panel.status.kind == "ok" and f"#{second} rejected" in panel.status.text
        panel.decide(first, approve=True)  # already approved: 409, shown, nothing placed
        assert panel.status.kind == "error" and "already approved" in panel.status.text
        assert len(client.orders_df()) == before + 1
    finally:
        panel.close()


def test_a_kernel_client_finds_its_action_center(server: LiveServer, tmp_path: Path) -> None:
    """A Client paying for session tokens with the Jupyter token (a kernel's Client) reaches
    the server's own Action Center without being told where it is."""
    http = new_http_client(10.0)
    tokens = SessionTokens(f"{server.root}openalgo/token", TOKEN, http)
    client = Client(RemoteTransport(server.url, tokens))
    try:
        queue = client.approvals()
        assert isinstance(queue, ServerQueue) and TOKEN not in repr(queue)
        assert queue.url == f"{server.root}openalgo/actioncenter"
        assert isinstance(queue.pending(), list)
    finally:
        client.close()
        http.close()
