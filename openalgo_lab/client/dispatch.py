"""Subscribers' callbacks for the embedded transport, run off the engine's loop.

A callback often calls the Client back (refresh the order book after an order event). The
embedded Client's calls wait for the engine's loop, so a callback running *on* that loop
would wait for itself. Callbacks therefore run on one daemon thread, in the order the events
happened; the engine's loop only hands them over. The hand-over queue is bounded like the
engine's event bus: a subscriber that stays behind loses its oldest events (counted and
logged), never the engine's time.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000
Job = tuple[Callable[[str, Any], None], str, Any] | None


class CallbackThread:
    def __init__(self, name: str = "openalgo-lab-callbacks", limit: int = QUEUE_LIMIT) -> None:
        self._queue: queue.Queue[Job] = queue.Queue(limit)
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._lock = threading.Lock()
        self._started = False
        self.dropped = 0

    def put(self, callback: Callable[[str, Any], None], topic: str, data: Any) -> None:
        """Queue one call; never blocks (the oldest waiting call goes when full)."""
        self._start()
        while True:
            try:
                self._queue.put_nowait((callback, topic, data))
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                    if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
                        log.warning("subscriber callbacks are behind; %d dropped", self.dropped)
                except queue.Empty:
                    pass

    def on_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def close(self, timeout: float = 5.0) -> None:
        """Run what is queued, then stop (not waiting for itself when called by a callback)."""
        with self._lock:
            if not self._started:
                return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        if not self.on_thread():
            self._thread.join(timeout)

    def _start(self) -> None:
        with self._lock:
            if not self._started:
                self._started = True
                self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            callback, topic, data = job
            try:
                callback(topic, data)
            except Exception:  # a bad callback must not stop the others
                log.exception("a %s callback raised", topic)
