"""Approvals: the Action Center's queue of semi-auto orders, approved or rejected by hand.

The panel shows `client.approvals()` (the Client knows its way in: an embedded engine's own
queue, or its server's route; see `openalgo_lab.client.approvals`), or the route of the
server named by `server=` and `token=`. Approving goes through the engine with the
idempotency key `actioncenter:<id>`, so approving twice (two tabs, a double click) orders once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from openalgo_lab.client.approvals import ApprovalQueue, ServerQueue
from openalgo_lab.widgets._base import Panel
from openalgo_lab.widgets._table import Column, table_html
from openalgo_lab.widgets._ui import UiDispatcher

if TYPE_CHECKING:
    from openalgo_lab.client.api import Client

JSON = dict[str, Any]
COLUMNS = (
    Column("id", "#", "int"),
    Column("created_at", "Queued at"),
    Column("strategy", "Strategy"),
    Column("api_type", "Call"),
    Column("action", "Side"),
    Column("quantity", "Qty"),
    Column("symbol", "Symbol"),
    Column("exchange", "Exch"),
    Column("pricetype", "Type"),
    Column("product", "Product"),
    Column("price", "Price"),
)


def queue_for(client: Client, server: str | None = None, token: str | None = None) -> ApprovalQueue:
    """The server's route when `server` (and `token`) are given, else the Client's own way
    in (`Client.approvals`)."""
    return ServerQueue(server, token or "") if server else client.approvals()


def pending_row(order: JSON) -> JSON:
    data = order.get("order_data") if isinstance(order.get("order_data"), dict) else {}
    assert isinstance(data, dict)
    return {
        "id": order.get("id"),
        "created_at": str(order.get("created_at", ""))[:19].replace("T", " "),
        "strategy": order.get("strategy") or data.get("strategy"),
        "api_type": order.get("api_type"),
        "action": data.get("action"),
        "quantity": data.get("quantity"),
        "symbol": data.get("symbol"),
        "exchange": data.get("exchange"),
        "pricetype": data.get("pricetype") or data.get("price_type") or "MARKET",
        "product": data.get("product"),
        "price": data.get("price", ""),
    }


class Approvals(Panel):
    """`Approvals(client, refresh_interval=3.0, server=None, token=None)`."""

    css_class = "oal-approvals"

    def __init__(
        self,
        client: Client,
        *,
        refresh_interval: float | None = 3.0,
        server: str | None = None,
        token: str | None = None,
        queue: ApprovalQueue | None = None,
        ui: UiDispatcher | None = None,
    ) -> None:
        super().__init__(client, ui=ui)
        self.queue = queue or queue_for(client, server, token)
        self.orders: list[JSON] = []
        self.table = widgets.HTML()
        self.select = widgets.Dropdown(options=[], description="Order", layout={"width": "360px"})
        self.select.add_class("oal-approval-select")
        self.reason = widgets.Text(
            placeholder="reason (for a rejection)", layout={"width": "240px"}
        )
        self.approve_button = widgets.Button(description="Approve", button_style="success")
        self.approve_button.add_class("oal-approve")
        self.reject_button = widgets.Button(description="Reject", button_style="danger")
        self.reject_button.add_class("oal-reject")
        self.refresh_button = widgets.Button(description="↻", layout={"width": "40px"})
        self.refresh_button.add_class("oal-refresh")
        self._deciding = False
        self.children = [
            widgets.HBox([widgets.HTML("<b>Approvals (Action Center)</b>"), self.refresh_button]),
            self.table,
            widgets.HBox([self.select, self.approve_button, self.reject_button, self.reason]),
            self.status,
        ]
        self.loader = self.fetcher(self.queue.pending, self.show)
        self.approve_button.on_click(self.guarded(self.approve_selected))
        self.reject_button.on_click(self.guarded(self.reject_selected))
        self.refresh_button.on_click(self.guarded(self.refresh))
        self.every(refresh_interval, self.loader.request)
        self.refresh()

    def refresh(self) -> None:
        self.loader.run_now()

    def show(self, orders: list[JSON]) -> None:
        self.orders = orders
        rows = [pending_row(o) for o in orders]
        self.table.value = table_html(
            COLUMNS, rows, key_of=lambda r: str(r.get("id")), empty="No orders waiting"
        )
        options = [
            (f"#{r['id']} {r['action']} {r['quantity']} {r['symbol']} ({r['strategy']})", r["id"])
            for r in rows
        ]
        current = self.select.value
        self.select.options = options
        ids = [v for _, v in options]
        self.select.value = current if current in ids else (ids[0] if ids else None)
        for button in (self.approve_button, self.reject_button):
            button.disabled = not ids or self._deciding

    def approve_selected(self) -> None:
        if self.select.value is not None:
            self.decide(int(self.select.value), approve=True)
        else:
            self.status.error("No order selected")

    def reject_selected(self) -> None:
        if self.select.value is not None:
            self.decide(int(self.select.value), approve=False, reason=self.reason.value or "")
        else:
            self.status.error("No order selected")

    def decide(self, order_id: int, *, approve: bool, reason: str = "") -> JSON | None:
        """Approve (place) or reject one pending order; the answer is shown, never raised."""
        if self._deciding:
            return None
        self._deciding = True
        self.approve_button.disabled = self.reject_button.disabled = True
        try:
            answer = (
                self.queue.approve(order_id) if approve else self.queue.reject(order_id, reason)
            )
        except Exception as err:
            self.status.error(f"#{order_id}: {err}")
            return None
        finally:
            self._deciding = False
            self.refresh()
        if not approve:
            self.status.ok(f"#{order_id} rejected")
        elif answer.get("status") == "success":
            self.status.ok(f"#{order_id} approved: order {answer.get('orderid', '')} placed")
        else:
            self.status.error(f"#{order_id} not placed: {answer.get('message', 'failed')}")
        return answer
