"""P&L: today's realised and unrealised P&L, today's P&L by strategy, and the equity curve
of each strategy (cumulative net P&L of its round trips, charges deducted).

Today's totals come from the position book (the broker's arithmetic, marked to the last
price); per-strategy figures and round trips from the engine's analytics over the trade
history. All of it is fetched in the background after fills (folded, at most once a
second: analytics reads the history database) and every `mtm_interval` seconds for the
unrealised part, which moves with prices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets  # type: ignore[import-untyped]
import pandas as pd

from openalgo_lab.domain.calendar import IST
from openalgo_lab.widgets._base import Panel
from openalgo_lab.widgets._calls import attempt
from openalgo_lab.widgets._plot import Chart, Series
from openalgo_lab.widgets._table import Column, number_text, table_html
from openalgo_lab.widgets._ui import UiDispatcher

if TYPE_CHECKING:
    from openalgo_lab.client.api import Client

JSON = dict[str, Any]
STRATEGY_COLUMNS = (
    Column("strategy", "Strategy"),
    Column("realised", "Realised", "signed"),
    Column("charges", "Charges", "money"),
    Column("net", "Net", "signed"),
    Column("trips", "Round trips", "int"),
)


@dataclass(frozen=True, slots=True)
class PnLSnapshot:
    """What the panel shows, fetched in one go."""

    realised: float = 0.0
    unrealised: float = 0.0
    strategies: list[JSON] = field(default_factory=list)
    equity: dict[str, Series] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.realised + self.unrealised


def _records(value: Any) -> list[JSON]:
    if isinstance(value, pd.DataFrame):
        return [{str(k): v for k, v in row.items()} for row in value.to_dict("records")]
    return []


def equity_by_strategy(trips: list[JSON]) -> dict[str, Series]:
    """Cumulative net P&L of each strategy's round trips, in order of exit (IST)."""
    by: dict[str, list[tuple[datetime, float]]] = {}
    for trip in trips:
        try:
            at = pd.Timestamp(trip["exit_time"])
            net = float(trip.get("net") or 0)
        except (KeyError, TypeError, ValueError):
            continue
        if at.tzinfo is None:
            at = at.tz_localize("UTC")
        by.setdefault(str(trip.get("strategy") or "—"), []).append(
            (at.tz_convert(IST).to_pydatetime(), net)
        )
    curves: dict[str, Series] = {}
    for name in sorted(by):
        points = sorted(by[name], key=lambda p: p[0])
        total, xs, ys = 0.0, [], []
        for when, net in points:
            total += net
            xs.append(when)
            ys.append(round(total, 2))
        curves[name] = (xs, ys)
    return curves


def today_by_strategy(pnl_rows: list[JSON], trips: list[JSON], today: str) -> list[JSON]:
    """Today's realised, charges and net per strategy, with today's round-trip count."""
    rows: dict[str, JSON] = {}
    for r in pnl_rows:
        if str(r.get("day", ""))[:10] != today:
            continue
        name = str(r.get("strategy") or "—")
        rows[name] = {
            "strategy": name,
            "realised": float(r.get("realised") or 0),
            "charges": float(r.get("charges") or 0),
            "net": float(r.get("net") or 0),
            "trips": 0,
        }
    for t in trips:
        try:
            day = pd.Timestamp(t["exit_time"]).tz_convert(IST).date().isoformat()
        except (KeyError, TypeError, ValueError):
            continue
        name = str(t.get("strategy") or "—")
        if day == today and name in rows:
            rows[name]["trips"] += 1
    return [rows[k] for k in sorted(rows)]


class PnLPanel(Panel):
    """`PnLPanel(client, mtm_interval=5.0)`."""

    css_class = "oal-pnl"

    def __init__(
        self,
        client: Client,
        *,
        mtm_interval: float | None = 5.0,
        ui: UiDispatcher | None = None,
    ) -> None:
        super().__init__(client, ui=ui)
        self.snapshot = PnLSnapshot()
        self.summary = widgets.HTML()
        self.summary.add_class("oal-pnl-summary")
        self.by_strategy = widgets.HTML()
        self.by_strategy.add_class("oal-pnl-strategies")
        self.chart = Chart(
            "Equity by strategy: cumulative net P&L of round trips (₹)",
            y="₹",
        )
        self.refresh_button = widgets.Button(description="↻", layout={"width": "40px"})
        self.refresh_button.add_class("oal-refresh")
        self.children = [
            widgets.HBox([widgets.HTML("<b>P&amp;L</b>"), self.refresh_button, self.summary]),
            self.by_strategy,
            self.chart.widget,
            self.status,
        ]
        self.loader = self.fetcher(self.fetch, self.show, min_interval=1.0)
        self.refresh_button.on_click(self.guarded(self.refresh))
        self.listen({"trade"}, lambda topic, row: self.loader.request())
        self.every(mtm_interval, self.loader.request)
        self.refresh()

    def refresh(self) -> None:
        self.loader.run_now()

    def fetch(self) -> PnLSnapshot:
        notes: list[str] = []
        positions = attempt(self.client.positionbook)
        realised = unrealised = 0.0
        if positions.ok and isinstance(positions.data, list):
            for row in positions.data:
                realised += float(row.get("realized_pnl") or 0)
                unrealised += float(row.get("unrealized_pnl") or 0)
        else:
            notes.append(f"positions: {positions.message}")
        pnl_rows = self._report(notes, "pnl", by=["strategy", "day"])
        trips = self._report(notes, "round_trips")
        today = datetime.now(IST).date().isoformat()
        return PnLSnapshot(
            realised=realised,
            unrealised=unrealised,
            strategies=today_by_strategy(pnl_rows, trips, today),
            equity=equity_by_strategy(trips),
            notes=notes,
        )

    def _report(self, notes: list[str], report: str, **params: Any) -> list[JSON]:
        try:
            return _records(self.client.analytics(report, **params))
        except Exception as err:  # the history may be unavailable: say so, show the rest
            notes.append(f"{report}: {err}")
            return []

    def show(self, snapshot: PnLSnapshot) -> None:
        self.snapshot = snapshot
        self.summary.value = self._summary_html(snapshot)
        self.by_strategy.value = table_html(
            STRATEGY_COLUMNS, snapshot.strategies, empty="No realised P&L today"
        )
        self.chart.lines(snapshot.equity)
        if snapshot.notes:
            self.status.error("; ".join(snapshot.notes))
        else:
            self.status.clear()

    @staticmethod
    def _summary_html(s: PnLSnapshot) -> str:
        def signed(label: str, value: float) -> str:
            css = "oal-pos" if value > 0 else "oal-neg" if value < 0 else ""
            return f'{label} <b class="{css}">₹{number_text(value)}</b>'

        return (
            "<small>today: "
            + " · ".join(
                (
                    signed("realised", s.realised),
                    signed("unrealised", s.unrealised),
                    signed("total", s.total),
                )
            )
            + "</small>"
        )
