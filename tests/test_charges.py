"""Contract-note charges: the reference's worked examples to the paisa, aggregation and
rounding on the note, and fills that always add up to the note."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openalgo_lab.brokers.sandbox.charges import (
    NO_CHARGES,
    ChargeRates,
    Charges,
    ContractNote,
    Levies,
    Segment,
    discount_brokerage,
    segment_of,
)
from openalgo_lab.domain.enums import Action, Exchange, InstrumentType, Product
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.models import Instrument

D = Decimal
DAY = date(2026, 11, 25)
BUY, SELL = Action.BUY, Action.SELL
CNC, MIS, NRML = Product.CNC, Product.MIS, Product.NRML


def equity(symbol: str, exchange: Exchange = Exchange.NSE) -> Instrument:
    return Instrument(symbol, exchange, symbol, InstrumentType.EQ, "1", D("0.05"))


def derivative(
    symbol: str,
    exchange: Exchange,
    kind: InstrumentType,
    underlying: str,
    *,
    lot: int = 1,
    strike: str = "0",
    underlying_exchange: Exchange | None = None,
) -> Instrument:
    return Instrument(
        symbol,
        exchange,
        underlying,
        kind,
        "2",
        D("0.05"),
        lotsize=lot,
        strike=D(strike),
        underlying=underlying,
        underlying_exchange=underlying_exchange,
    )


INFY = equity("INFY")
INFY_BSE = equity("INFY", Exchange.BSE)
NIFTY_INDEX = Instrument("NIFTY", Exchange.NSE_INDEX, "NIFTY", InstrumentType.INDEX, "3", D("0.05"))
NIFTY_FUT = derivative(
    "NIFTY29DEC26FUT",
    Exchange.NFO,
    InstrumentType.FUT,
    "NIFTY",
    lot=65,
    underlying_exchange=Exchange.NSE_INDEX,
)
NIFTY_CE = derivative(
    "NIFTY01DEC2626000CE",
    Exchange.NFO,
    InstrumentType.CE,
    "NIFTY",
    lot=65,
    strike="26000",
    underlying_exchange=Exchange.NSE_INDEX,
)
SENSEX_CE = derivative(
    "SENSEX03DEC2685000CE",
    Exchange.BFO,
    InstrumentType.CE,
    "SENSEX",
    lot=20,
    strike="85000",
    underlying_exchange=Exchange.BSE_INDEX,
)
RELIANCE_BFO_PE = derivative(
    "RELIANCE31DEC261400PE", Exchange.BFO, InstrumentType.PE, "RELIANCE", strike="1400"
)
SENSEX_FUT = derivative("SENSEX31DEC26FUT", Exchange.BFO, InstrumentType.FUT, "SENSEX", lot=20)
USDINR_FUT = derivative("USDINR29DEC26FUT", Exchange.CDS, InstrumentType.FUT, "USDINR")
USDINR_CE = derivative("USDINR29DEC2684CE", Exchange.CDS, InstrumentType.CE, "USDINR", strike="84")
USDINR_BCD_FUT = derivative("USDINR29DEC26FUT", Exchange.BCD, InstrumentType.FUT, "USDINR")
CRUDE_FUT = derivative("CRUDEOIL17DEC26FUT", Exchange.MCX, InstrumentType.FUT, "CRUDEOIL")
CRUDE_CE = derivative(
    "CRUDEOIL16DEC266750CE", Exchange.MCX, InstrumentType.CE, "CRUDEOIL", strike="6750"
)
GUAR_FUT = derivative("GUARSEED10DEC26FUT", Exchange.NCDEX, InstrumentType.FUT, "GUARSEED")
ALUMINI_FUT = derivative("ALUMINI26MAYFUT", Exchange.NCO, InstrumentType.FUT, "ALUMINI")


def round_trip(
    instrument: Instrument, product: Product, qty: int, buy: str, sell: str, **kw: object
) -> tuple[ContractNote, Charges, Charges]:
    note = ContractNote(DAY, **kw)  # type: ignore[arg-type]
    b = note.add_fill(instrument, product, BUY, "b1", qty, D(buy))
    s = note.add_fill(instrument, product, SELL, "s1", qty, D(sell))
    return note, b, s


# -- reference §2.5 worked examples -----------------------------------------------------------


def test_example_a_equity_intraday_round_trip() -> None:
    note, buy, sell = round_trip(INFY, MIS, 200, "1500", "1510")
    assert note.total == Charges(
        brokerage=D("40.00"),
        stt=D("76"),
        transaction=D("18.48"),
        sebi=D("0.60"),
        stamp=D("9.00"),
        gst=D("10.63"),
    )
    assert note.total.total == D("154.71")
    assert buy + sell == note.total
    # net P&L as the reference shows it
    assert D(200) * (D(1510) - D(1500)) - note.total.total == D("1845.29")


def test_example_b_index_options_round_trip() -> None:
    note, buy, sell = round_trip(NIFTY_CE, NRML, 130, "120", "135")
    assert note.total == Charges(
        brokerage=D("40.00"),
        stt=D("26"),
        transaction=D("11.78"),
        sebi=D("0.03"),
        stamp=D("0.47"),
        gst=D("9.33"),
    )
    assert note.total.total == D("87.61")
    assert buy + sell == note.total


def test_example_c_index_futures_round_trip() -> None:
    note, buy, sell = round_trip(NIFTY_FUT, NRML, 65, "26000", "26050")
    assert note.total == Charges(
        brokerage=D("40.00"),
        stt=D("847"),
        transaction=D("61.91"),
        sebi=D("3.38"),
        stamp=D("33.80"),
        gst=D("18.95"),
    )
    assert note.total.total == D("1005.04")
    assert buy + sell == note.total


def test_turnover_levies_round_on_the_note_not_per_fill() -> None:
    """Example B's SEBI fee is 0.0332 on the note (→ 0.03), though each side alone rounds to
    0.02: the second fill is charged only what it adds to the note."""
    note = ContractNote(DAY)
    first = note.add_fill(NIFTY_CE, MIS, BUY, "b1", 130, D(120))
    second = note.add_fill(NIFTY_CE, MIS, SELL, "s1", 130, D(135))
    assert first.sebi == D("0.02")
    assert second.sebi == D("0.01")


# -- orders, partial fills, exercise ----------------------------------------------------------


def test_partially_filled_order_pays_brokerage_once() -> None:
    note = ContractNote(DAY)
    fills = [note.add_fill(INFY, MIS, BUY, "o1", q, D(1500)) for q in (50, 50, 100)]
    assert [f.brokerage for f in fills] == [D(20), D(0), D(0)]
    assert sum(fills, NO_CHARGES) == note.total
    assert note.total.brokerage == D(20)
    # one order in one fill costs exactly the same
    single = ContractNote(DAY)
    single.add_fill(INFY, MIS, BUY, "o1", 200, D(1500))
    assert single.total == note.total


def test_brokerage_grows_with_a_small_orders_cumulative_value() -> None:
    note = ContractNote(DAY)
    first = note.add_fill(INFY, MIS, BUY, "o1", 10, D(100))
    second = note.add_fill(INFY, MIS, BUY, "o1", 10, D(100))
    assert (first.brokerage, second.brokerage) == (D("0.30"), D("0.30"))
    third = note.add_fill(INFY, MIS, BUY, "o1", 10_000, D(100))
    assert third.brokerage == D("19.40")  # capped at ₹20 for the whole order


def test_options_order_pays_flat_brokerage_once_across_fills() -> None:
    note = ContractNote(DAY)
    for q in (65, 65, 65):
        note.add_fill(NIFTY_CE, NRML, SELL, "o1", q, D(100))
    note.add_fill(NIFTY_CE, NRML, BUY, "o2", 195, D(90))
    assert note.total.brokerage == D(40)


def test_configurable_brokerage_per_order() -> None:
    rates = ChargeRates(brokerage=discount_brokerage(D(40)))
    note, _, _ = round_trip(NIFTY_CE, NRML, 130, "120", "135", rates=rates)
    assert note.total.brokerage == D(80)
    assert note.total.gst == D("16.53")  # 18% × (80 + 11.78 + 0.03) = 16.5258


def test_exercise_charges_buyer_stt_on_intrinsic_value_only() -> None:
    note = ContractNote(DAY)
    note.add_fill(NIFTY_CE, NRML, BUY, "b1", 130, D(120))
    exercised = note.add_exercise(NIFTY_CE, 130, D(50))
    assert exercised == Charges(stt=D(10))  # 0.15% × 50 × 130 = 9.75 → 10
    assert note.total.stt == D(10)
    assert note.total.brokerage == D(20)  # no sell leg, one order


def test_exercise_of_currency_option_has_no_stt() -> None:
    note = ContractNote(DAY)
    assert note.add_exercise(USDINR_CE, 1000, D("0.5")) == NO_CHARGES


def test_by_segment_breaks_the_note_down_and_taxes_each_segment() -> None:
    note = ContractNote(DAY)
    note.add_fill(INFY, MIS, BUY, "a", 200, D(1500))
    note.add_fill(INFY, MIS, SELL, "b", 200, D(1510))
    note.add_fill(NIFTY_CE, NRML, BUY, "c", 130, D(120))
    note.add_fill(NIFTY_CE, NRML, SELL, "d", 130, D(135))
    segments = note.by_segment
    assert set(segments) == {Segment.EQUITY_INTRADAY, Segment.EQUITY_OPTIONS}
    assert segments[Segment.EQUITY_INTRADAY].total == D("154.71")
    assert segments[Segment.EQUITY_OPTIONS].total == D("87.61")
    assert note.total.total == D("242.32")


def test_delivery_and_intraday_of_one_symbol_are_separate_segments() -> None:
    note = ContractNote(DAY)
    note.add_fill(INFY, CNC, BUY, "a", 10, D(1500))
    note.add_fill(INFY, MIS, BUY, "b", 10, D(1500))
    assert set(note.by_segment) == {Segment.EQUITY_DELIVERY, Segment.EQUITY_INTRADAY}
    assert note.by_segment[Segment.EQUITY_DELIVERY].brokerage == 0


# -- rates by segment and exchange ------------------------------------------------------------


def test_delivery_stt_is_charged_on_both_sides() -> None:
    note, buy, sell = round_trip(INFY, CNC, 100, "1000", "1100")
    assert (buy.stt, sell.stt) == (D(100), D(110))
    assert note.total == Charges(
        brokerage=D(0),
        stt=D(210),
        transaction=D("6.45"),  # 0.00307% × 2,10,000 = 6.447
        sebi=D("0.21"),
        stamp=D("15.00"),  # 0.015% × 1,00,000
        gst=D("1.20"),  # 18% × (0 + 6.45 + 0.21) = 1.1988
    )


def test_bse_cash_transaction_charge_differs_from_nse() -> None:
    nse, _, _ = round_trip(INFY, MIS, 200, "1500", "1510")
    bse, _, _ = round_trip(INFY_BSE, MIS, 200, "1500", "1510")
    assert nse.total.transaction == D("18.48")
    assert bse.total.transaction == D("22.58")  # 0.00375% × 6,02,000 = 22.575, half up
    assert replace(bse.total, transaction=nse.total.transaction, gst=nse.total.gst) == nse.total


def test_bse_sensex_options_pay_more_than_other_bse_options() -> None:
    sensex, _, _ = round_trip(SENSEX_CE, NRML, 130, "120", "135")
    stock, _, _ = round_trip(RELIANCE_BFO_PE, NRML, 130, "120", "135")
    assert sensex.total.transaction == D("10.77")  # 0.0325% × 33,150 = 10.77375
    assert stock.total.transaction == D("1.66")  # 0.005% × 33,150 = 1.6575
    bankex = replace(SENSEX_CE, symbol="BANKEX29DEC2660000CE", name="BANKEX", underlying="BANKEX")
    bankex_note, _, _ = round_trip(bankex, NRML, 130, "120", "135")
    assert bankex_note.total.transaction == D("10.77")


def test_bse_futures_have_no_transaction_charge() -> None:
    note, _, _ = round_trip(SENSEX_FUT, NRML, 20, "85000", "85100")
    assert note.total.transaction == 0
    assert note.total.stt == D(851)  # 0.05% × 17,02,000


def test_currency_futures_have_no_stt() -> None:
    note, _, _ = round_trip(USDINR_FUT, NRML, 1000, "83.5", "83.6")
    assert note.total == Charges(
        brokerage=D(40),  # 0.03% × 83,500 = 25.05 > ₹20 on each leg
        stt=D(0),
        transaction=D("0.58"),  # 0.00035% × 1,67,100 = 0.58485
        sebi=D("0.17"),
        stamp=D("0.08"),  # 0.0001% × 83,500 = 0.0835
        gst=D("7.34"),  # 18% × 40.75 = 7.335, half up
    )
    bcd, _, _ = round_trip(USDINR_BCD_FUT, NRML, 1000, "83.5", "83.6")
    assert bcd.total.transaction == D("0.75")  # 0.00045% × 1,67,100 = 0.75195


def test_commodity_ctt_and_mcx_charges() -> None:
    note, _, _ = round_trip(CRUDE_FUT, NRML, 100, "6000", "6100")
    assert note.total.stt == D(61)  # CTT 0.01% × 6,10,000
    assert note.total.transaction == D("25.41")  # 0.0021% × 12,10,000
    assert note.total.stamp == D("12.00")  # 0.002% × 6,00,000
    options, _, _ = round_trip(CRUDE_CE, NRML, 100, "200", "220")
    assert options.total.stt == D(11)  # CTT 0.05% × 22,000
    assert options.total.transaction == D("17.56")  # 0.0418% × 42,000
    assert options.total.brokerage == D(40)
    ncdex, _, _ = round_trip(GUAR_FUT, NRML, 100, "5000", "5000")
    assert ncdex.total.transaction == D("58.00")  # 0.0058% × 10,00,000


def test_rates_are_overridable_for_replaying_old_trades() -> None:
    rates = ChargeRates()
    old = replace(
        rates,
        levies={
            **rates.levies,
            Segment.EQUITY_FUTURES: Levies(stt_sell=D("0.0002"), stamp_buy=D("0.00002")),
        },
    )
    note, _, _ = round_trip(NIFTY_FUT, NRML, 65, "26000", "26050", rates=old)
    assert note.total.stt == D(339)  # the reference's pre-April-2026 figure


def test_incomplete_rate_tables_are_refused() -> None:
    with pytest.raises(ValidationError) as err:
        ChargeRates(levies={Segment.EQUITY_DELIVERY: Levies()})
    assert err.value.field == "levies"


# -- segment mapping ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "product", "segment"),
    [
        (INFY, CNC, Segment.EQUITY_DELIVERY),
        (INFY, MIS, Segment.EQUITY_INTRADAY),
        (INFY_BSE, CNC, Segment.EQUITY_DELIVERY),
        (INFY_BSE, MIS, Segment.EQUITY_INTRADAY),
        (NIFTY_FUT, NRML, Segment.EQUITY_FUTURES),
        (NIFTY_FUT, MIS, Segment.EQUITY_FUTURES),
        (NIFTY_CE, NRML, Segment.EQUITY_OPTIONS),
        (RELIANCE_BFO_PE, MIS, Segment.EQUITY_OPTIONS),
        (SENSEX_FUT, NRML, Segment.EQUITY_FUTURES),
        (USDINR_FUT, NRML, Segment.CURRENCY_FUTURES),
        (USDINR_BCD_FUT, MIS, Segment.CURRENCY_FUTURES),
        (USDINR_CE, NRML, Segment.CURRENCY_OPTIONS),
        (CRUDE_FUT, NRML, Segment.COMMODITY_FUTURES),
        (CRUDE_CE, MIS, Segment.COMMODITY_OPTIONS),
        (GUAR_FUT, NRML, Segment.COMMODITY_FUTURES),
        (ALUMINI_FUT, NRML, Segment.COMMODITY_FUTURES),
    ],
)
def test_segment_of(instrument: Instrument, product: Product, segment: Segment) -> None:
    assert segment_of(instrument, product) is segment


@pytest.mark.parametrize(
    ("instrument", "product", "field"),
    [
        (INFY, NRML, "product"),
        (NIFTY_FUT, CNC, "product"),
        (NIFTY_INDEX, MIS, "exchange"),
        (replace(INFY, instrumenttype=InstrumentType.INDEX), MIS, "symbol"),
        (replace(NIFTY_FUT, instrumenttype=InstrumentType.EQ), NRML, "symbol"),
        (replace(NIFTY_FUT, exchange=Exchange.CRYPTO), NRML, "exchange"),
    ],
)
def test_segment_of_refuses_what_cannot_trade(
    instrument: Instrument, product: Product, field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        segment_of(instrument, product)
    assert err.value.field == field


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "price", "field"),
    [
        (0, D(100), "quantity"),
        (-5, D(100), "quantity"),
        (True, D(100), "quantity"),
        (10, D(-1), "price"),
        (10, D("NaN"), "price"),
    ],
)
def test_add_fill_refuses_bad_input_and_changes_nothing(
    quantity: int, price: Decimal, field: str
) -> None:
    note = ContractNote(DAY)
    with pytest.raises(ValidationError) as err:
        note.add_fill(INFY, MIS, BUY, "o1", quantity, price)
    assert err.value.field == field
    assert note.total == NO_CHARGES
    assert note.by_segment == {}


def test_a_price_of_zero_is_allowed() -> None:
    note = ContractNote(DAY)
    assert note.add_fill(NIFTY_CE, NRML, BUY, "o1", 65, D(0)).total == D("23.60")  # ₹20 + GST


def test_an_order_id_belongs_to_one_instrument_and_side() -> None:
    note = ContractNote(DAY)
    note.add_fill(INFY, MIS, BUY, "o1", 10, D(1500))
    before = note.total
    for instrument, action in ((INFY, SELL), (INFY_BSE, BUY)):
        with pytest.raises(ValidationError) as err:
            note.add_fill(instrument, MIS, action, "o1", 10, D(1500))
        assert err.value.field == "orderid"
    assert note.total == before


def test_bad_exercises_are_refused() -> None:
    note = ContractNote(DAY)
    cases: list[tuple[Instrument, int, Decimal, str]] = [
        (NIFTY_FUT, 65, D(10), "symbol"),
        (NIFTY_CE, 0, D(10), "quantity"),
        (NIFTY_CE, 65, D(-1), "intrinsic_value_per_unit"),
    ]
    for instrument, quantity, intrinsic, field in cases:
        with pytest.raises(ValidationError) as err:
            note.add_exercise(instrument, quantity, intrinsic)
        assert err.value.field == field
    assert note.total == NO_CHARGES


def test_charges_arithmetic() -> None:
    a = Charges(D(1), D(2), D(3), D(4), D(5), D(6))
    assert a.total == D(21)
    assert a - a == NO_CHARGES
    assert a + NO_CHARGES == a
    assert (a + a).total == D(42)


# -- properties ---------------------------------------------------------------------------------

INSTRUMENT_PRODUCTS: list[tuple[Instrument, Product]] = [
    (INFY, CNC),
    (INFY, MIS),
    (INFY_BSE, MIS),
    (NIFTY_FUT, NRML),
    (NIFTY_CE, MIS),
    (SENSEX_CE, NRML),
    (RELIANCE_BFO_PE, NRML),
    (USDINR_FUT, NRML),
    (USDINR_CE, NRML),
    (CRUDE_FUT, NRML),
    (CRUDE_CE, NRML),
]

orders = st.lists(
    st.tuples(st.sampled_from(INSTRUMENT_PRODUCTS), st.sampled_from([BUY, SELL])),
    min_size=1,
    max_size=6,
)
fill = st.tuples(
    st.integers(min_value=0, max_value=5),  # which order (modulo the number of orders)
    st.integers(min_value=1, max_value=5_000),  # quantity
    st.decimals(min_value=0, max_value=50_000, places=2),  # price
)


@settings(max_examples=150, deadline=None)
@given(orders, st.lists(fill, min_size=1, max_size=25))
def test_fills_sum_to_the_note_exactly(
    order_list: list[tuple[tuple[Instrument, Product], Action]],
    fill_list: list[tuple[int, int, Decimal]],
) -> None:
    note = ContractNote(DAY)
    booked = NO_CHARGES
    for which, quantity, price in fill_list:
        index = which % len(order_list)
        (instrument, product), action = order_list[index]
        charges = note.add_fill(instrument, product, action, f"o{index}", quantity, price)
        for f in fields(Charges):
            assert getattr(charges, f.name) >= 0, f.name
        booked += charges
    total = note.total
    assert booked == total
    assert sum(note.by_segment.values(), NO_CHARGES) == total
    assert total.stt == total.stt.to_integral_value()
    for f in fields(Charges):
        value = getattr(total, f.name)
        assert value >= 0
        assert value == value.quantize(D("0.01"))
