"""The Client's methods beyond the official client's: `call`, `killswitch`, `traffic`,
`approvals`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import openalgo_lab
from openalgo_lab.client.api import Client
from openalgo_lab.client.embedded import EmbeddedTransport
from openalgo_lab.engine import action_center

ORDER = {
    "strategy": "t",
    "symbol": "SBIN",
    "exchange": "NSE",
    "action": "BUY",
    "price_type": "MARKET",
    "product": "MIS",
    "quantity": 1,
}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with openalgo_lab.connect(embedded=True, data_dir=tmp_path, market_hours="always") as c:
        yield c


def test_killswitch_blocks_then_resumes(client: Client) -> None:
    assert client.placeorder(**ORDER)["status"] == "success"
    killed = client.killswitch()
    assert killed["status"] == "success" and killed["data"]["enabled"] is True
    blocked = client.placeorder(**ORDER)
    assert blocked["status"] == "error" and "kill switch" in blocked["message"].lower()
    assert client.killswitch(enabled=False)["status"] == "success"
    assert client.placeorder(**ORDER)["status"] == "success"


def test_call_and_traffic(client: Client) -> None:
    assert client.call("ping")["status"] == "success"
    unknown = client.call("no-such-action")
    assert unknown["status"] == "error" and unknown["code"] == 404
    traffic = client.traffic(limit=5)
    assert traffic["status"] == "success"
    assert set(traffic["data"]) == {"requests", "routes"}
    bad = client.traffic(limit=0)
    assert bad["status"] == "error" and "limit" in bad["message"]


def test_approvals_of_the_embedded_engine(client: Client) -> None:
    transport = client.transport
    assert isinstance(transport, EmbeddedTransport)
    state = transport.engine.state
    assert state is not None
    for qty in ("1", "2"):
        data = {
            "strategy": "semi",
            "symbol": "SBIN",
            "exchange": "NSE",
            "action": "BUY",
            "pricetype": "MARKET",
            "product": "MIS",
            "quantity": qty,
        }
        action_center.enqueue(
            state,
            account="default",
            api_type="placeorder",
            order_data=data,
            strategy="semi",
            now=datetime.now(UTC),
        )
    queue = client.approvals()
    assert [o["id"] for o in queue.pending()] == [1, 2]
    assert queue.approve(1)["status"] == "success"
    assert len(client.orders_df()) == 1
    assert queue.reject(2, "")["status"] == "success"
    assert queue.pending() == []
    assert [(o.status, o.reason) for o in action_center.list_orders(state, None)] == [
        ("approved", ""),
        ("rejected", "rejected by the user"),
    ]
    again = queue.approve(1)  # decided already: refused, nothing placed twice
    assert again["status"] == "error" and "already approved" in again["message"]
    assert len(client.orders_df()) == 1
    for bad in ("abc", None, -1):  # the route's check and message, embedded too
        refused = queue.approve(bad)  # type: ignore[arg-type]
        assert refused["status"] == "error", refused
        assert refused["message"].startswith("id: must be the pending order's number")
    assert queue.approve(99) == {"status": "error", "message": "Pending order 99 not found"}
