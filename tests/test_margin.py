"""Sandbox margin: OpenAlgo's leverages, our notional-based short-option margin, orders that
reduce or reverse a position, and pro-rata release that never loses a paisa."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openalgo_lab.brokers.sandbox.margin import (
    MarginRules,
    margin_for_order,
    margin_required,
    release_on_close,
)
from openalgo_lab.domain.enums import Action, Exchange, InstrumentType, Product
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.models import Instrument

D = Decimal
BUY, SELL = Action.BUY, Action.SELL
CNC, MIS, NRML = Product.CNC, Product.MIS, Product.NRML

INFY = Instrument("INFY", Exchange.NSE, "INFY", InstrumentType.EQ, "1", D("0.05"))
NIFTY_FUT = Instrument(
    "NIFTY29DEC26FUT",
    Exchange.NFO,
    "NIFTY",
    InstrumentType.FUT,
    "2",
    D("0.05"),
    lotsize=65,
    underlying="NIFTY",
    underlying_exchange=Exchange.NSE_INDEX,
)
NIFTY_CE = Instrument(
    "NIFTY01DEC2626000CE",
    Exchange.NFO,
    "NIFTY",
    InstrumentType.CE,
    "3",
    D("0.05"),
    lotsize=65,
    strike=D(26000),
    underlying="NIFTY",
    underlying_exchange=Exchange.NSE_INDEX,
)
RELIANCE_PE = Instrument(
    "RELIANCE29DEC261400PE",
    Exchange.NFO,
    "RELIANCE",
    InstrumentType.PE,
    "4",
    D("0.05"),
    lotsize=500,
    strike=D(1400),
    underlying="RELIANCE",
    underlying_exchange=Exchange.NSE,
)
USDINR_CE = Instrument(
    "USDINR29DEC2684CE", Exchange.CDS, "USDINR", InstrumentType.CE, "5", D("0.0025"), strike=D(84)
)
CRUDE_FUT = Instrument(
    "CRUDEOIL17DEC26FUT", Exchange.MCX, "CRUDEOIL", InstrumentType.FUT, "6", D(1), lotsize=100
)


# -- margin_required by product and instrument type -------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "product", "action", "quantity", "price", "expected"),
    [
        (INFY, MIS, BUY, 100, "1000", "20000.00"),  # 1,00,000 / 5
        (INFY, MIS, SELL, 100, "1000", "20000.00"),  # intraday short, same 5×
        (INFY, CNC, BUY, 100, "1000", "100000.00"),  # delivery, 1×
        (INFY, CNC, SELL, 100, "1000", "0"),  # sells shares already owned
        (INFY, MIS, BUY, 3, "100.01", "60.01"),  # 300.03 / 5 = 60.006 → paise
        (NIFTY_FUT, NRML, BUY, 65, "26000", "169000.00"),  # 16,90,000 / 10
        (NIFTY_FUT, NRML, SELL, 65, "26000", "169000.00"),
        (NIFTY_FUT, MIS, BUY, 65, "26000", "169000.00"),  # no extra intraday leverage
        (CRUDE_FUT, NRML, SELL, 100, "6000", "60000.00"),
        (NIFTY_CE, NRML, BUY, 130, "120", "15600.00"),  # full premium
        (NIFTY_CE, MIS, BUY, 130, "120", "15600.00"),
    ],
)
def test_margin_by_product_and_type(
    instrument: Instrument,
    product: Product,
    action: Action,
    quantity: int,
    price: str,
    expected: str,
) -> None:
    assert margin_required(instrument, product, action, quantity, D(price)) == D(expected)


def test_short_index_option_blocks_twelve_percent_of_notional() -> None:
    # max(65 × 120 = 7,800, 65 × 26,000 × 12% = 2,02,800)
    margin = margin_required(NIFTY_CE, NRML, SELL, 65, D(120), underlying_price=D(26000))
    assert margin == D("202800.00")


def test_short_option_without_an_underlying_price_uses_the_strike() -> None:
    for underlying in (None, D(0)):
        margin = margin_required(NIFTY_CE, NRML, SELL, 65, D(120), underlying_price=underlying)
        assert margin == D("202800.00")


def test_deep_in_the_money_short_option_blocks_at_least_its_premium() -> None:
    margin = margin_required(NIFTY_CE, NRML, SELL, 65, D(4000), underlying_price=D(26000))
    assert margin == D("260000.00")  # premium 2,60,000 > 2,02,800


def test_short_stock_option_blocks_twenty_percent_of_notional() -> None:
    # max(500 × 20 = 10,000, 500 × 1,400 × 20% = 1,40,000)
    margin = margin_required(RELIANCE_PE, NRML, SELL, 500, D(20), underlying_price=D(1400))
    assert margin == D("140000.00")


def test_index_is_recognised_by_name_when_the_master_omits_the_underlying_exchange() -> None:
    bare = replace(NIFTY_CE, underlying_exchange=None)
    margin = margin_required(bare, NRML, SELL, 65, D(120), underlying_price=D(26000))
    assert margin == D("202800.00")
    stock = replace(RELIANCE_PE, underlying_exchange=None)
    margin = margin_required(stock, NRML, SELL, 500, D(20), underlying_price=D(1400))
    assert margin == D("140000.00")


def test_short_currency_option_uses_the_futures_margin() -> None:
    # max(1,000 × 0.5 = 500, 1,000 × 83.5 / 10 = 8,350)
    margin = margin_required(USDINR_CE, NRML, SELL, 1000, D("0.5"), underlying_price=D("83.5"))
    assert margin == D("8350.00")


def test_rules_are_configurable() -> None:
    rules = MarginRules(
        equity_mis_leverage=D(4),
        futures_leverage=D(8),
        short_option_index_rate=D("0.10"),
    )
    assert margin_required(INFY, MIS, BUY, 100, D(1000), rules=rules) == D("25000.00")
    assert margin_required(NIFTY_FUT, NRML, BUY, 65, D(26000), rules=rules) == D("211250.00")
    short = margin_required(
        NIFTY_CE, NRML, SELL, 65, D(120), underlying_price=D(26000), rules=rules
    )
    assert short == D("169000.00")


# -- orders against an existing position --------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "product", "action", "quantity", "position", "expected"),
    [
        (INFY, MIS, SELL, 60, 100, "0"),  # reduces a long
        (INFY, MIS, SELL, 100, 100, "0"),  # closes it
        (INFY, MIS, SELL, 150, 100, "10000.00"),  # reversal: only 50 open a short
        (INFY, MIS, SELL, 50, 0, "10000.00"),  # fresh short
        (INFY, MIS, BUY, 50, 100, "10000.00"),  # adds to the long
        (INFY, MIS, BUY, 50, -100, "0"),  # covers part of a short
        (INFY, MIS, BUY, 130, -100, "6000.00"),  # reversal: 30 open a long
        (INFY, CNC, SELL, 100, 0, "0"),  # sells holdings
        (INFY, CNC, SELL, 150, 100, "0"),  # today's buys plus holdings
        (INFY, CNC, BUY, 10, 100, "10000.00"),
    ],
)
def test_margin_for_order_against_equity_position(
    instrument: Instrument,
    product: Product,
    action: Action,
    quantity: int,
    position: int,
    expected: str,
) -> None:
    margin = margin_for_order(
        instrument, product, action, quantity, D(1000), position_quantity=position
    )
    assert margin == D(expected)


def test_futures_reversal_blocks_only_the_excess() -> None:
    margin = margin_for_order(NIFTY_FUT, NRML, BUY, 130, D(26000), position_quantity=-65)
    assert margin == D("169000.00")


def test_buying_back_a_short_option_blocks_nothing_and_reversing_pays_premium() -> None:
    cover = margin_for_order(NIFTY_CE, NRML, BUY, 65, D(150), position_quantity=-65)
    assert cover == 0
    reverse = margin_for_order(NIFTY_CE, NRML, BUY, 130, D(150), position_quantity=-65)
    assert reverse == D("9750.00")  # 65 × 150, premium of the new long


def test_selling_out_of_a_long_option_into_a_short_uses_short_option_margin() -> None:
    margin = margin_for_order(
        NIFTY_CE, NRML, SELL, 130, D(120), position_quantity=65, underlying_price=D(26000)
    )
    assert margin == D("202800.00")


# -- release on close -------------------------------------------------------------------------


def test_release_is_pro_rata_and_the_last_close_frees_the_rest() -> None:
    blocked, position = D("100.00"), 3
    released = []
    for _ in range(3):
        part = release_on_close(blocked, position, 1)
        released.append(part)
        blocked -= part
        position -= 1
    assert released == [D("33.33"), D("33.34"), D("33.33")]
    assert sum(released) == D("100.00")


def test_release_works_for_short_positions() -> None:
    assert release_on_close(D("202800.00"), -130, 65) == D("101400.00")
    assert release_on_close(D("202800.00"), -130, 130) == D("202800.00")


@given(
    blocked_paise=st.integers(min_value=0, max_value=10**12),
    position=st.integers(min_value=-100_000, max_value=100_000).filter(bool),
    cuts=st.lists(st.integers(min_value=1, max_value=100_000), max_size=20),
)
def test_partial_closes_release_exactly_the_blocked_total(
    blocked_paise: int, position: int, cuts: list[int]
) -> None:
    original = D(blocked_paise) / 100
    blocked, remaining = original, position
    freed = D(0)
    sign = 1 if position > 0 else -1
    for cut in [*cuts, abs(position)]:
        if not remaining:
            break
        closed = min(cut, abs(remaining))
        part = release_on_close(blocked, remaining, closed)
        assert 0 <= part <= blocked
        freed += part
        blocked -= part
        remaining -= sign * closed
    assert remaining == 0
    assert blocked == 0
    assert freed == original


# -- invalid input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": -65}, "quantity"),
        ({"price": D(-1)}, "price"),
        ({"price": D("Infinity")}, "price"),
        ({"underlying_price": D(-26000)}, "underlying_price"),
        ({"product": Product.CNC}, "product"),
    ],
)
def test_margin_required_refuses_bad_input(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {
        "instrument": NIFTY_CE,
        "product": NRML,
        "action": SELL,
        "quantity": 65,
        "price": D(120),
        "underlying_price": D(26000),
    }
    args.update(kwargs)
    with pytest.raises(ValidationError) as err:
        margin_required(**args)  # type: ignore[arg-type]
    assert err.value.field == field


def test_margin_for_order_refuses_bad_input_even_when_it_only_reduces() -> None:
    with pytest.raises(ValidationError) as err:
        margin_for_order(INFY, MIS, SELL, 10, D(-1), position_quantity=100)
    assert err.value.field == "price"
    with pytest.raises(ValidationError) as err:
        margin_for_order(INFY, MIS, SELL, 0, D(1), position_quantity=100)
    assert err.value.field == "quantity"


def test_index_instruments_have_no_margin() -> None:
    nifty = Instrument("NIFTY", Exchange.NSE_INDEX, "NIFTY", InstrumentType.INDEX, "7", D("0.05"))
    with pytest.raises(ValidationError):
        margin_required(nifty, MIS, BUY, 1, D(26000))


@pytest.mark.parametrize(
    ("blocked", "position", "closed", "field"),
    [
        (D(-1), 10, 5, "blocked"),
        (D(100), 0, 5, "position_quantity"),
        (D(100), 10, 0, "closed_quantity"),
        (D(100), 10, 11, "closed_quantity"),
        (D(100), -10, 11, "closed_quantity"),
    ],
)
def test_release_refuses_bad_input(
    blocked: Decimal, position: int, closed: int, field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        release_on_close(blocked, position, closed)
    assert err.value.field == field


def test_rules_refuse_non_positive_values() -> None:
    with pytest.raises(ValidationError) as err:
        MarginRules(futures_leverage=D(0))
    assert err.value.field == "futures_leverage"
