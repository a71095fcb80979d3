"""A bounded, paged HTML table kept up to date row by row.

A book can hold thousands of orders; one widget per row would freeze the page. The table
keeps every row in memory by key (an orderid, a tradeid, a position's exchange:symbol:product)
and renders only one page of them (50 rows by default) as a single HTML string, newest
first. An update to a row that is not on the page costs a dictionary write and a new count
in the footer, not a re-render; an update on the page re-renders that page only.
"""

from __future__ import annotations

import html
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from openalgo_lab.widgets._ui import Coalescer, UiDispatcher

JSON = dict[str, Any]

TABLE_CSS = """<style>
.oal-table-wrap{max-height:480px;overflow:auto}
.oal-table{border-collapse:collapse;font-size:12px;width:100%;font-variant-numeric:tabular-nums}
.oal-table th{position:sticky;top:0;background:#f3f4f6;text-align:left;padding:3px 6px;
 border-bottom:1px solid #d1d5db}
.oal-table td{padding:2px 6px;border-bottom:1px solid #eee;white-space:nowrap}
.oal-table td.oal-num{text-align:right}
.oal-row-complete td{color:#065f46}.oal-row-rejected td{color:#991b1b}
.oal-row-cancelled td{color:#6b7280}.oal-pos{color:#065f46}.oal-neg{color:#991b1b}
.oal-msg-error{color:#991b1b;font-weight:600}.oal-msg-ok{color:#065f46}
.oal-msg-info{color:#374151}
.oal-invalid input,.oal-invalid select,input.oal-invalid{border-color:#dc2626!important;
 background:#fef2f2}
.oal-selected{box-shadow:inset 0 0 0 2px #111827}
</style>"""


def number_text(value: Any, decimals: int = 2) -> str:
    """A number with thousands separators; anything else as text (never raises)."""
    if value is None or value == "":
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return ""
    return f"{number:,.{decimals}f}"


@dataclass(frozen=True, slots=True)
class Column:
    """One column: the row field, its heading, and how to show it.

    `kind` is `text`, `int` (whole numbers), `money` (2 decimals) or `signed` (2 decimals,
    green when positive and red when negative: P&L)."""

    key: str
    title: str
    kind: str = "text"

    def cell(self, row: JSON) -> str:
        value = row.get(self.key)
        if self.kind == "text":
            return f"<td>{html.escape('' if value is None else str(value))}</td>"
        text = html.escape(number_text(value, 0 if self.kind == "int" else 2))
        css = "oal-num"
        if self.kind == "signed":
            try:
                number = float(value or 0)
            except (TypeError, ValueError):
                number = 0.0
            css += " oal-pos" if number > 0 else " oal-neg" if number < 0 else ""
        return f'<td class="{css}">{text}</td>'


def row_html(
    columns: Iterable[Column],
    row: JSON,
    *,
    key_of: Callable[[JSON], str] | None = None,
    row_class: Callable[[JSON], str] | None = None,
) -> str:
    """One `<tr>` (escaped), carrying the row's key in `data-key`."""
    key = html.escape(key_of(row), quote=True) if key_of else ""
    extra = f" {html.escape(row_class(row), quote=True)}" if row_class else ""
    cells = "".join(c.cell(row) for c in columns)
    return f'<tr class="oal-row{extra}" data-key="{key}">{cells}</tr>'


