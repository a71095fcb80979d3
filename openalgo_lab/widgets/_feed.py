"""Live quotes for a set of symbols: pushed ticks when the Client has them, else a modest poll.

A Client with `subscribe_ticks(symbols, mode, callback)` pushes ticks; we take a `multiquotes`
snapshot first (for the previous close and the first values) and then apply ticks as they
come. Without it, `multiquotes` runs every `interval` seconds on a background thread. Either
way `on_quotes` receives `{(exchange, symbol): quote}` with OpenAlgo's quote fields (`ltp`,
`bid`, `ask`, `prev_close`, `volume`, ...), merged over what was known before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from openalgo_lab.widgets._calls import attempt
from openalgo_lab.widgets._ui import Repeater

if TYPE_CHECKING:
    from openalgo_lab.client.api import Client

log = logging.getLogger("openalgo_lab.widgets")

JSON = dict[str, Any]
Key = tuple[str, str]
MULTIQUOTE_MAX = 100  # symbols per multiquotes call


class QuoteFeed:
    def __init__(
        self,
        client: Client,
        on_quotes: Callable[[dict[Key, JSON]], None],
        on_error: Callable[[str], None],
        *,
        interval: float = 1.0,
        mode: str = "Quote",
    ) -> None:
        self._client = client
        self._on_quotes = on_quotes
        self._on_error = on_error
        self._interval = interval
        self._mode = mode
        self._symbols: list[Key] = []
        self._quotes: dict[Key, JSON] = {}
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._poller: Repeater | None = None
        self._closed = False

    @property
    def pushed(self) -> bool:
        """Whether this Client pushes ticks (else we poll)."""
        return callable(getattr(self._client, "subscribe_ticks", None))

    @property
    def symbols(self) -> list[Key]:
        return list(self._symbols)

    def set_symbols(self, symbols: Sequence[Key]) -> None:
        """Follow exactly these (exchange, symbol) pairs from now on."""
        wanted = list(dict.fromkeys((e.upper(), s.upper()) for e, s in symbols))
        with self._lock:
            if self._closed:
                return
            self._symbols = wanted
            self._quotes = {k: v for k, v in self._quotes.items() if k in wanted}
        self._stop_stream()
        if not wanted:
            return
        self.poll()
        with self._lock:
            known = [k for k in wanted if k in self._quotes]  # a stream refuses unknown symbols
        if self.pushed and known:
            self._start_stream(known)
        else:
            self._start_polling()

    def poll(self) -> None:
        """One `multiquotes` round (blocking): the snapshot, or a poll without a stream."""
        symbols = self.symbols
        fresh: dict[Key, JSON] = {}
        errors: list[str] = []
        for lo in range(0, len(symbols), MULTIQUOTE_MAX):
            chunk = symbols[lo : lo + MULTIQUOTE_MAX]
            outcome = attempt(
                lambda chunk=chunk: self._client.multiquotes(  # type: ignore[misc]
                    symbols=[{"exchange": e, "symbol": s} for e, s in chunk]
                )
            )
            if not outcome.ok:
                errors.append(outcome.message)
                continue
            for item in outcome.body.get("results") or []:
                key = (str(item.get("exchange", "")).upper(), str(item.get("symbol", "")).upper())
                if isinstance(item.get("data"), dict):
                    fresh[key] = item["data"]
                elif item.get("error"):
                    errors.append(str(item["error"]))
        if fresh:
            self._merge(fresh)
        if errors:
            self._on_error("; ".join(dict.fromkeys(errors)))

    def on_tick(self, *args: Any) -> None:
        """A pushed tick: `{exchange, symbol, ltp, ...}` (or OpenAlgo's feed frame with the
        values under `data`); the last positional argument is the tick."""
        if not args or not isinstance(args[-1], dict):
            return
        tick: JSON = dict(args[-1])
        if isinstance(tick.get("data"), dict):
            tick = {**tick, **tick["data"]}
        exchange, symbol = str(tick.get("exchange", "")).upper(), str(tick.get("symbol", ""))
        key = (exchange, symbol.upper())
        if key not in self._symbols:
            return
        values = {k: v for k, v in tick.items() if k not in ("exchange", "symbol", "data")}
        self._merge({key: values})

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._stop_stream()
        if self._poller is not None:
            self._poller.stop()
            self._poller = None

    # -- internals --------------------------------------------------------------------------
    def _merge(self, fresh: dict[Key, JSON]) -> None:
        with self._lock:
            if self._closed:
                return
            for key, values in fresh.items():
                if key in self._symbols:
                    self._quotes[key] = {**self._quotes.get(key, {}), **values}
            snapshot = {k: dict(self._quotes[k]) for k in fresh if k in self._quotes}
        if snapshot:
            self._on_quotes(snapshot)

    def _start_stream(self, symbols: list[Key]) -> None:
        subscribe: Any = getattr(self._client, "subscribe_ticks", None)
        try:
            self._unsubscribe = subscribe(
                [{"exchange": e, "symbol": s} for e, s in symbols], self._mode, self.on_tick
            )
            if self._poller is not None:  # the stream replaces the poll
                self._poller.stop()
                self._poller = None
        except Exception as err:
            self._on_error(f"live ticks unavailable ({err}); polling instead")
            self._start_polling()

    def _start_polling(self) -> None:
        if self._poller is None and self._interval > 0:
            self._poller = Repeater(self._interval, self.poll, name="openalgo-lab-quotes").start()

    def _stop_stream(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is None:
            return
        try:
            unsubscribe()
        except Exception:
            log.debug("unsubscribing ticks failed", exc_info=True)
