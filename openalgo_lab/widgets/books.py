"""The books: orders (modify, cancel), trades, positions (close), holdings and funds.

Orders and trades change row by row from the Client's `order` and `trade` events (each event
carries the whole order-book or trade-book row), keyed by orderid and tradeid, after one
snapshot at start. Positions, holdings and funds are the broker's own arithmetic (average
price, realised P&L, margin), so instead of re-deriving it they are fetched again when an
event says they changed (a fill, an order that blocks margin), in a background thread, with
bursts folded into one fetch. An optional `mtm_interval` also refreshes positions for their
last price and unrealised P&L, which move with the market rather than with orders.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.validation import parse_price, parse_quantity
from openalgo_lab.widgets._base import Panel
from openalgo_lab.widgets._calls import Outcome, attempt
from openalgo_lab.widgets._table import Column, PagedTable, number_text, table_html
from openalgo_lab.widgets._ui import Coalescer, UiDispatcher

if TYPE_CHECKING:
    from openalgo_lab.client.api import Client

JSON = dict[str, Any]
TERMINAL = frozenset({"complete", "rejected", "cancelled"})
WORKING_CHOICES = 200  # newest working orders offered for modify/cancel
PRICE_TYPES = ("LIMIT", "MARKET", "SL", "SL-M")

ORDER_COLUMNS = (
    Column("timestamp", "Time"),
    Column("orderid", "Order id"),
    Column("strategy", "Strategy"),
    Column("symbol", "Symbol"),
    Column("exchange", "Exch"),
    Column("action", "Side"),
    Column("product", "Product"),
    Column("pricetype", "Type"),
    Column("quantity", "Qty", "int"),
    Column("filled_quantity", "Filled", "int"),
    Column("price", "Price", "money"),
    Column("trigger_price", "Trigger", "money"),
    Column("average_price", "Avg price", "money"),
    Column("order_status", "Status"),
    Column("rejection_reason", "Reason"),
)
TRADE_COLUMNS = (
    Column("timestamp", "Time"),
    Column("tradeid", "Trade id"),
    Column("orderid", "Order id"),
    Column("strategy", "Strategy"),
    Column("symbol", "Symbol"),
    Column("exchange", "Exch"),
    Column("action", "Side"),
    Column("product", "Product"),
    Column("quantity", "Qty", "int"),
    Column("average_price", "Price", "money"),
    Column("trade_value", "Value", "money"),
    Column("charges", "Charges", "money"),
)
POSITION_COLUMNS = (
    Column("symbol", "Symbol"),
    Column("exchange", "Exch"),
    Column("product", "Product"),
    Column("quantity", "Net qty", "int"),
    Column("average_price", "Avg price", "money"),
    Column("ltp", "LTP", "money"),
    Column("pnl", "P&L", "signed"),
    Column("realized_pnl", "Realised", "signed"),
    Column("unrealized_pnl", "Unrealised", "signed"),
)
HOLDING_COLUMNS = (
    Column("symbol", "Symbol"),
    Column("exchange", "Exch"),
    Column("product", "Product"),
    Column("quantity", "Qty", "int"),
    Column("average_price", "Avg price", "money"),
    Column("ltp", "LTP", "money"),
    Column("pnl", "P&L", "signed"),
    Column("pnlpercent", "P&L %", "signed"),
)
FUND_FIELDS = (
    ("availablecash", "Available cash"),
    ("collateral", "Collateral"),
    ("m2mrealized", "Realised M2M"),
    ("m2munrealized", "Unrealised M2M"),
    ("utiliseddebits", "Margin used"),
)


def order_key(row: JSON) -> str:
    return str(row.get("orderid", ""))


def trade_key(row: JSON) -> str:
    return str(row.get("tradeid", ""))


def position_key(row: JSON) -> str:
    return f"{row.get('exchange')}:{row.get('symbol')}:{row.get('product')}"


def _status_class(row: JSON) -> str:
    return f"oal-row-{str(row.get('order_status', '')).replace(' ', '-')}"


def _rank(row: JSON) -> tuple[int, int]:
    """How far an order has come: finished beats working, more filled beats less. Rows
    never move backwards, so an event and a snapshot can arrive in either order."""
    try:
        filled = int(row.get("filled_quantity") or 0)
    except (TypeError, ValueError):
        filled = 0
    return (1 if row.get("order_status") in TERMINAL else 0, filled)


def _clean(row: JSON) -> JSON:
    return {k: v for k, v in row.items() if k != "account"}


def _button(description: str, css: str, style: str = "") -> Any:
    button = widgets.Button(description=description, button_style=style)
    button.add_class(css)
    return button


def _rows(outcome: Outcome, key: str | None = None) -> list[JSON]:
    """The rows of a book answer (`data` or `data[key]`); raises with the server's message."""
    if not outcome.ok:
        raise RuntimeError(outcome.message)
    data = outcome.data
    if key is not None:
        data = data.get(key) if isinstance(data, dict) else None
    if not isinstance(data, list):
        raise RuntimeError("the server's answer has no rows")
    return [r for r in data if isinstance(r, dict)]


