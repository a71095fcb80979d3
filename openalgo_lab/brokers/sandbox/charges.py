"""Indian contract-note charges, so that paper P&L nets to what a broker's contract note shows.

A contract note is one account's trading day. Its levies are not the sum of per-trade
calculations: they are computed on aggregated values and then rounded, STT/CTT to the rupee and
everything else to the paisa (reference `indian-markets.md` §2.4). We aggregate

- STT/CTT and stamp duty per segment, symbol and side (they apply to one side only),
- exchange transaction charges and the SEBI fee per segment and symbol, on turnover,
- brokerage per executed *order*, on the order's cumulative value across its partial fills,
- GST per segment, on the already-rounded brokerage + transaction charge + SEBI fee.

`ContractNote.add_fill` attributes to a fill exactly what it changed on the note, so the fills'
charges always add up to the note to the paisa even though the rounding happens on aggregates.

Default rates are those in force on 2026-11-24 (reference §2.1 and §2.2). Options are charged
on premium turnover, except STT on exercise, which is on intrinsic value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from openalgo_lab.domain.enums import Action, Exchange, InstrumentType, Product
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.models import Instrument
from openalgo_lab.domain.money import ZERO, round_paise, round_rupee


class Segment(StrEnum):
    """The contract-note segments; each has its own statutory rates and brokerage rule."""

    EQUITY_DELIVERY = "equity_delivery"
    EQUITY_INTRADAY = "equity_intraday"
    EQUITY_FUTURES = "equity_futures"
    EQUITY_OPTIONS = "equity_options"
    CURRENCY_FUTURES = "currency_futures"
    CURRENCY_OPTIONS = "currency_options"
    COMMODITY_FUTURES = "commodity_futures"
    COMMODITY_OPTIONS = "commodity_options"

    @property
    def is_option(self) -> bool:
        return self in _OPTION_SEGMENTS


_OPTION_SEGMENTS = frozenset(
    {Segment.EQUITY_OPTIONS, Segment.CURRENCY_OPTIONS, Segment.COMMODITY_OPTIONS}
)

_CASH_SEGMENTS: Mapping[Product, Segment] = MappingProxyType(
    {Product.CNC: Segment.EQUITY_DELIVERY, Product.MIS: Segment.EQUITY_INTRADAY}
)

# exchange -> (futures segment, options segment)
_DERIVATIVE_SEGMENTS: Mapping[Exchange, tuple[Segment, Segment]] = MappingProxyType(
    {
        Exchange.NFO: (Segment.EQUITY_FUTURES, Segment.EQUITY_OPTIONS),
        Exchange.BFO: (Segment.EQUITY_FUTURES, Segment.EQUITY_OPTIONS),
        Exchange.CDS: (Segment.CURRENCY_FUTURES, Segment.CURRENCY_OPTIONS),
        Exchange.BCD: (Segment.CURRENCY_FUTURES, Segment.CURRENCY_OPTIONS),
        Exchange.MCX: (Segment.COMMODITY_FUTURES, Segment.COMMODITY_OPTIONS),
        Exchange.NCDEX: (Segment.COMMODITY_FUTURES, Segment.COMMODITY_OPTIONS),
        Exchange.NCO: (Segment.COMMODITY_FUTURES, Segment.COMMODITY_OPTIONS),
    }
)


def segment_of(instrument: Instrument, product: Product) -> Segment:
    """The segment a fill is charged under. Cash equity splits on the product (delivery and
    intraday are taxed differently); derivatives split on futures vs options.

    Product/exchange pairs that `validation` refuses are refused here too, so a charge is never
    computed for an order that could not exist.
    """
    exchange = instrument.exchange
    if exchange.is_cash:
        if instrument.instrumenttype is not InstrumentType.EQ:
            raise ValidationError("symbol", f"{instrument.symbol} on {exchange} is not tradable")
        segment = _CASH_SEGMENTS.get(product)
        if segment is None:
            raise ValidationError(
                "product", f"{product} is for F&O; use CNC or MIS for {instrument.symbol}"
            )
        return segment
    pair = _DERIVATIVE_SEGMENTS.get(exchange)
    if pair is None:
        raise ValidationError("exchange", f"the sandbox has no charges for {exchange}")
    if not instrument.is_derivative:
        raise ValidationError(
            "symbol", f"{instrument.symbol} on {exchange} is neither a future nor an option"
        )
    if product is Product.CNC:
        raise ValidationError(
            "product", f"CNC is for equity delivery; use NRML or MIS for {instrument.symbol}"
        )
    futures, options = pair
    return options if instrument.is_option else futures


# -- rates -------------------------------------------------------------------------------------


def _pct(percent: str) -> Decimal:
    """A rate written the way circulars and charge pages write it ("0.00307" %), kept exact."""
    return Decimal(percent) / 100


@dataclass(frozen=True, slots=True)
class Levies:
    """A segment's one-sided statutory levies, as fractions of the value they apply to."""

    stt_buy: Decimal = ZERO
    stt_sell: Decimal = ZERO
    stamp_buy: Decimal = ZERO
    stt_exercise: Decimal = ZERO  # on intrinsic value of exercised long options, paid by buyer


