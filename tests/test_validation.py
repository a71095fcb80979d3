"""Order validation: every bad field is named with its reason."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from openalgo_lab.domain import (
    Action,
    Exchange,
    Instrument,
    InstrumentType,
    PriceType,
    Product,
    ValidationError,
)
from openalgo_lab.domain.money import round_to_tick, to_decimal
from openalgo_lab.domain.validation import (
    check_order_against_instrument,
    parse_order_modification,
    parse_order_request,
)

BASE: dict[str, Any] = {
    "strategy": "test",
    "symbol": "RELIANCE",
    "exchange": "NSE",
    "action": "buy",
    "quantity": "10",
    "pricetype": "LIMIT",
    "product": "MIS",
    "price": "1500.05",
}

RELIANCE = Instrument(
    "RELIANCE", Exchange.NSE, "RELIANCE INDUSTRIES", InstrumentType.EQ, "2885", Decimal("0.05")
)
NIFTY_FUT = Instrument(
    "NIFTY29DEC26FUT",
    Exchange.NFO,
    "NIFTY",
    InstrumentType.FUT,
    "1",
    Decimal("0.05"),
    lotsize=65,
    freeze_qty=1800,
)


def with_(**changes: Any) -> dict[str, Any]:
    payload = dict(BASE)
    for key, value in changes.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


def test_official_client_strings_parse() -> None:
    req = parse_order_request(BASE)
    assert req.action is Action.BUY
    assert req.quantity == 10
    assert req.price == Decimal("1500.05")
    assert req.pricetype is PriceType.LIMIT


def test_defaults_follow_openalgo() -> None:
    req = parse_order_request(with_(pricetype=None, product=None, price=None))
    assert req.pricetype is PriceType.MARKET
    assert req.product is Product.MIS
    assert req.price == 0


@pytest.mark.parametrize(
    ("changes", "field", "needle"),
    [
        ({"exchange": "NASDAQ"}, "exchange", "not one of"),
        ({"exchange": None}, "exchange", "required"),
        ({"exchange": "NSE_INDEX"}, "exchange", "quote-only"),
        ({"symbol": None}, "symbol", "required"),
        ({"action": "HOLD"}, "action", "not one of BUY, SELL"),
        ({"quantity": "0"}, "quantity", "> 0"),
        ({"quantity": "-1"}, "quantity", "> 0"),
        ({"quantity": "1.5"}, "quantity", "whole number"),
        ({"quantity": "ten"}, "quantity", "must be a number"),
        ({"quantity": True}, "quantity", "must be a number"),
        ({"quantity": "NaN"}, "quantity", "finite"),
        ({"price": "-1"}, "price", ">= 0"),
        ({"price": "0"}, "price", "> 0 for a LIMIT"),
        ({"pricetype": "SL", "trigger_price": None}, "trigger_price", "> 0 for a SL"),
        ({"pricetype": "SL-M", "trigger_price": "0"}, "trigger_price", "> 0 for a SL-M"),
        (
            {"pricetype": "SL", "price": "100", "trigger_price": "101"},
            "trigger_price",
            "BUY SL trigger",
        ),
        (
            {"action": "SELL", "pricetype": "SL", "price": "100", "trigger_price": "99"},
            "trigger_price",
            "SELL SL trigger",
        ),
        ({"product": "BO"}, "product", "not one of"),
        ({"disclosed_quantity": "11"}, "disclosed_quantity", "must not exceed"),
        ({"strategy": "x" * 101}, "strategy", "at most"),
        ({"symbol": 5}, "symbol", "must be a string"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, Any], field: str, needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_order_request(with_(**changes))
    assert err.value.field == field
    assert needle in err.value.message
    assert err.value.http_status == 400
    assert err.value.message.startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("instrument", "changes", "field", "needle"),
    [
        (RELIANCE, {"price": "1500.03"}, "price", "tick size 0.05"),
        (RELIANCE, {"product": "NRML"}, "product", "NRML is for F&O"),
        (
            NIFTY_FUT,
            {"symbol": "NIFTY29DEC26FUT", "exchange": "NFO", "quantity": "100"},
            "quantity",
            "lot size 65",
        ),
        (
            NIFTY_FUT,
            {"symbol": "NIFTY29DEC26FUT", "exchange": "NFO", "quantity": "65", "product": "CNC"},
            "product",
            "CNC is for equity delivery",
        ),
        (
            NIFTY_FUT,
            {"symbol": "NIFTY29DEC26FUT", "exchange": "NFO", "quantity": "1950"},
            "quantity",
            "freeze quantity 1800",
        ),
        (
            RELIANCE,
            {"pricetype": "SL", "price": "1500", "trigger_price": "1499.99"},
            "trigger_price",
            "tick size",
        ),
    ],
)
def test_instrument_rules(
    instrument: Instrument, changes: dict[str, Any], field: str, needle: str
) -> None:
    with pytest.raises(ValidationError) as err:
        check_order_against_instrument(parse_order_request(with_(**changes)), instrument)
    assert err.value.field == field
    assert needle in err.value.message


def test_valid_fno_order_passes() -> None:
    req = parse_order_request(
        with_(symbol="NIFTY29DEC26FUT", exchange="NFO", quantity="130", product="NRML")
    )
    check_order_against_instrument(req, NIFTY_FUT)


def test_modification_keeps_missing_fields() -> None:
    mod = parse_order_modification({"price": "101.5", "quantity": ""})
    assert mod.price == Decimal("101.5") and mod.quantity is None and mod.pricetype is None


def test_money_helpers() -> None:
    assert to_decimal(812.5, "price") == Decimal("812.5")
    assert to_decimal(0.1, "price") == Decimal("0.1")
    assert round_to_tick(Decimal("100.03"), Decimal("0.05")) == Decimal("100.05")
    assert round_to_tick(Decimal("100.02"), Decimal("0.05")) == Decimal("100.00")
    assert round_to_tick(Decimal("100.01"), Decimal("0.05"), up=True) == Decimal("100.05")
    assert round_to_tick(Decimal("83.2526"), Decimal("0.0025"), up=False) == Decimal("83.2525")
