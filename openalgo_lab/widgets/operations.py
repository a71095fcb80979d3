"""Operations: the API's latency monitor and traffic log (our `traffic` action).

Per route: request count, p50/p90/p99 of the duration and the error count (computed by the
engine in SQL); the mean of each phase (parse, risk, journal, broker, engine) over the
recent requests; a latency histogram; and the recent requests themselves, paged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from openalgo_lab.widgets._base import Panel
from openalgo_lab.widgets._calls import call_action
from openalgo_lab.widgets._plot import Chart
from openalgo_lab.widgets._table import Column, PagedTable, table_html
from openalgo_lab.widgets._ui import UiDispatcher

if TYPE_CHECKING:
    from openalgo_lab.client.api import Client

JSON = dict[str, Any]
PHASES = ("parse_ms", "risk_ms", "journal_ms", "broker_ms", "engine_ms", "duration_ms")
ROUTE_COLUMNS = (
    Column("route", "Route"),
    Column("count", "Requests", "int"),
    Column("p50_ms", "p50 ms", "money"),
    Column("p90_ms", "p90 ms", "money"),
    Column("p99_ms", "p99 ms", "money"),
    Column("errors", "Errors", "int"),
)
PHASE_COLUMNS = (Column("phase", "Phase"), Column("mean_ms", "Mean ms", "money"))
REQUEST_COLUMNS = (
    Column("ts", "Time (UTC)"),
    Column("method", "Method"),
    Column("route", "Route"),
    Column("status", "Status", "int"),
    Column("duration_ms", "Total ms", "money"),
    Column("parse_ms", "Parse", "money"),
    Column("risk_ms", "Risk", "money"),
    Column("journal_ms", "Journal", "money"),
    Column("broker_ms", "Broker", "money"),
    Column("engine_ms", "Engine", "money"),
    Column("key_id", "Key id"),
    Column("client", "Client"),
)


def phase_means(requests: list[JSON]) -> list[JSON]:
    """The mean milliseconds of each phase over `requests`."""
    rows = []
    for phase in PHASES:
        values = [float(r[phase]) for r in requests if isinstance(r.get(phase), int | float)]
        if values:
            rows.append({"phase": phase.removesuffix("_ms"), "mean_ms": sum(values) / len(values)})
    return rows


class Operations(Panel):
    """`Operations(client, limit=500, refresh_interval=5.0)`."""

    css_class = "oal-operations"

    def __init__(
        self,
        client: Client,
        *,
        limit: int = 500,
        refresh_interval: float | None = 5.0,
        page_size: int = 25,
        ui: UiDispatcher | None = None,
    ) -> None:
        super().__init__(client, ui=ui)
        self.limit = max(1, min(int(limit), 1000))
        self.data: JSON = {"requests": [], "routes": []}
        self.routes = widgets.HTML()
        self.routes.add_class("oal-operations-routes")
        self.phases = widgets.HTML()
        self.chart = Chart("Latency of recent API requests", x="ms", y="requests")
        self.requests = PagedTable(
            self.ui,
            REQUEST_COLUMNS,
            lambda r: str(r.get("seq", "")),
            page_size=page_size,
            empty="No API requests logged yet (the log records requests to the server's REST API)",
        )
        self.refresh_button = widgets.Button(description="↻", layout={"width": "40px"})
        self.refresh_button.add_class("oal-refresh")
        self.children = [
            widgets.HBox(
                [widgets.HTML("<b>Operations: API latency and traffic</b>"), self.refresh_button]
            ),
            widgets.HBox([self.routes, self.phases]),
            self.chart.widget,
            self.requests,
            self.status,
        ]
        self.loader = self.fetcher(self.fetch, self.show)
        self.refresh_button.on_click(self.guarded(self.refresh))
        self.every(refresh_interval, self.loader.request)
        self.refresh()

    def refresh(self) -> None:
        self.loader.run_now()

    def fetch(self) -> JSON:
        outcome = call_action(self.client, "traffic", {"limit": self.limit})
        if not outcome.ok or not isinstance(outcome.data, dict):
            raise RuntimeError(f"traffic log: {outcome.message}")
        return outcome.data

    def show(self, data: JSON) -> None:
        requests = [r for r in data.get("requests") or [] if isinstance(r, dict)]
        routes = [r for r in data.get("routes") or [] if isinstance(r, dict)]
        self.data = {"requests": requests, "routes": routes}
        self.routes.value = table_html(ROUTE_COLUMNS, routes, empty="No routes yet")
        self.phases.value = table_html(PHASE_COLUMNS, phase_means(requests), empty="")
        self.requests.replace(reversed(requests))  # newest first on screen
        self.requests.render()
        durations = [float(r["duration_ms"]) for r in requests if r.get("duration_ms") is not None]
        self.chart.histogram("duration (ms)", durations)
        self.status.clear()
