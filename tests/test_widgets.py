"""The ipywidgets panels on a real embedded engine, driven through their traits and buttons.

Each test builds panels on `openalgo_lab.connect(embedded=True)` (a real engine, sandbox,
SQLite journal and DuckDB history in `tmp_path`), sets widget values and clicks buttons the
way a browser would, and checks both what the panel shows and what the engine did.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest

import openalgo_lab
from openalgo_lab.client.api import Client
from openalgo_lab.domain.money import round_to_tick
from openalgo_lab.engine import action_center
from openalgo_lab.engine.engine import Engine
from openalgo_lab.store.history_rows import RequestRow
from openalgo_lab.widgets import (
    Approvals,
    Books,
    Funds,
    Holdings,
    Operations,
    OrderBook,
    OrderTicket,
    PnLPanel,
    PositionBook,
    TradeBook,
    TradingDesk,
    Watchlist,
)

TIMEOUT = 10.0


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    c = openalgo_lab.connect(embedded=True, data_dir=tmp_path, market_hours="always")
    try:
        yield c
    finally:
        c.close()


def engine_of(client: Client) -> Engine:
    engine = client._transport.engine  # type: ignore[attr-defined]
    assert isinstance(engine, Engine)
    return engine


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def orders(client: Client) -> list[dict[str, Any]]:
    body = client.orderbook()
    assert body["status"] == "success", body
    return list(body["data"]["orders"])


def ltp(client: Client, symbol: str = "SBIN", exchange: str = "NSE") -> Decimal:
    return Decimal(str(client.quotes(symbol=symbol, exchange=exchange)["data"]["ltp"]))


def resting_buy(client: Client, quantity: int = 1, symbol: str = "SBIN") -> str:
    """A LIMIT BUY far below the market: it stays open."""
    price = round_to_tick(ltp(client, symbol) * Decimal("0.9"), Decimal("0.05"))
    body = client.placeorder(
        symbol=symbol,
        exchange="NSE",
        action="BUY",
        price_type="LIMIT",
        price=str(price),
        quantity=quantity,
    )
    assert body["status"] == "success", body
    return str(body["orderid"])


def fill_ticket(ticket: OrderTicket, symbol: str, quantity: str, **fields: str) -> None:
    if "exchange" in fields:
        ticket.exchange.value = fields.pop("exchange")
    ticket.symbol.value = symbol
    ticket.quantity.value = quantity
    for name, value in fields.items():
        getattr(ticket, name).value = value


# -- the public API ---------------------------------------------------------------------------
def test_every_panel_is_a_container_with_its_css_hook(client: Client) -> None:
    panels = {
        "oal-order-ticket": OrderTicket(client),
        "oal-order-book": OrderBook(client),
        "oal-trade-book": TradeBook(client),
        "oal-positions": PositionBook(client, mtm_interval=None),
        "oal-holdings": Holdings(client),
        "oal-funds": Funds(client),
        "oal-books": Books(client, mtm_interval=None),
        "oal-watchlist": Watchlist(client, symbols=[("NSE", "SBIN")], interval=0),
        "oal-pnl": PnLPanel(client, mtm_interval=None),
        "oal-approvals": Approvals(client, refresh_interval=None),
        "oal-operations": Operations(client, refresh_interval=None),
        "oal-trading-desk": TradingDesk(client, mtm_interval=None, refresh_interval=None),
    }
    try:
        for css, panel in panels.items():
            assert isinstance(panel, widgets.Box), type(panel)
            assert css in panel._dom_classes, (css, panel._dom_classes)
        ticket = panels["oal-order-ticket"]
        assert isinstance(ticket, OrderTicket)
        hooks = {
            "oal-ticket-symbol": ticket.symbol,
            "oal-ticket-quantity": ticket.quantity,
            "oal-ticket-buy": ticket.buy,
            "oal-ticket-sell": ticket.sell,
            "oal-ticket-submit": ticket.submit,
            "oal-ticket-confirm": ticket.confirm,
            "oal-ticket-status": ticket.status,
        }
        for css, widget in hooks.items():
            assert css in widget._dom_classes, css
        desk = panels["oal-trading-desk"]
        assert isinstance(desk, TradingDesk)
        assert "oal-kill-switch" in desk.kill_switch.button._dom_classes
    finally:
        for panel in panels.values():
            panel.close()


# -- the order ticket -------------------------------------------------------------------------
def test_invalid_input_is_shown_inline_and_cannot_be_sent(client: Client) -> None:
    ticket = OrderTicket(client, quote_interval=0)
    try:
        assert ticket.submit.disabled  # empty ticket
        fill_ticket(ticket, "NOSUCHSYMBOL", "1")
        assert "not found" in ticket.check.errors["symbol"]
        assert "oal-invalid" in ticket.symbol._dom_classes
        assert "NOSUCHSYMBOL" in ticket.errors.value and ticket.submit.disabled

        fill_ticket(ticket, "SBIN", "abc")
        assert ticket.check.errors == {"quantity": "must be a number, got 'abc'"}
        assert "oal-invalid" in ticket.quantity._dom_classes
        assert "oal-invalid" not in ticket.symbol._dom_classes
        ticket.quantity.value = "0"
        assert "must be > 0" in ticket.check.errors["quantity"]
        ticket.quantity.value = "5"
        assert ticket.check.ok and not ticket.submit.disabled

        ticket.pricetype.value = "LIMIT"  # a limit order needs a price on the tick grid
        assert "price" in ticket.check.errors and ticket.submit.disabled
        assert not ticket.price.disabled and ticket.trigger.disabled
        ticket.price.value = "812.33"
        assert ticket.check.errors["price"] == (
            "812.33 is not a multiple of the tick 0.05: use 812.30 or 812.35"
        )
        ticket.price.value = "812.35"
        assert ticket.check.ok

        ticket.pricetype.value = "SL"  # a BUY stop-limit triggers at or below its limit
        ticket.trigger.value = "820"
        assert "trigger" in ticket.check.errors["trigger_price"]
        ticket.trigger.value = "810"
        assert ticket.check.ok

        ticket.product.value = "NRML"  # NRML is for F&O
        assert "NRML is for F&O" in ticket.check.errors["product"]
        ticket.product.value = "MIS"

        # lot-aware: a future starts at one lot and refuses part lots
        fill_ticket(ticket, "NIFTY29DEC26FUT", "65", exchange="NFO", pricetype="MARKET")
        assert ticket.contract is not None and ticket.contract.lotsize == 65
        assert ticket.check.ok and "1 lot" in ticket.lots_info.value
        ticket.quantity.value = "100"
        assert ticket.check.errors["quantity"] == (
            "100 is not a multiple of the lot size 65: use 65 or 130"
        )
        ticket.product.value = "CNC"
        assert "CNC is for equity delivery" in ticket.check.errors["product"]

        # whatever the user clicks, nothing invalid goes out
        ticket.submit.click()
        assert ticket.status.kind == "error" and ticket.review is None
        ticket.confirm.click()
        assert "Nothing to confirm" in ticket.status.text
        assert orders(client) == []
    finally:
        ticket.close()


def test_confirmed_buy_fills_and_shows_in_the_books_through_events(client: Client) -> None:
    ticket = OrderTicket(client, quote_interval=0)
    books = Books(client, mtm_interval=None)  # positions refresh on fills only
    try:
        fill_ticket(ticket, "SBIN", "2")
        assert "LTP" in ticket.quote_info.value  # live quote of the chosen symbol
        ticket.sell.click()
        ticket.buy.click()
        assert ticket.side == "BUY" and "oal-selected" in ticket.buy._dom_classes
        ticket.submit.click()
        assert ticket.review is not None and ticket.review_box.layout.display == "flex"
        assert "BUY 2 SBIN on NSE" in ticket.review_info.value
        assert "margin required ₹" in ticket.review_info.value
        ticket.confirm.click()
        orderid = ticket.last_orderid
        assert orderid and ticket.review is None

        def fate() -> bool:
            return ticket.fate is not None and ticket.fate["order_status"] == "complete"

        wait_for(fate, "the ticket to show the fill")
        assert ticket.status.kind == "ok" and f"Order {orderid} complete" in ticket.status.text
        wait_for(lambda: orderid in books.orders.table.html.value, "the order book row")
        row = books.orders.row(orderid)
        assert row is not None
        wait_for(lambda: books.orders.row(orderid)["order_status"] == "complete", "complete")
        wait_for(lambda: len(books.trades.table.store) == 1, "the trade")
        assert books.trades.table.store.rows()[0]["orderid"] == orderid
        wait_for(
            lambda: (books.positions.row("NSE:SBIN:MIS") or {}).get("quantity") == 2,
            "the position (fetched because of the fill event)",
        )
        wait_for(lambda: books.funds.values.get("utiliseddebits", 0) > 0, "funds")
        assert [o["orderid"] for o in orders(client)] == [orderid]
    finally:
        ticket.close()
        books.close()


def test_double_confirm_sends_one_order(client: Client) -> None:
    ticket = OrderTicket(client, quote_interval=0)
    try:
        fill_ticket(ticket, "SBIN", "1")
        ticket.submit.click()
        ticket.confirm.click()
        first = ticket.last_orderid
        ticket.confirm.click()  # a second click: the review is consumed, nothing is sent
        assert first and first in ticket.status.text and ticket.status.kind == "ok"
        assert [o["orderid"] for o in orders(client)] == [first]
        ticket.submit.click()  # a new review is a new order, on purpose
        ticket.confirm.click()
        assert len(orders(client)) == 2
    finally:
        ticket.close()


class LosesFirstOrderReply:
    """A transport over the real embedded one that loses the answer of the first placeorder
    after the engine has placed it (a dropped connection): the fault a retry must survive."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lost = 0

    def call(self, action: str, payload: Any) -> tuple[int, dict[str, Any]]:
        status, body = self.inner.call(action, payload)
        if action == "placeorder" and not self.lost:
            self.lost += 1
            raise ConnectionError("connection reset by peer")
        return status, body

    def subscribe(self, callback: Any, topics: Any) -> Any:
        return self.inner.subscribe(callback, topics)

    def approvals(self) -> Any:
        return self.inner.approvals()

    def close(self) -> None:
        pass


