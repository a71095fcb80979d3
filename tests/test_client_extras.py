"""The Client's methods beyond the official client's: `call`, `killswitch`, `traffic`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import openalgo_lab
from openalgo_lab.client.api import Client

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