class OrderBook(Panel):
    """`OrderBook(client, page_size=50, strategy="Python")`: today's orders, live, with
    modify and cancel of working orders."""

    css_class = "oal-order-book"

    def __init__(
        self,
        client: Client,
        *,
        page_size: int = 50,
        strategy: str = "Python",
        ui: UiDispatcher | None = None,
    ) -> None:
        super().__init__(client, ui=ui)
        self.strategy = strategy
        self.table = PagedTable(
            self.ui,
            ORDER_COLUMNS,
            order_key,
            page_size=page_size,
            row_class=_status_class,
            empty="No orders today",
        )
        self._working: OrderedDict[str, JSON] = OrderedDict()
        self._painting = False
        self._choices = Coalescer(self.ui, self._paint_choices)
        self.filter = widgets.Dropdown(
            options=[
                ("all", "all"),
                ("working", "working"),
                ("complete", "complete"),
                ("rejected", "rejected"),
                ("cancelled", "cancelled"),
            ],
            value="all",
            description="Show",
            layout=widgets.Layout(width="200px"),
        )
        self.filter.add_class("oal-order-filter")
        self.select = widgets.Dropdown(options=[], description="Order", layout={"width": "420px"})
        self.select.add_class("oal-order-select")
        self.new_quantity = widgets.Text(placeholder="quantity", layout={"width": "100px"})
        self.new_price = widgets.Text(placeholder="price", layout={"width": "100px"})
        self.new_trigger = widgets.Text(placeholder="trigger", layout={"width": "100px"})
        self.new_pricetype = widgets.Dropdown(options=PRICE_TYPES, layout={"width": "90px"})
        self.cancel_button = _button("Cancel order", "oal-order-cancel", "danger")
        self.modify_button = _button("Modify", "oal-order-modify", "info")
        self.cancel_all_button = _button("Cancel all", "oal-order-cancel-all", "danger")
        self.refresh_button = _button("↻", "oal-refresh")
        self.refresh_button.layout.width = "40px"
        self.children = [
            widgets.HBox(
                [widgets.HTML("<b>Orders</b>"), self.filter, self.refresh_button],
                layout={"align_items": "center"},
            ),
            self.table,
            widgets.HBox([self.select, self.cancel_button, self.cancel_all_button]),
            widgets.HBox(
                [
                    self.new_quantity,
                    self.new_pricetype,
                    self.new_price,
                    self.new_trigger,
                    self.modify_button,
                ]
            ),
            self.status,
        ]
        self.filter.observe(self.guarded(self._filter_changed), names="value")
        self.select.observe(self.guarded(self._selected), names="value")
        self.cancel_button.on_click(self.guarded(self.cancel_selected))
        self.cancel_all_button.on_click(self.guarded(self.cancel_all))
        self.modify_button.on_click(self.guarded(self.modify_selected))
        self.refresh_button.on_click(self.guarded(lambda: self.refresh(replace=True)))
        self.listen({"order"}, lambda topic, row: self.apply(row))
        self.refresh()

    # -- rows -------------------------------------------------------------------------------
    def apply(self, row: JSON, *, render: bool = True) -> bool:
        """One order-book row (an event or a snapshot row): merged in, never backwards.
        Returns whether the choice of working orders changed."""
        row = _clean(row)
        orderid = order_key(row)
        if not orderid:
            return False
        with self._lock:
            old = self.table.store.get(orderid)
            if old is not None and _rank(row) < _rank(old):
                return False
            working_changed = (orderid in self._working) != (
                row.get("order_status") not in TERMINAL
            )
            if row.get("order_status") in TERMINAL:
                self._working.pop(orderid, None)
            else:
                self._working[orderid] = row
            self.table.upsert(row, render=render)
        changed = working_changed or orderid == self.select.value
        if render and changed:
            self._choices.request()
        return changed

    def refresh(self, *, replace: bool = False) -> None:
        """Fetch the whole book once (at start, or from the refresh button)."""
        try:
            rows = _rows(attempt(self.client.orderbook), "orders")
        except RuntimeError as err:
            self.status.error(f"order book: {err}")
            return
        if replace:
            with self._lock:
                self._working.clear()
                self.table.store.replace([])
        for row in rows:
            self.apply(row, render=False)
        self.table.render()
        self._paint_choices()

    def row(self, orderid: str) -> JSON | None:
        return self.table.store.get(orderid)

    def _filter_changed(self) -> None:
        choice = self.filter.value
        keep: Callable[[JSON], bool] | None
        if choice == "all":
            keep = None
        elif choice == "working":
            keep = lambda r: r.get("order_status") not in TERMINAL  # noqa: E731
        else:
            keep = lambda r: r.get("order_status") == choice  # noqa: E731
        self.table.set_filter(keep)

    # -- choosing a working order -----------------------------------------------------------
    def _paint_choices(self) -> None:
        with self._lock:
            newest = list(reversed(self._working.values()))[:WORKING_CHOICES]
        options = [(self._label(r), order_key(r)) for r in newest]
        current = self.select.value
        self._painting = True  # the modify fields keep what the user typed
        try:
            self.select.options = options
            ids = [value for _, value in options]
            self.select.value = current if current in ids else (ids[0] if ids else None)
        finally:
            self._painting = False
        if self.select.value != current or not ids:
            self._selected()

    @staticmethod
    def _label(row: JSON) -> str:
        price = "MKT" if row.get("pricetype") == "MARKET" else number_text(row.get("price"))
        return (
            f"{row.get('orderid')} · {row.get('action')} {row.get('quantity')} "
            f"{row.get('symbol')} @ {price} {row.get('pricetype')} · {row.get('order_status')}"
        )

    def _selected(self) -> None:
        if self._painting:
            return
        row = self.row(self.select.value) if self.select.value else None
        for button in (self.cancel_button, self.modify_button):
            button.disabled = row is None
        if row is None:
            return
        self.new_quantity.value = str(row.get("quantity", ""))
        self.new_price.value = str(row.get("price", ""))
        self.new_trigger.value = str(row.get("trigger_price", ""))
        if row.get("pricetype") in PRICE_TYPES:
            self.new_pricetype.value = row["pricetype"]

    # -- actions ----------------------------------------------------------------------------
    def cancel_selected(self) -> None:
        orderid = self.select.value
        if not orderid:
            self.status.error("Choose a working order to cancel")
            return
        self.cancel(orderid)

    def cancel(self, orderid: str) -> Outcome:
        self.cancel_button.disabled = True
        try:
            outcome = attempt(
                lambda: self.client.cancelorder(order_id=orderid, strategy=self.strategy)
            )
        finally:
            self.cancel_button.disabled = False
        if outcome.ok:
            self.status.ok(f"Cancel sent for order {orderid}")
        else:
            self.status.error(f"Cancel of {orderid} failed: {outcome.message}")
        return outcome

    def cancel_all(self) -> Outcome:
        outcome = attempt(lambda: self.client.cancelallorder(strategy=self.strategy))
        if outcome.ok:
            self.status.ok(outcome.message or "All working orders cancelled")
        else:
            self.status.error(f"Cancel all failed: {outcome.message}")
        return outcome

    def modify_selected(self) -> None:
        orderid = self.select.value
        if not orderid:
            self.status.error("Choose a working order to modify")
            return
        self.modify(
            orderid,
            quantity=self.new_quantity.value,
            price=self.new_price.value,
            trigger_price=self.new_trigger.value,
            pricetype=self.new_pricetype.value,
        )

    def modify(
        self,
        orderid: str,
        *,
        quantity: str,
        price: str,
        trigger_price: str = "0",
        pricetype: str | None = None,
    ) -> Outcome | None:
        """Modify a working order; bad numbers are shown and nothing is sent."""
        row = self.row(orderid)
        if row is None:
            self.status.error(f"Order {orderid} is not in the book")
            return None
        try:
            qty = parse_quantity(quantity.strip())
            new_price = parse_price(price.strip(), "price")
            new_trigger = parse_price(trigger_price.strip(), "trigger_price")
        except ValidationError as err:
            self.status.error(f"Not sent: {err.message}")
            return None
        self.modify_button.disabled = True
        try:
            outcome = attempt(
                lambda: self.client.modifyorder(
                    order_id=orderid,
                    strategy=self.strategy,
                    symbol=str(row["symbol"]),
                    action=str(row["action"]),
                    exchange=str(row["exchange"]),
                    price_type=pricetype or str(row.get("pricetype", "LIMIT")),
                    product=str(row["product"]),
                    quantity=str(qty),
                    price=str(new_price),
                    trigger_price=str(new_trigger),
                )
            )
        finally:
            self.modify_button.disabled = False
        if outcome.ok:
            self.status.ok(f"Order {orderid} modified")
        else:
            self.status.error(f"Modify of {orderid} failed: {outcome.message}")
        return outcome


