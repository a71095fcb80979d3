"""The OpenAlgo vocabulary as enums.

Values are exactly the strings OpenAlgo puts on the wire, so an enum member serialises to what
the official client sends and expects (`str(Exchange.NSE) == "NSE"`).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Exchange(StrEnum):
    NSE = "NSE"
    BSE = "BSE"
    NFO = "NFO"
    BFO = "BFO"
    CDS = "CDS"
    BCD = "BCD"
    MCX = "MCX"
    NCDEX = "NCDEX"
    NCO = "NCO"
    NSE_INDEX = "NSE_INDEX"
    BSE_INDEX = "BSE_INDEX"
    MCX_INDEX = "MCX_INDEX"
    GLOBAL_INDEX = "GLOBAL_INDEX"
    CRYPTO = "CRYPTO"

    @property
    def is_index(self) -> bool:
        """Index exchanges are quote-only: nothing can be ordered on them."""
        return self in _INDEX_EXCHANGES

    @property
    def is_derivative(self) -> bool:
        """Exchanges whose instruments are futures and options (OpenAlgo's F&O set)."""
        return self in _DERIVATIVE_EXCHANGES

    @property
    def is_cash(self) -> bool:
        return self in (Exchange.NSE, Exchange.BSE)


_INDEX_EXCHANGES = frozenset(
    {Exchange.NSE_INDEX, Exchange.BSE_INDEX, Exchange.MCX_INDEX, Exchange.GLOBAL_INDEX}
)
_DERIVATIVE_EXCHANGES = frozenset(
    {
        Exchange.NFO,
        Exchange.BFO,
        Exchange.CDS,
        Exchange.BCD,
        Exchange.MCX,
        Exchange.NCDEX,
        Exchange.NCO,
        Exchange.CRYPTO,
    }
)


class Product(StrEnum):
    CNC = "CNC"  # equity delivery
    NRML = "NRML"  # F&O / commodity carry-forward
    MIS = "MIS"  # intraday, squared off by the system


class PriceType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    SL = "SL"  # stop-limit: trigger + limit price
    SL_M = "SL-M"  # stop-market: trigger only

    @property
    def needs_price(self) -> bool:
        return self in (PriceType.LIMIT, PriceType.SL)

    @property
    def needs_trigger(self) -> bool:
        return self in (PriceType.SL, PriceType.SL_M)


class Action(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for BUY, -1 for SELL: the direction a fill moves the net position."""
        return 1 if self is Action.BUY else -1

    @property
    def opposite(self) -> Action:
        return Action.SELL if self is Action.BUY else Action.BUY


class OrderStatus(StrEnum):
    """OpenAlgo's normalised order statuses (lower case on the wire).

    `PARTIALLY_FILLED` is ours: OpenAlgo reports such an order as `open`; `wire` gives the value
    OpenAlgo clients understand, while the domain keeps the precise state.
    """

    OPEN = "open"
    TRIGGER_PENDING = "trigger pending"
    PARTIALLY_FILLED = "partially filled"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        return self in (OrderStatus.COMPLETE, OrderStatus.CANCELLED, OrderStatus.REJECTED)

    @property
    def is_working(self) -> bool:
        """Still at the exchange: can fill, be modified or cancelled."""
        return not self.is_terminal

    @property
    def wire(self) -> str:
        return "open" if self is OrderStatus.PARTIALLY_FILLED else self.value


class InstrumentType(StrEnum):
    """Master-contract `instrumenttype` values used by the sample master and the sandbox."""

    EQ = "EQ"
    INDEX = "INDEX"
    FUT = "FUT"
    CE = "CE"
    PE = "PE"

    @property
    def is_option(self) -> bool:
        return self in (InstrumentType.CE, InstrumentType.PE)


class OptionType(StrEnum):
    CE = "CE"
    PE = "PE"


class Interval(StrEnum):
    """History intervals of OpenAlgo's schema, in its own spelling."""

    S1 = "1s"
    S5 = "5s"
    S10 = "10s"
    S15 = "15s"
    S30 = "30s"
    S45 = "45s"
    M1 = "1m"
    M2 = "2m"
    M3 = "3m"
    M5 = "5m"
    M10 = "10m"
    M15 = "15m"
    M20 = "20m"
    M30 = "30m"
    H1 = "1h"
    H2 = "2h"
    H3 = "3h"
    H4 = "4h"
    D = "D"
    W = "W"
    M = "M"
    Q = "Q"
    Y = "Y"

    @property
    def seconds(self) -> int | None:
        """Length of an intraday bar in seconds; None for calendar bars (D, W, M, Q, Y)."""
        return _INTRADAY_SECONDS.get(self)

    @property
    def group(self) -> str:
        """The key of OpenAlgo's `/intervals` response this interval is listed under."""
        v = self.value
        if v.endswith("s"):
            return "seconds"
        if v.endswith("m"):
            return "minutes"
        if v.endswith("h"):
            return "hours"
        return {"D": "days", "W": "weeks", "M": "months", "Q": "months", "Y": "months"}[v]


_INTRADAY_SECONDS: dict[Interval, int] = {
    Interval.S1: 1,
    Interval.S5: 5,
    Interval.S10: 10,
    Interval.S15: 15,
    Interval.S30: 30,
    Interval.S45: 45,
    Interval.M1: 60,
    Interval.M2: 120,
    Interval.M3: 180,
    Interval.M5: 300,
    Interval.M10: 600,
    Interval.M15: 900,
    Interval.M20: 1200,
    Interval.M30: 1800,
    Interval.H1: 3600,
    Interval.H2: 7200,
    Interval.H3: 10800,
    Interval.H4: 14400,
}


class FeedMode(IntEnum):
    """How much of an instrument a market-data subscription carries, numbered as OpenAlgo's
    WebSocket numbers it (a higher mode carries the lower ones' fields). One enum serves the
    server's feed and the Client's subscriptions, so both read a request the same way."""

    LTP = 1
    QUOTE = 2
    DEPTH = 3

    @property
    def label(self) -> str:
        """OpenAlgo's name ("LTP", "Quote", "Depth"): its acks and a tick event's `mode`."""
        return {FeedMode.LTP: "LTP", FeedMode.QUOTE: "Quote", FeedMode.DEPTH: "Depth"}[self]

    @classmethod
    def parse(cls, value: object) -> FeedMode:
        """1/2/3 (numbers or digit strings) or "LTP"/"Quote"/"Depth" in any case, as
        OpenAlgo's `normalize_mode` accepts; ValueError otherwise."""
        if isinstance(value, FeedMode):
            return value
        if isinstance(value, str):
            text = value.strip().lower()
            for mode in cls:
                if text in (mode.label.lower(), str(int(mode))):
                    return mode
        elif isinstance(value, int) and not isinstance(value, bool) and value in (1, 2, 3):
            return cls(value)
        raise ValueError(f"mode must be 'LTP', 'Quote' or 'Depth' (or 1, 2, 3), got {value!r}")
