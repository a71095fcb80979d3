"""The order journal through the engine: idempotent retries, and a crash between the journal
and the broker's answer that loses no order and duplicates none.

The crash runs in a child process that really dies (`os._exit`) at the chosen point, inside
a broker that wraps the sandbox; the parent then starts a new engine on the same data
directory and retries the same requests. (The sandbox itself is saved once a second and at
stop, so a crash can lose at most the last second of paper fills; the journal, written before
and after every broker call, is what guarantees no order is placed twice.)
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from openalgo_lab.domain.calendar import IST, MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.engine.engine import Engine
from openalgo_lab.engine.settings import EngineSettings
from openalgo_lab.store.lock import EngineLockedError

NOW = datetime(2026, 11, 25, 11, 0, tzinfo=IST)
ORDER = {
    "strategy": "t",
    "symbol": "SBIN",
    "exchange": "NSE",
    "action": "BUY",
    "quantity": "10",
    "pricetype": "MARKET",
    "product": "MIS",
}


def settings(data_dir: Path) -> EngineSettings:
    return EngineSettings(data_dir=data_dir, market_hours=MarketHours.ALWAYS)


async def started(data_dir: Path) -> Engine:
    engine = Engine(settings(data_dir), clock=ManualClock(NOW))
    await engine.start(background=False)
    return engine


def test_retry_with_the_same_key_returns_the_first_answer(tmp_path: Path) -> None:
    async def scenario() -> None:
        engine = await started(tmp_path)
        try:
            first = await engine.call("placeorder", ORDER, idempotency_key="k-1")
            again = await engine.call("placeorder", ORDER, idempotency_key="k-1")
            assert first.ok and again.ok
            assert again.body["orderid"] == first.body["orderid"]
            book = await engine.call("orderbook", {})
            assert len(book.body["data"]["orders"]) == 1
            other = await engine.call(
                "placeorder", {**ORDER, "quantity": "5"}, idempotency_key="k-1"
            )
            assert other.status == 400 and "different request" in other.body["message"]
            bad = await engine.call(
                "placeorder", {**ORDER, "symbol": "NOPE"}, idempotency_key="k-2"
            )
            assert bad.status == 400
            assert engine.journal is not None
            record = engine.journal.lookup("default", "k-2")
            assert record is not None and record.status == "rejected"
        finally:
            await engine.stop()

    asyncio.run(scenario())


def test_second_engine_on_a_data_dir_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        engine = await started(tmp_path)
        try:
            with pytest.raises(EngineLockedError, match=str(tmp_path)):
                await started(tmp_path)
        finally:
            await engine.stop()

    asyncio.run(scenario())


CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from datetime import datetime
    from pathlib import Path
    from openalgo_lab.brokers.sandbox.broker import SandboxBroker
    from openalgo_lab.domain.calendar import IST, MarketHours
    from openalgo_lab.domain.clock import ManualClock
    from openalgo_lab.engine.engine import Engine
    from openalgo_lab.engine.settings import EngineSettings

    data_dir, when = Path(sys.argv[1]), sys.argv[2]
    ORDER = {"strategy": "t", "symbol": "SBIN", "exchange": "NSE", "action": "BUY",
             "quantity": "10", "pricetype": "MARKET", "product": "MIS"}

    class CrashingSandbox(SandboxBroker):
        async def place_order(self, request):
            if request.tag.startswith("crash") and when == "before":
                os._exit(17)  # dies after the journal's "accepted", before the broker
            order = await super().place_order(request)
            if request.tag.startswith("crash") and when == "after":
                engine.save_sandboxes(force=True)  # the broker has it durably...
                os._exit(17)  # ...and the engine dies before journaling "acknowledged"
            return order

    async def main():
        global engine
        clock = ManualClock(datetime(2026, 11, 25, 11, 0, tzinfo=IST))
        engine = Engine(EngineSettings(data_dir=data_dir, market_hours=MarketHours.ALWAYS),
                        clock=clock)
        account = engine.account()
        crashing = CrashingSandbox(master=engine.master, market=engine.market, clock=clock,
                                   calendar=engine.calendar)
        crashing.exchange.subscribe(lambda e: engine._on_order_event(account, e, mode="analyze"))
        account.sandbox = crashing
        await engine.start()  # with the background snapshot saver
        ok = await engine.call("placeorder", ORDER, idempotency_key="before-crash")
        assert ok.ok, ok.body
        await asyncio.sleep(1.5)  # the saver persists the sandbox once a second
        await engine.call("placeorder", ORDER, idempotency_key="crash-1")
        raise SystemExit("the crash did not happen")

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("when", ["before", "after"])
def test_crash_between_journal_and_broker_loses_and_duplicates_nothing(
    tmp_path: Path, when: str
) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), when],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 17, child.stderr

    async def scenario() -> dict[str, Any]:
        engine = await started(tmp_path)
        try:
            assert engine.journal is not None
            assert engine.journal.in_flight() == []  # reconciled on start
            crashed = engine.journal.lookup("default", "crash-1")
            assert crashed is not None
            retry = await engine.call("placeorder", ORDER, idempotency_key="crash-1")
            again = await engine.call("placeorder", ORDER, idempotency_key="before-crash")
            book = await engine.call("orderbook", {})
            return {
                "status": crashed.status,
                "retry": retry.body,
                "again": again.body,
                "orders": book.body["data"]["orders"],
            }
        finally:
            await engine.stop()

    result = asyncio.run(scenario())
    orderids = [o["orderid"] for o in result["orders"]]
    assert result["again"]["orderid"] in orderids  # acknowledged before the crash: kept
    if when == "before":
        # the broker never saw it: rejected, and the retry says so instead of ordering
        assert result["status"] == "rejected"
        assert result["retry"]["status"] == "error"
        assert "not placed" in result["retry"]["message"]
        assert len(orderids) == 1
    else:
        # the broker had it: acknowledged on restart, the retry returns the same order
        assert result["status"] == "acknowledged"
        assert result["retry"]["orderid"] in orderids
        assert len(orderids) == 2  # the first order and the crashed one, never a third