def test_retry_after_a_lost_answer_places_the_order_once(client: Client) -> None:
    flaky = Client(LosesFirstOrderReply(client._transport))  # type: ignore[arg-type]
    ticket = OrderTicket(flaky, quote_interval=0)
    try:
        fill_ticket(ticket, "SBIN", "1")
        ticket.submit.click()
        key = ticket.review.key if ticket.review else ""
        ticket.confirm.click()
        assert ticket.status.kind == "error" and "connection reset" in ticket.status.text
        assert ticket.review is not None and ticket.review.key == key  # same key kept
        assert not ticket.confirm.disabled and "Retry" in ticket.confirm.description
        assert len(orders(client)) == 1  # the engine did place it
        ticket.confirm.click()  # the retry gets the first answer back
        assert ticket.review is None and ticket.last_orderid == orders(client)[0]["orderid"]
        assert len(orders(client)) == 1
    finally:
        ticket.close()


def test_refused_order_shows_the_engine_message(client: Client) -> None:
    ticket = OrderTicket(client, quote_interval=0)
    try:
        fill_ticket(ticket, "SBIN", "1", product="CNC", pricetype="MARKET")
        ticket.sell.click()  # a CNC sell needs holdings: the engine refuses it
        ticket.submit.click()
        ticket.confirm.click()
        wait_for(lambda: ticket.status.kind == "error", "the refusal")
        assert ticket.status.text, ticket.status.text
        assert ticket.review is None  # a refusal is final: a new review makes a new order
    finally:
        ticket.close()