@dataclass(frozen=True, slots=True)
class Brokerage:
    """A discount broker's fee per executed order: min(rate × order value, per_order), or a
    flat `per_order` when `rate` is None (options)."""

    per_order: Decimal
    rate: Decimal | None = None

    def on(self, order_value: Decimal) -> Decimal:
        if self.rate is None:
            return self.per_order
        return min(self.rate * order_value, self.per_order)


ZERODHA_PER_ORDER = Decimal(20)
ZERODHA_RATE = _pct("0.03")
SEBI_FEE = _pct("0.0001")  # ₹10 per crore, both sides, every segment
GST_RATE = Decimal("0.18")  # on brokerage + transaction charge + SEBI fee


def discount_brokerage(
    per_order: Decimal = ZERODHA_PER_ORDER, rate: Decimal = ZERODHA_RATE
) -> Mapping[Segment, Brokerage]:
    """Zerodha-style brokerage (reference §2.2): delivery free, options flat per order,
    everything else the lower of `rate` and `per_order`. `per_order=Decimal(40)` models the
    ₹40 F&O tier (negative balance, or the unconfirmed 2026 "select traders" change)."""
    capped = Brokerage(per_order, rate)
    flat = Brokerage(per_order)
    return MappingProxyType(
        {
            Segment.EQUITY_DELIVERY: Brokerage(ZERO, ZERO),
            Segment.EQUITY_INTRADAY: capped,
            Segment.EQUITY_FUTURES: capped,
            Segment.EQUITY_OPTIONS: flat,
            Segment.CURRENCY_FUTURES: capped,
            Segment.CURRENCY_OPTIONS: flat,
            Segment.COMMODITY_FUTURES: capped,
            Segment.COMMODITY_OPTIONS: flat,
        }
    )


# Reference §2.1 "Statutory and exchange levies", current as of 2026-11-24.
# STT futures 0.05% / options 0.15% / exercise 0.15% w.e.f. 2026-04-01 (Budget 2026);
# cash STT unchanged; CTT and stamp duty (uniform since 2020-07-01) unchanged.
_DEFAULT_LEVIES: Mapping[Segment, Levies] = MappingProxyType(
    {
        Segment.EQUITY_DELIVERY: Levies(_pct("0.1"), _pct("0.1"), _pct("0.015")),
        Segment.EQUITY_INTRADAY: Levies(ZERO, _pct("0.025"), _pct("0.003")),
        Segment.EQUITY_FUTURES: Levies(ZERO, _pct("0.05"), _pct("0.002")),
        Segment.EQUITY_OPTIONS: Levies(ZERO, _pct("0.15"), _pct("0.003"), _pct("0.15")),
        Segment.CURRENCY_FUTURES: Levies(ZERO, ZERO, _pct("0.0001")),
        Segment.CURRENCY_OPTIONS: Levies(ZERO, ZERO, _pct("0.0001")),
        Segment.COMMODITY_FUTURES: Levies(ZERO, _pct("0.01"), _pct("0.002")),  # CTT non-agri
        Segment.COMMODITY_OPTIONS: Levies(ZERO, _pct("0.05"), _pct("0.003")),
    }
)

