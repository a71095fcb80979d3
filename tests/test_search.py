"""Symbol search over the sample master: relevance, filters, typos and limits."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from openalgo_lab.domain.enums import Exchange, InstrumentType
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.models import Instrument
from openalgo_lab.instruments import MasterContract, sample_master


@pytest.fixture(scope="module")
def master() -> MasterContract:
    return sample_master(date(2026, 11, 24))


def keys(results: list[Instrument], n: int | None = None) -> list[str]:
    return [f"{i.exchange}:{i.symbol}" for i in results[:n]]


def test_exact_symbol_comes_first(master: MasterContract) -> None:
    assert keys(master.search("NIFTY01DEC2626000CE")) == ["NFO:NIFTY01DEC2626000CE"]
    assert keys(master.search("NIFTY"), 1) == ["NSE_INDEX:NIFTY"]
    assert keys(master.search("sbin"), 2) == ["NSE:SBIN", "BSE:SBIN"]


def test_name_query_puts_the_stock_first(master: MasterContract) -> None:
    results = master.search("reliance")
    assert keys(results, 3) == ["NSE:RELIANCE", "BSE:RELIANCE", "NFO:RELIANCE29DEC26FUT"]
    assert {i.name for i in results} >= {"RELIANCE", "RELIANCE INDUSTRIES"}


def test_punctuated_symbols(master: MasterContract) -> None:
    assert keys(master.search("M&M"), 2) == ["NSE:M&M", "BSE:M&M"]
    assert keys(master.search("bajaj-auto"), 1) == ["NSE:BAJAJ-AUTO"]
    assert keys(master.search("bajajauto"), 1) == ["NSE:BAJAJ-AUTO"]


def test_company_name_words(master: MasterContract) -> None:
    results = master.search("bajaj auto")
    assert keys(results, 2) == ["NSE:BAJAJ-AUTO", "BSE:BAJAJ-AUTO"]
    assert {i.name for i in results if i.is_derivative} == {"BAJAJ-AUTO"}
    assert keys(master.search("hdfc bank"), 1) == ["NSE:HDFCBANK"]
    assert keys(master.search("mahindra"), 1) == ["NSE:M&M"]  # "MAHINDRA & MAHINDRA"
    assert keys(master.search("nifty bank"), 1) == ["NSE_INDEX:BANKNIFTY"]
    assert keys(master.search("nifty 50"), 1) == ["NSE_INDEX:NIFTY"]


def test_multi_word_option_query(master: MasterContract) -> None:
    results = master.search("NIFTY 26000 DEC CE")
    assert results
    for inst in results:
        assert inst.name == "NIFTY" and inst.instrumenttype is InstrumentType.CE
        assert inst.strike == Decimal(26000)
        assert inst.expiry is not None and inst.expiry.month == 12
    expected = {
        i.symbol
        for i in master
        if i.name == "NIFTY"
        and i.instrumenttype is InstrumentType.CE
        and i.strike == 26000
        and i.expiry is not None
        and i.expiry.month == 12
    }
    assert {i.symbol for i in results} == expected
    assert [i.expiry for i in results] == sorted(i.expiry for i in results if i.expiry)


def test_expiry_and_type_words(master: MasterContract) -> None:
    assert keys(master.search("nifty 01dec26 26000")) == [
        "NFO:NIFTY01DEC2626000CE",
        "NFO:NIFTY01DEC2626000PE",
    ]
    assert keys(master.search("BANKNIFTY FUT")) == [
        "NFO:BANKNIFTY29DEC26FUT",
        "NFO:BANKNIFTY25JAN27FUT",
        "NFO:BANKNIFTY23FEB27FUT",
    ]
    assert keys(master.search("banknifty 60000 put jan27")) == ["NFO:BANKNIFTY25JAN2760000PE"]
    sensex = master.search("SENSEX 85000 CE")
    assert sensex and all(i.expiry and i.expiry.weekday() == 3 for i in sensex)


def test_symbol_prefix(master: MasterContract) -> None:
    results = master.search("BANKNIF")
    assert keys(results, 1) == ["NSE_INDEX:BANKNIFTY"]
    assert all(i.symbol.startswith("BANKNIFTY") for i in results)
    chain = master.search("NIFTY29DEC26")
    assert chain and all(i.symbol.startswith("NIFTY29DEC26") for i in chain)


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("RELAINCE", "NSE:RELIANCE"),
        ("reliace", "NSE:RELIANCE"),
        ("INFOSIS", "NSE:INFY"),
        ("tata stel", "NSE:TATASTEEL"),
        ("banknifti", "NSE_INDEX:BANKNIFTY"),
    ],
)
def test_typos_still_find_the_instrument(master: MasterContract, typo: str, expected: str) -> None:
    assert keys(master.search(typo), 1) == [expected]


def test_exchange_filter(master: MasterContract) -> None:
    bse = master.search("reliance", exchange=Exchange.BSE)
    assert keys(bse) == ["BSE:RELIANCE"]
    nfo = master.search("nifty", exchange=Exchange.NFO)
    assert nfo and all(i.exchange is Exchange.NFO for i in nfo)
    assert master.search("reliance", exchange=Exchange.MCX) == []


def test_instrumenttype_filter(master: MasterContract) -> None:
    futures = master.search("reliance", instrumenttype=InstrumentType.FUT)
    assert keys(futures) == [
        "NFO:RELIANCE29DEC26FUT",
        "NFO:RELIANCE25JAN27FUT",
        "NFO:RELIANCE23FEB27FUT",
    ]
    indices = master.search(
        "nifty", exchange=Exchange.NSE_INDEX, instrumenttype=InstrumentType.INDEX
    )
    assert keys(indices, 1) == ["NSE_INDEX:NIFTY"]
    assert all(i.instrumenttype is InstrumentType.INDEX for i in indices)


def test_limit(master: MasterContract) -> None:
    assert len(master.search("NIFTY")) == 500  # OpenAlgo's cap
    assert keys(master.search("NIFTY", limit=3)) == keys(master.search("NIFTY"), 3)
    assert len(master.search("NIFTY", limit=10_000)) > 500
    with pytest.raises(ValidationError, match="limit"):
        master.search("NIFTY", limit=0)


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_blank_query_is_an_error(master: MasterContract, query: str) -> None:
    with pytest.raises(ValidationError) as err:
        master.search(query)
    assert err.value.field == "query"


def test_no_match_is_empty(master: MasterContract) -> None:
    assert master.search("XQZWV") == []
    assert master.search("RELIANCE 99999 CE") == []


def test_ranking_is_deterministic(master: MasterContract) -> None:
    rebuilt = MasterContract(reversed(list(master)))
    for query in ("NIFTY", "bajaj auto", "RELAINCE", "sensex 85000", "BANK"):
        assert keys(rebuilt.search(query)) == keys(master.search(query))
