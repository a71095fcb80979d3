"""The OpenAlgo <-> Kite mapping, checked on the response bodies Zerodha publishes
(`zerodha/kiteconnect-mocks`, copied in `tests/fakes/data/`) and on our own requests."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from openalgo_lab.brokers.zerodha import mapping
from openalgo_lab.brokers.zerodha.http import (
    KiteRefused,
    KiteUnavailable,
    error_from_envelope,
)
from openalgo_lab.brokers.zerodha.master import (
    KiteSymbols,
    ParseReport,
    derivative_name,
    parse_instruments,
)
from openalgo_lab.brokers.zerodha.session import (
    checksum,
    login_url,
    request_token_from,
    session_expiry,
)
from openalgo_lab.domain.calendar import IST
from openalgo_lab.domain.enums import (
    Action,
    Exchange,
    InstrumentType,
    Interval,
    OrderStatus,
    PriceType,
    Product,
)
from openalgo_lab.domain.errors import (
    BrokerError,
    BrokerSessionExpired,
    InsufficientFunds,
    ValidationError,
)
from openalgo_lab.domain.models import Instrument, OrderModification, OrderRequest

DATA = Path(__file__).parent / "fakes" / "data"
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def fixture(name: str) -> Any:
    return json.loads((DATA / name).read_text())["data"]


@pytest.fixture(scope="module")
def symbols() -> KiteSymbols:
    return KiteSymbols.from_instruments(
        parse_instruments((DATA / "instruments_all.csv").read_text())
    )


def test_master_from_the_published_dump() -> None:
    report = ParseReport()
    rows = parse_instruments((DATA / "instruments_all.csv").read_text(), report=report)
    by_symbol = {(i.exchange, i.symbol): i for i in rows}
    assert report.rows == 99 and report.kept == len(rows) == 99 and not report.skipped
    cash = by_symbol[(Exchange.NSE, "CDSL-BE")]
    assert cash.instrumenttype is InstrumentType.EQ and cash.brsymbol == "CDSL-BE"
    assert cash.token == "5421569" and cash.tick_size == Decimal("0.05")
    bse = by_symbol[(Exchange.BSE, "COX&KINGS")]
    assert bse.brexchange == "BSE" and bse.name == "COX & KINGS"
    # the sample's derivative rows have no name: it is recovered from the tradingsymbol
    option = by_symbol[(Exchange.NFO, "BANKNIFTY25JAN1823500CE")]
    assert option.brsymbol == "BANKNIFTY18JAN23500CE" and option.name == "BANKNIFTY"
    assert option.expiry == date(2018, 1, 25) and option.strike == Decimal(23500)
    assert option.lotsize == 40 and option.instrumenttype is InstrumentType.CE
    stock = by_symbol[(Exchange.NFO, "ADANIPORTS28DEC17490PE")]
    assert stock.underlying == "ADANIPORTS" and stock.underlying_exchange is Exchange.NSE


def test_master_symbols_indices_weeklies_and_skips() -> None:
    header = (
        "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,"
        "tick_size,lot_size,instrument_type,segment,exchange\n"
    )
    rows = [
        "256265,1001,NIFTY 50,NIFTY 50,0,,0,0,0,EQ,INDICES,NSE",
        "265,1,SENSEX,SENSEX,0,,0,0.01,0,EQ,INDICES,BSE",  # a positive tick is kept
        "260105,1016,NIFTY BANK,NIFTY BANK,0,,0,0.05,0,EQ,INDICES,NSE",
        "779521,3045,SBIN,STATE BANK OF INDIA,0,,0,0.05,1,EQ,NSE,NSE",
        "10001,40,NIFTY2612126000CE,NIFTY,0,2026-12-01,26000,0.05,65,CE,NFO-OPT,NFO",
        "10002,41,NIFTY26DECFUT,NIFTY,0,2026-12-29,0,0.1,65,FUT,NFO-FUT,NFO",
        "10003,42,SBIN26DEC812.5PE,SBIN,0,2026-12-29,812.5,0.05,750,PE,NFO-OPT,NFO",
        "10004,43,SENSEX2612385000CE,SENSEX,0,2026-12-03,85000,0.05,20,CE,BFO-OPT,BFO",
        "10005,44,BAD ROW,BAD NAME,0,2026-12-03,1,0.05,1,CE,NFO-OPT,NFO",
        "10006,45,X,X,0,,0,0.05,1,EQ,MF,MF",
        "x1,46,Y,Y,0,,0,0.05,1,EQ,NSE,NSE",
        "10007,46,NIFTY26DECFUT,NIFTY,0,2026-12-29,0,0.1,65,FUT,NFO-FUT,NFO",
    ]
    report = ParseReport()
    out = {
        (i.exchange, i.symbol): i
        for i in parse_instruments(header + "\n".join(rows), report=report)
    }
    assert report.skipped == {
        "bad number": 1,
        "name outside OpenAlgo's grammar": 1,
        "segment MF": 1,
        "duplicate symbol": 1,
    }
    assert (Exchange.NSE_INDEX, "NIFTY") in out and (Exchange.NSE_INDEX, "BANKNIFTY") in out
    assert out[(Exchange.NSE_INDEX, "NIFTY")].brsymbol == "NIFTY 50"
    assert out[(Exchange.BSE_INDEX, "SENSEX")].instrumenttype is InstrumentType.INDEX
    weekly = out[(Exchange.NFO, "NIFTY01DEC2626000CE")]
    assert weekly.underlying == "NIFTY" and weekly.underlying_exchange is Exchange.NSE_INDEX
    assert out[(Exchange.NFO, "NIFTY29DEC26FUT")].brsymbol == "NIFTY26DECFUT"
    assert out[(Exchange.NFO, "SBIN29DEC26812.5PE")].underlying_exchange is Exchange.NSE
    assert out[(Exchange.BFO, "SENSEX03DEC2685000CE")].underlying_exchange is Exchange.BSE_INDEX


@pytest.mark.parametrize(
    ("tradingsymbol", "kind", "strike", "name"),
    [
        ("NIFTY2612126000CE", "CE", "26000", "NIFTY"),
        ("BANKNIFTY18JAN23500PE", "PE", "23500", "BANKNIFTY"),
        ("VEDL24APR292.5CE", "CE", "292.5", "VEDL"),
        ("USDINR21JUNFUT", "FUT", "0", "USDINR"),
        ("M&M26DECFUT", "FUT", "0", "M&M"),
        ("GARBAGE", "CE", "10", ""),
    ],
)
def test_derivative_name(tradingsymbol: str, kind: str, strike: str, name: str) -> None:
    assert derivative_name(tradingsymbol, kind, Decimal(strike)) == name


def test_orders_fixture(symbols: KiteSymbols) -> None:
    orders = [mapping.parse_order(row, symbols) for row in fixture("orders.json")]
    statuses = [o.status for o in orders]
    assert statuses[:4] == [
        OrderStatus.CANCELLED,
        OrderStatus.COMPLETE,
        OrderStatus.COMPLETE,
        OrderStatus.REJECTED,
    ]
    first = orders[0]
    assert (first.exchange, first.symbol) == (Exchange.CDS, "USDINR21JUNFUT")  # not in master
    assert first.pricetype is PriceType.LIMIT and first.price == Decimal(72)
    assert first.product is Product.NRML and first.action is Action.BUY
    assert first.placed_at == datetime(2021, 5, 31, 9, 18, 57, tzinfo=IST)
    rejected = orders[3]
    assert rejected.rejection_reason and rejected.tag == "icebergord"
    assert rejected.pending_quantity == 0
    nifty = orders[-1]
    assert nifty.filled_quantity == 150 and nifty.average_price > 0


def test_order_history_transient_states(symbols: KiteSymbols) -> None:
    states = [mapping.parse_order(r, symbols).status for r in fixture("order_info.json")]
    assert set(states) == {OrderStatus.OPEN}  # every transient state is still working


@pytest.mark.parametrize(
    ("status", "filled", "quantity", "expected"),
    [
        ("COMPLETE", 10, 10, OrderStatus.COMPLETE),
        ("OPEN", 4, 10, OrderStatus.PARTIALLY_FILLED),
        ("OPEN", 0, 10, OrderStatus.OPEN),
        ("TRIGGER PENDING", 0, 10, OrderStatus.TRIGGER_PENDING),
        ("CANCELLED", 4, 10, OrderStatus.CANCELLED),
        ("REJECTED", 0, 10, OrderStatus.REJECTED),
        ("AMO REQ RECEIVED", 0, 10, OrderStatus.OPEN),
        ("SOMETHING NEW", 0, 10, OrderStatus.OPEN),
    ],
)
def test_status_table(status: str, filled: int, quantity: int, expected: OrderStatus) -> None:
    assert mapping.order_status(status, filled, quantity) is expected


def test_trades_positions_holdings_funds(symbols: KiteSymbols) -> None:
    trades = [mapping.parse_trade(r, symbols) for r in fixture("trades.json")]
    sbin = trades[0]
    assert (sbin.symbol, sbin.exchange, sbin.quantity) == ("SBIN", Exchange.NSE, 1)
    assert sbin.price == Decimal("420.65") and sbin.timestamp.tzinfo is not None
    assert trades[1].price == Decimal("72.755")  # currency prices keep their 4 decimals
    positions = [mapping.parse_position(r, symbols) for r in fixture("positions.json")["net"]]
    lead = positions[0]
    assert lead.symbol == "LEADMINI17DECFUT" and lead.exchange is Exchange.MCX
    assert lead.quantity == 1 and lead.average_price == Decimal("161.05")
    guinea = positions[1]
    assert guinea.quantity == 0 and guinea.unrealized_pnl == Decimal(801)
    holdings = [mapping.parse_holding(r, symbols) for r in fixture("holdings.json")]
    assert holdings[0].symbol == "AARON" and holdings[0].average_price == Decimal(161)
    assert holdings[1].exchange is Exchange.BSE and holdings[1].quantity == 16
    funds = mapping.parse_funds(fixture("margins.json"))
    assert funds.availablecash == Decimal("99725.05000000002") + Decimal("100661.7")
    assert funds.utiliseddebits == Decimal("145706.55")
    assert funds.m2mrealized == Decimal("761.7")
    with pytest.raises(BrokerError, match="neither an equity nor a commodity"):
        mapping.parse_funds({})


def test_quote_ltp_ohlc_and_candles() -> None:
    depth = mapping.parse_depth(fixture("quote.json")["NSE:INFY"], Exchange.NSE, "INFY", NOW)
    q = depth.quote
    assert q.ltp == Decimal("1412.95") and q.prev_close == Decimal("1389.65")
    assert q.bid == 0 and q.ask == Decimal("1412.95") and q.ask_qty == 5191
    assert q.volume == 7360198 and len(depth.asks) == 1 and depth.bids == ()
    ltp = mapping.parse_depth(fixture("ltp.json")["NSE:INFY"], Exchange.NSE, "INFY", NOW)
    assert ltp.quote.ltp == Decimal("1074.35") and ltp.quote.timestamp == NOW
    ohlc = mapping.parse_depth(fixture("ohlc.json")["NSE:INFY"], Exchange.NSE, "INFY", NOW)
    assert ohlc.quote.high == Decimal("1085.9")
    candles = mapping.parse_candles(fixture("historical_minute.json"))
    assert candles[0].start == datetime(2017, 12, 15, 9, 15, tzinfo=IST)
    assert candles[0].open == Decimal("1704.5") and candles[0].volume == 2499
    with_oi = mapping.parse_candles(fixture("historical_oi.json"))
    assert with_oi[0].oi == 13667775
    with pytest.raises(BrokerError, match="bad candle"):
        mapping.parse_candles({"candles": [["2017-12-15T09:15:00+0530", 1, 2]]})


def test_bad_rows_are_broker_errors(symbols: KiteSymbols) -> None:
    row = dict(fixture("orders.json")[0])
    row["quantity"] = "lots"
    with pytest.raises(BrokerError, match="bad number in quantity"):
        mapping.parse_order(row, symbols)
    del row["order_id"]
    with pytest.raises(BrokerError):
        mapping.parse_order(row, symbols)
    row = dict(fixture("orders.json")[0], order_type="ICEBERG")
    with pytest.raises(BrokerError, match="unknown order_type"):
        mapping.parse_order(row, symbols)


def _instrument(**kw: Any) -> Instrument:
    base: dict[str, Any] = {
        "symbol": "NIFTY01DEC2626000CE",
        "exchange": Exchange.NFO,
        "name": "NIFTY",
        "instrumenttype": InstrumentType.CE,
        "token": "10001",
        "tick_size": Decimal("0.05"),
        "lotsize": 65,
        "brsymbol": "NIFTY2612126000CE",
        "brexchange": "NFO",
    }
    base.update(kw)
    return Instrument(**base)


def test_order_form_and_tags() -> None:
    request = OrderRequest(
        symbol="NIFTY01DEC2626000CE",
        exchange=Exchange.NFO,
        action=Action.SELL,
        quantity=65,
        pricetype=PriceType.SL,
        product=Product.NRML,
        price=Decimal("101.50"),
        trigger_price=Decimal("100"),
        tag="f" * 32,
    )
    form = mapping.order_form(request, _instrument(), request.tag)
    assert form == {
        "exchange": "NFO",
        "tradingsymbol": "NIFTY2612126000CE",
        "transaction_type": "SELL",
        "quantity": "65",
        "product": "NRML",
        "order_type": "SL",
        "validity": "DAY",
        "price": "101.5",
        "trigger_price": "100",
        "disclosed_quantity": "0",
        "tag": mapping.kite_tag("f" * 32),
    }
    assert len(form["tag"]) == 20 and form["tag"].isalnum()
    assert mapping.kite_tag("short1") == "short1"
    assert mapping.kite_tag("key:1") != mapping.kite_tag("key:2")
    market = mapping.order_form(
        OrderRequest("SBIN", Exchange.NSE, Action.BUY, 1), _instrument(), ""
    )
    assert market["market_protection"] == "-1" and "tag" not in market
    assert market["price"] == "0" and market["trigger_price"] == "0"


def test_modify_form_keeps_unchanged_fields(symbols: KiteSymbols) -> None:
    current = mapping.parse_order(fixture("orders.json")[0], symbols)
    form = mapping.modify_form(current, OrderModification(price=Decimal("72.25")))
    assert form["price"] == "72.25" and form["quantity"] == "1"
    assert form["order_type"] == "LIMIT" and form["trigger_price"] == "0"
    to_market = mapping.modify_form(current, OrderModification(pricetype=PriceType.MARKET))
    assert to_market["price"] == "0" and to_market["order_type"] == "MARKET"


def test_intervals_and_exchanges() -> None:
    assert mapping.kite_interval(Interval.H1) == "60minute"
    assert mapping.kite_interval(Interval.D) == "day"
    with pytest.raises(ValidationError, match="2m is not supported by Zerodha"):
        mapping.kite_interval(Interval.M2)
    assert mapping.index_symbol("NIFTY 50") == "NIFTY"
    assert mapping.index_symbol("NIFTY PSU BANK") == "NIFTYPSUBANK"
    assert mapping.EXCHANGE_TO_KITE[Exchange.NSE_INDEX] == "NSE"
    with pytest.raises(BrokerError, match="unknown exchange"):
        mapping.exchange_from_kite("XYZ")


@pytest.mark.parametrize(
    ("status", "body", "kind", "needle"),
    [
        (
            403,
            {"error_type": "TokenException", "message": "Incorrect `api_key`"},
            BrokerSessionExpired,
            "broker session expired",
        ),
        (
            400,
            {"error_type": "InputException", "message": "Invalid price"},
            KiteRefused,
            "Invalid price",
        ),
        (400, {"error_type": "OrderException", "message": "RMS"}, KiteRefused, "RMS"),
        (400, {"error_type": "MarginException", "message": "short"}, InsufficientFunds, "short"),
        (
            503,
            {"error_type": "NetworkException", "message": "OMS down"},
            KiteUnavailable,
            "OMS down",
        ),
        (502, {}, KiteUnavailable, "502"),
        (418, {}, KiteRefused, "HTTP 418"),
    ],
)
def test_error_types(status: int, body: dict[str, Any], kind: type, needle: str) -> None:
    err = error_from_envelope(status, body)
    assert isinstance(err, kind) and needle in str(err)
    assert "api_key" not in str(err)  # a session problem never reads as a bad API key


def test_login_pieces() -> None:
    assert checksum("kite_key", "tok", "secret") == hashlib.sha256(b"kite_keytoksecret").hexdigest()
    assert login_url("kite_key") == "https://kite.zerodha.com/connect/login?v=3&api_key=kite_key"
    assert request_token_from(" abc123 ") == "abc123"
    url = "http://127.0.0.1/cb?request_token=XyZ9&action=login&status=success"
    assert request_token_from(url) == "XyZ9"
    with pytest.raises(ValidationError, match="did not succeed"):
        request_token_from("http://x/?request_token=a&status=cancelled")
    with pytest.raises(ValidationError, match="no request_token"):
        request_token_from("http://x/?status=success")
    with pytest.raises(ValidationError, match="letters and digits"):
        request_token_from("abc;drop")
    evening = datetime(2026, 11, 25, 20, 0, tzinfo=IST)
    assert session_expiry(evening) == datetime(2026, 11, 26, 6, 0, tzinfo=IST)
    early = datetime(2026, 11, 25, 5, 0, tzinfo=IST)
    assert session_expiry(early) == datetime(2026, 11, 25, 6, 0, tzinfo=IST)
