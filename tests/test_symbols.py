"""The OpenAlgo symbol grammar: examples from the reference and round-trip properties."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openalgo_lab.domain import Exchange, OptionType, ValidationError
from openalgo_lab.domain.symbols import (
    ParsedSymbol,
    SymbolKind,
    format_expiry_dashed,
    format_symbol,
    parse_expiry,
    parse_symbol,
)


@pytest.mark.parametrize(
    ("symbol", "exchange", "expected"),
    [
        ("RELIANCE", Exchange.NSE, ParsedSymbol(SymbolKind.EQUITY, "RELIANCE")),
        ("M&M", Exchange.NSE, ParsedSymbol(SymbolKind.EQUITY, "M&M")),
        ("BAJAJ-AUTO", Exchange.BSE, ParsedSymbol(SymbolKind.EQUITY, "BAJAJ-AUTO")),
        ("NIFTY", Exchange.NSE_INDEX, ParsedSymbol(SymbolKind.EQUITY, "NIFTY")),
        (
            "BANKNIFTY29DEC26FUT",
            Exchange.NFO,
            ParsedSymbol(SymbolKind.FUTURE, "BANKNIFTY", date(2026, 12, 29)),
        ),
        (
            "NIFTY01DEC2626000CE",
            Exchange.NFO,
            ParsedSymbol(
                SymbolKind.OPTION, "NIFTY", date(2026, 12, 1), Decimal(26000), OptionType.CE
            ),
        ),
        (
            "VEDL25APR24292.5CE",
            Exchange.NFO,
            ParsedSymbol(
                SymbolKind.OPTION, "VEDL", date(2024, 4, 25), Decimal("292.5"), OptionType.CE
            ),
        ),
        (
            "NIFTYNXT5029DEC2670000PE",
            Exchange.NFO,
            ParsedSymbol(
                SymbolKind.OPTION, "NIFTYNXT50", date(2026, 12, 29), Decimal(70000), OptionType.PE
            ),
        ),
        (
            "M&M29DEC26FUT",
            Exchange.NFO,
            ParsedSymbol(SymbolKind.FUTURE, "M&M", date(2026, 12, 29)),
        ),
        ("BTCUSDFUT", Exchange.CRYPTO, ParsedSymbol(SymbolKind.PERPETUAL, "BTCUSD")),
    ],
)
def test_parse_known_symbols(symbol: str, exchange: Exchange, expected: ParsedSymbol) -> None:
    parsed = parse_symbol(symbol, exchange)
    assert parsed == expected
    assert format_symbol(parsed) == symbol


@pytest.mark.parametrize(
    ("symbol", "exchange", "needle"),
    [
        ("RELIANCE", Exchange.NFO, "not a NFO contract"),
        ("NIFTY31FEB26FUT", Exchange.NFO, "not a calendar date"),
        ("reliance", Exchange.NSE, "upper case"),
        ("", Exchange.NSE, "non-empty"),
        ("REL IANCE", Exchange.NSE, "not a valid ticker"),
    ],
)
def test_bad_symbols_are_named(symbol: str, exchange: Exchange, needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_symbol(symbol, exchange)
    assert err.value.field == "symbol"
    assert needle in err.value.message


names = st.from_regex(r"[A-Z][A-Z&\-]{0,8}[A-Z]", fullmatch=True)
expiries = st.dates(min_value=date(2001, 1, 1), max_value=date(2099, 12, 31))
strikes = st.one_of(
    st.integers(min_value=1, max_value=200_000).map(Decimal),
    st.integers(min_value=1, max_value=2_000_000).map(lambda n: Decimal(n) / 4),
    st.integers(min_value=1, max_value=2_000_000).map(lambda n: Decimal(n) / 100),
)


@given(names, expiries, strikes, st.sampled_from(list(OptionType)))
def test_option_round_trip(name: str, expiry: date, strike: Decimal, kind: OptionType) -> None:
    parsed = ParsedSymbol(SymbolKind.OPTION, name, expiry, strike, kind)
    text = format_symbol(parsed)
    again = parse_symbol(text, Exchange.NFO)
    assert again.name == name and again.expiry == expiry and again.option_type == kind
    assert again.strike == strike
    assert format_symbol(again) == text


@given(names, expiries)
def test_future_round_trip(name: str, expiry: date) -> None:
    text = format_symbol(ParsedSymbol(SymbolKind.FUTURE, name, expiry))
    assert parse_symbol(text, Exchange.BFO) == ParsedSymbol(SymbolKind.FUTURE, name, expiry)


@given(expiries)
def test_expiry_formats_round_trip(expiry: date) -> None:
    dashed = format_expiry_dashed(expiry)
    assert parse_expiry(dashed) == expiry
    assert parse_expiry(dashed.replace("-", "").lower()) == expiry
