"""The master contract and the shipped sample master: contents, exchange rules, round trips."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest

from openalgo_lab.domain.calendar import MarketCalendar
from openalgo_lab.domain.enums import Exchange, InstrumentType, OptionType
from openalgo_lab.domain.errors import NotFoundError, ValidationError
from openalgo_lab.domain.models import Instrument
from openalgo_lab.domain.symbols import SymbolKind, parse_symbol
from openalgo_lab.instruments import (
    MasterContract,
    build_sample_master,
    instrument_record,
    load_csv,
    reference_prices,
    sample_master,
    save_csv,
)

D = Decimal
TODAY = date(2026, 11, 24)  # a Tuesday and a holiday: the NIFTY weekly moved to Mon 23-Nov
CAL = MarketCalendar()
NIFTY_50 = {
    "ADANIENT", "ADANIPORTS", "APOLLOHOSP", "ASIANPAINT", "AXISBANK", "BAJAJ-AUTO",
    "BAJFINANCE", "BAJAJFINSV", "BEL", "BHARTIARTL", "CIPLA", "COALINDIA", "DRREDDY",
    "EICHERMOT", "ETERNAL", "GRASIM", "HCLTECH", "HDFCBANK", "HDFCLIFE", "HINDALCO",
    "HINDUNILVR", "ICICIBANK", "INDIGO", "INFY", "ITC", "JIOFIN", "JSWSTEEL", "KOTAKBANK",
    "LT", "M&M", "MARUTI", "MAXHEALTH", "NESTLEIND", "NTPC", "ONGC", "POWERGRID", "RELIANCE",
    "SBILIFE", "SBIN", "SHRIRAMFIN", "SUNPHARMA", "TATACONSUM", "TATASTEEL", "TCS", "TECHM",
    "TITAN", "TMPV", "TRENT", "ULTRACEMCO", "WIPRO",
}  # fmt: skip


@pytest.fixture(scope="module")
def master() -> MasterContract:
    return sample_master(TODAY)


def symbols(master: MasterContract, exchange: Exchange) -> set[str]:
    return {i.symbol for i in master if i.exchange is exchange}


# -- contents -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exchange", "symbol"),
    [
        (Exchange.NFO, "NIFTY01DEC2626000CE"),
        (Exchange.NFO, "NIFTY01DEC2626000PE"),
        (Exchange.NFO, "NIFTY29DEC26FUT"),
        (Exchange.NFO, "NIFTY25JAN27FUT"),  # 26-Jan-2027 (Republic Day) moves to Monday
        (Exchange.NFO, "BANKNIFTY29DEC26FUT"),
        (Exchange.NFO, "BANKNIFTY29DEC2660000PE"),
        (Exchange.NFO, "FINNIFTY29DEC2627800CE"),
        (Exchange.NFO, "MIDCPNIFTY29DEC2613825PE"),
        (Exchange.NFO, "NIFTYNXT5029DEC2670000CE"),
        (Exchange.NFO, "RELIANCE29DEC26FUT"),
        (Exchange.NFO, "RELIANCE29DEC261500CE"),
        (Exchange.NFO, "M&M29DEC263700PE"),
        (Exchange.NFO, "BAJAJ-AUTO29DEC26FUT"),
        (Exchange.NFO, "ONGC29DEC26242.5CE"),
        (Exchange.BFO, "SENSEX26NOV2685000CE"),
        (Exchange.BFO, "SENSEX03DEC2685000CE"),
        (Exchange.BFO, "SENSEX31DEC26FUT"),
        (Exchange.BFO, "BANKEX31DEC26FUT"),
        (Exchange.BFO, "SENSEX5031DEC2627000PE"),
        (Exchange.NSE, "RELIANCE"),
        (Exchange.NSE, "M&M"),
        (Exchange.BSE, "BAJAJ-AUTO"),
        (Exchange.NSE_INDEX, "NIFTY"),
        (Exchange.NSE_INDEX, "INDIAVIX"),
        (Exchange.NSE_INDEX, "NIFTYIT"),
        (Exchange.BSE_INDEX, "SENSEX"),
        (Exchange.BSE_INDEX, "SENSEX50"),
    ],
)
def test_sample_lists_expected_symbols(
    master: MasterContract, exchange: Exchange, symbol: str
) -> None:
    assert master.find(exchange, symbol) is not None


@pytest.mark.parametrize(
    "symbol",
    [
        "NIFTY01DEC26FUT",  # index futures are monthly only
        "NIFTY23NOV2626000CE",  # expired yesterday
        "BANKNIFTY01DEC2660000CE",  # no BANKNIFTY weeklies
        "NIFTY24NOV2626000CE",  # the holiday itself is never an expiry
    ],
)
def test_sample_omits_contracts_that_do_not_exist(master: MasterContract, symbol: str) -> None:
    assert master.find(Exchange.NFO, symbol) is None


def test_cash_covers_nifty_50_on_both_exchanges(master: MasterContract) -> None:
    assert symbols(master, Exchange.NSE) >= NIFTY_50
    assert symbols(master, Exchange.BSE) >= NIFTY_50
    rel_nse = master.get(Exchange.NSE, "RELIANCE")
    rel_bse = master.get(Exchange.BSE, "RELIANCE")
    assert (rel_nse.brsymbol, rel_nse.brexchange, rel_nse.lotsize) == ("RELIANCE-EQ", "NSE", 1)
    assert (rel_bse.brsymbol, rel_bse.brexchange) == ("RELIANCE", "BSE")
    assert rel_nse.name == "RELIANCE INDUSTRIES"
    assert rel_nse.instrumenttype is InstrumentType.EQ


def test_indices(master: MasterContract) -> None:
    assert {"NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTYNXT50", "INDIAVIX"} <= symbols(
        master, Exchange.NSE_INDEX
    )
    assert {"SENSEX", "BANKEX", "SENSEX50"} <= symbols(master, Exchange.BSE_INDEX)
    for inst in master:
        if inst.exchange.is_index:
            assert inst.instrumenttype is InstrumentType.INDEX
            assert (inst.lotsize, inst.tick_size) == (1, D("0.05"))


def test_holiday_shifted_weekly_is_listed_before_it_expires() -> None:
    master = sample_master(date(2026, 11, 17))
    assert master.find(Exchange.NFO, "NIFTY23NOV2626000PE") is not None
    assert master.find(Exchange.NFO, "NIFTY17NOV2626000CE") is not None  # expires today
    assert date(2026, 11, 23) in master.expiries("NIFTY", Exchange.NFO, "options")
    assert date(2026, 11, 24) not in master.expiries("NIFTY", Exchange.NFO, "options")


def test_sensex_weeklies_fall_on_thursdays(master: MasterContract) -> None:
    weeklies = CAL.weekly_expiries(Exchange.BFO, TODAY, 5)
    assert all(d.weekday() == 3 for d in weeklies)  # no BSE holiday in these weeks
    assert set(weeklies) <= set(master.expiries("SENSEX", Exchange.BFO, "options"))
    assert weeklies[0] == date(2026, 11, 26)


@pytest.mark.parametrize(
    ("name", "exchange"),
    [
        ("BANKNIFTY", Exchange.NFO),
        ("FINNIFTY", Exchange.NFO),
        ("MIDCPNIFTY", Exchange.NFO),
        ("NIFTYNXT50", Exchange.NFO),
        ("BANKEX", Exchange.BFO),
        ("SENSEX50", Exchange.BFO),
        ("RELIANCE", Exchange.NFO),
    ],
)
def test_monthly_only_underlyings(master: MasterContract, name: str, exchange: Exchange) -> None:
    monthlies = CAL.monthly_expiries(exchange, TODAY, 3)
    assert master.expiries(name, exchange, "options") == monthlies
    assert master.expiries(name, exchange, "futures") == monthlies


def test_expiries_follow_the_calendar(master: MasterContract) -> None:
    weekly = CAL.weekly_expiries(Exchange.NFO, TODAY, 5)
    monthly = CAL.monthly_expiries(Exchange.NFO, TODAY, 3)
    options = master.expiries("NIFTY", Exchange.NFO, "options")
    assert options == sorted(set(weekly) | set(monthly))
    assert options[:5] == [date(2026, 12, d) for d in (1, 8, 15, 22, 29)]
    assert master.expiries("nifty", Exchange.NFO, "FUTURES") == monthly
    assert master.expiries("NIFTY", Exchange.BFO, "options") == []


def test_expiries_rejects_unknown_kind(master: MasterContract) -> None:
    with pytest.raises(ValidationError, match="futures or options"):
        master.expiries("NIFTY", Exchange.NFO, "weekly")


@pytest.mark.parametrize(
    ("name", "exchange", "lot", "freeze"),
    [
        ("NIFTY", Exchange.NFO, 65, 1800),
        ("BANKNIFTY", Exchange.NFO, 30, 600),
        ("FINNIFTY", Exchange.NFO, 60, 1800),
        ("MIDCPNIFTY", Exchange.NFO, 120, 2800),
        ("NIFTYNXT50", Exchange.NFO, 25, 600),
        ("SENSEX", Exchange.BFO, 20, 1000),
        ("BANKEX", Exchange.BFO, 30, 900),
        ("HDFCBANK", Exchange.NFO, 650, None),
        ("TATASTEEL", Exchange.NFO, 2750, None),
    ],
)
def test_lot_sizes_and_freeze_quantities(
    master: MasterContract, name: str, exchange: Exchange, lot: int, freeze: int | None
) -> None:
    contracts = [i for i in master if i.exchange is exchange and i.name == name]
    assert contracts
    assert {i.lotsize for i in contracts} == {lot}
    if freeze is not None:
        assert {i.freeze_qty for i in contracts} == {freeze}


def test_tick_sizes(master: MasterContract) -> None:
    prices = reference_prices()
    for inst in master:
        if inst.exchange.is_cash:
            expected = D("0.01") if prices[inst.key] < 250 else D("0.05")
        elif inst.underlying_exchange is Exchange.NSE:
            expected = D("0.01") if prices[(Exchange.NSE, inst.underlying)] < 250 else D("0.05")
        else:
            expected = D("0.05")
        assert inst.tick_size == expected, inst.symbol
    assert master.get(Exchange.NSE, "TATASTEEL").tick_size == D("0.01")
    assert master.get(Exchange.NFO, "TATASTEEL29DEC26FUT").tick_size == D("0.01")


def test_every_symbol_parses_back_to_its_fields(master: MasterContract) -> None:
    for inst in master:
        parsed = parse_symbol(inst.symbol, inst.exchange)
        if not inst.is_derivative:
            assert parsed.kind is SymbolKind.EQUITY and parsed.name == inst.symbol
            assert inst.expiry is None and inst.strike == 0
            continue
        assert (parsed.name, parsed.expiry) == (inst.name, inst.expiry), inst.symbol
        if inst.is_future:
            assert parsed.kind is SymbolKind.FUTURE and inst.strike == 0
        else:
            assert parsed.kind is SymbolKind.OPTION
            assert parsed.strike == inst.strike
            assert parsed.option_type == OptionType(inst.instrumenttype.value)


def test_keys_and_tokens_are_unique(master: MasterContract) -> None:
    keys = Counter(i.key for i in master)
    tokens = Counter((i.exchange, i.token) for i in master)
    assert max(keys.values()) == 1
    assert max(tokens.values()) == 1
    assert master.by_token(Exchange.NSE, "2885") == master.get(Exchange.NSE, "RELIANCE")
    assert master.by_token(Exchange.NSE, "no-such-token") is None


def test_derivatives_name_their_underlying(master: MasterContract) -> None:
    for inst in master:
        if inst.is_derivative:
            underlying = master.underlying_of(inst)
            assert underlying is not None, inst.symbol
            assert underlying.symbol == inst.name == inst.underlying
            assert inst.exchange is (
                Exchange.BFO if inst.exchange is Exchange.BFO else Exchange.NFO
            )
            assert inst.expiry is not None and inst.expiry >= TODAY
    assert master.underlying_of(master.get(Exchange.NSE, "SBIN")) is None
    nifty_ce = master.get(Exchange.NFO, "NIFTY01DEC2626000CE")
    assert nifty_ce.underlying_exchange is Exchange.NSE_INDEX
    assert master.get(Exchange.BFO, "SENSEX31DEC26FUT").underlying_exchange is Exchange.BSE_INDEX


def test_strike_windows_are_centred_on_the_reference_price(master: MasterContract) -> None:
    chain = master.option_chain("NIFTY", Exchange.NFO, date(2026, 12, 1))
    strikes = [strike for strike, _, _ in chain]
    assert strikes[0] == 24000 and strikes[-1] == 28000 and len(strikes) == 81
    assert all(b - a == 50 for a, b in pairwise(strikes))
    far = master.option_chain("NIFTY", Exchange.NFO, date(2027, 2, 23))
    assert 0 < len(far) < len(chain)


def test_option_chain_pairs_calls_and_puts(master: MasterContract) -> None:
    expiry = date(2026, 12, 29)
    chain = master.option_chain("BANKNIFTY", Exchange.NFO, expiry)
    assert [s for s, _, _ in chain] == sorted(s for s, _, _ in chain)
    for strike, ce, pe in chain:
        assert ce is not None and pe is not None
        assert (ce.instrumenttype, pe.instrumenttype) == (InstrumentType.CE, InstrumentType.PE)
        assert ce.strike == pe.strike == strike
        assert ce.expiry == pe.expiry == expiry
    assert master.option_chain("BANKNIFTY", Exchange.NFO, date(2026, 12, 1)) == []


def test_option_chain_leaves_a_missing_side_empty() -> None:
    ce = Instrument(
        "X29DEC26100CE", Exchange.NFO, "X", InstrumentType.CE, "1", D("0.05"),
        expiry=date(2026, 12, 29), strike=D(100),
    )  # fmt: skip
    pe = replace(ce, symbol="X29DEC26110PE", token="2", instrumenttype=InstrumentType.PE)
    pe = replace(pe, strike=D(110))
    chain = MasterContract([ce, pe]).option_chain("X", Exchange.NFO, date(2026, 12, 29))
    assert chain == [(D(100), ce, None), (D(110), None, pe)]


def test_futures_nearest_first(master: MasterContract) -> None:
    futures = master.futures("NIFTY", Exchange.NFO)
    assert [f.symbol for f in futures] == ["NIFTY29DEC26FUT", "NIFTY25JAN27FUT", "NIFTY23FEB27FUT"]
    assert master.futures("NOSUCH", Exchange.NFO) == []


def test_get_unknown_symbol_raises_not_found(master: MasterContract) -> None:
    with pytest.raises(NotFoundError) as err:
        master.get(Exchange.NSE, "NOSUCHCO")
    assert err.value.message == "Symbol NOSUCHCO not found on NSE"
    assert err.value.http_status == 404
    assert master.find(Exchange.NSE, "NOSUCHCO") is None


def test_duplicate_symbols_are_rejected() -> None:
    sbin = Instrument("SBIN", Exchange.NSE, "STATE BANK OF INDIA", InstrumentType.EQ, "1", D(1))
    with pytest.raises(ValidationError, match="duplicate symbol SBIN on NSE"):
        MasterContract([sbin, replace(sbin, token="2")])


# -- records and CSV ------------------------------------------------------------------------------
def test_instrument_record_has_openalgos_fields(master: MasterContract) -> None:
    option = master.get(Exchange.NFO, "NIFTY01DEC2626000CE")
    record = master.record(option)
    assert list(record) == [
        "id", "symbol", "brsymbol", "name", "exchange", "brexchange", "token", "expiry",
        "strike", "lotsize", "instrumenttype", "tick_size", "freeze_qty",
    ]  # fmt: skip
    assert isinstance(record["id"], int)
    assert record["expiry"] == "01-DEC-26"
    assert (record["strike"], record["lotsize"], record["tick_size"]) == (26000.0, 65, 0.05)
    assert (record["instrumenttype"], record["exchange"], record["freeze_qty"]) == (
        "CE",
        "NFO",
        1800,
    )
    equity = instrument_record(master.get(Exchange.NSE, "SBIN"))
    assert "id" not in equity
    assert (equity["expiry"], equity["strike"], equity["instrumenttype"]) == ("", 0.0, "EQ")


def test_csv_round_trip_is_exact(master: MasterContract, tmp_path: Path) -> None:
    path = tmp_path / "master.csv"
    save_csv(master, path)
    loaded = load_csv(path)
    assert list(loaded) == list(master)
    fractional = loaded.get(Exchange.NFO, "ONGC29DEC26242.5CE")
    assert str(fractional.strike) == "242.5" and str(fractional.tick_size) == "0.01"
    header = path.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("symbol,brsymbol,name,exchange,brexchange,token,expiry,strike,")


def test_load_csv_accepts_openalgo_instruments_export(tmp_path: Path) -> None:
    path = tmp_path / "instruments_nfo.csv"
    path.write_text(
        "symbol,brsymbol,name,exchange,brexchange,token,expiry,strike,lotsize,instrumenttype,"
        "tick_size\n"
        "SBIN,SBIN-EQ,STATE BANK OF INDIA,NSE,NSE,3045,,-0.01,1,,0.05\n"
        "NIFTY29DEC26FUT,NIFTY26DECFUT,NIFTY,NFO,NFO,49543,29-DEC-26,-0.01,65,FUTIDX,0.05\n"
        "NIFTY29DEC2626000CE,X,NIFTY,NFO,NFO,49544,29-DEC-26,26000.0,65,OPTIDX,0.05\n",
        encoding="utf-8",
    )
    master = load_csv(path)
    sbin = master.get(Exchange.NSE, "SBIN")
    assert (sbin.instrumenttype, sbin.strike, sbin.freeze_qty) == (InstrumentType.EQ, 0, 0)
    fut = master.get(Exchange.NFO, "NIFTY29DEC26FUT")
    assert (fut.instrumenttype, fut.strike, fut.expiry) == (
        InstrumentType.FUT,
        0,
        date(2026, 12, 29),
    )
    assert master.get(Exchange.NFO, "NIFTY29DEC2626000CE").strike == 26000


def test_load_csv_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "symbol,brsymbol,name,exchange,brexchange,token,expiry,strike,lotsize,instrumenttype,"
        "tick_size\nSBIN,SBIN-EQ,SBI,NSE,NSE,3045,,0,1,EQ,0.05\nX,X,X,MOON,MOON,1,,0,1,EQ,0.05\n",
        encoding="utf-8",
    )
    with pytest.raises(ValidationError, match="line 3"):
        load_csv(path)
    (tmp_path / "cols.csv").write_text("symbol,exchange\nSBIN,NSE\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="missing columns"):
        load_csv(tmp_path / "cols.csv")


# -- never stale, deterministic -------------------------------------------------------------------
def test_same_day_same_master() -> None:
    assert build_sample_master(TODAY) == build_sample_master(TODAY)
    assert sample_master(TODAY) is sample_master(TODAY)


def test_contract_tokens_survive_the_next_day(master: MasterContract) -> None:
    tomorrow = sample_master(date(2026, 11, 25))
    symbol = "NIFTY29DEC2626000CE"
    assert tomorrow.get(Exchange.NFO, symbol).token == master.get(Exchange.NFO, symbol).token


def test_a_future_date_lists_only_live_contracts() -> None:
    day = date(2027, 6, 2)
    instruments = build_sample_master(day)
    expiries = {i.expiry for i in instruments if i.expiry is not None}
    assert min(expiries) >= day
    assert any(i.symbol == "NIFTY08JUN2726000CE" for i in instruments)


def test_reference_prices_cover_every_cash_and_index_row(master: MasterContract) -> None:
    prices = reference_prices()
    for inst in master:
        if not inst.is_derivative:
            assert prices[inst.key] > 0, inst.symbol
    assert D(24000) < prices[(Exchange.NSE_INDEX, "NIFTY")] < D(28000)
    assert D(55000) < prices[(Exchange.NSE_INDEX, "BANKNIFTY")] < D(65000)
    assert D(80000) < prices[(Exchange.BSE_INDEX, "SENSEX")] < D(90000)
    assert prices[(Exchange.NSE, "RELIANCE")] == prices[(Exchange.BSE, "RELIANCE")]
