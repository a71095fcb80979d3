"""The trading desk: every panel on one page, and the kill switch.

Layout (a grid, everything visible at once so a browser sees each panel): the header with
the account's mode and the kill switch; the ticket beside the order book; the watchlist
beside the positions; P&L beside funds; then tabs for trades, holdings, approvals and
operations.

The kill switch asks for a confirmation, then (our `killswitch` action) blocks new orders of
the account, cancels its working orders and closes its positions; "Resume trading" lifts
the block.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from openalgo_lab.widgets._base import Panel
from openalgo_lab.widgets._calls import Outcome, attempt, call_action
from openalgo_lab.widgets._ui import UiDispatcher
from openalgo_lab.widgets.approvals import Approvals
from openalgo_lab.widgets.books import Funds, Holdings, OrderBook, PositionBook, TradeBook
from openalgo_lab.widgets.operations import Operations
from openalgo_lab.widgets.pnl import PnLPanel
from openalgo_lab.widgets.ticket import OrderTicket
from openalgo_lab.widgets.watchlist import Watchlist

if TYPE_CHECKING:
    from openalgo_lab.client.api import Client

JSON = dict[str, Any]
DEFAULT_WATCHLIST = (
    ("NSE_INDEX", "NIFTY"),
    ("NSE", "SBIN"),
    ("NSE", "RELIANCE"),
    ("NSE", "INFY"),
    ("NSE", "HDFCBANK"),
)


class KillSwitch(Panel):
    """`KillSwitch(client)`: block new orders, cancel all orders, close all positions."""

    css_class = "oal-kill-switch-panel"

    def __init__(self, client: Client, *, ui: UiDispatcher | None = None) -> None:
        super().__init__(client, ui=ui)
        self.engaged: bool | None = None  # unknown until this switch is used
        self.button = widgets.Button(
            description="KILL SWITCH",
            button_style="danger",
            tooltip="Cancel all orders, close all positions and block new orders",
            icon="power-off",
        )
        self.button.add_class("oal-kill-switch")
        self.confirm_button = widgets.Button(
            description="Yes: cancel, close, block", button_style="danger"
        )
        self.confirm_button.add_class("oal-kill-confirm")
        self.abort_button = widgets.Button(description="No")
        self.resume_button = widgets.Button(description="Resume trading", button_style="success")
        self.resume_button.add_class("oal-kill-resume")
        self.confirm_box = widgets.HBox(
            [
                widgets.HTML(
                    "<b>Cancel every order, close every position and block new orders?</b>"
                ),
                self.confirm_button,
                self.abort_button,
            ],
            layout=widgets.Layout(display="none"),
        )
        self.children = [
            widgets.HBox([self.button, self.resume_button]),
            self.confirm_box,
            self.status,
        ]
        self.button.on_click(self.guarded(self.ask))
        self.abort_button.on_click(self.guarded(self._hide_confirm))
        self.confirm_button.on_click(self.guarded(self.engage))
        self.resume_button.on_click(self.guarded(self.release))

    def ask(self) -> None:
        self.confirm_box.layout.display = "flex"
        self.status.info("Confirm to stop all trading on this account")

    def _hide_confirm(self) -> None:
        self.confirm_box.layout.display = "none"
        self.status.clear()

    def engage(self) -> Outcome:
        self.confirm_box.layout.display = "none"
        self.confirm_button.disabled = True
        try:
            outcome = call_action(
                self.client,
                "killswitch",
                {"enabled": True, "cancel_orders": True, "close_positions": True},
            )
        finally:
            self.confirm_button.disabled = False
        if outcome.ok and isinstance(outcome.data, dict):
            self.engaged = True
            cancelled = len(outcome.data.get("cancelled_orders") or [])
            exits = outcome.data.get("exit_orders", 0)
            self.status.error(
                f"Trading blocked: {cancelled} order(s) cancelled, {exits} exit order(s) sent"
            )
            self.add_class("oal-kill-engaged")
        else:
            self.status.error(f"Kill switch failed: {outcome.message}")
        return outcome

    def release(self) -> Outcome:
        outcome = call_action(self.client, "killswitch", {"enabled": False})
        if outcome.ok:
            self.engaged = False
            self.remove_class("oal-kill-engaged")
            self.status.ok("Trading resumed: new orders are accepted")
        else:
            self.status.error(f"Resume failed: {outcome.message}")
        return outcome


class TradingDesk(Panel):
    """`TradingDesk(client, symbols=[...], strategy="Python", page_size=50, ...)`: the ticket,
    books, watchlist, P&L, approvals, operations and the kill switch on one page."""

    css_class = "oal-trading-desk"

    def __init__(
        self,
        client: Client,
        *,
        symbols: Iterable[Sequence[str]] = DEFAULT_WATCHLIST,
        strategy: str = "Python",
        page_size: int = 50,
        quote_interval: float = 1.0,
        mtm_interval: float | None = 2.0,
        refresh_interval: float | None = 5.0,
        server: str | None = None,
        token: str | None = None,
        ui: UiDispatcher | None = None,
    ) -> None:
        super().__init__(client, ui=ui)
        u = self.ui
        self.kill_switch = KillSwitch(client, ui=u)
        self.ticket = OrderTicket(client, strategy=strategy, quote_interval=quote_interval, ui=u)
        self.orders = OrderBook(client, page_size=page_size, strategy=strategy, ui=u)
        self.watchlist = Watchlist(client, symbols=symbols, interval=quote_interval, ui=u)
        self.positions = PositionBook(
            client, mtm_interval=mtm_interval, strategy=strategy, page_size=page_size, ui=u
        )
        self.pnl = PnLPanel(client, mtm_interval=refresh_interval, ui=u)
        self.funds = Funds(client, ui=u)
        self.trades = TradeBook(client, page_size=page_size, ui=u)
        self.holdings = Holdings(client, ui=u)
        self.approvals = Approvals(
            client, refresh_interval=refresh_interval, server=server, token=token, ui=u
        )
        self.operations = Operations(client, refresh_interval=refresh_interval, ui=u)
        self.mode = widgets.HTML(self._mode_text())
        self.mode.add_class("oal-desk-mode")
        tabs = widgets.Tab(children=[self.trades, self.holdings, self.approvals, self.operations])
        tabs.titles = ("Trades", "Holdings", "Approvals", "Operations")
        tabs.add_class("oal-desk-tabs")
        header = widgets.HBox(
            [
                widgets.HTML("<h3 style='margin:4px 0'>OpenAlgo Lab · Trading desk</h3>"),
                self.mode,
                self.kill_switch,
            ],
            layout=widgets.Layout(justify_content="space-between", align_items="center"),
        )
        grid = widgets.GridBox(
            [self.ticket, self.orders, self.watchlist, self.positions, self.funds, self.pnl],
            layout=widgets.Layout(
                grid_template_columns="minmax(400px, 1fr) minmax(0, 2.2fr)",
                grid_gap="8px 12px",
                width="100%",
            ),
        )
        self.children = [header, grid, tabs, self.status]

    def _mode_text(self) -> str:
        outcome = attempt(self.client.analyzerstatus)
        if not outcome.ok or not isinstance(outcome.data, dict):
            return f"<small>mode unknown ({outcome.message})</small>"
        paper = outcome.data.get("analyze_mode")
        label = "analyze mode: paper trading on the sandbox" if paper else "LIVE trading"
        colour = "#065f46" if paper else "#991b1b"
        return f"<b style='color:{colour}'>{label}</b>"
