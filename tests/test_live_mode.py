"""The engine in live mode, against the fake Kite server: an account configured with the
zerodha broker, logged in, `analyze` off, every order and book action through `Engine.call`,
live order events into the engine (journal transitions, history), unknown outcomes settled
by tag, session expiry, and reconciliation on restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from openalgo_lab.domain.calendar import MarketHours
from openalgo_lab.domain.enums import Action, Exchange, PriceType, Product
from openalgo_lab.domain.models import OrderRequest
from openalgo_lab.engine.engine import Engine, Reply
from openalgo_lab.engine.settings import EngineSettings
from tests.fakes.fixtures import kite_fake  # noqa: F401  (the fixture)
from tests.fakes.kite_server import KiteFake
from tests.test_actions_orders import order
from tests.test_zerodha_adapter import in_runner

ACCOUNT = "kite"


@pytest.fixture
def fake(kite_fake: KiteFake) -> KiteFake:  # noqa: F811
    kite_fake.set_ltp("NSE", "SBIN", Decimal("800"))
    kite_fake.set_ltp("NSE", "INFY", Decimal("1500"))
    return kite_fake


def options(fake: KiteFake) -> dict[str, str]:
    return {"base_url": fake.base_url, "poll_interval": "0.2", "timeout": "10"}


async def live_engine(data_dir: Path, fake: KiteFake, *, login: bool = True) -> Engine:
    engine = Engine(EngineSettings(data_dir=data_dir, market_hours=MarketHours.ALWAYS))
    await engine.start()
    await engine.configure_broker(
        ACCOUNT, "zerodha", api_key="kite_key", api_secret="kite_secret", options=options(fake)
    )
    if login:
        await engine.broker_login(ACCOUNT, fake.request_token())
    engine.set_analyze(ACCOUNT, False)
    return engine


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """The test's event loop (see `in_runner`): fixtures and test body share it."""
    with asyncio.Runner() as loop:
        yield loop


@pytest.fixture
def engine(tmp_path: Path, fake: KiteFake, runner: asyncio.Runner) -> Iterator[Engine]:
    engine = runner.run(live_engine(tmp_path, fake))
    try:
        yield engine
    finally:
        runner.run(engine.stop())


async def call(
    engine: Engine, name: str, payload: dict[str, Any] | None = None, **kw: Any
) -> Reply:
    return await engine.call(name, payload or {}, account=ACCOUNT, **kw)