# -- the books ------------------------------------------------------------------------------
def test_order_book_modifies_and_cancels(client: Client) -> None:
    book = OrderBook(client)
    try:
        orderid = resting_buy(client, quantity=3)
        wait_for(lambda: book.select.value == orderid, "the working order to be offered")
        assert book.new_quantity.value == "3"
        price = Decimal(book.new_price.value) - Decimal("0.50")
        book.new_price.value = str(price)
        book.new_quantity.value = "4"
        book.modify_button.click()
        assert book.status.kind == "ok", book.status.text
        wait_for(lambda: book.row(orderid)["quantity"] == 4, "the modified row")
        assert Decimal(str(book.row(orderid)["price"])) == price

        book.new_quantity.value = "x"  # bad input: shown, not sent
        book.modify_button.click()
        assert book.status.kind == "error" and "quantity" in book.status.text

        book.cancel_button.click()
        wait_for(lambda: book.row(orderid)["order_status"] == "cancelled", "the cancel")
        wait_for(lambda: book.select.value is None, "no working order left to choose")
        assert "oal-row-cancelled" in book.table.html.value
        book.filter.value = "working"
        assert orderid not in book.table.html.value
        book.filter.value = "cancelled"
        assert orderid in book.table.html.value
    finally:
        book.close()


