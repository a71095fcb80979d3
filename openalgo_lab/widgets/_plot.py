"""Charts for panels: a plotly figure shown in an ipywidgets `Output`, redrawn by setting the
widget's `outputs` trait to the figure's plotly mime bundle.

Why not plotly's `FigureWidget`: with plotly 7 and anywidget, checked in Voila with a real
Chromium, traces added before the widget is displayed never appear, and later restyles and
trace deletions are dropped, so a live panel would show stale or empty charts; each
FigureWidget also carries plotly.js (about 5 MB) in its state. A mime bundle in `outputs` is
rendered by plotly's own JupyterLab/Voila renderer (shipped with plotly), survives any number
of redraws from callbacks, and is a few kilobytes. Setting the trait (rather than printing
into the widget with `with output:`) works from any callback, outside of any cell.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]
import plotly.graph_objects as go  # type: ignore[import-untyped]

PLOTLY_MIME = "application/vnd.plotly.v1+json"
CONFIG = {"displaylogo": False, "responsive": False}

Series = tuple[Sequence[Any], Sequence[float]]


class Chart:
    """One chart. `widget` goes into a layout; `figure` is the plotly figure last drawn."""

    def __init__(self, title: str, *, height: int = 300, **axes: str) -> None:
        self.title = title
        self._layout: dict[str, Any] = {
            "title": {"text": title, "font": {"size": 13}},
            "height": height,
            "margin": {"l": 50, "r": 10, "t": 36, "b": 36},
            "legend": {"orientation": "h", "y": -0.2},
            "xaxis": {"title": {"text": axes.get("x", "")}},
            "yaxis": {"title": {"text": axes.get("y", "")}},
        }
        self.widget = widgets.Output(layout={"min_height": f"{height}px"})
        self.widget.add_class("oal-chart")
        self.figure: Any = go.Figure(layout=self._layout)
        self._drawn = ""
        self._draw()

    def lines(self, series: Mapping[str, Series]) -> None:
        """One line per name (e.g. per strategy), replacing what was shown."""
        self._show(
            [
                go.Scatter(x=list(x), y=list(y), name=name, mode="lines+markers")
                for name, (x, y) in series.items()
            ]
        )

    def histogram(self, name: str, values: Sequence[float], *, bins: int = 40) -> None:
        self._show([go.Histogram(x=list(values), name=name, nbinsx=bins)])

    def _show(self, traces: list[Any]) -> None:
        self.figure = go.Figure(data=traces, layout=self._layout)
        self._draw()

    def _draw(self) -> None:
        spec = self.figure.to_json()  # plain JSON: datetimes become ISO text
        if spec == self._drawn:
            return  # nothing changed: send nothing
        self._drawn = spec
        figure = {**json.loads(spec), "config": CONFIG}
        self.widget.outputs = (
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {PLOTLY_MIME: figure, "text/plain": f"<plotly chart: {self.title}>"},
            },
        )
