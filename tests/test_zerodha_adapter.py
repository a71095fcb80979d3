"""`ZerodhaBroker` against the fake Kite server (tests/fakes/kite_server.py) over real HTTP:
login, every Broker method, the master contract, order updates, rate limiting, and every
fault kind on the order path ending in a clear state, never a hang or a duplicate."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from openalgo_lab.brokers.base import Broker
from openalgo_lab.brokers.zerodha import KiteConfig, ZerodhaBroker, mapping
from openalgo_lab.brokers.zerodha.http import KiteRateLimited, KiteUnavailable, RetryPolicy
from openalgo_lab.brokers.zerodha.orders import OrderNotPlaced
from openalgo_lab.domain.calendar import IST, MarketCalendar, MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.domain.enums import Action, Exchange, Interval, OrderStatus, PriceType, Product
from openalgo_lab.domain.errors import (
    BrokerSessionExpired,
    InvalidOrderState,
    NotFoundError,
    OrderRejected,
    ValidationError,
)
from openalgo_lab.domain.models import OrderModification, OrderRequest
from tests.fakes.fixtures import kite_fake  # noqa: F401  (the fixture)
from tests.fakes.kite_server import KiteFake

SBIN = Decimal("800")


def in_runner(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on the test's own `runner` loop (the fixtures' loop too).

    A plain asyncio.Runner rather than an async-test plugin: plugins disagree (pytest-jupyter,
    loaded by other modules, runs coroutine tests on a loop of its own and drops other
    parametrizations), while background tasks started by fixtures must share the test's loop."""
    sig = inspect.signature(test)
    takes_runner = "runner" in sig.parameters
    params = list(sig.parameters.values())
    if not takes_runner:
        params.append(inspect.Parameter("runner", inspect.Parameter.KEYWORD_ONLY))

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        runner: asyncio.Runner = kwargs["runner"] if takes_runner else kwargs.pop("runner")
        runner.run(test(*args, **kwargs))

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return wrapper


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop:
        yield loop


@pytest.fixture
def fake(kite_fake: KiteFake) -> KiteFake:  # noqa: F811
    return kite_fake