def test_position_book_closes_a_position(client: Client) -> None:
    positions = PositionBook(client, mtm_interval=None)
    try:
        assert client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=3)["orderid"]
        wait_for(lambda: positions.select.value == "NSE:SBIN:MIS", "the open position")
        positions.close_button.click()
        assert positions.status.kind == "ok", positions.status.text
        wait_for(
            lambda: (positions.row("NSE:SBIN:MIS") or {}).get("quantity") == 0, "a flat position"
        )
        assert client.openposition(symbol="SBIN", exchange="NSE", product="MIS")["quantity"] == "0"
        wait_for(lambda: positions.select.value is None, "nothing left to close")
    finally:
        positions.close()


@pytest.mark.slow  # placing 5,000 orders takes a few seconds
def test_big_order_book_renders_one_bounded_page(client: Client) -> None:
    total = 5000
    for _ in range(total // 100):
        body = client.splitorder(
            symbol="ITC", exchange="NSE", action="BUY", quantity=100, splitsize=1
        )
        assert body["status"] == "success", body
    started = time.perf_counter()
    book = OrderBook(client, page_size=50)
    built = time.perf_counter() - started
    try:
        assert len(book.table.store) == total
        assert book.table.html.value.count('<tr class="oal-row') == 50
        assert len(book.table.html.value) < 30_000  # one page, not 5,000 rows
        assert "of 5,000" in book.table.info.value
        newest = orders(client)[-1]["orderid"]
        assert newest in book.table.html.value  # newest first
        book.table.next_button.click()
        assert book.table.page == 1 and newest not in book.table.html.value
        assert built < 5.0, built
    finally:
        book.close()


# -- approvals, kill switch ---------------------------------------------------------------
def test_approvals_approve_and_reject(client: Client) -> None:
    engine = engine_of(client)
    assert engine.state is not None
    for qty in ("1", "2"):
        action_center.enqueue(
            engine.state,
            account="default",
            api_type="placeorder",
            order_data={
                "strategy": "semi",
                "symbol": "SBIN",
                "exchange": "NSE",
                "action": "BUY",
                "pricetype": "MARKET",
                "product": "MIS",
                "quantity": qty,
            },
            strategy="semi",
            now=datetime.now(UTC),
        )
    panel = Approvals(client, refresh_interval=None)
    try:
        assert [o["id"] for o in panel.orders] == [1, 2]
        assert "SBIN" in panel.table.value
        panel.select.value = 1
        panel.approve_button.click()
        assert panel.status.kind == "ok" and "#1 approved" in panel.status.text
        placed = orders(client)
        assert len(placed) == 1 and placed[0]["quantity"] == 1
        assert panel.select.value == 2
        panel.reason.value = "too big"
        panel.reject_button.click()
        assert panel.status.kind == "ok" and "#2 rejected" in panel.status.text
        assert panel.orders == [] and panel.approve_button.disabled
        assert len(orders(client)) == 1
        decided = action_center.list_orders(engine.state, None)
        assert [(o.status, o.reason) for o in decided] == [
            ("approved", ""),
            ("rejected", "too big"),
        ]
        panel.decide(1, approve=True)  # already decided: shown, not raised, not re-placed
        assert panel.status.kind == "error" and "already approved" in panel.status.text
        assert len(orders(client)) == 1
    finally:
        panel.close()


def test_kill_switch_cancels_closes_and_blocks(client: Client) -> None:
    desk = TradingDesk(client, symbols=[("NSE", "SBIN")], mtm_interval=None, refresh_interval=None)
    try:
        resting = resting_buy(client)
        assert (
            client.placeorder(symbol="INFY", exchange="NSE", action="BUY", quantity=2)["status"]
            == "success"
        )
        kill = desk.kill_switch
        kill.button.click()
        assert kill.confirm_box.layout.display == "flex" and len(orders(client)) == 2
        kill.confirm_button.click()
        assert kill.engaged is True, kill.status.text
        assert "1 order(s) cancelled, 1 exit order(s)" in kill.status.text
        wait_for(lambda: desk.orders.row(resting)["order_status"] == "cancelled", "cancelled")
        assert client.openposition(symbol="INFY", exchange="NSE", product="MIS")["quantity"] == "0"
        fill_ticket(desk.ticket, "SBIN", "1")  # new orders are blocked
        desk.ticket.submit.click()
        desk.ticket.confirm.click()
        assert desk.ticket.status.kind == "error" and "Kill switch" in desk.ticket.status.text
        kill.resume_button.click()
        assert kill.engaged is False
        desk.ticket.submit.click()
        desk.ticket.confirm.click()
        assert desk.ticket.last_orderid, desk.ticket.status.text
    finally:
        desk.close()


# -- watchlist, P&L, operations -------------------------------------------------------------
def test_watchlist_shows_prices_and_refuses_unknown_symbols(client: Client) -> None:
    watch = Watchlist(client, symbols=[("NSE", "SBIN"), ("NSE_INDEX", "NIFTY")], interval=0.2)
    try:
        wait_for(lambda: watch.rows[("NSE", "SBIN")].get("ltp"), "SBIN's price")
        row = watch.rows[("NSE", "SBIN")]
        assert row["change"] == pytest.approx(row["ltp"] - row["prev_close"])
        assert 'data-key="NSE:SBIN"' in watch.table.value
        assert 'data-key="NSE_INDEX:NIFTY"' in watch.table.value
        assert not watch.add("NSE", "NOSUCH")
        assert watch.status.kind == "error" and "NOSUCH" in watch.status.text
        assert watch.add("NSE", "INFY")
        wait_for(lambda: watch.rows[("NSE", "INFY")].get("ltp"), "INFY's price")
        watch.remove("NSE", "SBIN")
        assert ("NSE", "SBIN") not in watch.rows and "NSE:SBIN" not in watch.table.value
    finally:
        watch.close()


def test_pnl_by_strategy_and_equity_curve(client: Client) -> None:
    for strategy, qty in (("alpha", 2), ("beta", 3)):
        for action in ("BUY", "SELL"):
            body = client.placeorder(
                strategy=strategy, symbol="SBIN", exchange="NSE", action=action, quantity=qty
            )
            assert body["status"] == "success", body
    panel = PnLPanel(client, mtm_interval=None)
    try:
        trips = client.round_trips()
        snapshot = panel.snapshot
        assert [r["strategy"] for r in snapshot.strategies] == ["alpha", "beta"]
        for row in snapshot.strategies:
            net = trips[trips["strategy"] == row["strategy"]]["net"].sum()
            assert row["net"] == pytest.approx(net) and row["trips"] == 1
        traces = {t.name: list(t.y) for t in panel.chart.figure.data}
        assert set(traces) == {"alpha", "beta"}
        assert traces["alpha"][-1] == pytest.approx(
            round(trips[trips["strategy"] == "alpha"]["net"].sum(), 2)
        )
        assert "realised" in panel.summary.value and panel.status.kind != "error"
        # a new round trip arrives by event: the panel follows without a refresh call
        for action in ("BUY", "SELL"):
            client.placeorder(
                strategy="alpha", symbol="INFY", exchange="NSE", action=action, quantity=1
            )
        wait_for(lambda: len(panel.snapshot.equity.get("alpha", ([], []))[1]) == 2, "new trip")
    finally:
        panel.close()


def test_operations_shows_routes_and_latency(client: Client) -> None:
    engine = engine_of(client)
    now = datetime.now(UTC)
    for i in range(30):
        engine.record_request(
            RequestRow(
                ts=now,
                method="POST",
                route="placeorder" if i % 3 else "quotes",
                status=200 if i % 10 else 400,
                duration_ms=1.0 + i,
                parse_ms=0.1,
                engine_ms=0.5 + i,
                key_id="k-test",
                client="127.0.0.1",
            )
        )
    panel = Operations(client, refresh_interval=None, page_size=10)
    try:
        routes = {r["route"]: r for r in panel.data["routes"]}
        assert set(routes) == {"placeorder", "quotes"}
        assert routes["placeorder"]["count"] == 20 and routes["quotes"]["count"] == 10
        assert routes["placeorder"]["errors"] == 2 and routes["quotes"]["errors"] == 1
        assert "placeorder" in panel.routes.value
        assert len(panel.requests.store) == 30
        assert panel.requests.html.value.count('<tr class="oal-row') == 10
        histogram = panel.chart.figure.data[0]
        assert len(histogram.x) == 30
    finally:
        panel.close()


# -- errors and closing ---------------------------------------------------------------------
class Outage:
    """A transport over the real embedded one that can be switched off: every call then
    fails the way a server that went away fails (an exception, or a 503 answer)."""

    def __init__(self, inner: Any, fault: str) -> None:
        self.inner = inner
        self.fault = fault
        self.down = False

    def call(self, action: str, payload: Any) -> tuple[int, dict[str, Any]]:
        if self.down and self.fault == "raise":
            raise ConnectionError("connection refused")
        if self.down:
            return 503, {"status": "error", "message": "Service unavailable: server restarting"}
        return self.inner.call(action, payload)  # type: ignore[no-any-return]

    def subscribe(self, callback: Any, topics: Any) -> Any:
        return self.inner.subscribe(callback, topics)

    def approvals(self) -> Any:
        return self.inner.approvals()

    def close(self) -> None:
        pass


@pytest.mark.parametrize("fault", ["raise", "503"])
def test_server_errors_are_shown_not_raised(client: Client, fault: str) -> None:
    outage = Outage(client._transport, fault)
    broken = Client(outage)  # type: ignore[arg-type]
    desk = TradingDesk(broken, symbols=[("NSE", "SBIN")], mtm_interval=None, refresh_interval=None)
    expected = "connection refused" if fault == "raise" else "server restarting"
    try:
        fill_ticket(desk.ticket, "SBIN", "1")
        desk.ticket.submit.click()
        outage.down = True
        desk.ticket.confirm.click()
        assert desk.ticket.status.kind == "error" and expected in desk.ticket.status.text
        assert "Retry" in desk.ticket.confirm.description  # no answer: a retry is offered
        desk.ticket.symbol.value = "INFY"  # lookups fail too: shown inline
        assert expected in desk.ticket.check.errors["symbol"]
        for panel in (desk.orders, desk.positions, desk.pnl, desk.operations, desk.funds):
            panel.refresh_button.click()
            assert panel.status.kind == "error" and expected in panel.status.text, panel
        desk.orders.cancel_all_button.click()
        assert expected in desk.orders.status.text
        desk.kill_switch.button.click()
        desk.kill_switch.confirm_button.click()
        assert desk.kill_switch.status.kind == "error"
        desk.watchlist.add_symbol.value = "INFY"
        desk.watchlist.add_button.click()
        assert desk.watchlist.status.kind == "error"
        assert orders(client) == []  # nothing reached the engine
    finally:
        desk.close()


def test_close_unsubscribes(client: Client) -> None:
    engine = engine_of(client)
    before = len(engine.events._subscriptions)
    desk = TradingDesk(client, symbols=[("NSE", "SBIN")], mtm_interval=None, refresh_interval=None)
    assert len(engine.events._subscriptions) > before
    desk.close()
    wait_for(lambda: len(engine.events._subscriptions) == before, "every subscription gone")
    client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=1)
    time.sleep(0.2)
    assert len(desk.orders.table.store) == 0  # a closed panel ignores events
    desk.close()  # closing twice is harmless


