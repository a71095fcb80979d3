"""The Client interface: the official `openalgo` client's methods, over any transport.

Method names, keyword arguments, wire field names and return shapes match the official
`openalgo` Python client (reference openalgo-client.md §3), so code written against
`openalgo.api(...)` runs unchanged on `openalgo_lab.connect(...)`. Like the official client,
order-call numbers travel as strings (`quantity="10"`) and the server accepts them.

A transport is anything with `call(action, payload) -> (status, body)` and the two
subscriptions; `EmbeddedTransport` runs an engine in this process and `RemoteTransport`
speaks HTTP and OpenAlgo's WebSocket to any OpenAlgo-compatible server. On top of the
compatible methods the Client adds DataFrame accessors, analytics, engine events and ticks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import pandas as pd

from openalgo_lab.client.approvals import ApprovalQueue
from openalgo_lab.client.ticks import TickStream, tick_streams

log = logging.getLogger(__name__)

JSON = dict[str, Any]


class Transport(Protocol):
    def call(self, action: str, payload: Mapping[str, Any]) -> tuple[int, JSON]:
        """Run one OpenAlgo action; returns the HTTP-like status and the JSON body."""
        ...

    def subscribe(
        self, callback: Callable[[str, Any], None], topics: set[str] | None
    ) -> Callable[[], None]:
        """Call `callback(topic, data)` for engine events; returns an unsubscribe function."""
        ...

    def subscribe_ticks(
        self, callback: Callable[[str, Any], None], streams: Sequence[TickStream]
    ) -> Callable[[], None]:
        """Call `callback("tick", data)` for market data of `streams`; returns an unsubscribe
        function."""
        ...

    def approvals(self) -> ApprovalQueue:
        """The Action Center's queue as this transport can reach it."""
        ...

    def close(self) -> None: ...