def make_broker(fake: KiteFake, tmp_path: Path, **kw: Any) -> ZerodhaBroker:
    config = KiteConfig(
        api_key=fake.state.api_key,
        api_secret=fake.state.api_secret,
        account="kite",
        base_url=fake.base_url,
        cache_dir=tmp_path / "cache",
        timeout=kw.pop("timeout", 10.0),
        poll_interval=0.05,
    )
    kw.setdefault("reconcile_delays", (0.0, 0.05, 0.1))
    kw.setdefault("retry", RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
    return ZerodhaBroker(config, **kw)


@pytest.fixture
def broker(fake: KiteFake, tmp_path: Path, runner: asyncio.Runner) -> Iterator[ZerodhaBroker]:
    fake.set_ltp("NSE", "SBIN", SBIN)
    b = make_broker(fake, tmp_path)
    runner.run(b.complete_login(fake.request_token()))
    yield b
    runner.run(b.aclose())


def market(symbol: str = "SBIN", qty: int = 10, **kw: Any) -> OrderRequest:
    base: dict[str, Any] = {
        "symbol": symbol,
        "exchange": Exchange.NSE,
        "action": Action.BUY,
        "quantity": qty,
        "pricetype": PriceType.MARKET,
        "product": Product.MIS,
    }
    base.update(kw)
    return OrderRequest(**base)


def limit_below(qty: int = 10, **kw: Any) -> OrderRequest:
    return market(qty=qty, pricetype=PriceType.LIMIT, price=Decimal("780"), **kw)


# -- login and session ---------------------------------------------------------------------
@in_runner
async def test_login_flow_and_protocol(fake: KiteFake, tmp_path: Path) -> None:
    saved: list[Any] = []
    b = make_broker(fake, tmp_path, on_login=saved.append)
    assert isinstance(b, Broker)
    assert b.login_url().endswith(f"?v=3&api_key={fake.state.api_key}")
    before = len(fake.requests)
    with pytest.raises(BrokerSessionExpired, match="broker session expired"):
        await b.orders()
    assert len(fake.requests) == before  # refused locally, Kite never asked
    with pytest.raises(BrokerSessionExpired, match="request token is invalid"):
        await b.complete_login("notAToken123")
    redirect = f"http://127.0.0.1/cb?request_token={fake.request_token()}&status=success"
    login = await b.complete_login(redirect)
    assert login.user_id == "AB1234" and b.logged_in and saved == [login]
    assert login.expires_at > datetime.now(UTC) and login.expires_at.astimezone(IST).hour == 6
    assert await b.orders() == []
    await b.aclose()


@in_runner
async def test_wrong_secret_is_refused(fake: KiteFake, tmp_path: Path) -> None:
    config = KiteConfig(fake.state.api_key, "wrong", base_url=fake.base_url)
    b = ZerodhaBroker(config)
    with pytest.raises(BrokerSessionExpired, match="Kite refused the login"):
        await b.complete_login(fake.request_token())
    assert not b.logged_in
    await b.aclose()


@in_runner
async def test_session_expiry_from_kite_and_by_the_clock(
    fake: KiteFake,
    tmp_path: Path,
) -> None:
    clock = ManualClock(datetime.now(UTC))
    b = make_broker(fake, tmp_path, clock=clock)
    await b.complete_login(fake.request_token())
    await b.funds()
    fake.expire_sessions()
    with pytest.raises(BrokerSessionExpired) as err:
        await b.funds()
    assert "broker session expired" in err.value.message
    assert "api_key" not in err.value.message.lower()  # never reads as a bad API key
    assert not b.logged_in
    await b.complete_login(fake.request_token())
    assert b.logged_in
    assert b.session.login is not None
    clock.set(b.session.login.expires_at + timedelta(seconds=1))  # 06:00 IST came
    before = len(fake.requests)
    with pytest.raises(BrokerSessionExpired, match="06:00 IST"):
        await b.funds()
    assert len(fake.requests) == before
    await b.aclose()


# -- master contract -----------------------------------------------------------------------
@in_runner
async def test_master_contract_and_daily_cache(
    broker: ZerodhaBroker,
    fake: KiteFake,
    tmp_path: Path,
) -> None:
    instruments = await broker.master_contract()
    master = broker.master
    assert master is not None and len(master) == len(instruments) > 100
    sbin = master.get(Exchange.NSE, "SBIN")
    assert sbin.brsymbol == "SBIN" and sbin.token.isdigit()
    nifty = master.get(Exchange.NSE_INDEX, "NIFTY")
    assert nifty.brsymbol == "NIFTY 50"
    futures = master.futures("NIFTY", Exchange.NFO)
    assert (
        futures and futures[0].symbol.endswith("FUT") and futures[0].brsymbol != futures[0].symbol
    )
    chain_expiry = master.expiries("NIFTY", Exchange.NFO, "options")[0]
    chain = master.option_chain("NIFTY", Exchange.NFO, chain_expiry)
    assert chain and chain[0][1] is not None and chain[0][1].underlying == "NIFTY"
    assert not broker.master_report.skipped or sum(broker.master_report.skipped.values()) < 5
    cached = list((tmp_path / "cache").glob("kite-instruments-*.csv"))
    assert len(cached) == 1
    dumps = [r for r in fake.requests if r[1].startswith("/instruments")]
    other = make_broker(fake, tmp_path)
    await other.complete_login(fake.request_token())
    await other.master_contract()
    assert [r for r in fake.requests if r[1].startswith("/instruments")] == dumps
    await other.aclose()


# -- orders and books ----------------------------------------------------------------------
@in_runner
async def test_place_market_order_and_books(broker: ZerodhaBroker, fake: KiteFake) -> None:
    placed = await broker.place_order(market(qty=10, tag="a" * 32, strategy="s1"))
    assert placed.tag == "a" * 32 and placed.strategy == "s1"
    order = await broker.order(placed.orderid)
    assert order.status is OrderStatus.COMPLETE and order.filled_quantity == 10
    assert order.tag == "a" * 32 and order.strategy == "s1"  # put back from Kite's tag
    assert order.average_price > 0
    (kite_order,) = fake.orders
    assert kite_order.tag == mapping.kite_tag("a" * 32)
    book = await broker.orders()
    assert [o.orderid for o in book] == [placed.orderid]
    trades = await broker.trades()
    assert sum(t.quantity for t in trades) == 10 and trades[0].strategy == "s1"
    positions = await broker.positions()
    (pos,) = [p for p in positions if p.symbol == "SBIN"]
    assert pos.quantity == 10 and pos.product is Product.MIS and pos.exchange is Exchange.NSE
    funds = await broker.funds()
    assert funds.availablecash > 0 and funds.utiliseddebits > 0
    assert isinstance(await broker.holdings(), list)


@in_runner
async def test_limit_modify_cancel(broker: ZerodhaBroker) -> None:
    placed = await broker.place_order(limit_below())
    assert (await broker.order(placed.orderid)).status is OrderStatus.OPEN
    modified = await broker.modify_order(placed.orderid, OrderModification(price=Decimal("785")))
    assert modified.price == Decimal("785") and modified.status.is_working
    changed = await broker.modify_order(placed.orderid, OrderModification(quantity=20))
    assert changed.quantity == 20 and changed.price == Decimal("785")
    cancelled = await broker.cancel_order(placed.orderid)
    assert cancelled.status is OrderStatus.CANCELLED
    with pytest.raises(InvalidOrderState, match="already cancelled"):
        await broker.cancel_order(placed.orderid)
    with pytest.raises(InvalidOrderState):
        await broker.modify_order(placed.orderid, OrderModification(price=Decimal("781")))
    with pytest.raises(NotFoundError):
        await broker.cancel_order("999999999999")
    with pytest.raises(NotFoundError):
        await broker.order("nope")


@in_runner
async def test_stop_orders_products_and_refusals(broker: ZerodhaBroker) -> None:
    sl = await broker.place_order(
        market(
            action=Action.SELL,
            pricetype=PriceType.SL,
            price=Decimal("749"),
            trigger_price=Decimal("750"),
            product=Product.CNC,
            qty=1,
        )
    )
    slm = await broker.place_order(
        market(pricetype=PriceType.SL_M, trigger_price=Decimal("850"), qty=1)
    )
    book = {o.orderid: o for o in await broker.orders()}
    assert book[sl.orderid].pricetype is PriceType.SL
    assert book[slm.orderid].status is OrderStatus.TRIGGER_PENDING
    cancelled, failed = await broker.cancel_all_orders()
    assert set(cancelled) >= {slm.orderid} and failed == []
    with pytest.raises(NotFoundError, match="not found on NSE in Zerodha's master"):
        await broker.place_order(market(symbol="NOSUCH"))
    with pytest.raises(OrderRejected, match=r"Kite: .*tick"):
        await broker.place_order(market(pricetype=PriceType.LIMIT, price=Decimal("780.03")))


@in_runner
async def test_close_all_positions(broker: ZerodhaBroker) -> None:
    await broker.place_order(market(qty=10))
    await broker.place_order(market(symbol="INFY", qty=5, action=Action.SELL))
    closing = await broker.close_all_positions()
    assert len(closing) == 2
    positions = {p.symbol: p.quantity for p in await broker.positions()}
    assert positions["SBIN"] == 0 and positions["INFY"] == 0


# -- market data ---------------------------------------------------------------------------
@in_runner
async def test_quotes_depth_history(broker: ZerodhaBroker, fake: KiteFake) -> None:
    quote = await broker.quote(Exchange.NSE, "SBIN")
    assert quote.ltp == SBIN and quote.symbol == "SBIN"
    depth = await broker.depth(Exchange.NSE, "SBIN")
    assert len(depth.bids) == 5 and len(depth.asks) == 5
    assert depth.bids[0].price < depth.asks[0].price
    index = await broker.quote(Exchange.NSE_INDEX, "NIFTY")
    assert index.ltp > 0
    many = await broker.quotes(
        [(Exchange.NSE, "SBIN"), (Exchange.NSE, "INFY"), (Exchange.NSE, "NOSUCH")]
    )
    assert set(many) == {(Exchange.NSE, "SBIN"), (Exchange.NSE, "INFY")}
    with pytest.raises(NotFoundError):
        await broker.quote(Exchange.NSE, "NOSUCH")
    end = datetime.now(UTC)
    start = end - timedelta(days=10)
    minute = await broker.history(Exchange.NSE, "SBIN", Interval.M5, start, end)
    assert minute and all(start <= c.start < end for c in minute)
    assert [c.start for c in minute] == sorted(c.start for c in minute)
    assert (minute[1].start - minute[0].start) == timedelta(minutes=5)
    daily = await broker.history(Exchange.NSE, "SBIN", Interval.D, end - timedelta(days=200), end)
    assert daily and all(c.start.astimezone(IST).hour == 0 for c in daily)
    hist = [r for r in fake.requests if "/historical/" in r[1]]
    assert any(r[1].endswith("/5minute") for r in hist) and any(r[1].endswith("/day") for r in hist)
    with pytest.raises(ValidationError, match="not supported by Zerodha"):
        await broker.history(Exchange.NSE, "SBIN", Interval.M2, start, end)
    assert Interval.M2 not in broker.intervals() and Interval.H1 in broker.intervals()


@in_runner
async def test_history_is_fetched_in_kite_sized_windows(
    broker: ZerodhaBroker, fake: KiteFake
) -> None:
    end = datetime.now(UTC)
    start = end - timedelta(days=150)
    await broker.history(Exchange.NSE, "SBIN", Interval.M15, start, end)
    calls = [r for r in fake.requests if "/historical/" in r[1]]
    assert len(calls) == 3  # 150 days in windows of 60


# -- order updates ---------------------------------------------------------------------------
@in_runner
async def test_order_events_by_polling(broker: ZerodhaBroker, fake: KiteFake) -> None:
    await broker.updates.poll()  # the book as it was: not replayed to listeners
    early = await broker.place_order(market(qty=3))  # placed here: news for listeners
    events = broker.order_events()
    got: list[Any] = []

    async def collect() -> None:
        async for event in events:
            got.append(event)

    task = asyncio.create_task(collect())
    await _until(lambda: broker.updates.polls >= 1)
    placed = await broker.place_order(market(qty=7, tag="evt1"))
    resting = await broker.place_order(limit_below(qty=4))
    await _until(
        lambda: any(e.trade for e in got) and any(e.order.orderid == resting.orderid for e in got)
    )
    await broker.cancel_order(resting.orderid)
    await _until(
        lambda: any(
            e.order.orderid == resting.orderid and e.order.status is OrderStatus.CANCELLED
            for e in got
        )
    )
    task.cancel()
    fills = [e for e in got if e.trade is not None]
    assert {e.order.orderid for e in got} == {early.orderid, placed.orderid, resting.orderid}
    assert sum(e.trade.quantity for e in fills if e.trade) == 10
    assert {e.order.tag for e in fills} == {"", "evt1"}
    assert len({e.trade.tradeid for e in fills if e.trade}) == len(fills)  # no duplicates


@in_runner
async def test_a_fill_while_nobody_listens_reaches_the_next_listener(
    broker: ZerodhaBroker, fake: KiteFake
) -> None:
    """The first read of the process is the baseline; a listener that leaves and comes back
    (the engine's pump restarting) gets what changed meanwhile, not a new baseline."""
    resting = await broker.place_order(limit_below(qty=2))

    async def first_event(orderid: str, status: OrderStatus) -> Any:
        events = broker.order_events()
        assert isinstance(events, AsyncGenerator)
        async with contextlib.aclosing(events):  # then the listener leaves: polling stops
            async for event in events:
                if event.order.orderid == orderid and event.order.status is status:
                    return event
        return None

    seen = await asyncio.wait_for(first_event(resting.orderid, OrderStatus.OPEN), 5)
    assert seen is not None and broker.updates._task is None  # nobody listens now
    fake.set_ltp("NSE", "SBIN", Decimal("779"))  # the order fills while nobody listens
    filled = await asyncio.wait_for(first_event(resting.orderid, OrderStatus.COMPLETE), 5)
    assert filled is not None and filled.order.filled_quantity == 2


@in_runner
async def test_postback_is_verified_and_published_once(
    broker: ZerodhaBroker,
    fake: KiteFake,
) -> None:
    await broker.updates.poll()  # baseline
    placed = await broker.place_order(limit_below(qty=2))
    (row,) = [o for o in await broker.books.http.get("/orders") if o["order_id"] == placed.orderid]
    payload = dict(row, checksum=mapping_checksum(row, fake.state.api_secret), user_id="AB1234")
    events = await broker.accept_postback(payload)
    assert [e.order.orderid for e in events] == [placed.orderid]
    assert await broker.accept_postback(payload) == []  # the same update again: not news
    assert await broker.updates.poll() == []  # and polling does not repeat it
    from openalgo_lab.domain.errors import AuthError

    with pytest.raises(AuthError, match="checksum"):
        await broker.accept_postback(dict(payload, checksum="0" * 64))


def mapping_checksum(row: dict[str, Any], secret: str) -> str:
    from openalgo_lab.brokers.zerodha.session import checksum

    return checksum(str(row["order_id"]), str(row["order_timestamp"]), secret)


async def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# -- rate limits -----------------------------------------------------------------------------
@pytest.mark.slow
@in_runner
async def test_bursts_are_queued_under_kites_limits(broker: ZerodhaBroker, fake: KiteFake) -> None:
    fake.rate_limits_enabled = True
    start = time.monotonic()
    placed = await asyncio.gather(*(broker.place_order(limit_below(qty=1)) for _ in range(25)))
    took = time.monotonic() - start
    assert len({o.orderid for o in placed}) == 25  # every order once, none refused with 429
    assert took >= 2.0  # 10 per second: 10, 10, 5
    start = time.monotonic()
    for symbol in ("SBIN", "INFY", "TCS"):
        await broker.depth(Exchange.NSE, symbol)
    assert time.monotonic() - start >= 2.0  # quotes: one per second


# -- faults ------------------------------------------------------------------------------------
def kite_orders(fake: KiteFake) -> list[Any]:
    return list(fake.orders)


@pytest.mark.parametrize("kind", ["timeout", "lost", "malformed", "5xx", "500", "html", "429"])
@in_runner
async def test_placement_faults_end_clearly_without_duplicates(
    kind: str,
    fake: KiteFake,
    tmp_path: Path,
) -> None:
    b = make_broker(fake, tmp_path, timeout=0.5)
    fake.timeout_hold = 1.0
    await b.complete_login(fake.request_token())
    await b.load_master()
    fake.fail_next(r"^POST /orders/regular$", kind)
    start = time.monotonic()
    try:
        order = await b.place_order(market(qty=5, tag=f"fault{kind}"))
    except OrderNotPlaced as err:
        assert "order not placed" in err.message
        assert all(o.tag != mapping.kite_tag(f"fault{kind}") for o in kite_orders(fake))
        outcome = "not placed"
    else:
        (kite_order,) = kite_orders(fake)  # exactly one order at Kite, found by its tag
        assert order.orderid == kite_order.order_id and order.tag == f"fault{kind}"
        outcome = "found"
    assert time.monotonic() - start < 10  # never a hang
    assert len(kite_orders(fake)) <= 1
    # the fake processes only a "lost" request (its answer is dropped); the others never
    # reach its order book
    assert outcome == ("found" if kind == "lost" else "not placed")
    await b.aclose()


@in_runner
async def test_unknown_outcome_when_the_book_cannot_be_read_either(
    fake: KiteFake,
    tmp_path: Path,
) -> None:
    b = make_broker(fake, tmp_path, timeout=0.5)
    await b.complete_login(fake.request_token())
    await b.load_master()
    fake.fail_next(r"^POST /orders/regular$", "lost")
    fake.fail_next(r"^GET /orders$", "5xx", times=50)
    with pytest.raises(KiteUnavailable, match="order outcome unknown") as err:
        await b.place_order(market(qty=5, tag="unknown1"))
    assert err.value.outcome_unknown
    assert len(kite_orders(fake)) <= 1  # never re-sent
    await b.aclose()


@in_runner
async def test_expired_token_on_the_order_path(broker: ZerodhaBroker, fake: KiteFake) -> None:
    await broker.load_master()
    fake.expire_sessions()
    with pytest.raises(BrokerSessionExpired, match="broker session expired"):
        await broker.place_order(market())
    assert kite_orders(fake) == []


@pytest.mark.parametrize("kind", ["timeout", "5xx", "429", "malformed", "html", "lost"])
@in_runner
async def test_reads_are_retried(kind: str, broker: ZerodhaBroker, fake: KiteFake) -> None:
    await broker.load_master()
    broker.http.timeout = 0.5
    fake.timeout_hold = 1.0
    fake.fail_next(r"^GET /user/margins$", kind)
    funds = await broker.funds()
    assert funds.availablecash > 0
    fake.fail_next(r"^GET /user/margins$", kind, times=10)
    with pytest.raises((KiteUnavailable, KiteRateLimited)):
        await broker.funds()


@in_runner
async def test_cancel_with_a_lost_answer_is_checked(broker: ZerodhaBroker, fake: KiteFake) -> None:
    placed = await broker.place_order(limit_below())
    fake.fail_next(r"^(PUT|DELETE) /orders/regular/\d+$", "lost")
    cancelled = await broker.cancel_order(placed.orderid)
    assert cancelled.status is OrderStatus.CANCELLED
    placed = await broker.place_order(limit_below())
    fake.fail_next(r"^(PUT|DELETE) /orders/regular/\d+$", "lost")
    modified = await broker.modify_order(placed.orderid, OrderModification(price=Decimal("782")))
    assert modified.price == Decimal("782")


@in_runner
async def test_after_market_orders(fake: KiteFake, tmp_path: Path) -> None:
    """With `amo` on, an order sent while the exchange is closed goes as Kite's AMO variety,
    and its cancel takes the same variety's route."""
    night = datetime(2026, 11, 24, 16, 30, tzinfo=UTC)  # 22:00 IST: NSE closed
    b = ZerodhaBroker(
        KiteConfig(
            fake.state.api_key,
            fake.state.api_secret,
            base_url=fake.base_url,
            cache_dir=tmp_path,
            amo=True,
        ),
        clock=ManualClock(night),
        calendar=MarketCalendar(hours=MarketHours.EXCHANGE),
    )
    await b.complete_login(fake.request_token())
    fake.set_market_open(False)
    placed = await b.place_order(limit_below(qty=2))
    (kite_order,) = fake.orders
    assert kite_order.variety == "amo" and kite_order.order_id == placed.orderid
    assert (await b.order(placed.orderid)).status is OrderStatus.OPEN  # AMO REQ RECEIVED
    assert (await b.cancel_order(placed.orderid)).status is OrderStatus.CANCELLED
    assert ("DELETE", f"/orders/amo/{placed.orderid}") in fake.requests
    await b.aclose()
