"""The official `kiteconnect` SDK against the local Kite fake: proof that the fake speaks Kite.

Every call goes through the real SDK over real HTTP on loopback, so what passes here is what a
Kite adapter built on the same protocol will meet: the login checksum, form-encoded orders,
envelopes the SDK unwraps, exception classes it raises from `error_type`, CSV it parses. Shapes
are checked against Zerodha's published sample bodies (`tests/fakes/data/`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from kiteconnect import KiteConnect
from kiteconnect import exceptions as kex

from openalgo_lab.domain.calendar import IST
from tests.fakes import fixtures
from tests.fakes.kite_faults import RateLimiter
from tests.fakes.kite_server import KiteFake

kite_fake = fixtures.kite_fake  # the shared fixture, used by name below
SAMPLES = Path(__file__).parent / "fakes" / "data"
API_KEY, API_SECRET = "kite_key", "kite_secret"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())["data"]


def login(fake: KiteFake, timeout: float | None = None) -> KiteConnect:
    kite = KiteConnect(API_KEY, root=fake.base_url, timeout=timeout)
    kite.generate_session(fake.request_token(), api_secret=API_SECRET)
    return kite


@pytest.fixture
def kite(kite_fake: KiteFake) -> KiteConnect:
    """A logged-in SDK client; rate limits off (their own tests turn them on)."""
    kite_fake.rate_limits_enabled = False
    return login(kite_fake)


def place(kite: KiteConnect, **overrides: Any) -> str:
    fields: dict[str, Any] = {
        "variety": "regular",
        "exchange": "NSE",
        "tradingsymbol": "SBIN",
        "transaction_type": "BUY",
        "quantity": 10,
        "product": "MIS",
        "order_type": "MARKET",
    }
    fields.update(overrides)
    return str(kite.place_order(**fields))


def statuses(kite: KiteConnect, order_id: str) -> list[str]:
    return [row["status"] for row in kite.order_history(order_id)]


def last_state(kite: KiteConnect, order_id: str) -> dict[str, Any]:
    row: dict[str, Any] = kite.order_history(order_id)[-1]
    return row


# -- session ------------------------------------------------------------------------------------
def test_login_answers_in_the_shape_of_kites_session(kite_fake: KiteFake) -> None:
    kite = KiteConnect(API_KEY, root=kite_fake.base_url)
    session = kite.generate_session(kite_fake.request_token(), api_secret=API_SECRET)
    assert set(session) == set(sample("generate_session.json"))
    assert session["user_id"] == "AB1234" and session["api_key"] == API_KEY
    assert isinstance(session["login_time"], datetime)  # the SDK parsed Kite's timestamp
    assert kite.profile()["user_id"] == "AB1234"
    assert set(kite.profile()) == set(sample("profile.json"))


def test_login_refuses_a_bad_checksum_a_reused_token_and_a_wrong_key(
    kite_fake: KiteFake,
) -> None:
    kite = KiteConnect(API_KEY, root=kite_fake.base_url)
    token = kite_fake.request_token()
    with pytest.raises(kex.TokenException) as bad_secret:
        kite.generate_session(token, api_secret="not the secret")
    assert bad_secret.value.code == 403
    with pytest.raises(kex.TokenException, match="invalid or has expired"):
        kite.generate_session(token, api_secret=API_SECRET)  # request tokens are single-use
    with pytest.raises(kex.InputException):
        KiteConnect("other_key", root=kite_fake.base_url).generate_session(
            kite_fake.request_token(), api_secret=API_SECRET
        )


def test_calls_need_the_version_header_and_a_session(kite_fake: KiteFake) -> None:
    kite_fake.rate_limits_enabled = False
    no_header = httpx.get(f"{kite_fake.base_url}/user/profile")
    assert no_header.status_code == 400
    assert no_header.json()["error_type"] == "InputException"
    with pytest.raises(kex.TokenException) as anonymous:
        KiteConnect(API_KEY, root=kite_fake.base_url).profile()
    assert anonymous.value.code == 403
    forged = KiteConnect(API_KEY, access_token="made-up", root=kite_fake.base_url)
    with pytest.raises(kex.TokenException):
        forged.positions()


def test_expired_and_invalidated_sessions_raise_token_exception(
    kite: KiteConnect, kite_fake: KiteFake
) -> None:
    hook_calls: list[bool] = []
    kite.set_session_expiry_hook(lambda: hook_calls.append(True))
    kite.margins()
    kite_fake.expire_sessions()
    for call in (kite.profile, kite.orders, kite.positions, kite.margins):
        with pytest.raises(kex.TokenException) as expired:
            call()
        assert expired.value.code == 403
    assert len(hook_calls) == 4  # the SDK's hook fires on a 403 TokenException
    again = login(kite_fake)
    assert again.invalidate_access_token() is True
    with pytest.raises(kex.TokenException):
        again.profile()


def test_tokens_expire_at_six_in_the_morning_ist() -> None:
    start = datetime(2026, 11, 24, 10, 0, tzinfo=IST)
    with KiteFake(now=start) as fake:
        fake.rate_limits_enabled = False
        kite = login(fake)
        fake.set_now(datetime(2026, 11, 25, 5, 59, 59, tzinfo=IST))
        assert kite.profile()["user_id"] == "AB1234"
        fake.set_now(datetime(2026, 11, 25, 6, 0, tzinfo=IST))
        with pytest.raises(kex.TokenException):
            kite.profile()
        assert login(fake).profile()["user_id"] == "AB1234"  # a new login works again


def test_unknown_routes_and_methods_get_kites_envelope(
    kite: KiteConnect, kite_fake: KiteFake
) -> None:
    headers = {"X-Kite-Version": "3"}
    missing = httpx.get(f"{kite_fake.base_url}/nothing/here", headers=headers)
    assert missing.status_code == 404 and missing.json()["status"] == "error"
    wrong = httpx.patch(f"{kite_fake.base_url}/user/profile", headers=headers)
    assert wrong.status_code in (404, 405)
    assert httpx.post(f"{kite_fake.base_url}/user/profile", headers=headers).status_code == 405


# -- orders -------------------------------------------------------------------------------------
def test_market_order_fills_at_the_last_price_through_kites_states(
    kite: KiteConnect,
    kite_fake: KiteFake,
) -> None:
    kite_fake.set_ltp("NSE", "SBIN", Decimal("812.35"))
    order_id = place(kite, tag="strat1")
    assert statuses(kite, order_id) == [
        "PUT ORDER REQ RECEIVED",
        "VALIDATION PENDING",
        "OPEN PENDING",
        "OPEN",
        "COMPLETE",
    ]
    (row,) = kite.orders()
    sample_keys = set().union(*(set(o) for o in sample("orders.json")))
    assert set(row) <= sample_keys and set(sample("orders.json")[0]) <= set(row)
    assert row["order_id"] == order_id and row["tag"] == "strat1" and row["tags"] == ["strat1"]
    assert row["average_price"] == 812.35 and row["filled_quantity"] == 10
    assert row["pending_quantity"] == 0 and isinstance(row["order_timestamp"], datetime)
    (trade,) = kite.order_trades(order_id)
    assert set(trade) == set(sample("trades.json")[0])
    assert trade["quantity"] == 10 and trade["average_price"] == 812.35
    assert kite.trades() == [trade]


def test_order_ids_are_fresh_and_kite_shaped(kite: KiteConnect, kite_fake: KiteFake) -> None:
    ids = [place(kite, quantity=1) for _ in range(3)]
    assert len(set(ids)) == 3
    today = kite_fake.now().astimezone(IST).strftime("%y%m%d")
    assert all(len(i) == 15 and i.isdigit() and i.startswith(today) for i in ids)


def test_limit_order_rests_then_fills_at_its_price_when_crossed(
    kite: KiteConnect,
    kite_fake: KiteFake,
) -> None:
    kite_fake.set_ltp("NSE", "SBIN", Decimal("812.35"))
    order_id = place(kite, order_type="LIMIT", price=810)
    assert last_state(kite, order_id)["status"] == "OPEN"
    kite_fake.set_ltp("NSE", "SBIN", Decimal("810.50"))
    assert last_state(kite, order_id)["status"] == "OPEN"
    kite_fake.set_ltp("NSE", "SBIN", Decimal("809.10"))  # trades through the limit
    final = last_state(kite, order_id)
    assert final["status"] == "COMPLETE" and final["average_price"] == 810


def test_marketable_limit_fills_at_the_market(kite: KiteConnect, kite_fake: KiteFake) -> None:
    kite_fake.set_ltp("NSE", "SBIN", Decimal("812.35"))
    order_id = place(kite, order_type="LIMIT", price=815, transaction_type="BUY")
    assert last_state(kite, order_id)["average_price"] == 812.35


def test_modify_then_cancel_keep_kites_history(kite: KiteConnect, kite_fake: KiteFake) -> None:
    kite_fake.set_ltp("NSE", "SBIN", Decimal("812.35"))
    order_id = place(kite, order_type="LIMIT", price=800, quantity=5)
    assert kite.modify_order("regular", order_id, price=801, quantity=7) == order_id
    modified = last_state(kite, order_id)
    assert modified["status"] == "OPEN" and modified["modified"] is True
    assert modified["price"] == 801 and modified["quantity"] == 7
    assert kite.cancel_order("regular", order_id) == order_id
    history = statuses(kite, order_id)
    assert history[4:] == [
        "MODIFY VALIDATION PENDING",
        "MODIFY PENDING",
        "MODIFIED",
        "OPEN",
        "CANCEL PENDING",
        "CANCELLED",
    ]
    cancelled = last_state(kite, order_id)
    assert cancelled["cancelled_quantity"] == 7 and cancelled["filled_quantity"] == 0
    with pytest.raises(kex.OrderException) as again:
        kite.cancel_order("regular", order_id)
    assert again.value.code == 400
    with pytest.raises(kex.OrderException):
        kite.modify_order("regular", order_id, price=802)
    with pytest.raises(kex.InputException, match="variety"):
        kite.cancel_order("bogus", order_id)


def test_the_fake_restarts_after_a_stop() -> None:
    fake = KiteFake()
    first = fake.start()
    fake.stop()
    second = fake.start()
    try:
        answer = httpx.get(f"{second}/instruments/NSE", headers={"X-Kite-Version": "3"})
        assert answer.status_code == 200 and answer.text.startswith("instrument_token,")
        assert first.startswith("http://127.0.0.1:")
    finally:
        fake.stop()


def test_modifying_into_the_market_fills(kite: KiteConnect, kite_fake: KiteFake) -> None:
    kite_fake.set_ltp("NSE", "SBIN", Decimal("812.35"))
    order_id = place(kite, order_type="LIMIT", price=800)
    kite.modify_order("regular", order_id, order_type="MARKET")
    assert last_state(kite, order_id)["status"] == "COMPLETE"


def test_stop_orders_wait_for_their_trigger(kite: KiteConnect, kite_fake: KiteFake) -> None:
    kite_fake.set_ltp("NSE", "SBIN", Decimal("812.35"))
    kite_fake.add_holding("NSE", "SBIN", 10, Decimal("700"))
    stop_loss = place(
        kite, transaction_type="SELL", product="CNC", order_type="SL-M", trigger_price=800
    )
    stop_limit = place(kite, order_type="SL", trigger_price=820, price=821)
    assert last_state(kite, stop_loss)["status"] == "TRIGGER PENDING"
    assert last_state(kite, stop_limit)["status"] == "TRIGGER PENDING"
    kite_fake.set_ltp("NSE", "SBIN", Decimal("799.50"))
    done = last_state(kite, stop_loss)
    assert done["status"] == "COMPLETE" and done["average_price"] == 799.5
    kite_fake.set_ltp("NSE", "SBIN", Decimal("820.40"))
    assert last_state(kite, stop_limit)["status"] == "COMPLETE"
    assert last_state(kite, stop_limit)["average_price"] == 820.4


def test_a_stop_on_the_wrong_side_is_rejected_with_kites_message(
    kite: KiteConnect,
    kite_fake: KiteFake,
) -> None:
    kite_fake.set_ltp("NSE", "SBIN", Decimal("812.35"))
    order_id = place(kite, order_type="SL-M", trigger_price=800)
    rejected = last_state(kite, order_id)
    assert rejected["status"] == "REJECTED"
    assert "higher than the last traded price" in rejected["status_message"]
    assert rejected["pending_quantity"] == 0


def test_partial_fills_when_configured(kite: KiteConnect, kite_fake: KiteFake) -> None:
    kite_fake.set_ltp("NSE", "SBIN", Decimal("812.35"))
    kite_fake.fill_limit = 4
    order_id = place(kite, quantity=10)
    first = last_state(kite, order_id)
    assert first["status"] == "OPEN" and first["filled_quantity"] == 4
    assert first["pending_quantity"] == 6
    kite_fake.set_ltp("NSE", "SBIN", Decimal("812.40"))
    kite_fake.set_ltp("NSE", "SBIN", Decimal("812.45"))
    final = last_state(kite, order_id)
    assert final["status"] == "COMPLETE" and final["filled_quantity"] == 10
    fills = kite.order_trades(order_id)
    assert [t["quantity"] for t in fills] == [4, 4, 2]
    assert final["average_price"] == pytest.approx((4 * 812.35 + 4 * 812.40 + 2 * 812.45) / 10)


def test_ioc_cancels_what_does_not_fill_at_once(kite: KiteConnect, kite_fake: KiteFake) -> None:
    kite_fake.fill_limit = 3
    order_id = place(kite, quantity=10, validity="IOC")
    final = last_state(kite, order_id)
    assert final["status"] == "CANCELLED"
    assert final["filled_quantity"] == 3 and final["cancelled_quantity"] == 7


def test_ttl_orders_lapse_after_their_minutes() -> None:
    with KiteFake(now=datetime(2026, 11, 24, 10, 0, tzinfo=IST)) as fake:
        fake.rate_limits_enabled = False
        kite = login(fake)
        fake.set_ltp("NSE", "SBIN", Decimal("812.35"))
        order_id = place(kite, order_type="LIMIT", price=800, validity="TTL", validity_ttl=2)
        fake.advance(timedelta(minutes=1))
        assert last_state(kite, order_id)["status"] == "OPEN"
        fake.advance(timedelta(minutes=1))
        assert kite.orders()[0]["status"] == "CANCELLED"


def test_futures_and_options_trade_in_lots(kite: KiteConnect, kite_fake: KiteFake) -> None:
    future = next(i for i in kite_fake.instruments if i.segment == "NFO-FUT" and i.name == "NIFTY")
    with pytest.raises(kex.InputException, match="lot size"):
        place(kite, exchange="NFO", tradingsymbol=future.tradingsymbol, product="NRML", quantity=1)
    order_id = place(
        kite,
        exchange="NFO",
        tradingsymbol=future.tradingsymbol,
        product="NRML",
        quantity=future.lot_size * 2,
    )
    assert last_state(kite, order_id)["status"] == "COMPLETE"
    (line,) = kite.positions()["net"]
    assert line["quantity"] == future.lot_size * 2 and line["product"] == "NRML"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"quantity": 0}, "quantity"),
        ({"order_type": "STOP"}, "order_type"),
        ({"transaction_type": "HOLD"}, "transaction_type"),
        ({"product": "XYZ"}, "product"),
        ({"order_type": "LIMIT"}, "price"),
        ({"order_type": "LIMIT", "price": "812.33"}, "Tick size"),
        ({"order_type": "SL", "price": 820}, "trigger_price"),
        ({"tradingsymbol": "NOSUCHSTOCK"}, "not found"),
        ({"tradingsymbol": "NIFTY 50"}, "index"),
        ({"product": "NRML"}, "NRML"),
        ({"tag": "x" * 21}, "tag"),
        ({"variety": "iceberg"}, "not available"),
        ({"variety": "bogus"}, "variety"),
        ({"validity": "TTL"}, "validity_ttl"),
    ],
)
def test_bad_fields_are_input_exceptions_and_place_nothing(
    kite: KiteConnect,
    kite_fake: KiteFake,
    overrides: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(kex.InputException, match=message) as refused:
        place(kite, **overrides)
    assert refused.value.code == 400
    assert kite_fake.orders == [] and kite.orders() == []


def test_missing_field_is_named(kite: KiteConnect, kite_fake: KiteFake) -> None:
    headers = {"X-Kite-Version": "3", "Authorization": f"token {API_KEY}:{kite.access_token}"}
    form = {"exchange": "NSE", "tradingsymbol": "SBIN", "quantity": "1", "order_type": "MARKET"}
    answer = httpx.post(f"{kite_fake.base_url}/orders/regular", data=form, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error_type"] == "InputException"
    assert "transaction_type" in answer.json()["message"]


def test_cnc_on_derivatives_is_refused(kite: KiteConnect, kite_fake: KiteFake) -> None:
    future = next(i for i in kite_fake.instruments if i.segment == "NFO-FUT")
    with pytest.raises(kex.InputException, match="CNC"):
        place(
            kite,
            exchange="NFO",
            tradingsymbol=future.tradingsymbol,
            product="CNC",
            quantity=future.lot_size,
        )


def test_orders_beyond_the_funds_are_rejected_and_block_nothing(
    kite: KiteConnect,
    kite_fake: KiteFake,
) -> None:
    before = kite.margins("equity")
    order_id = place(kite, product="CNC", quantity=5000)  # 5000 x ₹950 > ₹10 lakh
    rejected = last_state(kite, order_id)
    assert rejected["status"] == "REJECTED"
    assert rejected["status_message"].startswith("Insufficient funds. Required margin is")
    assert kite.margins("equity") == before


def test_cnc_sells_need_holdings(kite: KiteConnect, kite_fake: KiteFake) -> None:
    kite_fake.set_ltp("NSE", "SBIN", Decimal("812.35"))
    naked = place(kite, transaction_type="SELL", product="CNC", quantity=5)
    assert last_state(kite, naked)["status"] == "REJECTED"
    assert "Insufficient holdings" in last_state(kite, naked)["status_message"]
    kite_fake.add_holding("NSE", "SBIN", 8, Decimal("700"))
    covered = place(kite, transaction_type="SELL", product="CNC", quantity=5)
    assert last_state(kite, covered)["status"] == "COMPLETE"
    (holding,) = kite.holdings()
    assert set(holding) == set(sample("holdings.json")[0])
    assert holding["used_quantity"] == 5 and holding["quantity"] == 8
    assert holding["pnl"] == pytest.approx((812.35 - 700) * 8)
    too_many = place(kite, transaction_type="SELL", product="CNC", quantity=4)
    assert last_state(kite, too_many)["status"] == "REJECTED"


# -- portfolio ----------------------------------------------------------------------------------
def test_positions_and_margins_move_with_fills(kite: KiteConnect, kite_fake: KiteFake) -> None:
    kite_fake.set_ltp("NSE", "SBIN", Decimal("800"))
    start = kite.margins("equity")
    place(kite, quantity=100)
    kite_fake.set_ltp("NSE", "SBIN", Decimal("790"))
    positions = kite.positions()
    (net,) = positions["net"]
    (day,) = positions["day"]
    assert set(net) == set(sample("positions.json")["net"][0])
    assert net["quantity"] == 100 and net["average_price"] == 800
    assert net["pnl"] == -1000 and net["value"] == -80000 and day["pnl"] == -1000
    held = kite.margins("equity")
    assert held["utilised"]["exposure"] == pytest.approx(790 * 100 * 0.2)
    assert held["utilised"]["m2m_unrealised"] == -1000
    assert held["net"] == pytest.approx(start["net"] - 790 * 100 * 0.2 - 1000)
    place(kite, quantity=100, transaction_type="SELL")
    (closed,) = kite.positions()["net"]
    assert closed["quantity"] == 0 and closed["pnl"] == -1000
    after = kite.margins()
    assert set(after) == {"equity", "commodity"}
    assert set(after["equity"]["utilised"]) == set(sample("margins.json")["equity"]["utilised"])
    assert after["equity"]["utilised"]["exposure"] == 0
    assert after["equity"]["utilised"]["m2m_realised"] == -1000
    assert after["equity"]["net"] == pytest.approx(start["net"] - 1000)


def test_open_orders_block_margin(kite: KiteConnect, kite_fake: KiteFake) -> None:
    kite_fake.set_ltp("NSE", "SBIN", Decimal("800"))
    start = kite.margins("equity")["net"]
    order_id = place(kite, order_type="LIMIT", price=780, quantity=100)
    assert kite.margins("equity")["net"] == pytest.approx(start - 800 * 100 * 0.2)
    kite.cancel_order("regular", order_id)
    assert kite.margins("equity")["net"] == pytest.approx(start)


def test_bad_margin_segment(kite: KiteConnect) -> None:
    with pytest.raises(kex.InputException):
        kite.margins("crypto")


def test_next_session_settles_cnc_into_holdings_and_carries_nrml() -> None:
    with KiteFake(now=datetime(2026, 11, 24, 10, 0, tzinfo=IST)) as fake:
        fake.rate_limits_enabled = False
        kite = login(fake)
        fake.set_ltp("NSE", "SBIN", Decimal("800"))
        future = next(i for i in fake.instruments if i.segment == "NFO-FUT" and i.name == "SBIN")
        place(kite, product="CNC", quantity=3)
        place(kite, product="MIS", quantity=7)
        place(
            kite,
            exchange="NFO",
            tradingsymbol=future.tradingsymbol,
            product="NRML",
            quantity=future.lot_size,
        )
        fake.next_session()
        with pytest.raises(kex.TokenException):
            kite.orders()  # yesterday's session is gone at 06:00
        kite = login(fake)
        assert kite.orders() == [] and kite.trades() == []
        (holding,) = kite.holdings()
        assert holding["tradingsymbol"] == "SBIN" and holding["quantity"] == 3
        assert holding["average_price"] == 800
        (carried,) = kite.positions()["net"]
        assert carried["tradingsymbol"] == future.tradingsymbol
        assert carried["overnight_quantity"] == future.lot_size
        assert kite.positions()["day"] == []


# -- market data --------------------------------------------------------------------------------
def test_quotes_in_kites_shapes(kite: KiteConnect, kite_fake: KiteFake) -> None:
    kite_fake.set_ltp("NSE", "SBIN", Decimal("812.35"))
    quote = kite.quote(["NSE:SBIN", "NSE:NOSUCH", "256265"])
    assert set(quote) == {"NSE:SBIN", "256265"}  # unknown keys are left out, tokens work
    sbin = quote["NSE:SBIN"]
    assert set(sbin) == set(sample("quote.json")["NSE:INFY"])
    assert sbin["last_price"] == 812.35 and sbin["instrument_token"] == 779521
    assert len(sbin["depth"]["buy"]) == len(sbin["depth"]["sell"]) == 5
    assert sbin["depth"]["buy"][0]["price"] < sbin["depth"]["sell"][0]["price"]
    assert sbin["lower_circuit_limit"] < 812.35 < sbin["upper_circuit_limit"]
    ltp = kite.ltp("NSE:SBIN")
    assert ltp == {"NSE:SBIN": {"instrument_token": 779521, "last_price": 812.35}}
    ohlc = kite.ohlc("NSE:SBIN")["NSE:SBIN"]
    assert set(ohlc) == set(sample("ohlc.json")["NSE:INFY"])
    assert ohlc["ohlc"]["low"] == 812.35 and ohlc["ohlc"]["close"] == 950


def test_quote_limits(kite: KiteConnect) -> None:
    with pytest.raises(kex.InputException):
        kite.quote([])
    with pytest.raises(kex.InputException, match="500"):
        kite.quote([f"NSE:S{i}" for i in range(501)])


def test_instrument_dump_parses_with_the_sdk(kite: KiteConnect, kite_fake: KiteFake) -> None:
    nse = kite.instruments("NSE")
    sbin = next(r for r in nse if r["tradingsymbol"] == "SBIN")
    assert sbin["instrument_token"] == 779521 and sbin["segment"] == "NSE"
    assert any(r["tradingsymbol"] == "NIFTY 50" and r["segment"] == "INDICES" for r in nse)
    assert any(r["tradingsymbol"] == "CENTRALBK-BE" for r in nse)  # Zerodha's sample rows
    nfo = kite.instruments("NFO")
    today = kite_fake.now().astimezone(IST).date()
    assert {r["instrument_type"] for r in nfo} == {"FUT", "CE", "PE"}
    assert all(isinstance(r["expiry"], date) and r["expiry"] >= today for r in nfo)
    assert all(r["instrument_token"] & 0xFF == 2 for r in nfo)
    assert all(r["lot_size"] > 0 and r["tick_size"] > 0 for r in nfo)
    everything = kite.instruments()
    assert {r["exchange"] for r in everything} == {"NSE", "BSE", "NFO", "BFO"}
    with pytest.raises(kex.InputException):
        kite.instruments("XYZ")


def test_instrument_dump_is_gzipped_when_asked(kite_fake: KiteFake) -> None:
    raw = requests.get(
        f"{kite_fake.base_url}/instruments",
        headers={"X-Kite-Version": "3", "Accept-Encoding": "gzip"},
        stream=True,
        timeout=10,
    )
    assert raw.headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(raw.raw.read()).decode()
    assert text.startswith("instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,")


def test_historical_candles(kite: KiteConnect) -> None:
    day = datetime(2026, 11, 20)  # a Friday
    minutes = kite.historical_data(779521, day, day.replace(hour=23, minute=59), "minute")
    assert len(minutes) == 375
    assert minutes[0]["date"].strftime("%H:%M%z") == "09:15+0530"
    assert all(
        c["low"] <= min(c["open"], c["close"]) <= max(c["open"], c["close"]) <= c["high"]
        for c in minutes
    )
    quarter = kite.historical_data(779521, day, day.replace(hour=23), "15minute")
    assert len(quarter) == 25
    assert quarter[0]["open"] == minutes[0]["open"] and quarter[-1]["close"] == minutes[-1]["close"]
    assert max(c["high"] for c in quarter) == max(c["high"] for c in minutes)
    week = kite.historical_data(779521, "2026-11-16", "2026-11-22", "day")
    assert [c["date"].day for c in week] == [16, 17, 18, 19, 20]  # weekdays only
    assert week[-1]["close"] == minutes[-1]["close"]
    fut = kite.historical_data(256265, day, day.replace(hour=10), "5minute", oi=True)
    assert all("oi" in c for c in fut)


def test_historical_refuses_bad_requests(kite: KiteConnect) -> None:
    with pytest.raises(kex.InputException, match="60 days"):
        kite.historical_data(779521, "2026-01-01 09:15:00", "2026-04-01 15:30:00", "minute")
    with pytest.raises(kex.InputException, match="interval"):
        kite.historical_data(779521, "2026-11-20", "2026-11-20", "2minute")
    with pytest.raises(kex.InputException, match="instrument_token"):
        kite.historical_data(1, "2026-11-20", "2026-11-20", "day")
    with pytest.raises(kex.InputException, match="date format"):
        kite.historical_data(779521, "20-11-2026", "2026-11-20", "day")


# -- faults and limits --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "exception", "code"),
    [
        ("5xx", kex.NetworkException, 503),
        ("500", kex.GeneralException, 500),
        ("502", kex.DataException, 502),
        ("429", kex.NetworkException, 429),
        ("malformed", kex.DataException, 502),
        ("html", kex.DataException, 502),
    ],
)
def test_injected_failures_map_to_sdk_exceptions(
    kite: KiteConnect,
    kite_fake: KiteFake,
    kind: str,
    exception: type[Exception],
    code: int,
) -> None:
    kite_fake.fail_next("^POST /orders/", kind, times=2)
    for _ in range(2):
        with pytest.raises(exception) as failure:
            place(kite)
        assert getattr(failure.value, "code", None) == code
    assert kite_fake.orders == []  # a failed answer placed nothing
    place(kite)  # the rule is used up
    assert len(kite_fake.orders) == 1


def test_faults_only_hit_matching_routes(kite: KiteConnect, kite_fake: KiteFake) -> None:
    kite_fake.fail_next("/portfolio/holdings", "5xx")
    assert kite.positions() == {"net": [], "day": []}
    with pytest.raises(kex.NetworkException):
        kite.holdings()
    assert kite.holdings() == []


def test_a_lost_answer_still_places_the_order(kite: KiteConnect, kite_fake: KiteFake) -> None:
    kite_fake.fail_next("^POST /orders/", "lost")
    with pytest.raises(requests.ConnectionError):
        place(kite, tag="reconcile1")
    (order,) = kite_fake.orders
    assert order.tag == "reconcile1"
    (row,) = [o for o in kite.orders() if o["tag"] == "reconcile1"]  # found again by its tag
    assert row["status"] == "COMPLETE"


def test_a_timeout_holds_past_the_client_and_places_nothing(kite_fake: KiteFake) -> None:
    kite_fake.rate_limits_enabled = False
    kite = login(kite_fake, timeout=0.3)
    kite_fake.timeout_hold = 1.0
    kite_fake.fail_next("^POST /orders/", "timeout")
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        place(kite)
    assert time.monotonic() - started < 1.0
    assert kite_fake.orders == []


def test_fault_kinds_are_checked(kite_fake: KiteFake) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        kite_fake.fail_next("/orders", "explode")
    with pytest.raises(ValueError, match="times"):
        kite_fake.fail_next("/orders", "5xx", times=0)


def test_rate_limits_as_kite_publishes_them(kite_fake: KiteFake) -> None:
    kite = login(kite_fake)
    kite.ltp("NSE:SBIN")
    with pytest.raises(kex.NetworkException, match="Too many requests") as limited:
        kite.ohlc("NSE:SBIN")  # quotes: 1 per second
    assert limited.value.code == 429
    results = []
    started = time.monotonic()
    for _ in range(11):  # orders: 10 per second
        try:
            place(kite, quantity=1)
            results.append("ok")
        except kex.NetworkException:
            results.append("429")
    if time.monotonic() - started < 0.9:  # a stalled machine may spread them over 2 windows
        assert results.count("ok") == 10 and results[-1] == "429"
    assert len(kite_fake.orders) == results.count("ok")
    kite_fake.rate_limits_enabled = False
    kite.ltp("NSE:SBIN")
    kite.ltp("NSE:SBIN")
    place(kite, quantity=1)


class _Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_windows() -> None:
    ticker = _Ticker()
    limiter = RateLimiter(clock=ticker)
    allowed = 0
    for second in range(30):  # 10 orders a second for 30 s: the per-minute cap of 200 bites
        ticker.now = float(second)
        allowed += sum(limiter.allow("POST", "/orders/regular") for _ in range(10))
    assert allowed == 200
    ticker.now = 60.0
    assert limiter.allow("DELETE", "/orders/regular/1")  # a minute later the window has moved
    assert limiter.allow("GET", "/orders")  # reading the book is "other": its own 10/s
    assert sum(limiter.allow("GET", "/instruments/historical/1/day") for _ in range(5)) == 3
    assert sum(limiter.allow("GET", "/quote/ltp") for _ in range(3)) == 1
    assert sum(limiter.allow("GET", "/user/profile") for _ in range(12)) == 9  # 1 used above
    ticker.now = 61.0
    assert limiter.allow("GET", "/quote") and limiter.allow("GET", "/user/profile")


def test_the_request_log(kite: KiteConnect, kite_fake: KiteFake) -> None:
    kite.orders()
    kite.ltp("NSE:SBIN")
    assert kite_fake.requests[-2:] == [("GET", "/orders"), ("GET", "/quote/ltp")]
    assert kite_fake.requests[0] == ("POST", "/session/token")


# -- after-market orders ------------------------------------------------------------------------
def test_amo_waits_for_the_open(kite: KiteConnect, kite_fake: KiteFake) -> None:
    kite_fake.set_market_open(False)
    with pytest.raises(kex.InputException, match="Markets are closed"):
        place(kite)
    order_id = place(kite, variety="amo")
    assert last_state(kite, order_id)["status"] == "AMO REQ RECEIVED"
    kite.modify_order("amo", order_id, quantity=12)
    assert last_state(kite, order_id)["status"] == "AMO REQ RECEIVED"
    kite_fake.set_market_open(True)
    final = last_state(kite, order_id)
    assert final["status"] == "COMPLETE" and final["filled_quantity"] == 12
    with pytest.raises(kex.InputException, match="AMO"):
        place(kite, variety="amo")


# -- postbacks ----------------------------------------------------------------------------------
class _Receiver(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.bodies.append(json.loads(self.rfile.read(length)))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/postback", server.bodies  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def _wait_for(predicate: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_postbacks_are_signed_and_follow_every_status(
    kite: KiteConnect,
    kite_fake: KiteFake,
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, bodies = receiver
    kite_fake.postback_url = url
    kite_fake.set_ltp("NSE", "SBIN", Decimal("812.35"))
    resting = place(kite, order_type="LIMIT", price=800)
    filled = place(kite, tag="pb")
    kite.cancel_order("regular", resting)
    _wait_for(lambda: len(bodies) == 4)
    assert [(b["order_id"], b["status"]) for b in bodies] == [
        (resting, "OPEN"),
        (filled, "OPEN"),
        (filled, "COMPLETE"),
        (resting, "CANCELLED"),
    ]
    assert set(bodies[0]) == set(json.loads((SAMPLES / "postback.json").read_text()))
    for body in bodies:
        digest = hashlib.sha256((body["order_id"] + body["order_timestamp"] + API_SECRET).encode())
        assert body["checksum"] == digest.hexdigest()
        assert body["user_id"] == "AB1234"
    assert bodies[2]["tag"] == "pb" and bodies[2]["unfilled_quantity"] == 0
    assert [p["status"] for p in kite_fake.postbacks] == [200] * 4


def test_postbacks_to_a_dead_receiver_are_recorded_not_fatal(
    kite: KiteConnect,
    kite_fake: KiteFake,
) -> None:
    kite_fake.postback_url = "http://127.0.0.1:9/postback"  # discard port: nobody listens
    place(kite)
    _wait_for(lambda: len(kite_fake.postbacks) == 2)
    assert all("error" in p for p in kite_fake.postbacks)
    assert kite.orders()[0]["status"] == "COMPLETE"
