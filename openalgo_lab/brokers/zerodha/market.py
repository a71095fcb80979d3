"""Market data from Kite: quotes and depth (`/quote`), candles (`/instruments/historical`).

Quotes are asked in batches of 500 instruments per call (OpenAlgo's figure for `/quote`) under
Kite's 1 request per second; candles in windows Kite accepts (60 days of intraday bars, 2000
of daily bars per call, OpenAlgo's chunking) under 3 requests per second. Instruments are
named the Kite way (`NSE:NIFTY 50`) through the master, and answers are mapped back to
OpenAlgo's symbols.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from openalgo_lab.brokers.base import InstrumentKey
from openalgo_lab.brokers.zerodha import mapping
from openalgo_lab.brokers.zerodha.http import KiteHttp, RateClass
from openalgo_lab.domain.enums import Exchange, Interval
from openalgo_lab.domain.errors import BrokerError, NotFoundError, ValidationError
from openalgo_lab.domain.models import Candle, Depth, Instrument

QUOTE_BATCH = 500
# Kite answers one quote call per second, so a quote younger than that is as fresh as any
# other would be: it is reused (an order's risk check right after a quote, say).
QUOTE_TTL = 1.0
INTRADAY_CHUNK = timedelta(days=60)
DAILY_CHUNK = timedelta(days=2000)


def quote_key(inst: Instrument) -> str:
    """Kite's `EXCHANGE:TRADINGSYMBOL` for `/quote` (`NSE:NIFTY 50` for the NIFTY index)."""
    exchange = inst.brexchange or mapping.EXCHANGE_TO_KITE.get(inst.exchange, "")
    return f"{exchange}:{inst.brsymbol or inst.symbol}"


class KiteMarket:
    def __init__(
        self,
        http: KiteHttp,
        symbols: mapping.SymbolResolver,
        clock: Callable[[], datetime],
        *,
        quote_ttl: float = QUOTE_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.symbols = symbols
        self.clock = clock
        self.quote_ttl = quote_ttl
        self._monotonic = monotonic
        self._recent: dict[InstrumentKey, tuple[float, Depth]] = {}

    async def depth(self, exchange: Exchange, symbol: str) -> Depth:
        inst = self.symbols.instrument(exchange, symbol)
        recent = self._recent.get(inst.key)
        if recent is not None and self._monotonic() - recent[0] < self.quote_ttl:
            return recent[1]
        found = await self._quotes([inst])
        if inst.key not in found:
            raise NotFoundError(f"Kite has no quote for {symbol} on {exchange}")
        return found[inst.key]

    async def depths(self, keys: Sequence[InstrumentKey]) -> dict[InstrumentKey, Depth]:
        """Quotes for many instruments; symbols missing from the master or from Kite's
        answer are left out."""
        instruments = []
        for exchange, symbol in keys:
            try:
                instruments.append(self.symbols.instrument(exchange, symbol))
            except NotFoundError:
                continue
        return await self._quotes(instruments)

    async def _quotes(self, instruments: Sequence[Instrument]) -> dict[InstrumentKey, Depth]:
        out: dict[InstrumentKey, Depth] = {}
        for start in range(0, len(instruments), QUOTE_BATCH):
            batch = instruments[start : start + QUOTE_BATCH]
            by_key = {quote_key(inst): inst for inst in batch}
            data = await self.http.get(
                "/quote", [("i", key) for key in by_key], rate=RateClass.QUOTE
            )
            if not isinstance(data, Mapping):
                raise BrokerError("Kite's quote answer is not an object")
            now = self.clock()
            for key, row in data.items():
                inst = by_key.get(str(key))
                if inst is None or not isinstance(row, Mapping):
                    continue
                out[inst.key] = mapping.parse_depth(row, inst.exchange, inst.symbol, now)
            fetched = self._monotonic()
            for key, depth in out.items():
                self._recent[key] = (fetched, depth)
        return out

    async def history(
        self,
        exchange: Exchange,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
    ) -> list[Candle]:
        """Candles starting in [start, end), oldest first, fetched in Kite-sized windows."""
        inst = self.symbols.instrument(exchange, symbol)
        kite_interval = mapping.kite_interval(interval)
        if end <= start:
            raise ValidationError("end_date", "must be after start_date")
        chunk = DAILY_CHUNK if interval is Interval.D else INTRADAY_CHUNK
        oi = "1" if inst.is_derivative else "0"
        candles: dict[datetime, Candle] = {}
        window = start
        while window < end:
            upto = min(end, window + chunk)
            params: list[tuple[str, str]] = [
                ("from", mapping.kite_form_time(window)),
                ("to", mapping.kite_form_time(upto)),
                ("continuous", "0"),
                ("oi", oi),
            ]
            data = await self.http.get(
                f"/instruments/historical/{inst.token}/{kite_interval}",
                params,
                rate=RateClass.HISTORICAL,
            )
            if not isinstance(data, Mapping):
                raise BrokerError("Kite's historical answer is not an object")
            for candle in mapping.parse_candles(data):
                if start <= candle.start < end:
                    candles[candle.start] = candle
            window = upto
        return [candles[k] for k in sorted(candles)]
