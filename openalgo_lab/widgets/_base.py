"""What every panel shares: its Client, where its updates run, its event subscriptions, a
status line for messages, and a `close()` that unsubscribes and stops its timers."""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from openalgo_lab.widgets._ui import Fetcher, Repeater, T, UiDispatcher

if TYPE_CHECKING:
    from openalgo_lab.client.api import Client

log = logging.getLogger("openalgo_lab.widgets")

JSON = dict[str, Any]


class StatusLine(widgets.HTML):  # type: ignore[misc]
    """A one-line message: what happened, or what went wrong, where the user is looking.
    `text` and `kind` (`info`, `ok`, `error`) hold the message without markup."""

    def __init__(self, css_class: str = "oal-status") -> None:
        super().__init__()
        self.add_class(css_class)
        self.text = ""
        self.kind = "info"

    def show(self, text: str, kind: str = "info") -> None:
        self.text, self.kind = text, kind
        self.value = f'<span class="oal-msg oal-msg-{kind}">{html.escape(text)}</span>'

    def info(self, text: str) -> None:
        self.show(text, "info")

    def ok(self, text: str) -> None:
        self.show(text, "ok")

    def error(self, text: str) -> None:
        self.show(text, "error")

    def clear(self) -> None:
        self.show("", "info")


def close_tree(widget: Any) -> None:
    """Close a widget and everything inside it (their comms would otherwise stay open)."""
    for child in list(getattr(widget, "children", ()) or ()):
        close_tree(child)
    try:
        widget.close()
    except Exception:
        log.debug("closing a widget failed", exc_info=True)


class Panel(widgets.VBox):  # type: ignore[misc]
    """Base of every panel: `Panel(client, **options)`, closed with `close()`."""

    css_class = ""

    def __init__(self, client: Client, *, ui: UiDispatcher | None = None) -> None:
        super().__init__()
        self.client = client
        self.ui = ui or UiDispatcher.detect()
        self.status = StatusLine()
        self._lock = threading.RLock()
        self._closers: list[Callable[[], None]] = []
        self._closed = False
        if self.css_class:
            self.add_class(self.css_class)

    # -- wiring -----------------------------------------------------------------------------
    def listen(self, topics: Iterable[str], handler: Callable[[str, JSON], object]) -> None:
        """Subscribe `handler(topic, row)` to Client events until `close()`. Handlers run on
        whatever thread the transport delivers on; they must only touch locked state and
        request renders. A handler that raises is logged and shows in the status line."""

        def deliver(topic: str, data: Any) -> None:
            if self._closed or not isinstance(data, dict):
                return
            try:
                handler(topic, data)
            except Exception as err:
                log.exception("event handler of %s failed", type(self).__name__)
                message = f"could not apply an update: {err}"
                self.ui.post(lambda: self.status.error(message))

        try:
            unsubscribe = self.client.subscribe(deliver, set(topics))
        except Exception as err:
            self.status.error(f"live updates unavailable: {err}")
            return
        self._closers.append(unsubscribe)

    def fetcher(
        self,
        fetch: Callable[[], T],
        apply: Callable[[T], None],
        *,
        min_interval: float = 0.0,
    ) -> Fetcher[T]:
        """A background fetch whose errors go to the status line; closed with the panel."""
        fetcher: Fetcher[T] = Fetcher(
            self.ui, fetch, apply, self.status.error, min_interval=min_interval
        )
        self._closers.append(fetcher.close)
        return fetcher

    def every(self, interval: float | None, fn: Callable[[], None]) -> None:
        """Call `fn` every `interval` seconds until `close()` (None or <= 0: never)."""
        if interval is None or interval <= 0:
            return
        repeater = Repeater(interval, fn, name=f"openalgo-lab-{type(self).__name__}").start()
        self._closers.append(repeater.stop)

    def on_close(self, fn: Callable[[], None]) -> None:
        self._closers.append(fn)

    def guarded(self, fn: Callable[[], object]) -> Callable[[Any], None]:
        """A button/trait callback that never raises into the notebook: an unexpected error
        is shown in the status line (and logged)."""

        def run(_: Any = None) -> None:
            if self._closed:
                return
            try:
                fn()
            except Exception as err:
                log.exception("%s action failed", type(self).__name__)
                self.status.error(f"{type(err).__name__}: {err}")

        return run

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Unsubscribe from events, stop timers and background fetches, close the widgets."""
        if self.__dict__.get("_closed", False):
            return
        self._closed = True
        for closer in reversed(self.__dict__.get("_closers", [])):
            try:
                closer()
            except Exception:
                log.debug("closing %s: a closer failed", type(self).__name__, exc_info=True)
        for child in list(self.children or ()):
            close_tree(child)
        super().close()
