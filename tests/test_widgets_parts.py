"""The widgets' parts without an engine: where updates run, how bursts fold, what the
ticket's rules accept, and how a table pages and escapes."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal

import pytest
from tornado.ioloop import IOLoop

from openalgo_lab.widgets._table import Column, PagedTable, RowStore, table_html
from openalgo_lab.widgets._ui import Coalescer, Fetcher, UiDispatcher
from openalgo_lab.widgets.ticket_rules import Contract, TicketForm, check_ticket

SBIN = Contract("SBIN", "NSE", "STATE BANK OF INDIA", 1, Decimal("0.05"), 0, "EQ")
NIFTY_FUT = Contract("NIFTY29DEC26FUT", "NFO", "NIFTY", 65, Decimal("0.05"), 1800, "FUT")
NIFTY_INDEX = Contract("NIFTY", "NSE_INDEX", "NIFTY 50", 1, Decimal("0.05"), 0, "INDEX")
USDINR = Contract("USDINR26DECFUT", "CDS", "USDINR", 1, Decimal("0.0025"), 0, "FUT")


def form(**fields: str) -> TicketForm:
    base = {"exchange": "NSE", "symbol": "SBIN", "action": "BUY", "quantity": "1"}
    return TicketForm(**{**base, **fields})


# -- the ticket's rules --------------------------------------------------------------------
def test_a_valid_ticket_becomes_placeorder_arguments() -> None:
    check = check_ticket(form(pricetype="LIMIT", price="812.35", strategy="s1"), SBIN)
    assert check.ok
    assert check.order == {
        "strategy": "s1",
        "symbol": "SBIN",
        "exchange": "NSE",
        "action": "BUY",
        "price_type": "LIMIT",
        "product": "MIS",
        "quantity": "1",
        "price": "812.35",
    }
    assert check.summary == "BUY 1 SBIN on NSE · MIS · LIMIT 812.35"


@pytest.mark.parametrize(
    ("fields", "contract", "field", "message"),
    [
        ({"quantity": "1.5"}, SBIN, "quantity", "must be a whole number"),
        ({"quantity": "-2"}, SBIN, "quantity", "must be > 0"),
        ({"action": "HOLD"}, SBIN, "action", "choose BUY or SELL"),
        ({"pricetype": "STOP"}, SBIN, "pricetype", "is not one of MARKET, LIMIT, SL, SL-M"),
        ({"pricetype": "SL-M"}, SBIN, "trigger_price", "is required (> 0)"),
        ({"pricetype": "SL-M", "trigger_price": "-1"}, SBIN, "trigger_price", "must be >= 0"),
        (
            {"action": "SELL", "pricetype": "SL", "price": "810", "trigger_price": "805"},
            SBIN,
            "trigger_price",
            "a SELL SL trigger (805) must be >= its price (810)",
        ),
        ({"quantity": "1950", "exchange": "NFO"}, NIFTY_FUT, "quantity", "freeze quantity 1800"),
        ({"exchange": "NSE_INDEX"}, NIFTY_INDEX, "exchange", "not an exchange orders can go to"),
        (
            {"pricetype": "LIMIT", "price": "83.001", "exchange": "CDS"},
            USDINR,
            "price",
            "83.001 is not a multiple of the tick 0.0025: use 83.0000 or 83.0025",
        ),
        ({"strategy": "x" * 101}, SBIN, "strategy", "at most 100 characters"),
    ],
)
def test_ticket_errors_name_their_field(
    fields: dict[str, str], contract: Contract, field: str, message: str
) -> None:
    check = check_ticket(form(**fields), contract)
    assert not check.ok and check.order is None
    assert message in check.errors[field], check.errors


def test_an_index_cannot_be_ordered_and_an_unknown_symbol_says_why() -> None:
    check = check_ticket(form(exchange="NSE", symbol="NIFTY"), NIFTY_INDEX)
    assert "is an index" in check.errors["symbol"]
    check = check_ticket(form(symbol="ZZZ"), None, "Symbol ZZZ not found on NSE")
    assert check.errors == {"symbol": "Symbol ZZZ not found on NSE"}


def test_contract_from_a_master_row() -> None:
    row = {"symbol": "nifty29dec26fut", "exchange": "NFO", "lotsize": 65, "tick_size": 0.05}
    contract = Contract.from_record({**row, "instrumenttype": "FUT", "freeze_qty": 1800})
    assert contract.symbol == "NIFTY29DEC26FUT" and contract.tick_size == Decimal("0.05")
    assert contract.is_derivative
    with pytest.raises(ValueError, match="malformed symbol record"):
        Contract.from_record({"exchange": "NSE"})


# -- where updates run ---------------------------------------------------------------------
def test_updates_from_other_threads_run_on_the_loop_thread() -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())
    loop = IOLoop.current()
    ui = UiDispatcher(loop, threading.current_thread())
    ran_on: list[str] = []

    def work() -> None:
        ui.post(lambda: ran_on.append(threading.current_thread().name))

    async def scenario() -> None:
        ui.post(lambda: ran_on.append("direct:" + threading.current_thread().name))
        worker = threading.Thread(target=work, name="engine")
        worker.start()
        worker.join()
        for _ in range(100):
            if len(ran_on) == 2:
                return
            await asyncio.sleep(0.01)

    try:
        loop.run_sync(scenario)
    finally:
        loop.close(all_fds=False)
        asyncio.set_event_loop(None)
    main = threading.current_thread().name
    assert ran_on == [f"direct:{main}", main]


def test_a_failing_update_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    UiDispatcher(None).post(lambda: 1 / 0)  # type: ignore[func-returns-value]
    assert "widget update failed" in caplog.text


def test_a_coalescer_folds_requests_made_before_it_runs() -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())
    loop = IOLoop.current()
    ui = UiDispatcher(loop, threading.main_thread())
    runs: list[int] = []
    coalescer = Coalescer(ui, lambda: runs.append(1))

    def burst() -> None:
        for _ in range(1000):
            coalescer.request()

    async def scenario() -> None:
        for bursts in (1, 2):  # the loop is held while a thousand requests arrive, then turns
            worker = threading.Thread(target=burst)
            worker.start()
            worker.join()
            for _ in range(100):
                await asyncio.sleep(0.01)
                if len(runs) >= bursts:
                    break
        await asyncio.sleep(0.05)  # nothing more is pending

    try:
        loop.run_sync(scenario)
    finally:
        loop.close(all_fds=False)
        asyncio.set_event_loop(None)
    assert len(runs) == 2  # two bursts of a thousand requests: two renders


def test_a_fetcher_folds_requests_while_running_and_reports_errors() -> None:
    calls: list[int] = []
    applied: list[int] = []
    errors: list[str] = []
    gate = threading.Event()

    def fetch() -> int:
        calls.append(1)
        gate.wait(2)
        if len(calls) == 3:
            raise RuntimeError("server down")
        return len(calls)

    fetcher = Fetcher(UiDispatcher(None), fetch, applied.append, errors.append)
    fetcher.request()
    for _ in range(50):  # all arrive while the first fetch runs: one more run, not fifty
        fetcher.request()
    gate.set()
    assert fetcher.wait_idle(5)
    assert calls == [1, 1] and applied == [1, 2]
    fetcher.run_now()
    assert errors == ["server down"]
    fetcher.close()
    fetcher.request()
    time.sleep(0.05)
    assert len(calls) == 3  # closed: nothing more runs


# -- tables --------------------------------------------------------------------------------
def test_rows_are_escaped_and_keyed() -> None:
    html = table_html(
        [Column("name", "Name"), Column("pnl", "P&L", "signed")],
        [{"name": "<script>alert(1)</script>", "pnl": -5}],
        key_of=lambda r: 'a"b',
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'data-key="a&quot;b"' in html and "oal-neg" in html and "P&amp;L" in html


def test_a_paged_table_shows_the_newest_page_and_pages_on() -> None:
    table = PagedTable(
        UiDispatcher(None), [Column("id", "Id")], lambda r: str(r["id"]), page_size=3
    )
    for i in range(10):
        table.upsert({"id": i})
    assert [r["id"] for r in table.store.newest_first(0, 3)[0]] == [9, 8, 7]
    assert (
        table.html.value.count('<tr class="oal-row') == 3 and "rows 1–3 of 10" in table.info.value
    )
    table.next_button.click()
    assert 'data-key="6"' in table.html.value and 'data-key="9"' not in table.html.value
    table.go(99)
    assert table.page == 3 and 'data-key="0"' in table.html.value and table.next_button.disabled
    table.set_filter(lambda r: r["id"] % 2 == 0)
    assert table.page == 0 and "of 5" in table.info.value


def test_a_row_store_replaces_rows_in_place() -> None:
    store = RowStore(lambda r: r["k"])
    assert store.upsert({"k": "a", "v": 1}) == ("a", True)
    assert store.upsert({"k": "b", "v": 1}) == ("b", True)
    assert store.upsert({"k": "a", "v": 2}) == ("a", False)
    assert store.rows() == [{"k": "a", "v": 2}, {"k": "b", "v": 1}]
