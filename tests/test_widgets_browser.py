"""The panels in a real browser: standalone Voila, headless Chromium.

What only a browser shows: the ticket is usable with a keyboard and a mouse, the order it
sends appears in the order book on the same page, and the P&L chart is drawn (plotly's
renderer draws one trace per strategy) and redrawn when a new round trip closes.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import nbformat
import pytest

from tests.browser import ChromiumUnavailable, launched_browser, open_page, screenshot
from tests.live_server import running_voila

pytestmark = pytest.mark.slow

TIMEOUT_MS = 60_000

NOTEBOOK = """
import openalgo_lab, ipywidgets as widgets
from openalgo_lab.widgets import OrderBook, OrderTicket, PnLPanel
client = openalgo_lab.connect(embedded=True, market_hours="always")
for strategy in ("alpha", "beta"):
    for action in ("BUY", "SELL"):
        client.placeorder(strategy=strategy, symbol="SBIN", exchange="NSE", action=action)
widgets.VBox([
    OrderTicket(client, quote_interval=0),
    OrderBook(client),
    PnLPanel(client, mtm_interval=None),
])
"""


TRACES = "document.querySelectorAll('.oal-pnl .js-plotly-plot .scatterlayer .trace').length"


def test_ticket_book_and_chart_in_voila(tmp_path: Path) -> None:
    notebook = tmp_path / "panels.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK)]
    nbformat.write(nb, notebook)
    with contextlib.ExitStack() as stack:
        try:
            browser = stack.enter_context(launched_browser())
        except ChromiumUnavailable as why:
            pytest.skip(f"no Chromium: {why}")
        with (
            running_voila(tmp_path, notebook, data_dir=tmp_path / "data") as voila,
            open_page(browser, f"http://127.0.0.1:{voila.port}/", "widgets-panels") as page,
        ):
            page.wait_for_selector(".oal-order-ticket", timeout=TIMEOUT_MS)
            page.wait_for_function(f"{TRACES} === 2", timeout=TIMEOUT_MS)
            seen: list[str] = []
            for side in ("buy", "sell"):  # a round trip from the ticket
                page.fill(".oal-ticket-symbol input", "SBIN")
                page.fill(".oal-ticket-quantity input", "2")
                page.click(f".oal-ticket-{side}")
                page.click(".oal-ticket-submit")
                status = page.locator(".oal-ticket-status")
                status.filter(has_text="then confirm").wait_for(timeout=TIMEOUT_MS)
                page.click(".oal-ticket-confirm", timeout=TIMEOUT_MS)
                # the fate of THIS order: the previous one's "complete" may still be on screen
                page.wait_for_function(
                    """seen => {
                        const el = document.querySelector(".oal-ticket-status");
                        const m = el && el.innerText.match(/Order (\\d+) complete/);
                        return m !== null && !seen.includes(m[1]);
                    }""",
                    arg=seen,
                    timeout=TIMEOUT_MS,
                )
                orderid = re.search(r"Order (\d+) complete", status.inner_text())
                assert orderid, status.inner_text()
                seen.append(orderid.group(1))
                row = page.locator(f'.oal-order-book tr[data-key="{orderid.group(1)}"]')
                row.filter(has_text="complete").wait_for(timeout=TIMEOUT_MS)
            # the new strategy's curve, drawn again from the fill events
            page.wait_for_function(f"{TRACES} === 3", timeout=TIMEOUT_MS)
            assert "Python" in page.locator(".oal-pnl").inner_text()
            screenshot(page, "widgets-panels")
