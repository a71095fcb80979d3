"""The sandbox following another broker's live quotes (analyze mode on real prices).

Sources used: a second sandbox (a real Broker with its own prices), a small in-test board whose
quotes the test sets (to script crossings, failures and call counting), and the Zerodha adapter
logged in to the local Kite fake over real HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from openalgo_lab.brokers.base import InstrumentKey
from openalgo_lab.brokers.sandbox.broker import SandboxBroker
from openalgo_lab.brokers.sandbox.live import LiveMarket, LivePriceUnavailable, synthetic_book
from openalgo_lab.domain import (
    Action,
    Exchange,
    Interval,
    OrderModification,
    OrderRequest,
    OrderStatus,
    PriceType,
    Product,
)
from openalgo_lab.domain.calendar import MarketCalendar, MarketHours
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.domain.errors import BrokerSessionExpired, OrderRejected, ValidationError
from openalgo_lab.domain.models import Candle, Quote
from openalgo_lab.instruments.sample import sample_master
from tests.fakes.kite_server import KiteFake
from tests.sandbox_support import at_ist

D = Decimal
DAY = "2026-11-25"
SBIN = (Exchange.NSE, "SBIN")
RELIANCE = (Exchange.NSE, "RELIANCE")
FAST = 1000.0  # calls a second: no waiting in tests that do not measure the rate


@dataclass
class Board:
    """A minimal Broker for market data: quotes the test sets, every call recorded."""

    clock: ManualClock
    name: str = "board"
    prices: dict[InstrumentKey, Quote] = field(default_factory=dict)
    calls: list[tuple[float, int]] = field(default_factory=list)  # (loop time, batch size)
    fail: Exception | None = None
    quote_everything: bool = False
    candles: list[Candle] = field(default_factory=list)
    history_calls: list[tuple[Any, ...]] = field(default_factory=list)

    def set(self, key: InstrumentKey, ltp: str, spread: str = "0.05", qty: int = 100) -> None:
        last = D(ltp)
        half = D(spread)
        self.prices[key] = Quote(
            symbol=key[1],
            exchange=key[0],
            ltp=last,
            bid=last - half,
            ask=last + half,
            open=last,
            high=last,
            low=last,
            prev_close=last,
            volume=1000 + len(self.calls),
            oi=0,
            timestamp=self.clock.now(),
            bid_qty=qty,
            ask_qty=qty,
        )

    async def quotes(self, keys: Sequence[InstrumentKey]) -> dict[InstrumentKey, Quote]:
        self.calls.append((asyncio.get_running_loop().time(), len(keys)))
        if self.fail is not None:
            raise self.fail
        if self.quote_everything:
            for key in keys:
                if key not in self.prices:
                    self.set(key, "100")
        return {k: self.prices[k] for k in keys if k in self.prices}

    async def history(
        self, exchange: Exchange, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[Candle]:
        self.history_calls.append((exchange, symbol, interval, start, end))
        return list(self.candles)


def follower(clock: ManualClock, seed: int = 7) -> SandboxBroker:
    return SandboxBroker(
        master=sample_master(clock.now().date()),
        clock=clock,
        calendar=MarketCalendar(hours=MarketHours.EXCHANGE),
        seed=seed,
    )


def request(
    key: InstrumentKey = SBIN,
    qty: int = 1,
    action: Action = Action.BUY,
    pricetype: PriceType = PriceType.MARKET,
    price: str = "0",
) -> OrderRequest:
    return OrderRequest(
        symbol=key[1],
        exchange=key[0],
        action=action,
        quantity=qty,
        pricetype=pricetype,
        product=Product.MIS,
        price=D(price),
        strategy="live",
    )


def clock_at(time: str = "10:00") -> ManualClock:
    return ManualClock(at_ist(DAY, time))


# -- following another sandbox ------------------------------------------------------------------
def test_paper_orders_fill_at_the_source_brokers_prices() -> None:
    async def scenario() -> None:
        clock = clock_at()
        source, paper = follower(clock, seed=11), follower(clock, seed=7)
        own = await paper.quote(*SBIN)
        live = await paper.follow(source, calls_per_second=FAST)
        theirs = await source.quote(*SBIN)
        assert theirs.ltp != own.ltp  # different universes: the test can tell them apart
        order = await paper.place_order(request(qty=1))
        assert order.status is OrderStatus.COMPLETE
        assert order.average_price == theirs.ask
        assert (await paper.quote(*SBIN)).ltp == theirs.ltp
        clock.advance(timedelta(minutes=5))
        assert await live.refresh()
        moved = await source.quote(*SBIN)
        assert moved.ltp != theirs.ltp
        assert (await paper.quote(*SBIN)).ltp == moved.ltp
        sell = await paper.place_order(request(qty=1, action=Action.SELL))
        assert sell.average_price == moved.bid
        (position,) = [p for p in await paper.positions() if p.symbol == "SBIN"]
        assert position.quantity == 0
        assert position.pnl == moved.bid - theirs.ask

    asyncio.run(scenario())


def test_unfollow_returns_to_the_simulation() -> None:
    async def scenario() -> None:
        clock = clock_at()
        paper = follower(clock)
        own = await paper.quote(*SBIN)
        board = Board(clock)
        board.set(SBIN, "123.45")
        await paper.follow(board, calls_per_second=FAST)
        assert (await paper.quote(*SBIN)).ltp == D("123.45")
        await paper.unfollow()
        assert paper.live is None
        assert await paper.quote(*SBIN) == own

    asyncio.run(scenario())


# -- matching on live quotes --------------------------------------------------------------------
def test_a_resting_limit_fills_when_the_live_price_crosses() -> None:
    async def scenario() -> None:
        clock = clock_at()
        board = Board(clock)
        board.set(SBIN, "800")
        paper = follower(clock)
        live = await paper.follow(board, calls_per_second=FAST)
        order = await paper.place_order(request(qty=5, pricetype=PriceType.LIMIT, price="795"))
        assert order.status is OrderStatus.OPEN
        clock.advance(timedelta(seconds=1))
        board.set(SBIN, "796")
        await live.refresh()
        paper.exchange.step()
        assert (await paper.order(order.orderid)).status is OrderStatus.OPEN
        clock.advance(timedelta(seconds=1))
        board.set(SBIN, "794.50")
        await live.refresh()
        paper.exchange.step()
        filled = await paper.order(order.orderid)
        assert filled.status is OrderStatus.COMPLETE
        assert filled.average_price <= D("795")

    asyncio.run(scenario())


def test_one_print_is_offered_once() -> None:
    """Polling once a second while the sandbox steps four times a second must not fill the
    same quote four times over."""

    async def scenario() -> None:
        clock = clock_at()
        board = Board(clock)
        board.set(SBIN, "800", qty=5)  # 5 a level, 5 levels: 25 per print
        paper = follower(clock)
        live = await paper.follow(board, calls_per_second=FAST)
        order = await paper.place_order(request(qty=100, pricetype=PriceType.LIMIT, price="800.30"))
        assert order.filled_quantity == 25
        for _ in range(4):
            clock.advance(timedelta(milliseconds=250))
            await live.refresh()  # the board has not printed again
            paper.exchange.step()
        assert (await paper.order(order.orderid)).filled_quantity == 25
        board.set(SBIN, "800.05", qty=5)  # a new print
        await live.refresh()
        clock.advance(timedelta(milliseconds=250))
        paper.exchange.step()
        # asks 800.10 to 800.30: five more levels of 5 at or under the limit
        assert (await paper.order(order.orderid)).filled_quantity == 50

    asyncio.run(scenario())


def test_live_book_is_built_on_the_tick_grid_around_the_quote() -> None:
    clock = clock_at()
    sbin = sample_master(clock.now().date()).find(*SBIN)
    assert sbin is not None
    board = Board(clock)
    board.set(SBIN, "812.35", qty=7)
    book = synthetic_book(sbin, board.prices[SBIN])
    assert [lv.price for lv in book.bids] == [D("812.30") - D("0.05") * i for i in range(5)]
    assert [lv.price for lv in book.asks] == [D("812.40") + D("0.05") * i for i in range(5)]
    assert {lv.quantity for lv in book.bids + book.asks} == {7}
    index_like = Quote(
        "SBIN", Exchange.NSE, D("812.35"), D(0), D(0), D(0), D(0), D(0), D(0), 0, 0, clock.now()
    )
    empty_sides = synthetic_book(sbin, index_like)
    assert empty_sides.quote.bid == D("812.30") and empty_sides.quote.ask == D("812.40")
    crossed = Quote(
        "SBIN", Exchange.NSE, D(812), D(813), D(812), D(0), D(0), D(0), D(0), 0, 0, clock.now()
    )
    fixed = synthetic_book(sbin, crossed)
    assert fixed.quote.ask == fixed.quote.bid + D("0.05")


# -- no made-up prices --------------------------------------------------------------------------
def test_no_live_price_refuses_the_order_and_changes_nothing() -> None:
    async def scenario() -> None:
        clock = clock_at()
        paper = follower(clock)
        funds = await paper.funds()
        await paper.follow(Board(clock), calls_per_second=FAST)  # knows no symbol
        with pytest.raises(LivePriceUnavailable, match="No live price for NSE:SBIN from board"):
            await paper.place_order(request())
        assert await paper.orders() == []
        assert await paper.funds() == funds
        assert issubclass(LivePriceUnavailable, OrderRejected)

    asyncio.run(scenario())


def test_a_failing_source_keeps_the_last_prices_and_recovers() -> None:
    async def scenario() -> None:
        clock = clock_at()
        board = Board(clock)
        board.set(SBIN, "800")
        paper = follower(clock)
        live = await paper.follow(board, calls_per_second=FAST)
        await paper.place_order(request())
        board.fail = BrokerSessionExpired("Zerodha session expired; log in again")
        assert not await live.refresh()
        assert live.last_error is not None and "BrokerSessionExpired" in live.last_error
        assert (await paper.quote(*SBIN)).ltp == D("800")  # the last price stays
        again = await paper.place_order(request())
        assert again.status is OrderStatus.COMPLETE
        board.set(RELIANCE, "1500")
        with pytest.raises(LivePriceUnavailable, match="session expired"):
            await paper.place_order(request(RELIANCE))
        board.fail = None
        order = await paper.place_order(request(RELIANCE))
        assert order.average_price == D("1500.05")
        assert live.last_error is None

    asyncio.run(scenario())


def test_a_stale_price_takes_no_new_order_but_keeps_the_books() -> None:
    """Once the source has not confirmed a price for `max_age` seconds, a new order (or a
    modification) is refused, after one fresh fetch is tried; an unchanged quote that the
    source keeps sending is not stale."""

    async def scenario() -> None:
        clock = clock_at()
        board = Board(clock)
        board.set(SBIN, "800")
        paper = follower(clock)
        live = await paper.follow(board, calls_per_second=FAST, max_age=0.2)
        resting = await paper.place_order(request(pricetype=PriceType.LIMIT, price="790"))
        await asyncio.sleep(0.3)  # old, but the source still answers: fetched again, accepted
        calls = len(board.calls)
        assert (await paper.place_order(request())).status is OrderStatus.COMPLETE
        assert len(board.calls) == calls + 1 and not live.stale(SBIN)
        board.fail = BrokerSessionExpired("Zerodha session expired; log in again")
        await asyncio.sleep(0.3)
        funds = await paper.funds()
        stale = r"NSE:SBIN from board is \d+\.\d s old"
        with pytest.raises(LivePriceUnavailable, match=stale) as err:
            await paper.place_order(request())
        assert "orders need one under 0.2 s" in str(err.value)
        assert "session expired" in str(err.value)
        change = OrderModification(price=D("795"))
        with pytest.raises(LivePriceUnavailable, match="old"):
            await paper.modify_order(resting.orderid, change)
        assert len(await paper.orders()) == 2 and await paper.funds() == funds
        assert (await paper.quote(*SBIN)).ltp == D("800")  # still shown
        assert (await paper.cancel_order(resting.orderid)).status is OrderStatus.CANCELLED
        board.fail = None
        assert (await paper.place_order(request())).status is OrderStatus.COMPLETE

    asyncio.run(scenario())


# -- polling ------------------------------------------------------------------------------------
def test_background_polling_is_batched_and_rate_bounded() -> None:
    async def scenario() -> None:
        clock = clock_at()
        board = Board(clock, quote_everything=True)
        paper = follower(clock)
        live = await paper.follow(board, poll_interval=0.02, calls_per_second=20, batch_size=500)
        live.watch(list(paper.master)[:1200])
        await paper.start()
        await asyncio.sleep(0.6)
        await paper.stop()
        sizes = [size for _, size in board.calls]
        assert max(sizes) <= 500 and sum(sizes) >= 1200  # at least one full round of 3 calls
        gaps = [b[0] - a[0] for a, b in zip(board.calls, board.calls[1:], strict=False)]
        assert min(gaps) >= 0.05 - 0.005  # never faster than 20 calls a second
        assert len(board.calls) <= 0.6 * 20 + 2
        assert len(live.watched) >= 1200 and live.latest(live.watched[0]) is not None

    asyncio.run(scenario())


def test_a_failing_source_is_polled_less_and_less() -> None:
    async def scenario() -> None:
        clock = clock_at()
        board = Board(clock, fail=BrokerSessionExpired("expired"))
        paper = follower(clock)
        live = await paper.follow(board, poll_interval=0.02, calls_per_second=1000)
        live.watch([paper.master.find(*SBIN)])  # type: ignore[list-item]
        live.start()
        await asyncio.sleep(0.5)
        await live.stop()
        # healthy it would poll ~25 times; backing off (0.04, 0.08, 0.16, 0.32 s) a handful
        assert 2 <= len(board.calls) <= 6
        assert live.failures == len(board.calls)

    asyncio.run(scenario())


def test_options_bring_their_underlying_along() -> None:
    async def scenario() -> None:
        clock = clock_at()
        paper = follower(clock)
        option = next(i for i in paper.master if i.is_option and i.underlying == "NIFTY")
        live = await paper.follow(Board(clock), calls_per_second=FAST)
        live.watch([option])
        assert set(live.watched) == {option.key, (Exchange.NSE_INDEX, "NIFTY")}

    asyncio.run(scenario())


def test_following_watches_open_positions_and_working_orders() -> None:
    async def scenario() -> None:
        clock = clock_at()
        paper = follower(clock)
        await paper.place_order(request(RELIANCE, qty=2))
        await paper.place_order(request(qty=1, pricetype=PriceType.LIMIT, price="500"))
        live = await paper.follow(Board(clock), calls_per_second=FAST)
        assert set(live.watched) == {SBIN, RELIANCE}

    asyncio.run(scenario())


def test_history_comes_from_the_source_while_following() -> None:
    async def scenario() -> None:
        clock = clock_at()
        board = Board(clock)
        bar = Candle(clock.now() - timedelta(minutes=1), D(1), D(2), D("0.5"), D("1.5"), 10)
        board.candles = [bar]
        paper = follower(clock)
        await paper.follow(board, calls_per_second=FAST)
        start = clock.now() - timedelta(hours=1)
        assert await paper.history(*SBIN, Interval.M1, start, clock.now()) == [bar]
        assert board.history_calls == [(*SBIN, Interval.M1, start, clock.now())]

    asyncio.run(scenario())


def test_bad_settings_are_refused() -> None:
    board = Board(clock_at())
    for kwargs, name in (
        ({"poll_interval": 0}, "poll_interval"),
        ({"calls_per_second": -1}, "calls_per_second"),
        ({"batch_size": 0}, "batch_size"),
        ({"spread_ticks": 0}, "spread_ticks"),
        ({"max_age": 0}, "max_age"),
    ):
        with pytest.raises(ValidationError, match=name):
            LiveMarket(board, **kwargs)  # type: ignore[arg-type]


# -- the Zerodha adapter on the Kite fake -------------------------------------------------------
@pytest.mark.slow  # about 3 s: the adapter keeps to Kite's one quote call a second
def test_paper_trading_on_kite_prices(tmp_path: Path) -> None:
    from openalgo_lab.brokers.zerodha import KiteConfig, ZerodhaBroker

    async def scenario(fake: KiteFake) -> None:
        fake.set_ltp("NSE", "SBIN", D("812.35"))
        config = KiteConfig(
            api_key="kite_key",
            api_secret="kite_secret",
            account="kite",
            base_url=fake.base_url,
            cache_dir=tmp_path / "cache",
            timeout=5.0,
        )
        zerodha = ZerodhaBroker(config)
        await zerodha.complete_login(fake.request_token())
        try:
            clock = ManualClock(datetime.now(UTC))
            paper = SandboxBroker(
                master=sample_master(),
                clock=clock,
                calendar=MarketCalendar(hours=MarketHours.ALWAYS),
            )
            live = await paper.follow(zerodha, calls_per_second=FAST)  # the adapter queues
            kite_quote = await zerodha.quote(*SBIN)
            order = await paper.place_order(request(qty=1))
            assert order.average_price == kite_quote.ask
            fake.set_ltp("NSE", "SBIN", D("820"))
            assert await live.refresh()  # the adapter waits its turn under Kite's 1/s
            clock.advance(timedelta(seconds=1))
            assert (await paper.quote(*SBIN)).ltp == D("820")
            assert fake.orders == []  # paper orders never reach the broker
        finally:
            await zerodha.aclose()

    with KiteFake() as fake:
        asyncio.run(scenario(fake))