# Exchange transaction charges on turnover (premium turnover for options), keyed by the
# instrument's exchange. NSE: all-in totals w.e.f. 2026-03-01 (circular FA73061, IPFT folded
# in). BSE, NSE/BSE currency and MCX: rates w.e.f. 2024-10-01, no later change found. NCDEX:
# broker charge pages (HDFC Sky). NCO (NSE commodities): no published figure found, MCX's rates
# stand in (unverified).
_DEFAULT_TRANSACTION: Mapping[tuple[Exchange, Segment], Decimal] = MappingProxyType(
    {
        (Exchange.NSE, Segment.EQUITY_DELIVERY): _pct("0.00307"),
        (Exchange.NSE, Segment.EQUITY_INTRADAY): _pct("0.00307"),
        (Exchange.BSE, Segment.EQUITY_DELIVERY): _pct("0.00375"),  # groups A, B and similar
        (Exchange.BSE, Segment.EQUITY_INTRADAY): _pct("0.00375"),
        (Exchange.NFO, Segment.EQUITY_FUTURES): _pct("0.00183"),
        (Exchange.NFO, Segment.EQUITY_OPTIONS): _pct("0.03553"),
        (Exchange.BFO, Segment.EQUITY_FUTURES): ZERO,
        (Exchange.BFO, Segment.EQUITY_OPTIONS): _pct("0.005"),  # SENSEX50 and stock options
        (Exchange.CDS, Segment.CURRENCY_FUTURES): _pct("0.00035"),
        (Exchange.CDS, Segment.CURRENCY_OPTIONS): _pct("0.0311"),
        (Exchange.BCD, Segment.CURRENCY_FUTURES): _pct("0.00045"),
        (Exchange.BCD, Segment.CURRENCY_OPTIONS): _pct("0.001"),
        (Exchange.MCX, Segment.COMMODITY_FUTURES): _pct("0.0021"),
        (Exchange.MCX, Segment.COMMODITY_OPTIONS): _pct("0.0418"),
        (Exchange.NCDEX, Segment.COMMODITY_FUTURES): _pct("0.0058"),
        (Exchange.NCDEX, Segment.COMMODITY_OPTIONS): _pct("0.03"),
        (Exchange.NCO, Segment.COMMODITY_FUTURES): _pct("0.0021"),
        (Exchange.NCO, Segment.COMMODITY_OPTIONS): _pct("0.0418"),
    }
)

# Underlyings whose contracts carry a different exchange rate than the rest of their segment.
_DEFAULT_TRANSACTION_BY_UNDERLYING: Mapping[tuple[Exchange, Segment, str], Decimal] = (
    MappingProxyType(
        {
            (Exchange.BFO, Segment.EQUITY_OPTIONS, "SENSEX"): _pct("0.0325"),
            (Exchange.BFO, Segment.EQUITY_OPTIONS, "BANKEX"): _pct("0.0325"),
        }
    )
)


@dataclass(frozen=True)
class ChargeRates:
    """Every rate a contract note applies, as exact fractions, defaulting to 2026-11-24's.

    Override a table with `dataclasses.replace`, e.g. pre-April-2026 futures STT::

        replace(rates, levies={**rates.levies, Segment.EQUITY_FUTURES: Levies(
            stt_sell=Decimal("0.0002"), stamp_buy=Decimal("0.00002"))})
    """

    levies: Mapping[Segment, Levies] = field(default_factory=lambda: _DEFAULT_LEVIES)
    transaction: Mapping[tuple[Exchange, Segment], Decimal] = field(
        default_factory=lambda: _DEFAULT_TRANSACTION
    )
    transaction_by_underlying: Mapping[tuple[Exchange, Segment, str], Decimal] = field(
        default_factory=lambda: _DEFAULT_TRANSACTION_BY_UNDERLYING
    )
    sebi: Decimal = SEBI_FEE
    gst: Decimal = GST_RATE
    brokerage: Mapping[Segment, Brokerage] = field(default_factory=discount_brokerage)

    def __post_init__(self) -> None:
        for name, table in (("levies", self.levies), ("brokerage", self.brokerage)):
            missing = [str(segment) for segment in Segment if segment not in table]
            if missing:
                raise ValidationError(name, f"no rates for {', '.join(missing)}")

    def transaction_rate(self, instrument: Instrument, segment: Segment) -> Decimal:
        underlying = instrument.underlying or instrument.name
        special = self.transaction_by_underlying.get((instrument.exchange, segment, underlying))
        if special is not None:
            return special
        rate = self.transaction.get((instrument.exchange, segment))
        if rate is None:
            raise ValidationError(
                "exchange",
                f"no transaction charge is configured for {segment} on {instrument.exchange}",
            )
        return rate