class TradeBook(Panel):
    """`TradeBook(client, page_size=50)`: today's fills, live."""

    css_class = "oal-trade-book"

    def __init__(
        self, client: Client, *, page_size: int = 50, ui: UiDispatcher | None = None
    ) -> None:
        super().__init__(client, ui=ui)
        self.table = PagedTable(
            self.ui, TRADE_COLUMNS, trade_key, page_size=page_size, empty="No trades today"
        )
        self.refresh_button = _button("↻", "oal-refresh")
        self.refresh_button.layout.width = "40px"
        self.children = [
            widgets.HBox([widgets.HTML("<b>Trades</b>"), self.refresh_button]),
            self.table,
            self.status,
        ]
        self.refresh_button.on_click(self.guarded(self.refresh))
        self.listen({"trade"}, lambda topic, row: self.table.upsert(_clean(row)))
        self.refresh()

    def refresh(self) -> None:
        try:
            rows = _rows(attempt(self.client.tradebook))
        except RuntimeError as err:
            self.status.error(f"trade book: {err}")
            return
        for row in rows:
            if trade_key(row) not in self.table.store:
                self.table.upsert(row, render=False)
        self.table.render()


class _FetchedPanel(Panel):
    """A panel whose content is fetched whole again when an event says it changed."""

    topics: frozenset[str] = frozenset({"trade"})

    def _start(self, mtm_interval: float | None = None) -> None:
        self.loader = self.fetcher(self.fetch, self.show, min_interval=0.1)
        self.listen(self.topics, lambda topic, row: self.loader.request())
        self.every(mtm_interval, self.loader.request)
        self.refresh()

    def fetch(self) -> Any:
        raise NotImplementedError

    def show(self, data: Any) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        """Fetch now, on this thread (start-up, the refresh button, tests)."""
        self.loader.run_now()