def wrap_table(columns: Iterable[Column], body: list[str], empty: str = "Nothing yet") -> str:
    """A whole table around rendered `<tr>` rows (an `empty` note when there are none)."""
    cols = list(columns)
    head = "".join(f"<th>{html.escape(c.title)}</th>" for c in cols)
    if not body:
        body = [f'<tr><td colspan="{len(cols)}"><i>{html.escape(empty)}</i></td></tr>']
    return (
        f'{TABLE_CSS}<div class="oal-table-wrap"><table class="oal-table"><thead><tr>{head}'
        f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def table_html(
    columns: Iterable[Column],
    rows: Iterable[JSON],
    *,
    key_of: Callable[[JSON], str] | None = None,
    row_class: Callable[[JSON], str] | None = None,
    empty: str = "Nothing yet",
) -> str:
    """The HTML of one table (escaped); rows carry their key in `data-key`."""
    cols = list(columns)
    body = [row_html(cols, row, key_of=key_of, row_class=row_class) for row in rows]
    return wrap_table(cols, body, empty)


class RowStore:
    """Rows by key, in the order they first arrived."""

    def __init__(self, key_of: Callable[[JSON], str]) -> None:
        self.key_of = key_of
        self._rows: dict[str, JSON] = {}
        self._order: list[str] = []
        self.rendered: dict[str, str] = {}  # a row's HTML, until the row changes

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def get(self, key: str) -> JSON | None:
        return self._rows.get(key)

    def rows(self) -> list[JSON]:
        """Every row, oldest first."""
        return [self._rows[k] for k in self._order]

    def upsert(self, row: JSON) -> tuple[str, bool]:
        """Insert or replace a row; returns its key and whether it is new."""
        key = self.key_of(row)
        new = key not in self._rows
        if new:
            self._order.append(key)
        self._rows[key] = row
        self.rendered.pop(key, None)
        return key, new

    def replace(self, rows: Iterable[JSON]) -> None:
        """Start again from a snapshot (a book fetched whole), keeping its order."""
        self._rows.clear()
        self._order.clear()
        self.rendered.clear()
        for row in rows:
            self.upsert(row)

    def newest_first(
        self, start: int, count: int, keep: Callable[[JSON], bool] | None = None
    ) -> tuple[list[JSON], int]:
        """Rows `start`..`start+count` counted from the newest, and how many match `keep`.
        Without a filter this costs O(count), whatever the size of the store."""
        if keep is None:
            total = len(self._order)
            hi = total - start
            lo = max(hi - count, 0)
            keys = self._order[lo:hi] if hi > 0 else []
            return [self._rows[k] for k in reversed(keys)], total
        matching = [self._rows[k] for k in reversed(self._order) if keep(self._rows[k])]
        return matching[start : start + count], len(matching)


class PagedTable(widgets.VBox):  # type: ignore[misc]
    """One page of a `RowStore` as HTML, with previous/next buttons and a row count."""

    def __init__(
        self,
        ui: UiDispatcher,
        columns: Iterable[Column],
        key_of: Callable[[JSON], str],
        *,
        page_size: int = 50,
        row_class: Callable[[JSON], str] | None = None,
        empty: str = "Nothing yet",
    ) -> None:
        self.columns = list(columns)
        self.store = RowStore(key_of)
        self.page_size = max(1, int(page_size))
        self.page = 0
        self._row_class = row_class
        self._empty = empty
        self._keep: Callable[[JSON], bool] | None = None
        self._visible: set[str] = set()
        self._rows_dirty = True
        self._lock = threading.RLock()
        self.html = widgets.HTML()
        self.html.add_class("oal-table-html")
        self.prev_button = widgets.Button(description="◀", layout=widgets.Layout(width="36px"))
        self.next_button = widgets.Button(description="▶", layout=widgets.Layout(width="36px"))
        self.info = widgets.HTML()
        self.prev_button.on_click(lambda _: self.go(self.page - 1))
        self.next_button.on_click(lambda _: self.go(self.page + 1))
        self._render = Coalescer(ui, self.render)
        super().__init__([self.html, widgets.HBox([self.prev_button, self.info, self.next_button])])
        self.add_class("oal-paged-table")
        self.render()

    # -- data -------------------------------------------------------------------------------
    def upsert(self, row: JSON, *, render: bool = True) -> None:
        """Add or replace one row; re-render only if the shown page changes (`render=False`
        when loading many rows: call `render()` once after)."""
        with self._lock:
            key, new = self.store.upsert(row)
            if key in self._visible or self._keep is not None or (new and self.page == 0):
                self._rows_dirty = True
        if render:
            self._render.request()

    def replace(self, rows: Iterable[JSON]) -> None:
        with self._lock:
            self.store.replace(rows)
            self._rows_dirty = True
        self._render.request()

    def set_filter(self, keep: Callable[[JSON], bool] | None) -> None:
        with self._lock:
            self._keep = keep
            self.page = 0
            self._rows_dirty = True
        self._render.request()

    def go(self, page: int) -> None:
        with self._lock:
            self.page = max(0, min(page, self.pages - 1))
            self._rows_dirty = True
        self.render()

    @property
    def pages(self) -> int:
        _, total = self.store.newest_first(0, 0, self._keep)
        return max(1, math.ceil(total / self.page_size))

    # -- view -------------------------------------------------------------------------------
    def _rows_html(self, rows: list[JSON]) -> list[str]:
        cache, key_of = self.store.rendered, self.store.key_of
        out = []
        for row in rows:
            key = key_of(row)
            text = cache.get(key)
            if text is None:
                text = row_html(self.columns, row, key_of=key_of, row_class=self._row_class)
                cache[key] = text
            out.append(text)
        return out

    def render(self) -> None:
        with self._lock:
            rows, total = self.store.newest_first(
                self.page * self.page_size, self.page_size, self._keep
            )
            pages = max(1, math.ceil(total / self.page_size))
            if self.page >= pages:  # rows went away (a filter, a smaller snapshot)
                self.page = pages - 1
                rows, total = self.store.newest_first(
                    self.page * self.page_size, self.page_size, self._keep
                )
            if self._rows_dirty:
                self._visible = {self.store.key_of(r) for r in rows}
                self.html.value = wrap_table(self.columns, self._rows_html(rows), self._empty)
                self._rows_dirty = False
            first = self.page * self.page_size + 1 if total else 0
            last = self.page * self.page_size + len(rows)
            self.info.value = (
                f"<small>rows {first:,}–{last:,} of {total:,} · page {self.page + 1} of "
                f"{pages}</small>"
            )
            self.prev_button.disabled = self.page == 0
            self.next_button.disabled = self.page >= pages - 1
