"""A background thread that writes items in batches, so the order path never waits on disk."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class BatchThread(Generic[T]):
    """`submit` is O(1) and never blocks; a daemon thread calls `write(batch)` with everything
    queued, at most every `interval` seconds. A failing write is logged and its batch dropped
    (counted in `failed`), never retried in a loop that would stall the rest."""

    def __init__(
        self, write: Callable[[list[T]], None], *, name: str, interval: float = 0.1
    ) -> None:
        self._write = write
        self._queue: queue.SimpleQueue[T | None] = queue.SimpleQueue()
        self._interval = interval
        self._name = name
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self.failed = 0

    def submit(self, item: T) -> None:
        self._idle.clear()
        self._queue.put(item)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything submitted so far is written."""
        if self._thread is None:
            return
        self._queue.put(None)  # a marker: the writer sets `idle` once it reaches it
        self._idle.wait(timeout)

    def stop(self) -> None:
        if self._thread is None:
            return
        self.flush()
        thread, self._thread = self._thread, None
        self._running = False
        self._queue.put(None)
        thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[T] = []
            marker = item is None
            if item is not None:
                batch.append(item)
            while True:  # take what is queued now, without waiting
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    marker = True
                else:
                    batch.append(more)
            if batch:
                try:
                    self._write(batch)
                except Exception:
                    self.failed += len(batch)
                    log.exception("%s: a batch of %d was not written", self._name, len(batch))
            if marker:
                self._idle.set()
                if self._thread is None:
                    return
            elif self._interval:
                threading.Event().wait(self._interval)