def test_charts_reach_the_page_as_plotly_mime_bundles(client: Client) -> None:
    """The chart is the Output widget's `outputs` (plotly's mime bundle, drawn by plotly's
    renderer in JupyterLab and Voila), replaced on each change and left alone otherwise."""
    for action in ("BUY", "SELL"):
        client.placeorder(strategy="gamma", symbol="SBIN", exchange="NSE", action=action)
    panel = PnLPanel(client, mtm_interval=None)
    try:
        assert isinstance(panel.chart.widget, widgets.Output)
        [output] = panel.chart.widget.outputs
        figure = output["data"]["application/vnd.plotly.v1+json"]
        assert [t["name"] for t in figure["data"]] == ["gamma"]
        assert figure["layout"]["title"]["text"].startswith("Equity by strategy")
        sent = panel.chart.widget.outputs
        panel.refresh()  # nothing changed: nothing is sent again
        assert panel.chart.widget.outputs is sent
        for action in ("BUY", "SELL"):
            client.placeorder(strategy="delta", symbol="INFY", exchange="NSE", action=action)
        wait_for(lambda: panel.chart.widget.outputs is not sent, "the redrawn chart")
        [output] = panel.chart.widget.outputs
        names = [t["name"] for t in output["data"]["application/vnd.plotly.v1+json"]["data"]]
        assert names == ["delta", "gamma"]
    finally:
        panel.close()


class CountingTransport(Outage):
    """The embedded transport without a tick stream, counting the calls made through it."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner, "503")
        self.calls: list[str] = []

    def call(self, action: str, payload: Any) -> tuple[int, dict[str, Any]]:
        self.calls.append(action)
        return super().call(action, payload)


def test_watchlist_polls_where_there_is_no_tick_stream(client: Client) -> None:
    transport = CountingTransport(client._transport)
    watch = Watchlist(Client(transport), symbols=[("NSE", "SBIN")], interval=0.05)  # type: ignore[arg-type]
    try:
        wait_for(lambda: transport.calls.count("multiquotes") >= 4, "a few polls")
        assert watch.rows[("NSE", "SBIN")]["ltp"] > 0
        assert "polling" in watch.status.text
    finally:
        watch.close()
    polls = transport.calls.count("multiquotes")
    time.sleep(0.2)
    assert transport.calls.count("multiquotes") <= polls + 1  # closed: the poll stops
