"""The OpenAlgo symbol grammar.

    equity / index   TICKER                        RELIANCE, M&M, BAJAJ-AUTO, NIFTY
    future           NAME DDMMMYY FUT              BANKNIFTY29DEC26FUT
    option           NAME DDMMMYY STRIKE (CE|PE)   NIFTY01DEC2626000CE, VEDL25APR24292.5CE
    crypto perpetual NAME FUT                      BTCUSDFUT

Whole strikes carry no decimals and fractional strikes keep them, so `format` and `parse` are
exact inverses on every symbol this module can produce (property-tested).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from openalgo_lab.domain.enums import Exchange, OptionType
from openalgo_lab.domain.errors import ValidationError

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTH_NUMBER = {m: i + 1 for i, m in enumerate(MONTHS)}
_MONTH_ALT = "|".join(MONTHS)

_TICKER = re.compile(r"^[A-Z0-9][A-Z0-9&\-_.]{0,49}$")
_FUTURE = re.compile(
    rf"^(?P<name>[A-Z0-9&\-_.]+?)(?P<dd>\d{{2}})(?P<mmm>{_MONTH_ALT})(?P<yy>\d{{2}})FUT$"
)
_OPTION = re.compile(
    rf"^(?P<name>[A-Z0-9&\-_.]+?)(?P<dd>\d{{2}})(?P<mmm>{_MONTH_ALT})(?P<yy>\d{{2}})"
    r"(?P<strike>\d+(?:\.\d+)?)(?P<kind>CE|PE)$"
)
_PERPETUAL = re.compile(r"^(?P<name>[A-Z0-9]+)FUT$")


class SymbolKind(StrEnum):
    EQUITY = "equity"  # cash equities and indices: a plain ticker
    FUTURE = "future"
    OPTION = "option"
    PERPETUAL = "perpetual"


@dataclass(frozen=True, slots=True)
class ParsedSymbol:
    kind: SymbolKind
    name: str
    expiry: date | None = None
    strike: Decimal | None = None
    option_type: OptionType | None = None


def format_expiry(d: date) -> str:
    """`DDMMMYY`, the expiry inside a symbol and in the options APIs (`01DEC26`)."""
    return f"{d.day:02d}{MONTHS[d.month - 1]}{d.year % 100:02d}"


def format_expiry_dashed(d: date) -> str:
    """`DD-MMM-YY`, the expiry in the master contract and in `/expiry` (`01-DEC-26`)."""
    return f"{d.day:02d}-{MONTHS[d.month - 1]}-{d.year % 100:02d}"


def parse_expiry(text: str, field: str = "expiry_date") -> date:
    """Accept `DDMMMYY` or `DD-MMM-YY` (any case), as the options APIs and `/expiry` use."""
    cleaned = text.strip().upper().replace("-", "")
    m = re.fullmatch(rf"(\d{{2}})({_MONTH_ALT})(\d{{2}})", cleaned)
    if not m:
        raise ValidationError(field, f"must be a date like 01DEC26, got {text!r}")
    return _make_date(m.group(1), m.group(2), m.group(3), field)


def _make_date(dd: str, mmm: str, yy: str, field: str) -> date:
    try:
        return date(2000 + int(yy), _MONTH_NUMBER[mmm], int(dd))
    except ValueError:
        raise ValidationError(field, f"{dd}{mmm}{yy} is not a calendar date") from None


def format_strike(strike: Decimal) -> str:
    """Whole strikes without decimals (26000), fractional ones as they are (292.5)."""
    if strike == strike.to_integral_value():
        return str(int(strike))
    return format(strike.normalize(), "f")


def format_future(name: str, expiry: date) -> str:
    return f"{name}{format_expiry(expiry)}FUT"


def format_option(name: str, expiry: date, strike: Decimal, option_type: OptionType) -> str:
    return f"{name}{format_expiry(expiry)}{format_strike(strike)}{option_type.value}"


def format_symbol(parsed: ParsedSymbol) -> str:
    if parsed.kind is SymbolKind.EQUITY:
        return parsed.name
    if parsed.kind is SymbolKind.PERPETUAL:
        return f"{parsed.name}FUT"
    assert parsed.expiry is not None
    if parsed.kind is SymbolKind.FUTURE:
        return format_future(parsed.name, parsed.expiry)
    assert parsed.strike is not None and parsed.option_type is not None
    return format_option(parsed.name, parsed.expiry, parsed.strike, parsed.option_type)


def parse_symbol(symbol: str, exchange: Exchange | None = None) -> ParsedSymbol:
    """Parse an OpenAlgo symbol; `exchange` (when known) decides between ticker and contract.

    On cash and index exchanges every symbol is a plain ticker, even one that looks like a
    contract. On derivative exchanges it must be a future or an option (or, on CRYPTO, a
    perpetual). With no exchange, the contract forms are tried first.
    """
    if not isinstance(symbol, str) or not symbol:
        raise ValidationError("symbol", "must be a non-empty string")
    if symbol != symbol.strip() or symbol != symbol.upper():
        raise ValidationError(
            "symbol", f"{symbol!r} is not an OpenAlgo symbol (upper case, no spaces)"
        )
    if exchange is not None and not exchange.is_derivative:
        return _parse_ticker(symbol)
    m = _OPTION.match(symbol)
    if m:
        return ParsedSymbol(
            SymbolKind.OPTION,
            m["name"],
            _make_date(m["dd"], m["mmm"], m["yy"], "symbol"),
            Decimal(m["strike"]),
            OptionType(m["kind"]),
        )
    m = _FUTURE.match(symbol)
    if m:
        return ParsedSymbol(
            SymbolKind.FUTURE, m["name"], _make_date(m["dd"], m["mmm"], m["yy"], "symbol")
        )
    if exchange is Exchange.CRYPTO:
        m = _PERPETUAL.match(symbol)
        if m:
            return ParsedSymbol(SymbolKind.PERPETUAL, m["name"])
    if exchange is not None:
        raise ValidationError(
            "symbol",
            f"{symbol!r} is not a {exchange} contract; expected NAME+DDMMMYY+FUT "
            "or NAME+DDMMMYY+STRIKE+CE/PE",
        )
    return _parse_ticker(symbol)


def _parse_ticker(symbol: str) -> ParsedSymbol:
    if not _TICKER.match(symbol):
        raise ValidationError("symbol", f"{symbol!r} is not a valid ticker")
    return ParsedSymbol(SymbolKind.EQUITY, symbol)
