"""Approvals: the Action Center's queue of semi-auto orders, approved or rejected by hand.

The queue is not an OpenAlgo API action: the server serves it to the logged-in Jupyter user at
`{base_url}openalgo/actioncenter` (Jupyter auth), and an embedded engine keeps it in its own
state store. `queue_for` picks the way in: the embedded engine's queue directly (on the
engine's own loop, as the server route does), or the server route when given the server's
URL and Jupyter token. Approving goes through the engine with the idempotency key
`actioncenter:<id>`, so approving twice (two tabs, a double click) orders once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import ipywidgets as widgets  # type: ignore[import-untyped]

from openalgo_lab.widgets._base import Panel
from openalgo_lab.widgets._table import Column, table_html
from openalgo_lab.widgets._ui import UiDispatcher

if TYPE_CHECKING:
    from openalgo_lab.client.api import Client

JSON = dict[str, Any]
CALL_TIMEOUT = 30.0
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


class ApprovalQueue(Protocol):
    """The Action Center as the widget needs it. Methods raise with a readable message."""

    def pending(self) -> list[JSON]: ...

    def approve(self, order_id: int) -> JSON: ...

    def reject(self, order_id: int, reason: str) -> JSON: ...


class EmbeddedQueue:
    """The Action Center of an engine running in this process (`connect(embedded=True)`)."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self._transport._run(coro)

    def pending(self) -> list[JSON]:
        from openalgo_lab.engine import action_center

        engine = self._transport.engine
        if engine.state is None:
            raise RuntimeError("The embedded engine is not running")
        orders = self._run(asyncio.to_thread(action_center.list_orders, engine.state))
        return [o.to_json() for o in orders]

    def approve(self, order_id: int) -> JSON:
        from openalgo_lab.engine import action_center

        answer: JSON = self._run(action_center.approve(self._transport.engine, order_id))
        return answer

    def reject(self, order_id: int, reason: str) -> JSON:
        from openalgo_lab.engine import action_center

        answer: JSON = self._run(
            action_center.reject(self._transport.engine, order_id, reason or "rejected by the user")
        )
        return answer


class ServerQueue:
    """The Action Center route of a Jupyter server with the extension (`server` is its base
    URL, e.g. `http://127.0.0.1:8888/`; `token` its Jupyter token, "" when it has none)."""

    def __init__(self, server: str, token: str, *, timeout: float = 10.0) -> None:
        from openalgo_lab.client.credentials import jupyter_auth

        self._url = server.rstrip("/") + "/openalgo/actioncenter"
        self._headers = jupyter_auth(token)
        self._timeout = timeout

    def _request(self, method: str, body: JSON | None = None) -> JSON:
        try:
            response = httpx.request(
                method, self._url, json=body, headers=self._headers, timeout=self._timeout
            )
        except httpx.HTTPError as err:
            raise RuntimeError(f"the Action Center is unreachable: {err}") from None
        try:
            answer = response.json()
        except ValueError:
            raise RuntimeError(
                f"the Action Center answered HTTP {response.status_code} without JSON"
            ) from None
        if not isinstance(answer, dict):
            raise RuntimeError("the Action Center's answer is not an object")
        if response.status_code >= 400 and answer.get("status") != "error":
            message = answer.get("message") or answer.get("reason") or response.reason_phrase
            raise RuntimeError(f"HTTP {response.status_code}: {message}")
        return answer

    def pending(self) -> list[JSON]:
        data = self._request("GET").get("data")
        return [o for o in data if isinstance(o, dict)] if isinstance(data, list) else []

    def approve(self, order_id: int) -> JSON:
        return self._request("POST", {"id": order_id, "decision": "approve"})

    def reject(self, order_id: int, reason: str) -> JSON:
        return self._request("POST", {"id": order_id, "decision": "reject", "reason": reason})


class UnavailableQueue:
    def __init__(self, reason: str) -> None:
        self.reason = reason

    def pending(self) -> list[JSON]:
        raise RuntimeError(self.reason)

    def approve(self, order_id: int) -> JSON:
        raise RuntimeError(self.reason)

    def reject(self, order_id: int, reason: str) -> JSON:
        raise RuntimeError(self.reason)


def queue_for(client: Client, server: str | None = None, token: str | None = None) -> ApprovalQueue:
    """The Action Center behind `client`: the server route when `server` (and `token`) are
    given; the embedded engine's own queue; or, for a kernel's Client that holds its Jupyter
    server's token (session tokens), that server's route."""
    if server:
        return ServerQueue(server, token or "")
    transport = getattr(client, "_transport", None)
    if transport is not None and hasattr(transport, "engine") and hasattr(transport, "_run"):
        return EmbeddedQueue(transport)
    credentials = getattr(transport, "credentials", None)
    token_url = getattr(credentials, "token_url", None)
    jupyter_token = getattr(credentials, "jupyter_token", None)
    suffix = "openalgo/token"
    if isinstance(token_url, str) and token_url.rstrip("/").endswith(suffix):
        root = token_url.rstrip("/")[: -len(suffix)]
        return ServerQueue(root, jupyter_token if isinstance(jupyter_token, str) else "")
    return UnavailableQueue(
        "The Action Center is served to the Jupyter user at {base_url}openalgo/actioncenter: "
        "pass Approvals(client, server=<Jupyter base URL>, token=<Jupyter token>)"
    )


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
