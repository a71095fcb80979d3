"""The order ticket: search a symbol, fill the order, review it (margin), confirm, watch its fate.

Nothing invalid can be sent: every change re-checks the form (`ticket_rules.check_ticket`),
shows each error next to its field and keeps the review button disabled. Reviewing freezes
the order with a fresh idempotency key; confirming sends it once with that key. The confirm
button is disabled while the order is in flight and the review is consumed when the order is
placed, so a second click sends nothing; after a failure the same review (same key) may be
retried, and the engine's journal answers a retry of an order it already placed with the
first answer instead of placing it again.
"""

from __future__ import annotations

import html
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from openalgo_lab.widgets._base import Panel
from openalgo_lab.widgets._calls import Outcome, attempt
from openalgo_lab.widgets._feed import QuoteFeed
from openalgo_lab.widgets._table import TABLE_CSS, number_text
from openalgo_lab.widgets._ui import UiDispatcher
from openalgo_lab.widgets.ticket_rules import (
    ORDER_EXCHANGES,
    PRICE_TYPES,
    PRODUCTS,
    Contract,
    TicketCheck,
    TicketForm,
    check_ticket,
)

if TYPE_CHECKING:
    from openalgo_lab.client.api import Client

JSON = dict[str, Any]
SUGGESTIONS = 20  # completion options shown under the symbol box
_CACHE_SIZE = 512
_RECENT_ORDERS = 500


@dataclass(frozen=True, slots=True)
class Review:
    """A checked order waiting for the user's confirmation, with the key it will be sent
    under (the same key on a retry, so it can never be placed twice)."""

    order: JSON
    key: str
    summary: str


def refused(outcome: Outcome) -> bool:
    """A definite refusal (a 4xx answer: validation, risk, kill switch), as opposed to no
    answer at all (a dropped connection, a server error), after which a retry makes sense."""
    code = outcome.body.get("code")
    return isinstance(code, int) and 400 <= code < 500


def _labelled(label: str, widget: Any, width: str = "88px") -> Any:
    return widgets.HBox(
        [widgets.Label(label, layout=widgets.Layout(width=width)), widget],
        layout=widgets.Layout(align_items="center"),
    )