class PositionBook(_FetchedPanel):
    """`PositionBook(client, mtm_interval=2.0, strategy="Python")`: net positions, refreshed
    on every fill (and every `mtm_interval` seconds for prices; None: fills only)."""

    css_class = "oal-positions"

    def __init__(
        self,
        client: Client,
        *,
        mtm_interval: float | None = 2.0,
        strategy: str = "Python",
        page_size: int = 50,
        ui: UiDispatcher | None = None,
    ) -> None:
        super().__init__(client, ui=ui)
        self.strategy = strategy
        self.table = PagedTable(
            self.ui, POSITION_COLUMNS, position_key, page_size=page_size, empty="No positions"
        )
        self.totals = widgets.HTML()
        self.select = widgets.Dropdown(
            options=[], description="Position", layout={"width": "360px"}
        )
        self.select.add_class("oal-position-select")
        self.close_button = _button("Close position", "oal-position-close", "danger")
        self.close_all_button = _button("Close all", "oal-position-close-all", "danger")
        self.refresh_button = _button("↻", "oal-refresh")
        self.refresh_button.layout.width = "40px"
        self.children = [
            widgets.HBox([widgets.HTML("<b>Positions</b>"), self.refresh_button, self.totals]),
            self.table,
            widgets.HBox([self.select, self.close_button, self.close_all_button]),
            self.status,
        ]
        self.close_button.on_click(self.guarded(self.close_selected))
        self.close_all_button.on_click(self.guarded(self.close_all))
        self.refresh_button.on_click(self.guarded(self.refresh))
        self._start(mtm_interval)

    def fetch(self) -> list[JSON]:
        return _rows(attempt(self.client.positionbook))

    def show(self, rows: list[JSON]) -> None:
        self.table.replace(rows)
        self.table.render()
        realised = sum(float(r.get("realized_pnl") or 0) for r in rows)
        unrealised = sum(float(r.get("unrealized_pnl") or 0) for r in rows)
        self.totals.value = (
            f"<small>realised ₹{number_text(realised)} · unrealised ₹"
            f"{number_text(unrealised)}</small>"
        )
        open_rows = [r for r in rows if int(r.get("quantity") or 0) != 0]
        options = [
            (
                f"{r['symbol']} {r['exchange']} {r['product']} · {int(r['quantity']):+,}",
                position_key(r),
            )
            for r in open_rows
        ]
        current = self.select.value
        self.select.options = options
        ids = [v for _, v in options]
        self.select.value = current if current in ids else (ids[0] if ids else None)
        self.close_button.disabled = not ids

    def row(self, key: str) -> JSON | None:
        return self.table.store.get(key)

    def close_selected(self) -> None:
        key = self.select.value
        if not key:
            self.status.error("No open position to close")
            return
        self.close_position(key)

    def close_position(self, key: str) -> Outcome | None:
        """Square off one position at market: a smart order to a position size of 0, so the
        engine sizes it from the position it holds, not from what this page last saw."""
        row = self.row(key)
        if row is None or not int(row.get("quantity") or 0):
            self.status.error(f"{key} is not an open position")
            return None
        quantity = int(row["quantity"])
        self.close_button.disabled = True
        try:
            outcome = attempt(
                lambda: self.client.placesmartorder(
                    strategy=self.strategy,
                    symbol=str(row["symbol"]),
                    exchange=str(row["exchange"]),
                    product=str(row["product"]),
                    action="SELL" if quantity > 0 else "BUY",
                    price_type="MARKET",
                    quantity=str(abs(quantity)),
                    position_size="0",
                    idempotency_key=f"close-{uuid.uuid4().hex}",
                )
            )
        finally:
            self.close_button.disabled = False
        if outcome.ok:
            self.status.ok(f"Closing {key}: order {outcome.body.get('orderid', '')}".rstrip())
        else:
            self.status.error(f"Close of {key} failed: {outcome.message}")
        return outcome

    def close_all(self) -> Outcome:
        outcome = attempt(lambda: self.client.closeposition(strategy=self.strategy))
        if outcome.ok:
            self.status.ok(outcome.message or "All positions closed")
        else:
            self.status.error(f"Close all failed: {outcome.message}")
        return outcome


