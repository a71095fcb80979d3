"""Where widget updates run, and how they stay cheap.

Engine events reach a widget on the engine's thread (embedded engine) or on the kernel's event
loop (remote feed). Widget state must change in one place at a time, and the kernel sends
comm messages from its own loop, so an update coming from another thread is handed to the
kernel's IOLoop (`add_callback` is thread-safe). Outside a kernel (a script, a test, a
benchmark) there is no such loop and updates apply at once, on the calling thread; every panel
guards its own state with a lock, so that is safe too.

Bursts are folded: `Coalescer` runs a render once for any number of changes made before it
runs, and `Fetcher` runs a blocking Client call in a worker thread (never on the engine's
thread: a Client call from there would wait for itself) with requests that arrive while one
runs folded into one more run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger("openalgo_lab.widgets")

T = TypeVar("T")

# Blocking Client calls made for widgets (book refreshes, analytics, quotes). Bounded, so many
# open panels queue their work instead of starting a thread each.
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="openalgo-lab-widgets")


class Loop(Protocol):
    """What we need of an event loop: tornado's IOLoop has it (and it is thread-safe)."""

    def add_callback(self, callback: Callable[..., None], *args: Any, **kwargs: Any) -> None: ...


def kernel_loop() -> Loop | None:
    """The running IPython kernel's IOLoop, or None outside a kernel."""
    try:
        from ipykernel.kernelbase import Kernel
    except ImportError:  # pragma: no cover - ipykernel is a dependency of ipywidgets' users
        return None
    if not Kernel.initialized():
        return None
    loop = getattr(Kernel.instance(), "io_loop", None)
    return loop if hasattr(loop, "add_callback") else None


def run_logged(fn: Callable[[], None]) -> None:
    """Run one UI callback; an exception is logged, never raised into the loop or the
    engine's thread (where it would kill the event pump)."""
    try:
        fn()
    except Exception:
        log.exception("widget update failed")


class UiDispatcher:
    """Runs widget updates on the kernel's loop thread, or at once when there is none."""

    def __init__(self, loop: Loop | None = None, thread: threading.Thread | None = None) -> None:
        self._loop = loop
        self._thread = thread or threading.main_thread()

    @classmethod
    def detect(cls) -> UiDispatcher:
        """The kernel's loop (on the main thread) when running in a kernel, else direct."""
        return cls(kernel_loop(), threading.main_thread())

    @property
    def marshalled(self) -> bool:
        return self._loop is not None

    def post(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the UI thread: now if we are on it (or there is no loop), else soon."""
        if self._loop is None or threading.current_thread() is self._thread:
            run_logged(fn)
            return
        try:
            self._loop.add_callback(run_logged, fn)
        except RuntimeError:  # the loop is closed (kernel shutting down): nothing to update
            log.debug("UI loop closed; update dropped")


class Coalescer:
    """Runs `fn` on the UI once for any number of `request()` calls made before it runs."""

    def __init__(self, ui: UiDispatcher, fn: Callable[[], None]) -> None:
        self._ui = ui
        self._fn = fn
        self._pending = False
        self._lock = threading.Lock()

    def request(self) -> None:
        with self._lock:
            if self._pending:
                return
            self._pending = True
        self._ui.post(self._run)

    def _run(self) -> None:
        with self._lock:
            self._pending = False
        self._fn()


class Fetcher(Generic[T]):
    """A blocking call run off the UI and engine threads, its result applied on the UI.

    At most one run at a time; requests arriving meanwhile fold into one more run, so a burst
    of fills costs two book fetches, not one per fill. `min_interval` spaces runs out (for
    heavier calls such as analytics). An exception in `fetch` goes to `on_error` as text.
    """

    def __init__(
        self,
        ui: UiDispatcher,
        fetch: Callable[[], T],
        apply: Callable[[T], None],
        on_error: Callable[[str], None],
        *,
        min_interval: float = 0.0,
    ) -> None:
        self._ui = ui
        self._fetch = fetch
        self._apply = apply
        self._on_error = on_error
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._running = False
        self._again = False
        self._closed = False
        self._last_start = 0.0
        self._idle = threading.Event()
        self._idle.set()

    def request(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._running:
                self._again = True
                return
            self._running = True
            self._idle.clear()
        try:
            _POOL.submit(self._work)
        except RuntimeError:  # interpreter shutting down
            with self._lock:
                self._running = False
                self._idle.set()

    def run_now(self) -> None:
        """Fetch and apply on the calling thread (a refresh button, a test)."""
        self._deliver(self._once())

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no run is in progress or queued (tests, benchmarks)."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._again = False

    def _once(self) -> tuple[bool, Any]:
        try:
            return True, self._fetch()
        except Exception as err:  # a Client call that raised: shown, never raised
            log.debug("widget fetch failed", exc_info=True)
            return False, str(err) or type(err).__name__

    def _deliver(self, outcome: tuple[bool, Any]) -> None:
        ok, value = outcome
        if self._closed:
            return
        if ok:
            self._ui.post(lambda: self._apply(value))
        else:
            self._ui.post(lambda: self._on_error(str(value)))

    def _work(self) -> None:
        while True:
            wait = self._last_start + self._min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_start = time.monotonic()
            self._deliver(self._once())
            with self._lock:
                if self._again and not self._closed:
                    self._again = False
                    continue
                self._running = False
                self._idle.set()
                return


class Repeater:
    """Calls `fn` every `interval` seconds on a daemon thread until stopped (quote polling
    where no tick stream exists, mark-to-market refreshes, the traffic monitor)."""

    def __init__(self, interval: float, fn: Callable[[], None], *, name: str) -> None:
        self._interval = interval
        self._fn = fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Repeater:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            run_logged(self._fn)
