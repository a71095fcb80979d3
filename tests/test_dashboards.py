"""The Voila dashboards in a real headless Chromium, against real servers.

* Under JupyterLab (`tests.live_server.running_lab`: the repository as the server's root, our
  extension and Voila's on, a seeded history): the trading desk renders its panels; an order
  typed into the ticket (symbol, quantity, BUY, review, confirm) is placed once, shows in the
  order book on the page and in the engine's order book through the REST API; the analytics
  dashboard draws its charts and lists every round trip the engine reports.
* Standalone `voila <notebook>` (no Jupyter server, so no extension: the kernel runs an
  embedded engine on its own data directory): the desk serves and trades; the analytics
  dashboard says plainly that there is no history yet.

Screenshots of each page go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

import openalgo_lab
from openalgo_lab.demo import run_demo
from tests.browser import ChromiumUnavailable, launched_browser, open_page, screenshot
from tests.live_server import TOKEN, LiveServer, running_lab, running_voila

REPO = Path(__file__).resolve().parent.parent
DASHBOARDS = REPO / "dashboards"
PAGE_TIMEOUT = 90_000  # ms: a kernel start, the engine's first answers and the widgets
ORDER_TIMEOUT = 30_000
PANELS = (
    ".oal-order-ticket",
    ".oal-order-book",
    ".oal-positions",
    ".oal-watchlist",
    ".oal-pnl",
    ".oal-funds",
    ".oal-kill-switch",
)

pytestmark = pytest.mark.slow


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Per test, not per module: Playwright's sync API keeps its own event loop running on
    this thread while the browser is open, and pytest-jupyter's autouse loop fixture (active
    once any test module names the plugin) must not meet it at a test's teardown."""
    try:
        with launched_browser() as launched:
            yield launched
    except ChromiumUnavailable as why:
        pytest.skip(f"no Chromium for the browser tests: {why}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """JupyterLab on the repository with two days of demo trades in its data directory."""
    root = tmp_path_factory.mktemp("dashboard-lab")
    data = root / "data"
    report = run_demo(data, days=2)
    assert report.trades > 0 and not report.errors, report
    with running_lab(root, root_dir=REPO, data_dir=data) as server:
        yield server


def voila_url(server: LiveServer, name: str) -> str:
    return f"{server.root}voila/render/dashboards/{name}?token={TOKEN}"


def api(server: LiveServer, action: str, **payload: Any) -> Any:
    reply = httpx.post(
        f"{server.url}/api/v1/{action}", json={"apikey": server.key, **payload}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "success", body
    return body.get("data")


def input_of(page: Page, css_class: str) -> Any:
    """The text box of an ipywidgets Text/Combobox that carries `css_class`."""
    return page.locator(f".{css_class} input").first


def place_from_ticket(page: Page, symbol: str, quantity: int) -> str:
    """Fill the ticket as a person would, confirm, and return the order id it reports."""
    symbol_box = input_of(page, "oal-ticket-symbol")
    symbol_box.fill(symbol)
    symbol_box.press("Tab")
    quantity_box = input_of(page, "oal-ticket-quantity")
    quantity_box.fill(str(quantity))
    quantity_box.press("Tab")
    page.locator(".oal-ticket-buy").click()
    contract = page.locator(".oal-ticket-contract")
    expect(contract).to_contain_text(" lot ", timeout=ORDER_TIMEOUT)  # the contract resolved
    submit = page.locator(".oal-ticket-submit")
    expect(submit).to_be_enabled(timeout=ORDER_TIMEOUT)
    submit.click()
    review = page.locator(".oal-ticket-review")
    expect(review).to_contain_text(symbol, timeout=ORDER_TIMEOUT)
    expect(review).to_contain_text("BUY")
    page.locator(".oal-ticket-confirm").click()
    status = page.locator(".oal-ticket-status")
    expect(status).to_contain_text(re.compile(r"Order \d+ complete"), timeout=ORDER_TIMEOUT)
    found = re.search(r"Order (\d+) complete", status.inner_text())
    assert found, status.inner_text()
    return found.group(1)


# -- under JupyterLab --------------------------------------------------------------------------


@pytest.fixture
def desk_page(browser: Browser, lab: LiveServer) -> Iterator[Page]:
    with open_page(browser, voila_url(lab, "trading_desk.ipynb"), "trading_desk") as page:
        page.set_default_timeout(PAGE_TIMEOUT)
        page.wait_for_selector(".oal-trading-desk")
        yield page


def test_desk_renders_every_panel(desk_page: Page) -> None:
    for panel in PANELS:
        expect(desk_page.locator(panel).first).to_be_visible()
    # the kernel found the server that started it and trades on its engine
    expect(desk_page.locator(".oal-desk-engine")).to_contain_text("OpenAlgo Lab server at")
    expect(desk_page.locator(".oal-desk-mode")).to_contain_text("paper trading")
    expect(desk_page.locator(".oal-watchlist")).to_contain_text("SBIN")
    expect(desk_page.locator(".oal-notice-error")).to_have_count(0)
    # no code is shown, only the dashboard
    expect(desk_page.locator(".jp-InputArea")).to_have_count(0)
    screenshot(desk_page, "trading_desk")


def test_an_order_from_the_ticket_reaches_the_book_and_the_engine(
    desk_page: Page, lab: LiveServer
) -> None:
    before = {row["orderid"] for row in api(lab, "orderbook")["orders"]}
    orderid = place_from_ticket(desk_page, "SBIN", 7)
    assert orderid not in before
    expect(desk_page.locator(".oal-order-book")).to_contain_text(orderid, timeout=ORDER_TIMEOUT)
    screenshot(desk_page, "trading_desk_after_order")
    after = api(lab, "orderbook")["orders"]
    new = [row for row in after if row["orderid"] not in before]
    assert len(new) == 1, new  # placed exactly once
    row = new[0]
    assert row["orderid"] == orderid
    assert (row["symbol"], row["exchange"], row["action"]) == ("SBIN", "NSE", "BUY")
    assert int(row["quantity"]) == 7 and row["strategy"] == "desk"
    assert row["order_status"] == "complete"


def test_analytics_draws_the_seeded_history(browser: Browser, lab: LiveServer) -> None:
    url = voila_url(lab, "trade_analytics.ipynb")
    with open_page(browser, url, "trade_analytics", height=3200) as page:
        page.set_default_timeout(PAGE_TIMEOUT)
        page.wait_for_selector(".oal-round-trips")
        # P&L by strategy, by symbol, by day, and the equity curve with its drawdown
        expect(page.locator(".js-plotly-plot")).to_have_count(4)
        expect(page.locator(".js-plotly-plot").first).to_contain_text("P&L by strategy")
        expect(page.locator(".oal-kpis")).to_contain_text("Net P&L")
        trips = api(lab, "analytics", report="round_trips")
        assert trips, "the demo closed no round trip"
        expect(page.locator(".oal-round-trips tbody tr")).to_have_count(len(trips))
        strategies = {row["strategy"] for row in trips}
        for strategy in strategies:
            expect(page.locator(".oal-strategy-stats")).to_contain_text(strategy)
        expect(page.locator(".oal-notice")).to_have_count(0)
        screenshot(page, "trade_analytics")


# -- standalone Voila --------------------------------------------------------------------------


def test_standalone_voila_serves_the_desk_on_an_embedded_engine(
    browser: Browser, tmp_path: Path
) -> None:
    with (
        running_voila(tmp_path, DASHBOARDS / "trading_desk.ipynb") as voila,
        open_page(browser, voila.root, "trading_desk_standalone") as page,
    ):
        page.set_default_timeout(PAGE_TIMEOUT)
        page.wait_for_selector(".oal-trading-desk")
        for panel in PANELS:
            expect(page.locator(panel).first).to_be_visible()
        engine = page.locator(".oal-desk-engine")
        expect(engine).to_contain_text("an engine in this dashboard's kernel")
        expect(engine).to_contain_text(str(tmp_path / "data"))
        orderid = place_from_ticket(page, "INFY", 3)
        expect(page.locator(".oal-order-book")).to_contain_text(orderid)
        screenshot(page, "trading_desk_standalone")
    # the kernel's engine kept the order in its own data directory
    with openalgo_lab.connect(embedded=True, data_dir=tmp_path / "data") as client:
        orders = client.orders_df()
    placed = orders[orders["orderid"] == orderid]
    assert len(placed) == 1 and placed.iloc[0]["symbol"] == "INFY", orders


def test_analytics_without_history_says_so(browser: Browser, tmp_path: Path) -> None:
    with (
        running_voila(tmp_path, DASHBOARDS / "trade_analytics.ipynb") as voila,
        open_page(browser, voila.root, "trade_analytics_empty") as page,
    ):
        page.set_default_timeout(PAGE_TIMEOUT)
        notice = page.locator(".oal-notice-info")
        expect(notice).to_contain_text("No trade history yet")
        expect(page.locator(".oal-notice-error")).to_have_count(0)
        expect(page.locator(".js-plotly-plot")).to_have_count(0)
        screenshot(page, "trade_analytics_empty")


def test_a_second_standalone_desk_on_the_same_data_dir_says_why(
    browser: Browser, tmp_path: Path
) -> None:
    """One engine per data directory: the second page's kernel cannot start its own, and the
    page says so (and what to do) instead of failing."""
    with (
        running_voila(tmp_path, DASHBOARDS / "trading_desk.ipynb") as voila,
        open_page(browser, voila.root, "trading_desk_first") as first,
    ):
        first.set_default_timeout(PAGE_TIMEOUT)
        first.wait_for_selector(".oal-trading-desk")
        with open_page(browser, voila.root, "trading_desk_second") as second:
            second.set_default_timeout(PAGE_TIMEOUT)
            error = second.locator(".oal-notice-error")
            expect(error).to_contain_text("could not reach", timeout=PAGE_TIMEOUT)
            expect(error).to_contain_text("is in use by another OpenAlgo Lab engine")
            expect(error).to_contain_text("OPENALGO_LAB_URL")
            expect(second.locator(".oal-trading-desk")).to_have_count(0)
            screenshot(second, "trading_desk_standalone_locked")
        expect(first.locator(".oal-order-ticket")).to_be_visible()


def test_standalone_voila_can_trade_on_a_running_lab(
    browser: Browser, lab: LiveServer, tmp_path: Path
) -> None:
    """OPENALGO_LAB_URL and OPENALGO_LAB_API_KEY point a standalone Voila's kernels at the
    running server's engine: the order lands in that engine, not in a second one."""
    named = {"OPENALGO_LAB_URL": lab.url, "OPENALGO_LAB_API_KEY": lab.key}
    before = {row["orderid"] for row in api(lab, "orderbook")["orders"]}
    with (
        running_voila(tmp_path, DASHBOARDS / "trading_desk.ipynb", env=named) as voila,
        open_page(browser, voila.root, "trading_desk_standalone_remote") as page,
    ):
        page.set_default_timeout(PAGE_TIMEOUT)
        page.wait_for_selector(".oal-trading-desk")
        expect(page.locator(".oal-desk-engine")).to_contain_text(f"server at {lab.url}")
        orderid = place_from_ticket(page, "RELIANCE", 2)
        expect(page.locator(".oal-order-book")).to_contain_text(orderid)
    assert orderid not in before
    rows = [row for row in api(lab, "orderbook")["orders"] if row["orderid"] == orderid]
    assert len(rows) == 1 and rows[0]["symbol"] == "RELIANCE", rows
    assert not (tmp_path / "data").exists()  # no engine was started beside the server's