class Holdings(_FetchedPanel):
    """`Holdings(client)`: delivery holdings, refreshed on fills."""

    css_class = "oal-holdings"

    def __init__(self, client: Client, *, ui: UiDispatcher | None = None) -> None:
        super().__init__(client, ui=ui)
        self.table = PagedTable(
            self.ui, HOLDING_COLUMNS, position_key, page_size=50, empty="No holdings"
        )
        self.totals = widgets.HTML()
        self.refresh_button = _button("↻", "oal-refresh")
        self.refresh_button.layout.width = "40px"
        self.children = [
            widgets.HBox([widgets.HTML("<b>Holdings</b>"), self.refresh_button, self.totals]),
            self.table,
            self.status,
        ]
        self.refresh_button.on_click(self.guarded(self.refresh))
        self._start()

    def fetch(self) -> tuple[list[JSON], JSON]:
        outcome = attempt(self.client.holdings)
        rows = _rows(outcome, "holdings")
        stats = outcome.data.get("statistics") if isinstance(outcome.data, dict) else None
        return rows, stats if isinstance(stats, dict) else {}

    def show(self, data: tuple[list[JSON], JSON]) -> None:
        rows, stats = data
        self.table.replace(rows)
        self.table.render()
        self.totals.value = (
            f"<small>value ₹{number_text(stats.get('totalholdingvalue'))} · invested ₹"
            f"{number_text(stats.get('totalinvvalue'))} · P&L ₹"
            f"{number_text(stats.get('totalprofitandloss'))}</small>"
        )