def _s(value: Any) -> Any:
    """The official client sends order numbers as strings; do the same."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class Client:
    """An OpenAlgo-compatible client. Build one with `openalgo_lab.connect()`."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def __repr__(self) -> str:
        return f"Client({self._transport!r})"

    @property
    def transport(self) -> Transport:
        """What the calls go through (`EmbeddedTransport` or `RemoteTransport`)."""
        return self._transport

    def _post(self, action: str, payload: Mapping[str, Any]) -> JSON:
        status, body = self._transport.call(action, {k: v for k, v in payload.items()})
        if status != 200 and "code" not in body:
            body = {**body, "code": status}
        return body

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- orders (OrderAPI) --------------------------------------------------------------------
    def placeorder(
        self,
        *,
        strategy: str = "Python",
        symbol: str,
        action: str,
        exchange: str,
        price_type: str = "MARKET",
        product: str = "MIS",
        quantity: int | str = 1,
        **kwargs: Any,
    ) -> JSON:
        payload = {
            "strategy": strategy,
            "symbol": symbol,
            "action": action,
            "exchange": exchange,
            "pricetype": price_type,
            "product": product,
            "quantity": _s(quantity),
            **{k: _s(v) for k, v in kwargs.items()},
        }
        return self._post("placeorder", payload)

    def placesmartorder(
        self,
        *,
        strategy: str = "Python",
        symbol: str,
        action: str,
        exchange: str,
        price_type: str = "MARKET",
        product: str = "MIS",
        quantity: int | str = 1,
        position_size: int | str,
        **kwargs: Any,
    ) -> JSON:
        payload = {
            "strategy": strategy,
            "symbol": symbol,
            "action": action,
            "exchange": exchange,
            "pricetype": price_type,
            "product": product,
            "quantity": _s(quantity),
            "position_size": _s(position_size),
            **{k: _s(v) for k, v in kwargs.items()},
        }
        return self._post("placesmartorder", payload)

    def basketorder(self, *, strategy: str = "Python", orders: Sequence[Mapping[str, Any]]) -> JSON:
        legs = [{k: _s(v) for k, v in order.items()} for order in orders]
        return self._post("basketorder", {"strategy": strategy, "orders": legs})

    def splitorder(
        self,
        *,
        strategy: str = "Python",
        symbol: str,
        action: str,
        exchange: str,
        quantity: int | str,
        splitsize: int | str,
        price_type: str = "MARKET",
        product: str = "MIS",
        **kwargs: Any,
    ) -> JSON:
        payload = {
            "strategy": strategy,
            "symbol": symbol,
            "action": action,
            "exchange": exchange,
            "quantity": _s(quantity),
            "splitsize": _s(splitsize),
            "pricetype": price_type,
            "product": product,
            **{k: _s(v) for k, v in kwargs.items()},
        }
        return self._post("splitorder", payload)

    def orderstatus(self, *, order_id: str, strategy: str = "Python") -> JSON:
        return self._post("orderstatus", {"orderid": order_id, "strategy": strategy})

    def openposition(
        self, *, strategy: str = "Python", symbol: str, exchange: str, product: str
    ) -> JSON:
        return self._post(
            "openposition",
            {"strategy": strategy, "symbol": symbol, "exchange": exchange, "product": product},
        )

    def modifyorder(
        self,
        *,
        order_id: str,
        strategy: str = "Python",
        symbol: str,
        action: str,
        exchange: str,
        price_type: str = "LIMIT",
        product: str,
        quantity: int | str,
        price: float | str,
        disclosed_quantity: int | str = "0",
        trigger_price: float | str = "0",
    ) -> JSON:
        payload = {
            "orderid": order_id,
            "strategy": strategy,
            "symbol": symbol,
            "action": action,
            "exchange": exchange,
            "pricetype": price_type,
            "product": product,
            "quantity": _s(quantity),
            "price": _s(price),
            "disclosed_quantity": _s(disclosed_quantity),
            "trigger_price": _s(trigger_price),
        }
        return self._post("modifyorder", payload)

    def cancelorder(self, *, order_id: str, strategy: str = "Python") -> JSON:
        return self._post("cancelorder", {"orderid": order_id, "strategy": strategy})

    def closeposition(self, *, strategy: str = "Python") -> JSON:
        return self._post("closeposition", {"strategy": strategy})

    def cancelallorder(self, *, strategy: str = "Python") -> JSON:
        return self._post("cancelallorder", {"strategy": strategy})

    # -- market data (DataAPI) ----------------------------------------------------------------
    def quotes(self, *, symbol: str, exchange: str) -> JSON:
        return self._post("quotes", {"symbol": symbol, "exchange": exchange})

    def multiquotes(self, *, symbols: Sequence[Mapping[str, str]]) -> JSON:
        return self._post("multiquotes", {"symbols": list(symbols)})

    def depth(self, *, symbol: str, exchange: str) -> JSON:
        return self._post("depth", {"symbol": symbol, "exchange": exchange})

    def symbol(self, *, symbol: str, exchange: str) -> JSON:
        return self._post("symbol", {"symbol": symbol, "exchange": exchange})

    def search(self, *, query: str, exchange: str | None = None) -> JSON:
        payload: JSON = {"query": query}
        if exchange:
            payload["exchange"] = exchange
        return self._post("search", payload)

    def expiry(self, *, symbol: str, exchange: str, instrumenttype: str) -> JSON:
        return self._post(
            "expiry", {"symbol": symbol, "exchange": exchange, "instrumenttype": instrumenttype}
        )

    def intervals(self) -> JSON:
        return self._post("intervals", {})

    interval = intervals  # the official client's legacy alias

    def history(
        self,
        *,
        symbol: str,
        exchange: str,
        interval: str,
        start_date: str,
        end_date: str,
        source: str = "api",
    ) -> pd.DataFrame | JSON:
        """Candles as a DataFrame indexed by time (IST for intraday), like the official
        client; an error envelope (a dict) when the call fails or returns no data."""
        body = self._post(
            "history",
            {
                "symbol": symbol,
                "exchange": exchange,
                "interval": interval,
                "start_date": start_date,
                "end_date": end_date,
                "source": source,
            },
        )
        if body.get("status") != "success":
            return body
        rows = body.get("data") or []
        if not rows:
            return {"status": "error", "message": "No data available", "error_type": "no_data"}
        frame = pd.DataFrame(rows)
        index = pd.to_datetime(frame["timestamp"], unit="s")
        if interval not in ("D", "W", "M"):
            index = index.dt.tz_localize("UTC").dt.tz_convert("Asia/Kolkata")
        frame = frame.drop(columns=["timestamp"]).set_index(index.rename("timestamp"))
        frame = frame.sort_index()
        return frame[~frame.index.duplicated(keep="first")]

    def instruments(self, *, exchange: str | None = None) -> pd.DataFrame | JSON:
        payload: JSON = {"exchange": exchange} if exchange else {}
        body = self._post("instruments", payload)
        if body.get("status") != "success":
            return body
        return pd.DataFrame(body.get("data") or [])

    def syntheticfuture(self, *, underlying: str, exchange: str, expiry_date: str) -> JSON:
        return self._post(
            "syntheticfuture",
            {"underlying": underlying, "exchange": exchange, "expiry_date": expiry_date},
        )

    # -- account (AccountAPI) -----------------------------------------------------------------
    def funds(self) -> JSON:
        return self._post("funds", {})

    def orderbook(self) -> JSON:
        return self._post("orderbook", {})

    def tradebook(self) -> JSON:
        return self._post("tradebook", {})

    def positionbook(self) -> JSON:
        return self._post("positionbook", {})

    def holdings(self) -> JSON:
        return self._post("holdings", {})

    def analyzerstatus(self) -> JSON:
        return self._post("analyzer", {})

    def analyzertoggle(self, *, mode: bool) -> JSON:
        return self._post("analyzer/toggle", {"mode": mode})

    def margin(self, *, positions: Sequence[Mapping[str, Any]]) -> JSON:
        if not 1 <= len(positions) <= 50:
            return {"status": "error", "message": "positions must have 1 to 50 items"}
        legs = []
        for pos in positions:
            leg = dict(pos)
            for key in ("quantity", "price", "trigger_price"):
                leg[key] = _s(leg.get(key, "0"))
            legs.append(leg)
        return self._post("margin", {"positions": legs})

    def ping(self) -> JSON:
        return self._post("ping", {})

    # -- options (OptionsAPI) -----------------------------------------------------------------
    def optiongreeks(self, *, symbol: str, exchange: str, **kwargs: Any) -> JSON:
        return self._post("optiongreeks", {"symbol": symbol, "exchange": exchange, **kwargs})

    def optionsymbol(
        self,
        *,
        underlying: str,
        exchange: str,
        offset: str,
        option_type: str,
        expiry_date: str | None = None,
        **kwargs: Any,
    ) -> JSON:
        payload: JSON = {
            "underlying": underlying,
            "exchange": exchange,
            "offset": offset,
            "option_type": option_type,
            **kwargs,
        }
        if expiry_date:
            payload["expiry_date"] = expiry_date
        return self._post("optionsymbol", payload)

    def optionsorder(
        self,
        *,
        strategy: str = "Python",
        underlying: str,
        exchange: str,
        offset: str,
        option_type: str,
        action: str,
        quantity: int | str,
        expiry_date: str | None = None,
        price_type: str = "MARKET",
        product: str = "MIS",
        **kwargs: Any,
    ) -> JSON:
        payload: JSON = {
            "strategy": strategy,
            "underlying": underlying,
            "exchange": exchange,
            "offset": offset,
            "option_type": option_type,
            "action": action,
            "quantity": _s(quantity),
            "pricetype": price_type,
            "product": product,
            **{k: _s(v) for k, v in kwargs.items()},
        }
        if expiry_date:
            payload["expiry_date"] = expiry_date
        return self._post("optionsorder", payload)

    def optionsmultiorder(
        self,
        *,
        strategy: str = "Python",
        underlying: str,
        exchange: str,
        legs: Sequence[Mapping[str, Any]],
        expiry_date: str | None = None,
        **kwargs: Any,
    ) -> JSON:
        payload: JSON = {
            "strategy": strategy,
            "underlying": underlying,
            "exchange": exchange,
            "legs": [dict(leg) for leg in legs],
            **kwargs,
        }
        if expiry_date:
            payload["expiry_date"] = expiry_date
        return self._post("optionsmultiorder", payload)

    def optionchain(
        self,
        *,
        underlying: str,
        exchange: str,
        expiry_date: str | None = None,
        strike_count: int | None = None,
        **kwargs: Any,
    ) -> JSON:
        payload: JSON = {"underlying": underlying, "exchange": exchange, **kwargs}
        if expiry_date:
            payload["expiry_date"] = expiry_date
        if strike_count is not None:
            payload["strike_count"] = strike_count
        return self._post("optionchain", payload)

    # -- utilities ----------------------------------------------------------------------------
    def holidays(self, *, year: int | None = None) -> JSON:
        return self._post("market/holidays", {"year": year} if year else {})

    def timings(self, *, date: str | None = None) -> JSON:
        if date is None:
            date = pd.Timestamp.now(tz="Asia/Kolkata").strftime("%Y-%m-%d")
        return self._post("market/timings", {"date": date})

    # -- beyond the official client: our own actions, DataFrames and events ---------------------
    def call(self, action: str, payload: Mapping[str, Any] | None = None) -> JSON:
        """Any action of the server's registry by name (those the official client has no
        method for included), answered in the same envelope as every method."""
        return self._post(action, payload or {})

    def killswitch(
        self, *, enabled: bool = True, cancel_orders: bool = True, close_positions: bool = True
    ) -> JSON:
        """Block new orders (`enabled=False` lifts the block), and by default cancel every
        open order and close every position of the account."""
        payload = {
            "enabled": enabled,
            "cancel_orders": cancel_orders,
            "close_positions": close_positions,
        }
        return self._post("killswitch", payload)

    def traffic(self, *, limit: int = 100) -> JSON:
        """The API's latest requests and per-route latency (the server's traffic log)."""
        return self._post("traffic", {"limit": limit})

    def approvals(self) -> ApprovalQueue:
        """The Action Center: semi-auto orders waiting for a human (`pending()`, `approve(id)`,
        `reject(id, reason)`). An embedded engine's own queue, or the server's for a kernel's
        Client; a Client holding only an API key gets a queue that says how to get in."""
        return self._transport.approvals()

    def orders_df(self) -> pd.DataFrame:
        body = self.orderbook()
        return pd.DataFrame(_data(body).get("orders", []))

    def trades_df(self) -> pd.DataFrame:
        return pd.DataFrame(_data(self.tradebook()))

    def positions_df(self) -> pd.DataFrame:
        return pd.DataFrame(_data(self.positionbook()))

    def holdings_df(self) -> pd.DataFrame:
        return pd.DataFrame(_data(self.holdings()).get("holdings", []))

    def analytics(self, report: str, **params: Any) -> pd.DataFrame | JSON:
        """A report of the trade history: `pnl` (by=...), `round_trips`, `stats` (by=...),
        `equity` (starting_capital=..., freq="trade"|"day") as DataFrames; `drawdown` as a
        dict. Raises RuntimeError with the server's message if the report fails."""
        reply = self._post("analytics", {"report": report, **params})
        body = _data(reply)
        if isinstance(body, list):
            return pd.DataFrame(body, columns=reply.get("columns"))
        return body  # type: ignore[no-any-return]

    def pnl(self, by: Sequence[str] = ("strategy", "symbol", "day")) -> pd.DataFrame:
        frame = self.analytics("pnl", by=list(by))
        assert isinstance(frame, pd.DataFrame)
        return frame

    def round_trips(self) -> pd.DataFrame:
        frame = self.analytics("round_trips")
        assert isinstance(frame, pd.DataFrame)
        return frame

    def subscribe(
        self, callback: Callable[[str, Any], None], topics: set[str] | None = None
    ) -> Callable[[], None]:
        """Call `callback(topic, data)` on engine events; returns a function that unsubscribes.

        `order` events carry the order-book row of the changed order and `trade` events the
        trade-book row (both plus `account`), whatever the transport. With the embedded engine
        the callback runs on the engine's thread."""
        return self._transport.subscribe(callback, topics)

    def subscribe_ticks(
        self,
        symbols: Sequence[Mapping[str, str]],
        mode: str | int = "LTP",
        callback: Callable[[str, Any], None] | None = None,
    ) -> Callable[[], None]:
        """Call `callback("tick", data)` with live market data; returns a function that
        unsubscribes.

        `symbols` is `[{"exchange": "NSE", "symbol": "SBIN"}, ...]`; `mode` is "LTP", "Quote"
        or "Depth" (OpenAlgo's feed modes, each carrying the fields of the ones before it).
        A tick is `{exchange, symbol, mode, ltp, timestamp, ...}`, sent when the data
        changed. Raises ValueError for a malformed request or an unknown symbol."""
        if callback is None or not callable(callback):
            raise TypeError("subscribe_ticks needs a callback(topic, data)")
        streams = tick_streams(symbols, mode)
        self._check_symbols(streams)
        return self._transport.subscribe_ticks(callback, streams)

    def _check_symbols(self, streams: Sequence[TickStream]) -> None:
        """Refuse unknown instruments now, with the server's reason (one `multiquotes`
        call); when the check itself cannot be made, subscribe anyway and let the feed
        report."""
        symbols = [{"exchange": s.exchange, "symbol": s.symbol} for s in streams]
        status, body = self._transport.call("multiquotes", {"symbols": symbols})
        if status == 400:
            raise ValueError(f"Cannot subscribe: {body.get('message', 'bad request')}")
        if status != 200 or body.get("status") != "success":
            log.warning("could not check the symbols before subscribing: %s", body.get("message"))
            return
        problems = [str(r["error"]) for r in body.get("results") or [] if r.get("error")]
        if problems:
            raise ValueError("Cannot subscribe: " + "; ".join(problems))


def _data(body: JSON) -> Any:
    if body.get("status") != "success":
        raise RuntimeError(body.get("message", "request failed"))
    return body.get("data", [])
