"""What a tick subscription asks for, checked before anything is sent.

The feed speaks OpenAlgo's modes (1 = LTP, 2 = Quote, 3 = Depth; a higher mode carries the
lower ones' fields). A caller names them by label or number; a malformed request fails here,
at the call, with a message naming the bad entry, instead of as a silent missing stream later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openalgo_lab.domain.enums import FeedMode


@dataclass(frozen=True, slots=True)
class TickStream:
    """One instrument at one mode: the unit the feed subscribes, and routes ticks by.

    The server's `engine.quote_feed.Stream` has the same fields with `Exchange`; here the
    exchange stays the wire's text, because a remote Client may talk to any
    OpenAlgo-compatible server, whose exchanges are its own to name."""

    exchange: str
    symbol: str
    mode: FeedMode

    def wire(self) -> dict[str, Any]:
        return {"exchange": self.exchange, "symbol": self.symbol, "mode": int(self.mode)}


def tick_streams(symbols: object, mode: object) -> list[TickStream]:
    """The streams of a `subscribe_ticks` call (duplicates dropped, order kept)."""
    parsed = FeedMode.parse(mode)
    if isinstance(symbols, str | bytes) or not isinstance(symbols, Sequence):
        raise ValueError(
            'symbols must be a list like [{"exchange": "NSE", "symbol": "SBIN"}], '
            f"got {type(symbols).__name__}"
        )
    if not symbols:
        raise ValueError("symbols must name at least one instrument")
    streams: dict[TickStream, None] = {}
    for i, entry in enumerate(symbols):
        if not isinstance(entry, Mapping):
            raise ValueError(f"symbols[{i}] must be a dict with exchange and symbol")
        exchange = str(entry.get("exchange") or "").strip().upper()
        symbol = str(entry.get("symbol") or "").strip().upper()
        if not exchange or not symbol:
            raise ValueError(f"symbols[{i}] needs both exchange and symbol, got {dict(entry)!r}")
        streams[TickStream(exchange, symbol, parsed)] = None
    return list(streams)


def tick_event(stream: TickStream, data: Mapping[str, Any]) -> dict[str, Any]:
    """The `tick` event a callback gets, the same on every transport: the feed's tick data
    (`ltp`, and more for Quote and Depth) with the instrument and the mode's label."""
    return {
        **data,
        "exchange": stream.exchange,
        "symbol": stream.symbol,
        "mode": stream.mode.label,
    }