class Funds(_FetchedPanel):
    """`Funds(client)`: cash, collateral, M2M and margin used; refreshed when orders change
    (margin is blocked on placing and released on cancelling) and on fills."""

    css_class = "oal-funds"
    topics = frozenset({"order", "trade"})

    def __init__(self, client: Client, *, ui: UiDispatcher | None = None) -> None:
        super().__init__(client, ui=ui)
        self.values: JSON = {}
        self.view = widgets.HTML()
        self.refresh_button = _button("↻", "oal-refresh")
        self.refresh_button.layout.width = "40px"
        self.children = [
            widgets.HBox([widgets.HTML("<b>Funds</b>"), self.refresh_button]),
            self.view,
            self.status,
        ]
        self.refresh_button.on_click(self.guarded(self.refresh))
        self._start()

    def fetch(self) -> JSON:
        outcome = attempt(self.client.funds)
        if not outcome.ok or not isinstance(outcome.data, dict):
            raise RuntimeError(f"funds: {outcome.message}")
        return dict(outcome.data)

    def show(self, values: JSON) -> None:
        self.values = values
        rows = [{"field": label, "value": values.get(key)} for key, label in FUND_FIELDS]
        self.view.value = table_html(
            (Column("field", ""), Column("value", "₹", "money")), rows, empty="No funds"
        )


class Books(widgets.Tab):  # type: ignore[misc]
    """`Books(client, **options)`: the five books in tabs (orders, trades, positions,
    holdings, funds); options go to each book that takes them."""

    def __init__(
        self,
        client: Client,
        *,
        page_size: int = 50,
        strategy: str = "Python",
        mtm_interval: float | None = 2.0,
        ui: UiDispatcher | None = None,
    ) -> None:
        self.orders = OrderBook(client, page_size=page_size, strategy=strategy, ui=ui)
        self.trades = TradeBook(client, page_size=page_size, ui=ui)
        self.positions = PositionBook(
            client, mtm_interval=mtm_interval, strategy=strategy, page_size=page_size, ui=ui
        )
        self.holdings = Holdings(client, ui=ui)
        self.funds = Funds(client, ui=ui)
        panels = [self.orders, self.trades, self.positions, self.holdings, self.funds]
        super().__init__(children=panels)
        self.titles = ("Orders", "Trades", "Positions", "Holdings", "Funds")
        self.add_class("oal-books")

    def close(self) -> None:
        for panel in list(self.children or ()):
            panel.close()
        super().close()