class OrderTicket(Panel):
    """`OrderTicket(client, exchange="NSE", symbol="", quantity=1, product="MIS",
    strategy="Python", quote_interval=1.0)`."""

    css_class = "oal-order-ticket"

    def __init__(
        self,
        client: Client,
        *,
        exchange: str = "NSE",
        symbol: str = "",
        quantity: int | str = 1,
        product: str = "MIS",
        pricetype: str = "MARKET",
        strategy: str = "Python",
        quote_interval: float = 1.0,
        ui: UiDispatcher | None = None,
    ) -> None:
        super().__init__(client, ui=ui)
        self.side = "BUY"
        self.contract: Contract | None = None
        self.lookup_error = ""
        self.check = TicketCheck()
        self.review: Review | None = None
        self.last_orderid: str | None = None
        self.fate: JSON | None = None
        self._sending = False
        self._symbol_cache: OrderedDict[tuple[str, str], tuple[Contract | None, str]] = (
            OrderedDict()
        )
        self._recent: OrderedDict[str, JSON] = OrderedDict()
        self._quote: JSON = {}

        exchange = exchange.upper() if exchange.upper() in ORDER_EXCHANGES else "NSE"
        self.exchange = widgets.Dropdown(options=ORDER_EXCHANGES, value=exchange)
        self.symbol = widgets.Combobox(
            value=symbol.upper(),
            placeholder="symbol, e.g. SBIN",
            ensure_option=False,
            continuous_update=True,
        )
        self.contract_info = widgets.HTML()
        self.quote_info = widgets.HTML()
        self.buy = widgets.Button(description="BUY")
        self.sell = widgets.Button(description="SELL")
        self.quantity = widgets.Text(value=str(quantity), continuous_update=True)
        self.lots_info = widgets.HTML()
        self.pricetype = widgets.Dropdown(
            options=PRICE_TYPES, value=pricetype if pricetype in PRICE_TYPES else "MARKET"
        )
        self.product = widgets.Dropdown(
            options=PRODUCTS, value=product if product in PRODUCTS else "MIS"
        )
        self.price = widgets.Text(value="", placeholder="limit price", continuous_update=True)
        self.trigger = widgets.Text(value="", placeholder="trigger price", continuous_update=True)
        self.strategy = widgets.Text(value=strategy, continuous_update=True)
        self.errors = widgets.HTML()
        self.submit = widgets.Button(description="Review order", button_style="primary")
        self.review_info = widgets.HTML()
        self.confirm = widgets.Button(description="Confirm & send", button_style="warning")
        self.back = widgets.Button(description="Edit")
        self.review_box = widgets.VBox(
            [self.review_info, widgets.HBox([self.confirm, self.back])],
            layout=widgets.Layout(display="none"),
        )
        for widget, css in (
            (self.exchange, "oal-ticket-exchange"),
            (self.symbol, "oal-ticket-symbol"),
            (self.contract_info, "oal-ticket-contract"),
            (self.quote_info, "oal-ticket-quote"),
            (self.buy, "oal-ticket-buy"),
            (self.sell, "oal-ticket-sell"),
            (self.quantity, "oal-ticket-quantity"),
            (self.pricetype, "oal-ticket-pricetype"),
            (self.product, "oal-ticket-product"),
            (self.price, "oal-ticket-price"),
            (self.trigger, "oal-ticket-trigger"),
            (self.strategy, "oal-ticket-strategy"),
            (self.errors, "oal-ticket-errors"),
            (self.submit, "oal-ticket-submit"),
            (self.review_box, "oal-ticket-review"),
            (self.confirm, "oal-ticket-confirm"),
            (self.back, "oal-ticket-back"),
        ):
            widget.add_class(css)
        self.status.add_class("oal-ticket-status")
        self.children = [
            widgets.HTML(f"{TABLE_CSS}<b>Order ticket</b>"),
            _labelled("Exchange", self.exchange),
            _labelled("Symbol", self.symbol),
            self.contract_info,
            self.quote_info,
            widgets.HBox([self.buy, self.sell]),
            _labelled("Quantity", widgets.HBox([self.quantity, self.lots_info])),
            _labelled("Price type", self.pricetype),
            _labelled("Product", self.product),
            _labelled("Price", self.price),
            _labelled("Trigger", self.trigger),
            _labelled("Strategy", self.strategy),
            self.errors,
            self.submit,
            self.review_box,
            self.status,
        ]

        self.feed = QuoteFeed(
            client, self._on_quotes, self._on_quote_error, interval=quote_interval
        )
        self.on_close(self.feed.close)
        self.listen({"order"}, self._on_order_event)
        self.buy.on_click(self.guarded(lambda: self.set_side("BUY")))
        self.sell.on_click(self.guarded(lambda: self.set_side("SELL")))
        self.submit.on_click(self.guarded(self.start_review))
        self.confirm.on_click(self.guarded(self.send))
        self.back.on_click(self.guarded(self.cancel_review))
        self.symbol.observe(self.guarded(self._symbol_typed), names="value")
        self.exchange.observe(self.guarded(self._symbol_typed), names="value")
        for field in (self.quantity, self.pricetype, self.product, self.price, self.trigger):
            field.observe(self.guarded(self._changed), names="value")
        self.strategy.observe(self.guarded(self._changed), names="value")
        self._paint_side()
        self._symbol_typed()

    # -- the form ---------------------------------------------------------------------------
    def set_side(self, side: str) -> None:
        self.side = "SELL" if side.upper() == "SELL" else "BUY"
        self._paint_side()
        self._changed()

    def _paint_side(self) -> None:
        self.buy.button_style = "success" if self.side == "BUY" else ""
        self.sell.button_style = "danger" if self.side == "SELL" else ""
        for button, side in ((self.buy, "BUY"), (self.sell, "SELL")):
            if self.side == side:
                button.add_class("oal-selected")
            else:
                button.remove_class("oal-selected")

    def form(self) -> TicketForm:
        return TicketForm(
            exchange=self.exchange.value,
            symbol=self.symbol.value or "",
            action=self.side,
            quantity=self.quantity.value or "",
            pricetype=self.pricetype.value,
            product=self.product.value,
            price=self.price.value or "",
            trigger_price=self.trigger.value or "",
            strategy=self.strategy.value or "",
        )

    def _symbol_typed(self, _: Any = None) -> None:
        """The symbol or exchange changed: complete it, look it up, follow its quote."""
        text = (self.symbol.value or "").strip().upper()
        exchange = self.exchange.value
        if text:
            self._suggest(text, exchange)
        contract, error = self._lookup(text, exchange) if text else (None, "")
        previous = self.contract
        self.contract, self.lookup_error = contract, error
        if contract != previous:
            self._contract_changed()
        self._changed()

    def _suggest(self, text: str, exchange: str) -> None:
        outcome = attempt(lambda: self.client.search(query=text, exchange=exchange))
        if not outcome.ok or not isinstance(outcome.data, list):
            return
        names = []
        for record in outcome.data:
            if not isinstance(record, dict) or not record.get("symbol"):
                continue
            names.append(str(record["symbol"]))
            try:  # the search rows are master rows: the lookup of a completed symbol is free
                contract = Contract.from_record(record)
            except ValueError:
                continue
            self._remember((contract.exchange, contract.symbol), (contract, ""))
        self.symbol.options = tuple(dict.fromkeys(names))[:SUGGESTIONS]

    def _remember(self, key: tuple[str, str], found: tuple[Contract | None, str]) -> None:
        self._symbol_cache[key] = found
        self._symbol_cache.move_to_end(key)
        while len(self._symbol_cache) > _CACHE_SIZE:
            self._symbol_cache.popitem(last=False)

    def _lookup(self, symbol: str, exchange: str) -> tuple[Contract | None, str]:
        key = (exchange, symbol)
        if key in self._symbol_cache:
            self._symbol_cache.move_to_end(key)
            return self._symbol_cache[key]
        outcome = attempt(lambda: self.client.symbol(symbol=symbol, exchange=exchange))
        found: tuple[Contract | None, str]
        if outcome.ok and isinstance(outcome.data, dict):
            try:
                found = (Contract.from_record(outcome.data), "")
            except ValueError as err:
                found = (None, str(err))
        else:
            found = (None, outcome.message or f"{symbol} not found on {exchange}")
            if outcome.body.get("code") not in (400, 404):
                return found  # a server or network error: do not remember it
        self._remember(key, found)
        return found

    def _contract_changed(self) -> None:
        contract = self.contract
        self._quote = {}
        self.quote_info.value = ""
        if contract is None:
            self.contract_info.value = ""
            self.feed.set_symbols([])
            return
        lot = f"lot {contract.lotsize:,}" if contract.lotsize > 1 else "lot 1"
        self.contract_info.value = (
            f"<small>{html.escape(contract.name)} · {html.escape(contract.instrumenttype)} · "
            f"{lot} · tick {contract.tick_size}</small>"
        )
        self.price.placeholder = f"limit price (tick {contract.tick_size})"
        self.trigger.placeholder = f"trigger price (tick {contract.tick_size})"
        if contract.lotsize > 1:  # lot-aware: start at one lot rather than at an invalid 1
            try:
                qty = int(self.quantity.value)
            except ValueError:
                qty = 0
            if qty <= 0 or qty % contract.lotsize:
                self.quantity.value = str(contract.lotsize)
        self.feed.set_symbols([(contract.exchange, contract.symbol)])

    def _changed(self, _: Any = None) -> None:
        """Any field changed: re-check, show errors inline, drop a pending review."""
        if self.review is not None and not self._sending:
            self.cancel_review()
        pricetype = self.pricetype.value
        self.price.disabled = pricetype not in ("LIMIT", "SL")
        self.trigger.disabled = pricetype not in ("SL", "SL-M")
        self.check = check_ticket(self.form(), self.contract, self.lookup_error)
        self._show_errors()
        self._show_lots()
        self.submit.disabled = not self.check.ok or self._sending

    def _show_errors(self) -> None:
        errors = self.check.errors
        fields = {
            "exchange": self.exchange,
            "symbol": self.symbol,
            "quantity": self.quantity,
            "pricetype": self.pricetype,
            "product": self.product,
            "price": self.price,
            "trigger_price": self.trigger,
            "strategy": self.strategy,
        }
        for name, widget in fields.items():
            if name in errors:
                widget.add_class("oal-invalid")
            else:
                widget.remove_class("oal-invalid")
        if not errors or not (self.symbol.value or "").strip():
            # an empty ticket is not an error yet: just say what is missing
            self.errors.value = (
                "" if not errors else '<small class="oal-msg-info">Type a symbol to start.</small>'
            )
            return
        lines = "".join(
            f"<li><b>{html.escape(name.replace('_', ' '))}</b>: {html.escape(text)}</li>"
            for name, text in errors.items()
        )
        self.errors.value = f'<ul class="oal-msg-error" style="margin:2px 0">{lines}</ul>'

    def _show_lots(self) -> None:
        contract = self.contract
        if contract is None or contract.lotsize <= 1:
            self.lots_info.value = ""
            return
        try:
            qty = int(self.quantity.value)
        except ValueError:
            self.lots_info.value = ""
            return
        lots = qty / contract.lotsize
        shown = f"{lots:g}" if lots != int(lots) else f"{int(lots)}"
        self.lots_info.value = f"<small>= {shown} lot(s) of {contract.lotsize:,}</small>"

    # -- quotes -----------------------------------------------------------------------------
    def _on_quotes(self, quotes: dict[tuple[str, str], JSON]) -> None:
        contract = self.contract
        if contract is None:
            return
        quote = quotes.get((contract.exchange, contract.symbol))
        if quote is None:
            return
        self._quote = quote
        self.ui.post(self._paint_quote)

    def _paint_quote(self) -> None:
        q = self._quote
        if not q:
            return
        self.quote_info.value = (
            f"<small>LTP <b>{number_text(q.get('ltp'))}</b> · bid {number_text(q.get('bid'))}"
            f" · ask {number_text(q.get('ask'))}</small>"
        )

    def _on_quote_error(self, message: str) -> None:
        self.ui.post(
            lambda: setattr(self.quote_info, "value", f"<small>{html.escape(message)}</small>")
        )

    # -- review, confirm, send --------------------------------------------------------------
    def start_review(self) -> None:
        """Freeze the checked order with a new idempotency key and show what it needs."""
        if self._sending:
            self.status.info("An order is being sent; wait for its answer")
            return
        self._changed()
        if not self.check.ok or self.check.order is None:
            self.status.error("Fix the fields marked above before sending")
            return
        order = dict(self.check.order)
        review = Review(order=order, key=f"ticket-{uuid.uuid4().hex}", summary=self.check.summary)
        margin = self._margin_text(order)
        self.review = review
        self.review_info.value = (
            f"<div><b>{html.escape(review.summary)}</b></div><div><small>"
            f"{html.escape(margin)}</small></div>"
        )
        self.review_box.layout.display = "flex"
        self.confirm.disabled = False
        self.confirm.description = "Confirm & send"
        self.status.info("Check the order, then confirm")

    def _margin_text(self, order: JSON) -> str:
        leg = {
            "symbol": order["symbol"],
            "exchange": order["exchange"],
            "action": order["action"],
            "product": order["product"],
            "pricetype": order["price_type"],
            "quantity": order["quantity"],
            "price": order.get("price", "0"),
            "trigger_price": order.get("trigger_price", "0"),
        }
        margin = attempt(lambda: self.client.margin(positions=[leg]))
        if not margin.ok or not isinstance(margin.data, dict):
            return f"margin: {margin.message}"
        text = f"margin required ₹{number_text(margin.data.get('total_margin_required'))}"
        funds = attempt(self.client.funds)
        if funds.ok and isinstance(funds.data, dict):
            text += f" · available ₹{number_text(funds.data.get('availablecash'))}"
        ltp = self._quote.get("ltp")
        if ltp:
            value = float(ltp) * int(order["quantity"])
            text += f" · value at LTP ₹{number_text(value)}"
        return text

    def cancel_review(self) -> None:
        self.review = None
        self.review_box.layout.display = "none"

    def send(self) -> None:
        """Send the reviewed order once. Ignored while one is in flight or with no review."""
        with self._lock:
            review = self.review
            if self._sending:
                return
            if review is None:
                if self.last_orderid is None:  # else: a late second click; keep the fate
                    self.status.info("Nothing to confirm: review an order first")
                return
            self._sending = True
        self.confirm.disabled = True
        self.submit.disabled = True
        self.status.info(f"Sending {review.summary} …")
        try:
            outcome = attempt(
                lambda: self.client.placeorder(**review.order, idempotency_key=review.key)
            )
        finally:
            with self._lock:
                self._sending = False
        if outcome.ok:
            self.cancel_review()
            self._placed(outcome.body)
        elif refused(outcome):
            # the engine answered no: the same key would only repeat that answer
            self.cancel_review()
            self.status.error(f"Refused: {outcome.message}")
        else:
            # no answer (network, server error): the order may or may not have been placed.
            # Retrying with the same key is safe: the journal answers a placed order again
            # instead of placing it twice.
            self.confirm.disabled = False
            self.confirm.description = "Retry (same order)"
            self.status.error(f"No answer, the order may not be placed: {outcome.message}")
        self.submit.disabled = not self.check.ok

    def _placed(self, body: JSON) -> None:
        if body.get("mode") == "semi_auto" or body.get("pending_order_id") is not None:
            self.last_orderid = None
            self.status.ok(
                f"Queued for approval in the Action Center (#{body.get('pending_order_id')})"
            )
            return
        orderid = str(body.get("orderid", ""))
        self.last_orderid = orderid
        with self._lock:
            row = self._recent.get(orderid)
        if row is not None:
            self._show_fate(row)
        else:
            self.status.ok(f"Order {orderid} placed; waiting for the exchange")

    # -- the order's fate -------------------------------------------------------------------
    def _on_order_event(self, topic: str, row: JSON) -> None:
        orderid = str(row.get("orderid", ""))
        with self._lock:
            self._recent[orderid] = row
            self._recent.move_to_end(orderid)
            while len(self._recent) > _RECENT_ORDERS:
                self._recent.popitem(last=False)
        if orderid and orderid == self.last_orderid:
            self.ui.post(lambda: self._show_fate(row))

    def _show_fate(self, row: JSON) -> None:
        orderid = str(row.get("orderid"))
        if orderid != self.last_orderid:
            return
        with self._lock:  # events may be applied out of turn: show the latest known state
            row = self._recent.get(orderid, row)
        self.fate = row
        status = str(row.get("order_status", ""))
        filled = int(row.get("filled_quantity") or 0)
        qty = int(row.get("quantity") or 0)
        what = f"{row.get('action')} {qty:,} {row.get('symbol')}"
        if status == "complete":
            self.status.ok(
                f"Order {orderid} complete: {what} @ {number_text(row.get('average_price'))}"
            )
        elif status == "rejected":
            self.status.error(f"Order {orderid} rejected: {row.get('rejection_reason') or '?'}")
        elif status == "cancelled":
            self.status.info(f"Order {orderid} cancelled ({filled:,} of {qty:,} filled)")
        else:
            self.status.ok(f"Order {orderid} {status}: {what}, {filled:,} of {qty:,} filled")
