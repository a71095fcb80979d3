"""Operations: per-call timings and the traffic log, through the engine and over REST."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from openalgo_lab.domain.calendar import MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.engine.engine import Engine
from openalgo_lab.engine.settings import EngineSettings
from openalgo_lab.engine.timing import PHASES
from openalgo_lab.store.history import HistoryStore
from openalgo_lab.store.history_rows import RequestRow
from openalgo_lab.store.state_crypto import api_key_id
from tests import test_server_ext
from tests.test_actions_orders import NOW, order
from tests.test_server_ext import ORDER, Lab

pytest_plugins = ["pytest_jupyter.jupyter_server"]

# the started extension with a trading and a read-only key, as in test_server_ext
jp_server_config = test_server_ext.jp_server_config
lab = test_server_ext.lab


# -- Engine.call timings ---------------------------------------------------------------------
def test_engine_call_timings(tmp_path: Path) -> None:
    async def run() -> None:
        settings = EngineSettings(data_dir=tmp_path, market_hours=MarketHours.ALWAYS)
        engine = Engine(settings, clock=ManualClock(NOW))
        await engine.start(background=False)
        try:
            placed = await engine.call("placeorder", order(), idempotency_key="k1")
            assert placed.status == 200, placed.body
            for phase in ("engine", "risk", "journal", "broker"):
                assert placed.timings[phase] > 0, placed.timings
            assert placed.timings["engine"] >= placed.timings["broker"]
            read = await engine.call("ping")
            assert set(read.timings) == {"engine"} and read.timings["engine"] > 0
            bad = await engine.call("placeorder", order(quantity="-1"))
            assert bad.status == 400 and bad.timings["engine"] > 0
            missing = await engine.call("nosuchaction")
            assert missing.status == 404 and "engine" in missing.timings
            assert PHASES.get() is None  # the call's dict does not leak out of it
        finally:
            await engine.stop()

    asyncio.run(run())


# -- the requests table ----------------------------------------------------------------------
def test_request_rows_are_stored_in_order(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with HistoryStore(tmp_path / "h.duckdb") as store:
        store.append_requests(
            [
                RequestRow(now, "POST", "placeorder", 200, 1.5, broker_ms=0.5, key_id="abc"),
                RequestRow(now, "GET", "ticker", 403, 0.2, client="127.0.0.1"),
            ]
        )
    with HistoryStore(tmp_path / "h.duckdb") as store:  # reopened: seq continues
        store.append_requests([RequestRow(now, "POST", "ping", 200, 0.1)])
        rows = store.query(
            "SELECT seq, route, status, broker_ms, key_id FROM requests ORDER BY seq"
        )
    assert rows.values.tolist() == [
        [0, "placeorder", 200, 0.5, "abc"],
        [1, "ticker", 403, 0.0, ""],
        [2, "ping", 200, 0.0, ""],
    ]


def test_request_row_validation() -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValidationError):
        RequestRow(now, "POST", "", 200, 1.0)
    with pytest.raises(ValidationError):
        RequestRow(now, "POST", "ping", 200, -1.0)
    with pytest.raises(ValidationError):
        RequestRow(datetime(2026, 1, 1), "POST", "ping", 200, 1.0)


# -- over REST -------------------------------------------------------------------------------
async def test_traffic_log_over_rest(lab: Lab) -> None:
    code, placed, _ = await lab.post("placeorder", ORDER)
    assert code == 200, placed
    code, _, _ = await lab.post("placeorder", {**ORDER, "quantity": "-1"})
    assert code == 400
    code, _, _ = await lab.post("ping", key="not-a-valid-key-123")
    assert code in (401, 403)
    code, _, _ = await lab.post("no/such/thing")
    assert code == 404
    today = date.today()
    span = {"from": str(today - timedelta(days=5)), "to": str(today)}
    assert (await lab.get("ticker", "NSE:SBIN", apikey=lab.key, interval="D", **span)).code == 200

    code, body, _ = await lab.post("traffic", {"limit": 1000}, key=lab.read_key)
    assert code == 200, body
    rows: list[dict[str, Any]] = body["data"]["requests"]
    routes = [r["route"] for r in rows]
    assert routes[:1] != ["traffic"]  # the traffic call itself is logged after it answers
    assert routes.count("placeorder") == 2 and "ping" in routes and "(unknown)" in routes
    assert "ticker" in routes
    for row in rows:
        assert row["duration_ms"] > 0 and row["method"] in ("GET", "POST") and row["client"]
    ok_order = next(r for r in rows if r["route"] == "placeorder" and r["status"] == 200)
    assert ok_order["key_id"] == api_key_id(lab.key)
    assert ok_order["journal_ms"] > 0 and ok_order["broker_ms"] > 0 and ok_order["risk_ms"] > 0
    assert ok_order["engine_ms"] > 0 and ok_order["parse_ms"] > 0
    assert ok_order["engine_ms"] <= ok_order["duration_ms"]
    bad_order = next(r for r in rows if r["route"] == "placeorder" and r["status"] == 400)
    assert bad_order["key_id"] == api_key_id(lab.key)
    refused = next(r for r in rows if r["route"] == "ping")
    assert refused["key_id"] == "" and refused["status"] in (401, 403)

    stats = {s["route"]: s for s in body["data"]["routes"]}
    assert stats["placeorder"]["count"] == 2 and stats["placeorder"]["errors"] == 1
    assert 0 < stats["placeorder"]["p50_ms"] <= stats["placeorder"]["p99_ms"]
    assert stats["ping"]["errors"] == 1 and stats["ticker"]["errors"] == 0

    # no key (nor anything of a body) anywhere in what is stored
    engine = lab.services.engine
    await asyncio.to_thread(engine.flush_requests)
    assert engine.history_store is not None
    stored = engine.history_store.query("SELECT * FROM requests").to_json(
        orient="values", date_format="iso"
    )
    for secret in (lab.key, lab.read_key, "not-a-valid-key-123", "SBIN"):
        assert secret not in stored
    assert "traffic" in stored

    code, body, _ = await lab.post("traffic", {"limit": 1001}, key=lab.read_key)
    assert code == 400, body
    assert json.dumps(body).count("limit") >= 1
