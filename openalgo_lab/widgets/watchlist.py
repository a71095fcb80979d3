"""The watchlist: last price and change from the previous close for chosen symbols, live.

Quotes come from `QuoteFeed` (pushed ticks when the Client has them, else a modest poll). The
table is small (at most `MAX_SYMBOLS` rows) and re-rendered at most once per UI turn however
many ticks arrive in between.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from openalgo_lab.widgets._base import Panel
from openalgo_lab.widgets._calls import attempt
from openalgo_lab.widgets._feed import QuoteFeed
from openalgo_lab.widgets._table import Column, table_html
from openalgo_lab.widgets._ui import Coalescer, UiDispatcher
from openalgo_lab.widgets.ticket_rules import ORDER_EXCHANGES

if TYPE_CHECKING:
    from openalgo_lab.client.api import Client

JSON = dict[str, Any]
Key = tuple[str, str]
MAX_SYMBOLS = 200
QUOTE_EXCHANGES = (*ORDER_EXCHANGES, "NSE_INDEX", "BSE_INDEX", "MCX_INDEX")
COLUMNS = (
    Column("symbol", "Symbol"),
    Column("exchange", "Exch"),
    Column("ltp", "LTP", "money"),
    Column("change", "Change", "signed"),
    Column("change_pct", "%", "signed"),
    Column("bid", "Bid", "money"),
    Column("ask", "Ask", "money"),
    Column("volume", "Volume", "int"),
)


def _key(pair: Sequence[str]) -> Key:
    if len(pair) != 2:
        raise ValueError(f"a watchlist symbol is (exchange, symbol), got {pair!r}")
    return (str(pair[0]).strip().upper(), str(pair[1]).strip().upper())


def quote_row(key: Key, quote: JSON) -> JSON:
    """A table row from a quote: change and change % against the previous close."""
    row: JSON = {"exchange": key[0], "symbol": key[1], **quote}
    try:
        ltp, prev = float(quote.get("ltp") or 0), float(quote.get("prev_close") or 0)
    except (TypeError, ValueError):
        return row
    if ltp and prev:
        row["change"] = ltp - prev
        row["change_pct"] = (ltp - prev) / prev * 100
    return row


class Watchlist(Panel):
    """`Watchlist(client, symbols=[("NSE", "SBIN"), ...], interval=1.0)`."""

    css_class = "oal-watchlist"

    def __init__(
        self,
        client: Client,
        *,
        symbols: Iterable[Sequence[str]] = (),
        interval: float = 1.0,
        ui: UiDispatcher | None = None,
    ) -> None:
        super().__init__(client, ui=ui)
        self.rows: dict[Key, JSON] = {}
        self._order: list[Key] = []
        self._rows_lock = threading.Lock()
        self.table = widgets.HTML()
        self.table.add_class("oal-watchlist-table")
        self.add_exchange = widgets.Dropdown(
            options=QUOTE_EXCHANGES, value="NSE", layout={"width": "120px"}
        )
        self.add_symbol = widgets.Text(placeholder="add symbol", layout={"width": "160px"})
        self.add_symbol.add_class("oal-watchlist-symbol")
        self.add_button = widgets.Button(description="Add", layout={"width": "60px"})
        self.add_button.add_class("oal-watchlist-add")
        self.remove_select = widgets.Dropdown(options=[], layout={"width": "200px"})
        self.remove_button = widgets.Button(description="Remove", layout={"width": "80px"})
        self.children = [
            widgets.HTML("<b>Watchlist</b>"),
            self.table,
            widgets.HBox([self.add_exchange, self.add_symbol, self.add_button]),
            widgets.HBox([self.remove_select, self.remove_button]),
            self.status,
        ]
        self._render = Coalescer(self.ui, self.render)
        self.feed = QuoteFeed(
            client,
            self._on_quotes,
            lambda message: self.ui.post(lambda: self.status.error(message)),
            interval=interval,
        )
        self.on_close(self.feed.close)
        self.add_button.on_click(self.guarded(self._add_clicked))
        self.remove_button.on_click(self.guarded(self._remove_clicked))
        wanted: list[Key] = []
        for pair in symbols:
            try:
                wanted.append(_key(pair))
            except ValueError as err:
                self.status.error(str(err))
        self.set_symbols(wanted)

    @property
    def symbols(self) -> list[Key]:
        return list(self._order)

    def set_symbols(self, symbols: Iterable[Key]) -> None:
        keys = list(dict.fromkeys(symbols))[:MAX_SYMBOLS]
        with self._rows_lock:
            self._order = keys
            self.rows = {k: self.rows.get(k, {"exchange": k[0], "symbol": k[1]}) for k in keys}
        self.remove_select.options = [f"{e}:{s}" for e, s in keys]
        self.render()
        self.feed.set_symbols(keys)

    def add(self, exchange: str, symbol: str) -> bool:
        """Add a symbol after checking it exists; the reason is shown when it does not."""
        key = _key((exchange, symbol))
        if not key[1]:
            self.status.error("Type a symbol to add")
            return False
        if key in self.rows:
            self.status.info(f"{key[0]}:{key[1]} is already on the list")
            return False
        if len(self._order) >= MAX_SYMBOLS:
            self.status.error(f"A watchlist holds at most {MAX_SYMBOLS} symbols")
            return False
        found = attempt(lambda: self.client.symbol(symbol=key[1], exchange=key[0]))
        if not found.ok:
            self.status.error(f"Not added: {found.message}")
            return False
        self.status.clear()
        self.set_symbols([*self._order, key])
        return True

    def remove(self, exchange: str, symbol: str) -> None:
        key = _key((exchange, symbol))
        self.set_symbols([k for k in self._order if k != key])

    def _add_clicked(self) -> None:
        if self.add(self.add_exchange.value, self.add_symbol.value or ""):
            self.add_symbol.value = ""

    def _remove_clicked(self) -> None:
        choice = self.remove_select.value
        if choice:
            exchange, _, symbol = str(choice).partition(":")
            self.remove(exchange, symbol)

    def _on_quotes(self, quotes: dict[Key, JSON]) -> None:
        with self._rows_lock:
            for key, quote in quotes.items():
                if key in self.rows:
                    self.rows[key] = quote_row(key, quote)
        self._render.request()

    def render(self) -> None:
        with self._rows_lock:
            rows = [self.rows[k] for k in self._order if k in self.rows]
        self.table.value = table_html(
            COLUMNS,
            rows,
            key_of=lambda r: f"{r.get('exchange')}:{r.get('symbol')}",
            empty="No symbols: add one below",
        )
