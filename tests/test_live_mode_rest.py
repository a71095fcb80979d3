"""Live mode through the REST API of a real Jupyter server whose default account trades at the
fake Kite server; Kite's postbacks into the server (good and bad signatures); the login
redirect route."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from openalgo_lab.brokers.zerodha.session import checksum
from openalgo_lab.domain.clock import SystemClock
from openalgo_lab.engine.live import LiveAccounts
from openalgo_lab.store.state import StateStore
from tests.fakes.kite_server import KiteFake
from tests.live_server import TOKEN, LiveServer, running_server
from tests.test_actions_orders import order

ACCOUNT = "default"  # the account the server's test API key belongs to


@pytest.fixture(scope="module")
def fake() -> Iterator[KiteFake]:
    with KiteFake(api_key="kite_key", api_secret="kite_secret", user_id="AB1234") as running:
        running.set_ltp("NSE", "SBIN", Decimal("800"))
        yield running


def configure_live_account(data_dir: Path, fake: KiteFake) -> None:
    """What `openalgo-lab accounts set-broker` and `accounts login` do, before the server."""
    state = StateStore(f"sqlite:///{data_dir / 'state.db'}")
    state.migrate()
    try:
        live = LiveAccounts(state, data_dir, clock=SystemClock())
        live.configure(
            ACCOUNT,
            "zerodha",
            api_key="kite_key",
            api_secret="kite_secret",
            options={"base_url": fake.base_url, "poll_interval": "0.2"},
        )
        broker = live.build(ACCOUNT)
        assert broker is not None

        async def login() -> None:
            await broker.complete_login(fake.request_token())
            await broker.aclose()

        asyncio.run(login())
        live.set_analyze(ACCOUNT, False)
    finally:
        state.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake: KiteFake) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("live-kite")
    (root / "data").mkdir()
    configure_live_account(root / "data", fake)
    with running_server(root) as running:
        yield running


def api(server: LiveServer, action: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/{action}", json={"apikey": server.key, **body}, timeout=30
    )


def test_orders_and_books_over_rest_reach_kite(server: LiveServer, fake: KiteFake) -> None:
    ping = api(server, "ping", {}).json()
    assert ping["data"]["broker"] == "zerodha"
    placed = api(server, "placeorder", order(quantity="5"))
    assert placed.status_code == 200, placed.text
    body = placed.json()
    assert "mode" not in body  # live, not analyze
    assert body["orderid"] in {o.order_id for o in fake.orders}
    status = api(server, "orderstatus", {"orderid": body["orderid"]}).json()["data"]
    assert status["order_status"] == "complete" and status["symbol"] == "SBIN"
    quote = api(server, "quotes", {"symbol": "SBIN", "exchange": "NSE"}).json()["data"]
    assert quote["ltp"] == 800.0
    funds = api(server, "funds", {}).json()["data"]
    assert funds["availablecash"] > 0
    positions = api(server, "positionbook", {}).json()["data"]
    assert {p["symbol"]: p["quantity"] for p in positions}["SBIN"] == 5
    bad = api(server, "placeorder", order(symbol="NOPE"))
    assert bad.status_code == 400 and "NOPE not found" in bad.json()["message"]


def test_kite_postbacks_reach_the_server(server: LiveServer, fake: KiteFake) -> None:
    url = f"{server.root}openalgo/postback/zerodha/{ACCOUNT}"
    fake.postback_url = url
    try:
        resting = api(server, "placeorder", order(pricetype="LIMIT", price="790", quantity="2"))
        oid = resting.json()["orderid"]
        assert api(server, "cancelorder", {"orderid": oid}).status_code == 200
        deadline = time.monotonic() + 10
        while not [p for p in fake.postbacks if p["payload"]["order_id"] == oid]:
            assert time.monotonic() < deadline, "Kite sent no postback"
            time.sleep(0.05)
    finally:
        fake.postback_url = None
    records = [p for p in fake.postbacks if p["payload"]["order_id"] == oid]
    assert all(p.get("status") == 200 for p in records), records
    payload = dict(records[-1]["payload"])
    assert payload["checksum"] == checksum(oid, payload["order_timestamp"], "kite_secret")
    forged = httpx.post(url, json=dict(payload, checksum="0" * 64), timeout=10)
    assert forged.status_code == 403 and "checksum" in forged.json()["message"]
    unsigned = httpx.post(url, json={k: v for k, v in payload.items() if k != "checksum"})
    assert unsigned.status_code == 403
    missing = httpx.post(f"{server.root}openalgo/postback/zerodha/nobody", json=payload)
    assert missing.status_code == 404
    garbage = httpx.post(url, content=b"not json", headers={"Content-Type": "application/json"})
    assert garbage.status_code == 400


def test_login_redirect_route(server: LiveServer, fake: KiteFake) -> None:
    base = f"{server.root}openalgo/login/zerodha/{ACCOUNT}"
    anonymous = httpx.get(f"{base}?request_token=abc&status=success", timeout=10)
    assert anonymous.status_code in (302, 403)  # Jupyter login required
    headers = {"Authorization": f"token {TOKEN}"}
    good = httpx.get(
        f"{base}?request_token={fake.request_token()}&action=login&status=success",
        headers=headers,
        timeout=30,
    )
    assert good.status_code == 200, good.text
    assert good.json()["logged_in"] is True
    refused = httpx.get(f"{base}?request_token=used123&status=success", headers=headers)
    assert refused.status_code == 403 and "refused the login" in refused.text
    # a refused exchange leaves the good login in place
    assert api(server, "funds", {}).status_code == 200
