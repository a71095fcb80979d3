"""Charts for panels: a plotly `FigureWidget` that updates in place (renders in JupyterLab and
Voila), or, where plotly's widget cannot load (it needs `anywidget`), the same figure redrawn
in an `Output` widget. Panels only call `lines()` and `histogram()`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]
import plotly.graph_objects as go  # type: ignore[import-untyped]

log = logging.getLogger("openalgo_lab.widgets")

Series = tuple[Sequence[Any], Sequence[float]]


def _figure_widget(layout: dict[str, Any]) -> Any | None:
    try:
        return go.FigureWidget(layout=layout)
    except ImportError:  # plotly's FigureWidget needs anywidget
        log.info("plotly FigureWidget unavailable (install anywidget); using static figures")
        return None


class Chart:
    """One chart. `widget` goes into a layout; `figure` is the plotly figure shown."""

    def __init__(self, title: str, *, height: int = 300, interactive: bool = True, **axes: str):
        layout: dict[str, Any] = {
            "title": {"text": title, "font": {"size": 13}},
            "height": height,
            "margin": {"l": 50, "r": 10, "t": 36, "b": 36},
            "legend": {"orientation": "h", "y": -0.2},
            "xaxis": {"title": {"text": axes.get("x", "")}},
            "yaxis": {"title": {"text": axes.get("y", "")}},
        }
        live = _figure_widget(layout) if interactive else None
        self.interactive = live is not None
        self.figure: Any = live if live is not None else go.Figure(layout=layout)
        self._output = None if live is not None else widgets.Output()
        self.widget: Any = live if live is not None else self._output

    def lines(self, series: Mapping[str, Series]) -> None:
        """One line per name (e.g. per strategy), replacing what was shown."""
        traces = [
            go.Scatter(x=list(x), y=list(y), name=name, mode="lines+markers")
            for name, (x, y) in series.items()
        ]
        self._replace(traces)

    def histogram(self, name: str, values: Sequence[float], *, bins: int = 40) -> None:
        self._replace([go.Histogram(x=list(values), name=name, nbinsx=bins)])

    def _replace(self, traces: list[Any]) -> None:
        figure = self.figure
        same = [t.name for t in figure.data] == [t.name for t in traces] and all(
            type(a) is type(b) for a, b in zip(figure.data, traces, strict=True)
        )
        if same:  # update in place: one message per change, no flicker
            with figure.batch_update():
                for shown, new in zip(figure.data, traces, strict=True):
                    shown.x = new.x
                    if new.y is not None:
                        shown.y = new.y
        else:
            figure.data = ()
            if traces:
                figure.add_traces(traces)
        if self._output is not None:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is None:  # no notebook to draw in (a script): keep the figure
                return
            self._output.clear_output(wait=True)
            with self._output:
                display(figure)  # type: ignore[no-untyped-call]