# -- charges -----------------------------------------------------------------------------------

_COMPONENTS = ("brokerage", "stt", "transaction", "sebi", "stamp", "gst")


@dataclass(frozen=True, slots=True)
class Charges:
    """Contract-note charge lines in rupees. STT/CTT is one line (`stt`) like on the note."""

    brokerage: Decimal = ZERO
    stt: Decimal = ZERO
    transaction: Decimal = ZERO
    sebi: Decimal = ZERO
    stamp: Decimal = ZERO
    gst: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.brokerage + self.stt + self.transaction + self.sebi + self.stamp + self.gst

    # Written out field by field: these run on every fill, on the matching engine's hot path.
    def __add__(self, other: Charges) -> Charges:
        return Charges(
            self.brokerage + other.brokerage,
            self.stt + other.stt,
            self.transaction + other.transaction,
            self.sebi + other.sebi,
            self.stamp + other.stamp,
            self.gst + other.gst,
        )

    def __sub__(self, other: Charges) -> Charges:
        return Charges(
            self.brokerage - other.brokerage,
            self.stt - other.stt,
            self.transaction - other.transaction,
            self.sebi - other.sebi,
            self.stamp - other.stamp,
            self.gst - other.gst,
        )


NO_CHARGES = Charges()


# -- the contract note -------------------------------------------------------------------------

_ScripKey = tuple[Exchange, str, Segment]


@dataclass(slots=True)
class _Scrip:
    """One symbol of one segment on the note: the aggregates its levies are computed on."""

    instrument: Instrument
    buy_value: Decimal = ZERO
    sell_value: Decimal = ZERO
    exercised_value: Decimal = ZERO
    levies: Charges = NO_CHARGES  # as last computed, rounded


@dataclass(slots=True)
class _Order:
    key: _ScripKey
    action: Action
    value: Decimal = ZERO
    brokerage: Decimal = ZERO  # rounded, for the order's cumulative value


@dataclass(slots=True)
class _SegmentTotals:
    levies: Charges = NO_CHARGES  # sum of the scrips' rounded levies
    brokerage: Decimal = ZERO  # sum of the orders' rounded brokerage