async def ok(engine: Engine, name: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    reply = await call(engine, name, payload)
    assert reply.status == 200, reply.body
    assert reply.body["status"] == "success" and "mode" not in reply.body, reply.body
    return reply.body


async def until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# -- orders and books through Engine.call ------------------------------------------------------
@in_runner
async def test_place_status_position_and_books(engine: Engine, fake: KiteFake) -> None:
    assert (await ok(engine, "ping"))["data"]["broker"] == "zerodha"
    assert (await ok(engine, "analyzer"))["data"]["mode"] == "live"
    body = await ok(engine, "placeorder", order())
    (kite_order,) = fake.orders
    assert kite_order.order_id == body["orderid"] and kite_order.tradingsymbol == "SBIN"
    status = (await ok(engine, "orderstatus", {"orderid": body["orderid"]}))["data"]
    assert status["order_status"] == "complete" and status["quantity"] == 10
    assert status["average_price"] > 0 and status["strategy"] == "t"
    position = await ok(
        engine, "openposition", {"symbol": "SBIN", "exchange": "NSE", "product": "MIS"}
    )
    assert position["quantity"] == "10"
    book = (await ok(engine, "orderbook"))["data"]
    assert book["statistics"]["total_buy_orders"] == 1
    assert book["orders"][0]["order_status"] == "complete"
    trades = (await ok(engine, "tradebook"))["data"]
    assert sum(t["quantity"] for t in trades) == 10
    positions = (await ok(engine, "positionbook"))["data"]
    assert [(p["symbol"], p["quantity"]) for p in positions] == [("SBIN", 10)]
    funds = (await ok(engine, "funds"))["data"]
    assert set(funds) == {
        "availablecash",
        "collateral",
        "m2mrealized",
        "m2munrealized",
        "utiliseddebits",
    }
    assert funds["utiliseddebits"] > 0
    holdings = (await ok(engine, "holdings"))["data"]
    assert holdings["holdings"] == []


@in_runner
async def test_errors_name_the_field_and_place_nothing(engine: Engine, fake: KiteFake) -> None:
    for payload, needle in [
        (order(quantity="0"), "quantity: must be > 0"),
        (order(symbol="NOPE"), "symbol: NOPE not found on NSE"),
        (order(pricetype="LIMIT", price="800.03"), "tick size"),
        (order(product="NRML"), "NRML is for F&O"),
    ]:
        reply = await call(engine, "placeorder", payload)
        assert reply.status == 400 and needle in reply.body["message"], reply.body
    assert fake.orders == []


@in_runner
async def test_modify_cancel_cancel_all_and_close(engine: Engine, fake: KiteFake) -> None:
    resting = order(pricetype="LIMIT", price="790")
    oid = (await ok(engine, "placeorder", resting))["orderid"]
    modify = {**resting, "orderid": oid, "price": "791", "disclosed_quantity": "0"}
    assert (await ok(engine, "modifyorder", modify))["orderid"] == oid
    (kite_order,) = fake.orders
    assert kite_order.price == Decimal("791")
    assert (await ok(engine, "cancelorder", {"orderid": oid}))["orderid"] == oid
    again = await call(engine, "cancelorder", {"orderid": oid})
    assert again.status == 400 and "already cancelled" in again.body["message"]
    assert (await call(engine, "cancelorder", {"orderid": "123"})).status == 404
    for _ in range(3):
        await ok(engine, "placeorder", resting)
    cancelled = await ok(engine, "cancelallorder")
    assert len(cancelled["canceled_orders"]) == 3 and cancelled["failed_cancellations"] == []
    assert (await ok(engine, "closeposition"))["message"] == "No Open Positions Found"
    await ok(engine, "placeorder", order(quantity="10"))
    await ok(engine, "placeorder", order(symbol="INFY", action="SELL", quantity="5"))
    assert (await ok(engine, "closeposition"))["message"] == "All Open Positions Squared Off"
    positions = {p["symbol"]: p["quantity"] for p in (await ok(engine, "positionbook"))["data"]}
    assert positions == {"SBIN": 0, "INFY": 0}


@in_runner
async def test_smart_basket_and_split(engine: Engine, fake: KiteFake) -> None:
    async def smart(size: int) -> dict[str, Any]:
        return await ok(engine, "placesmartorder", order(position_size=str(size), quantity="0"))

    assert "orderid" in await smart(30)
    assert "orderid" in await smart(10)  # sells 20
    assert (await smart(10))["message"] == "Positions Already Matched. No Action needed."
    basket = await ok(
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
    assert [r["status"] for r in basket["results"]] == ["success", "success", "error"]
    split = await ok(engine, "splitorder", order(quantity="25", splitsize="10"))
    assert [r["quantity"] for r in split["results"]] == [10, 10, 5]
    assert all(r["status"] == "success" for r in split["results"])
    assert len(fake.orders) == 2 + 2 + 3  # every order once, nothing doubled


@in_runner
async def test_market_data_from_kite(engine: Engine, fake: KiteFake) -> None:
    quote = (await ok(engine, "quotes", {"symbol": "SBIN", "exchange": "NSE"}))["data"]
    assert quote["ltp"] == 800.0
    fake.set_ltp("NSE", "INFY", Decimal("1512.5"))
    depth = (await ok(engine, "depth", {"symbol": "INFY", "exchange": "NSE"}))["data"]
    assert depth["ltp"] == 1512.5 and len(depth["bids"]) == 5 and depth["bids"][0]["price"] > 0
    index = (await ok(engine, "quotes", {"symbol": "NIFTY", "exchange": "NSE_INDEX"}))["data"]
    assert index["ltp"] > 0
    history = await ok(
        engine,
        "history",
        {
            "symbol": "SBIN",
            "exchange": "NSE",
            "interval": "5m",
            "start_date": "2026-11-02",
            "end_date": "2026-11-06",
        },
    )
    assert history["data"] and history["data"][0]["timestamp"] > 0
    intervals = (await ok(engine, "intervals"))["data"]
    assert intervals["minutes"] == ["1m", "3m", "5m", "10m", "15m", "30m"]
    search = (await ok(engine, "search", {"query": "NIFTY FUT", "exchange": "NFO"}))["data"]
    assert search and all(r["symbol"].endswith("FUT") for r in search)
    assert search[0]["brsymbol"] != search[0]["symbol"]  # Kite's own naming kept aside


# -- events, journal, history ------------------------------------------------------------------
@in_runner
async def test_live_events_reach_journal_history_and_bus(engine: Engine, fake: KiteFake) -> None:
    sub = engine.events.subscribe({"order", "trade"})
    key = "live-evt-1"
    body = (await call(engine, "placeorder", order(), idempotency_key=key)).body
    orderid = body["orderid"]
    seen: list[Any] = []

    async def collect() -> None:
        async for event in sub:
            seen.append(event)

    task = asyncio.create_task(collect())
    await until(lambda: any(e.topic == "trade" for e in seen))
    task.cancel()
    order_events = [e for e in seen if e.topic == "order"]
    assert {e.account for e in seen} == {ACCOUNT}
    assert all(e.data.order.orderid == orderid for e in order_events)
    trade = next(e.data for e in seen if e.topic == "trade")
    assert trade.orderid == orderid and trade.strategy == "t" and trade.quantity == 10
    assert engine.journal is not None
    record = engine.journal.lookup(ACCOUNT, key)
    assert record is not None and record.status == "acknowledged" and record.orderid == orderid

    def transitions() -> list[str]:
        assert engine.journal is not None and record is not None
        return [t.status for t in engine.journal.history(record.entry_id)]

    await until(lambda: "complete" in transitions())
    assert engine.history is not None and engine.history_store is not None
    await asyncio.to_thread(engine.history.flush)
    rows = engine.history_store.query(
        "SELECT orderid, mode FROM orders WHERE account = ?", (ACCOUNT,)
    )
    assert orderid in set(rows["orderid"]) and set(rows["mode"]) == {"live"}
    again = await call(engine, "placeorder", order(), idempotency_key=key)
    assert again.body["orderid"] == orderid and len(fake.orders) == 1  # idempotent


@in_runner
async def test_live_fills_stay_live_after_switching_to_analyze(
    engine: Engine, fake: KiteFake
) -> None:
    """A resting live order that fills after the account went back to paper is still a live
    fill in the history (the mode of the broker it came from, not the switch's)."""
    orderid = (await ok(engine, "placeorder", order(pricetype="LIMIT", price="790")))["orderid"]
    assert (await call(engine, "analyzer/toggle", {"mode": True})).status == 200
    paper = (await call(engine, "placeorder", order())).body["orderid"]
    fake.set_ltp("NSE", "SBIN", Decimal("789"))  # Kite fills the resting order
    assert engine.history is not None and engine.history_store is not None

    async def modes() -> dict[str, set[str]]:
        assert engine.history is not None and engine.history_store is not None
        await asyncio.to_thread(engine.history.flush)
        rows = engine.history_store.query(
            "SELECT orderid, mode FROM trades WHERE account = ?", (ACCOUNT,)
        )
        found: dict[str, set[str]] = {}
        for oid, mode in zip(rows["orderid"], rows["mode"], strict=True):
            found.setdefault(str(oid), set()).add(str(mode))
        return found

    deadline = time.monotonic() + 10
    while orderid not in (found := await modes()):
        assert time.monotonic() < deadline, "the live fill never reached the history"
        await asyncio.sleep(0.1)
    assert found[orderid] == {"live"} and found[paper] == {"analyze"}


@pytest.mark.slow
@in_runner
async def test_unknown_outcome_is_kept_in_flight_then_settled(
    engine: Engine, fake: KiteFake
) -> None:
    fake.fail_next(r"^POST /orders/regular$", "lost")  # placed at Kite, answer dropped
    fake.fail_next(r"^GET /orders$", "5xx", times=1000)  # and the book cannot be read for now
    key = "unknown-1"
    reply = await call(engine, "placeorder", order(), idempotency_key=key)
    assert reply.status >= 500 and "order outcome unknown" in reply.body["message"]
    assert engine.journal is not None
    record = engine.journal.lookup(ACCOUNT, key)
    assert record is not None and record.status == "accepted"  # in flight, not rejected
    retry = await call(engine, "placeorder", order(), idempotency_key=key)
    assert retry.status == 409 and "still in progress" in retry.body["message"]
    fake.faults.clear()  # Kite answers again: the order shows up in the book, by its tag

    def settled() -> bool:
        assert engine.journal is not None
        found = engine.journal.lookup(ACCOUNT, key)
        return found is not None and found.status == "acknowledged"

    await until(settled, timeout=20)
    (kite_order,) = fake.orders
    final = await call(engine, "placeorder", order(), idempotency_key=key)
    assert final.status == 200 and final.body["orderid"] == kite_order.order_id
    assert len(fake.orders) == 1  # never re-sent


@in_runner
async def test_session_expiry_in_live_mode(engine: Engine, fake: KiteFake) -> None:
    fake.expire_sessions()
    reply = await call(engine, "placeorder", order(), idempotency_key="exp-1")
    assert reply.status == 403 and "broker session expired" in reply.body["message"]
    assert "apikey" not in reply.body["message"].lower()
    assert engine.journal is not None
    record = engine.journal.lookup(ACCOUNT, "exp-1")
    assert record is not None and record.status == "rejected"
    assert "broker session expired" in record.reason
    funds = await call(engine, "funds")
    assert funds.status == 403
    assert (await call(engine, "analyzer/toggle", {"mode": True})).status == 200
    # paper trading needs no login
    paper = await engine.call("placeorder", order(), account=ACCOUNT)
    assert paper.status == 200 and paper.body["mode"] == "analyze"
    assert fake.orders == []
    await engine.broker_login(ACCOUNT, fake.request_token())
    assert (await call(engine, "analyzer/toggle", {"mode": False})).status == 200
    await ok(engine, "placeorder", order())
    assert len(fake.orders) == 1


# -- brokers configured by another process ------------------------------------------------------
def cli(data_dir: Path, *args: str) -> int:
    from openalgo_lab.cli import main

    return main(["--data-dir", str(data_dir), *args])


@in_runner
async def test_a_broker_set_up_from_the_cli_is_taken_up_without_a_restart(
    tmp_path: Path, fake: KiteFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`openalgo-lab accounts set-broker` and `accounts login` in a terminal while the server
    runs: the running engine takes the account up (its background look, every
    LIVE_SYNC_INTERVAL), trades it live, and rebuilds its adapter when it is reconfigured."""
    from openalgo_lab.engine import engine as engine_module

    monkeypatch.setattr(engine_module, "LIVE_SYNC_INTERVAL", 0.05)
    engine = Engine(EngineSettings(data_dir=tmp_path, market_hours=MarketHours.ALWAYS))
    await engine.start()
    try:
        setup = ["accounts", "set-broker", ACCOUNT, "zerodha", "--api-key", "kite_key"]
        setup += ["--api-secret", "kite_secret", "--option", f"base_url={fake.base_url}"]
        assert await asyncio.to_thread(cli, tmp_path, *setup) == 0
        login = ["accounts", "login", ACCOUNT, fake.request_token()]
        assert await asyncio.to_thread(cli, tmp_path, *login) == 0
        await until(lambda: ACCOUNT in engine.accounts and engine.accounts[ACCOUNT].live)
        first = engine.live_broker(ACCOUNT)
        assert await engine.sync_live_accounts() == []  # nothing changed since
        engine.set_analyze(ACCOUNT, False)
        placed = await ok(engine, "placeorder", order())
        assert [o.order_id for o in fake.orders] == [placed["orderid"]]  # it reached Kite
        options = f"base_url={fake.base_url}/"  # reconfigured: a new adapter
        again = [*setup[:-1], options]
        assert await asyncio.to_thread(cli, tmp_path, *again) == 0
        await until(lambda: engine.live_broker(ACCOUNT) is not first)
        assert (await ok(engine, "orderbook"))["data"]["orders"][0]["orderid"] == placed["orderid"]
    finally:
        await engine.stop()


# -- restarts ----------------------------------------------------------------------------------
def _begin(engine: Engine, key: str) -> int:
    assert engine.journal is not None
    return engine.journal.begin(
        account=ACCOUNT, action="placeorder", idempotency_key=key, request={"symbol": "SBIN"}
    ).entry_id


@in_runner
async def test_restart_reconciles_in_flight_orders_with_kite(
    tmp_path: Path, fake: KiteFake
) -> None:
    first = await live_engine(tmp_path, fake)
    # a stop between the journal and Kite's answer: one order reached Kite, one never did
    _begin(first, "restart-found")
    _begin(first, "restart-missing")
    live = first.live_broker(ACCOUNT)
    placed = await live.place_order(
        OrderRequest(
            "SBIN", Exchange.NSE, Action.BUY, 1, PriceType.MARKET, Product.MIS, tag="restart-found"
        )
    )
    await first.stop()
    second = Engine(EngineSettings(data_dir=tmp_path, market_hours=MarketHours.ALWAYS))
    await second.start()  # the account, its login and its live mode come from the database
    try:
        account = second.account(ACCOUNT)
        assert account.live is not None and account.live.logged_in and not account.analyze
        assert second.journal is not None
        found = second.journal.lookup(ACCOUNT, "restart-found")
        missing = second.journal.lookup(ACCOUNT, "restart-missing")
        assert found is not None and found.status == "acknowledged"
        assert found.orderid == placed.orderid
        assert missing is not None and missing.status == "rejected"
        assert missing.reason.startswith("not placed")
    finally:
        await second.stop()


@in_runner
async def test_restart_with_kite_unreadable_keeps_entries_in_flight(
    tmp_path: Path, fake: KiteFake
) -> None:
    first = await live_engine(tmp_path, fake)
    _begin(first, "restart-unknown")
    await first.stop()
    fake.expire_sessions()  # Kite refuses the stored login: its book cannot be read
    second = Engine(EngineSettings(data_dir=tmp_path, market_hours=MarketHours.ALWAYS))
    await second.start()
    try:
        assert second.journal is not None
        record = second.journal.lookup(ACCOUNT, "restart-unknown")
        assert record is not None and record.status == "accepted"  # decided later, not guessed
    finally:
        await second.stop()


@in_runner
async def test_restart_restores_strategies_and_journal_links(
    tmp_path: Path, fake: KiteFake
) -> None:
    first = await live_engine(tmp_path, fake)
    resting = order(strategy="s1", pricetype="LIMIT", price="790")
    placed = await first.call("placeorder", resting, account=ACCOUNT, idempotency_key="mem-1")
    orderid = placed.body["orderid"]
    await first.stop()
    second = Engine(EngineSettings(data_dir=tmp_path, market_hours=MarketHours.ALWAYS))
    await second.start()
    try:
        reply = await second.call("orderstatus", {"orderid": orderid}, account=ACCOUNT)
        assert reply.body["data"]["strategy"] == "s1"  # Kite keeps no strategy: the journal does
        fake.set_ltp("NSE", "SBIN", Decimal("789"))  # the order fills after the restart
        assert second.journal is not None
        record = second.journal.lookup(ACCOUNT, "mem-1")
        assert record is not None

        def statuses() -> list[str]:
            assert second.journal is not None and record is not None
            return [t.status for t in second.journal.history(record.entry_id)]

        await until(lambda: "complete" in statuses())
    finally:
        await second.stop()


async def live_fills(engine: Engine, orderid: str) -> list[tuple[str, int]]:
    """(trade id, quantity) of the order's live fills in the history, after a flush."""
    assert engine.history is not None and engine.history_store is not None
    await asyncio.to_thread(engine.history.flush)
    rows = engine.history_store.query(
        "SELECT tradeid, quantity FROM trades WHERE account = ? AND orderid = ? AND mode = 'live'",
        (ACCOUNT, orderid),
    )
    return [(str(t), int(q)) for t, q in zip(rows["tradeid"], rows["quantity"], strict=True)]


async def until_filled(engine: Engine, orderid: str, quantity: int) -> list[tuple[str, int]]:
    deadline = time.monotonic() + 10
    while True:
        fills = await live_fills(engine, orderid)
        if sum(q for _, q in fills) >= quantity:
            return fills
        assert time.monotonic() < deadline, f"history has {fills}, not {quantity} filled"
        await asyncio.sleep(0.05)


@in_runner
async def test_fills_made_while_stopped_are_recorded_once_after_restart(
    tmp_path: Path, fake: KiteFake
) -> None:
    """An order open at the stop that fills while the engine is down: after the restart its
    new fills reach the history and the journal (the first read of Kite's book must not take
    them as old news), and the fills recorded before the stop are not recorded again."""
    fake.fill_limit = 4  # each price update fills at most 4 shares
    first = await live_engine(tmp_path, fake)
    resting = order(pricetype="LIMIT", price="790")
    placed = await first.call("placeorder", resting, account=ACCOUNT, idempotency_key="down-1")
    orderid = placed.body["orderid"]
    fake.set_ltp("NSE", "SBIN", Decimal("789"))  # 4 of 10 fill while we watch
    before = await until_filled(first, orderid, 4)
    await first.stop()
    fake.set_ltp("NSE", "SBIN", Decimal("788"))  # 4 more fill while we are down
    second = Engine(EngineSettings(data_dir=tmp_path, market_hours=MarketHours.ALWAYS))
    await second.start()
    try:
        after = await until_filled(second, orderid, 8)
        assert len(after) == 2 and before[0] in after  # the old fill once, the new one once
        fake.set_ltp("NSE", "SBIN", Decimal("787"))  # the last 2 fill after the restart
        final = await until_filled(second, orderid, 10)
        assert len(final) == 3 and len({t for t, _ in final}) == 3
        assert second.journal is not None
        record = second.journal.lookup(ACCOUNT, "down-1")
        assert record is not None
        entry = record.entry_id

        def statuses() -> list[str]:
            assert second.journal is not None
            return [t.status for t in second.journal.history(entry)]

        await until(lambda: "complete" in statuses())
    finally:
        await second.stop()


@in_runner
async def test_restart_does_not_replay_finished_orders(tmp_path: Path, fake: KiteFake) -> None:
    """An order history saw complete before the stop is not published again after it."""
    first = await live_engine(tmp_path, fake)
    placed = await first.call("placeorder", order(), account=ACCOUNT, idempotency_key="done-1")
    orderid = placed.body["orderid"]
    await until_filled(first, orderid, 10)
    await first.stop()
    second = Engine(EngineSettings(data_dir=tmp_path, market_hours=MarketHours.ALWAYS))
    await second.start()
    try:
        sub = second.events.subscribe({"order"})
        marker = await second.call("placeorder", order(), account=ACCOUNT)  # a later order
        seen: list[str] = []

        async def collect() -> None:
            async for event in sub:
                seen.append(event.data.order.orderid)

        task = asyncio.create_task(collect())
        await until(lambda: marker.body["orderid"] in seen)
        task.cancel()
        assert orderid not in seen
        assert len(await live_fills(second, orderid)) == 1
    finally:
        await second.stop()


@in_runner
async def test_sandbox_prices_live_paper_trades_at_kites_prices(
    tmp_path: Path, fake: KiteFake
) -> None:
    """`sandbox_prices="live"` (OPENALGO_LAB_SANDBOX_PRICES): once the account has a Kite
    login, its analyze-mode orders fill in the sandbox at Kite's price, not the simulation's."""
    fake.set_ltp("NSE", "SBIN", Decimal("2000.00"))  # far from the simulated SBIN
    engine = Engine(
        EngineSettings(data_dir=tmp_path, market_hours=MarketHours.ALWAYS, sandbox_prices="live")
    )
    await engine.start()
    try:
        await engine.configure_broker(
            ACCOUNT, "zerodha", api_key="kite_key", api_secret="kite_secret", options=options(fake)
        )
        await engine.broker_login(ACCOUNT, fake.request_token())
        assert engine.account(ACCOUNT).analyze  # paper: the sandbox takes the order
        placed = await call(engine, "placeorder", order())
        assert placed.status == 200, placed.body
        orderid = placed.body["orderid"]
        status: dict[str, Any] = {}
        deadline = time.monotonic() + 10
        while status.get("order_status") != "complete":
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.05)
            reply = await call(engine, "orderstatus", {"orderid": orderid, "strategy": "t"})
            status = reply.body.get("data", {})
        assert abs(Decimal(str(status["average_price"])) - Decimal("2000")) <= 1, status
        assert fake.orders == []  # nothing reached Kite
    finally:
        await engine.stop()


def test_sandbox_prices_setting_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENALGO_LAB_SANDBOX_PRICES", "LIVE")
    assert EngineSettings.from_env().sandbox_prices == "live"
    monkeypatch.setenv("OPENALGO_LAB_SANDBOX_PRICES", "real")
    with pytest.raises(ValueError, match="SANDBOX_PRICES='real' must be one of simulated, live"):
        EngineSettings.from_env()