class ContractNote:
    """One account's charges for one trading day, accumulated fill by fill."""

    def __init__(self, trade_date: date, rates: ChargeRates | None = None) -> None:
        self.trade_date = trade_date
        self.rates = rates if rates is not None else ChargeRates()
        self._scrips: dict[_ScripKey, _Scrip] = {}
        self._orders: dict[str, _Order] = {}
        self._segments: dict[Segment, _SegmentTotals] = {}

    def add_fill(
        self,
        instrument: Instrument,
        product: Product,
        action: Action,
        orderid: str,
        quantity: int,
        price: Decimal,
    ) -> Charges:
        """Book a fill; returns what it added to the note (note after − note before)."""
        _check_quantity(quantity)
        _check_amount(price, "price")
        if not orderid:
            raise ValidationError("orderid", "must not be empty")
        segment = segment_of(instrument, product)
        self.rates.transaction_rate(instrument, segment)  # refuse before anything changes
        key = (instrument.exchange, instrument.symbol, segment)
        order = self._order(orderid, key, action)
        before = self._segment_charges(segment)
        value = price * quantity
        scrip = self._scrip(key, instrument)
        if action is Action.BUY:
            scrip.buy_value += value
        else:
            scrip.sell_value += value
        self._relevy(scrip, segment)
        order.value += value
        brokerage = round_paise(self.rates.brokerage[segment].on(order.value))
        self._segments[segment].brokerage += brokerage - order.brokerage
        order.brokerage = brokerage
        return self._segment_charges(segment) - before

    def add_exercise(
        self, instrument: Instrument, quantity: int, intrinsic_value_per_unit: Decimal
    ) -> Charges:
        """Book STT on a long option exercised in the money (paid by the buyer, on intrinsic
        value, not premium). There is no trade, so nothing else is charged."""
        _check_quantity(quantity)
        _check_amount(intrinsic_value_per_unit, "intrinsic_value_per_unit")
        if not instrument.is_option:
            raise ValidationError("symbol", f"{instrument.symbol} is not an option")
        segment = segment_of(instrument, Product.NRML)
        self.rates.transaction_rate(instrument, segment)  # refuse before anything changes
        key = (instrument.exchange, instrument.symbol, segment)
        before = self._segment_charges(segment)
        scrip = self._scrip(key, instrument)
        scrip.exercised_value += intrinsic_value_per_unit * quantity
        self._relevy(scrip, segment)
        return self._segment_charges(segment) - before

    @property
    def total(self) -> Charges:
        return sum(self.by_segment.values(), NO_CHARGES)

    @property
    def by_segment(self) -> Mapping[Segment, Charges]:
        return {segment: self._segment_charges(segment) for segment in self._segments}

    # -- internals ------------------------------------------------------------------------------
    def _order(self, orderid: str, key: _ScripKey, action: Action) -> _Order:
        order = self._orders.get(orderid)
        if order is None:
            order = self._orders[orderid] = _Order(key, action)
        elif (order.key, order.action) != (key, action):
            raise ValidationError(
                "orderid",
                f"{orderid} already filled as {order.action} {order.key[1]} "
                f"({order.key[2]}); it cannot also fill {action} {key[1]} ({key[2]})",
            )
        return order

    def _scrip(self, key: _ScripKey, instrument: Instrument) -> _Scrip:
        self._segments.setdefault(key[2], _SegmentTotals())
        scrip = self._scrips.get(key)
        if scrip is None:
            scrip = self._scrips[key] = _Scrip(instrument)
        return scrip

    def _relevy(self, scrip: _Scrip, segment: Segment) -> None:
        levies = self._levies(scrip, segment)
        totals = self._segments[segment]
        totals.levies = totals.levies + levies - scrip.levies
        scrip.levies = levies

    def _levies(self, scrip: _Scrip, segment: Segment) -> Charges:
        rates = self.rates
        levy = rates.levies[segment]
        turnover = scrip.buy_value + scrip.sell_value
        return Charges(
            stt=round_rupee(levy.stt_buy * scrip.buy_value)
            + round_rupee(levy.stt_sell * scrip.sell_value)
            + round_rupee(levy.stt_exercise * scrip.exercised_value),
            transaction=round_paise(rates.transaction_rate(scrip.instrument, segment) * turnover),
            sebi=round_paise(rates.sebi * turnover),
            stamp=round_paise(levy.stamp_buy * scrip.buy_value),
        )

    def _segment_charges(self, segment: Segment) -> Charges:
        totals = self._segments.get(segment)
        if totals is None:
            return NO_CHARGES
        levies = totals.levies
        taxable = totals.brokerage + levies.transaction + levies.sebi
        return Charges(
            totals.brokerage,
            levies.stt,
            levies.transaction,
            levies.sebi,
            levies.stamp,
            round_paise(self.rates.gst * taxable),
        )


def _check_quantity(quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise ValidationError("quantity", f"must be a positive whole number, got {quantity!r}")


def _check_amount(amount: Decimal, name: str) -> None:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
        raise ValidationError(name, f"must be a finite, non-negative Decimal, got {amount!r}")
