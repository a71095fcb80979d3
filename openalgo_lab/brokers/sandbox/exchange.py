"""The sandbox exchange: accepts orders, matches them on market ticks, runs the day's schedule.

This is the synchronous, deterministic core of the sandbox broker. Nothing in it reads the wall
clock or sleeps: time comes from a `Clock`, prices from a `MarketData` source, so a test can
drive a full trading day (orders, partial fills, square-off, settlement) in a few milliseconds
and get the same result every run. `SandboxBroker` wraps it for the async `Broker` protocol.

Every public method checks everything before it changes anything: an order that fails
validation, a market rule or margin leaves books and funds exactly as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from openalgo_lab.brokers.sandbox.account import Account
from openalgo_lab.brokers.sandbox.matching import Liquidity, OrderBook, take, trigger_hit
from openalgo_lab.brokers.sandbox.orders import OrderIds, WorkingOrder
from openalgo_lab.domain.calendar import IST, MarketCalendar
from openalgo_lab.domain.clock import Clock
from openalgo_lab.domain.enums import Action, Exchange, OrderStatus, PriceType, Product
from openalgo_lab.domain.errors import (
    InsufficientFunds,
    InvalidOrderState,
    MarketClosed,
    NotFoundError,
    OrderRejected,
    ValidationError,
)
from openalgo_lab.domain.models import (
    Depth,
    Funds,
    Holding,
    Instrument,
    Order,
    OrderEvent,
    OrderModification,
    OrderRequest,
    Position,
    Trade,
)
from openalgo_lab.domain.money import ZERO, round_paise
from openalgo_lab.domain.validation import check_price_fields, check_quantity_and_prices
from openalgo_lab.instruments.master import MasterContract

if TYPE_CHECKING:
    from openalgo_lab.brokers.sandbox.market import MarketData

Listener = Callable[[OrderEvent], None]


@dataclass(frozen=True, slots=True)
class _Tick:
    at: datetime
    depth: Depth
    liquidity: Liquidity


class SandboxExchange:
    def __init__(
        self,
        master: MasterContract,
        market: MarketData,
        *,
        clock: Clock,
        calendar: MarketCalendar | None = None,
        account: Account | None = None,
    ) -> None:
        self.master = master
        self.market = market
        self.clock = clock
        self.calendar = calendar or MarketCalendar()
        self.account = account or Account()
        self._ids = OrderIds()
        self._orders: dict[str, WorkingOrder] = {}
        self._working: dict[str, WorkingOrder] = {}
        self._books: dict[tuple[Exchange, str], OrderBook] = {}
        self._trades: list[Trade] = []
        self._ticks: dict[tuple[Exchange, str], _Tick] = {}
        self._listeners: list[Listener] = []
        self._day: date | None = None
        self._squared_off: set[tuple[date, Exchange]] = set()
        self._settled: set[date] = set()

    # -- events -----------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every order event; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, order: WorkingOrder, trade: Trade | None = None) -> None:
        if not self._listeners:
            return
        event = OrderEvent(order.snapshot(), trade)
        for listener in list(self._listeners):
            listener(event)

    # -- market -----------------------------------------------------------------------------
    def tick(self, instrument: Instrument, at: datetime | None = None) -> _Tick:
        """This instant's depth for `instrument`, with what orders have already taken of it."""
        at = at or self.clock.now()
        cached = self._ticks.get(instrument.key)
        if cached is not None and cached.at == at:
            return cached
        depth = self.market.depth(instrument, at)
        if cached is not None and cached.depth is depth:
            # The market has not printed since (a live quote polled once a second): what orders
            # took of that book stays taken.
            tick = _Tick(at, depth, cached.liquidity)
        else:
            tick = _Tick(at, depth, Liquidity.from_depth(depth))
        self._ticks[instrument.key] = tick
        return tick

    def use_market(self, market: MarketData) -> None:
        """Take prices from `market` from now on (ticks already seen are forgotten)."""
        self.market = market
        self._ticks.clear()

    def ltp(self, instrument: Instrument) -> Decimal:
        return self.tick(instrument).depth.quote.ltp

    def _underlying_price(self, instrument: Instrument) -> Decimal | None:
        if not instrument.is_option or instrument.underlying_exchange is None:
            return None
        underlying = self.master.find(instrument.underlying_exchange, instrument.underlying)
        return self.ltp(underlying) if underlying else None

    def instrument(self, exchange: Exchange, symbol: str) -> Instrument:
        found = self.master.find(exchange, symbol)
        if found is None:
            raise ValidationError("symbol", f"{symbol} not found on {exchange}")
        return found

    # -- orders -----------------------------------------------------------------------------
    def place(self, request: OrderRequest) -> Order:
        now = self.clock.now()
        self._advance_day(now)
        inst = self.instrument(request.exchange, request.symbol)
        check_quantity_and_prices(
            inst,
            request.product,
            request.quantity,
            request.pricetype,
            request.price,
            request.trigger_price,
        )
        self._check_session(inst, request, now)
        tick = self.tick(inst, now)
        ltp = tick.depth.quote.ltp
        self._check_stop_side(request.action, request.pricetype, request.trigger_price, ltp)
        if request.product is Product.CNC and request.action is Action.SELL:
            self._check_deliverable(inst, request.quantity)
        price_for_margin = self._margin_price(
            request.pricetype, request.price, request.trigger_price, request.action, tick
        )
        reserve = self.account.reservation_for(
            inst,
            request.product,
            request.action,
            request.quantity,
            price_for_margin,
            self._underlying_price(inst),
        )
        if reserve > self.account.available:
            raise InsufficientFunds(
                f"Insufficient funds: margin required ₹{round_paise(reserve)}, "
                f"available ₹{round_paise(self.account.available)}"
            )
        # Every check passed: from here on the order exists.
        order = WorkingOrder(
            orderid=self._ids.next(now.astimezone(IST)),
            instrument=inst,
            action=request.action,
            quantity=request.quantity,
            pricetype=request.pricetype,
            product=request.product,
            price=request.price if request.pricetype.needs_price else ZERO,
            trigger_price=request.trigger_price if request.pricetype.needs_trigger else ZERO,
            status=(
                OrderStatus.TRIGGER_PENDING if request.pricetype.needs_trigger else OrderStatus.OPEN
            ),
            placed_at=now,
            updated_at=now,
            strategy=request.strategy,
            tag=request.tag,
            disclosed_quantity=request.disclosed_quantity,
        )
        self._orders[order.orderid] = order
        self._working[order.orderid] = order
        self.account.reserve(order.orderid, reserve)
        self._emit(order)
        self._match(order, tick, resting=False)
        self._file(order)
        return order.snapshot()

    def modify(self, orderid: str, change: OrderModification) -> Order:
        order = self._working_order(orderid)
        quantity = change.quantity if change.quantity is not None else order.quantity
        pricetype = change.pricetype or order.pricetype
        price = change.price if change.price is not None else order.price
        trigger = change.trigger_price if change.trigger_price is not None else order.trigger_price
        check_price_fields(order.action, pricetype, price, trigger)
        check_quantity_and_prices(
            order.instrument, order.product, quantity, pricetype, price, trigger
        )
        if quantity <= order.filled_quantity:
            raise ValidationError(
                "quantity",
                f"must exceed the {order.filled_quantity} already filled on order {orderid}",
            )
        if pricetype.needs_trigger and order.triggered and pricetype != order.pricetype:
            raise InvalidOrderState(f"Order {orderid} has triggered; it cannot become a stop")
        tick = self.tick(order.instrument)
        if pricetype.needs_trigger and not order.triggered:
            self._check_stop_side(order.action, pricetype, trigger, tick.depth.quote.ltp)
        pending = quantity - order.filled_quantity
        reserve = self.account.reservation_for(
            order.instrument,
            order.product,
            order.action,
            pending,
            self._margin_price(pricetype, price, trigger, order.action, tick),
            self._underlying_price(order.instrument),
        )
        current = self.account.order_reservations.get(orderid, ZERO)
        if reserve - current > self.account.available:
            raise InsufficientFunds(
                f"Insufficient funds for the modification: margin required ₹{round_paise(reserve)}"
            )
        now = self.clock.now()
        order.quantity, order.pricetype = quantity, pricetype
        order.price = price if pricetype.needs_price else ZERO
        order.trigger_price = trigger if pricetype.needs_trigger else ZERO
        if change.disclosed_quantity is not None:
            order.disclosed_quantity = change.disclosed_quantity
        if not pricetype.needs_trigger and order.status is OrderStatus.TRIGGER_PENDING:
            order.move_to(OrderStatus.OPEN, now)
        order.touch(now)
        # a modified order loses its time priority, as at the exchange
        self._book(order.instrument).remove(orderid)
        self.account.reserve(orderid, reserve)
        self._emit(order)
        self._match(order, tick, resting=False)
        self._file(order)
        return order.snapshot()

    def cancel(self, orderid: str, reason: str = "") -> Order:
        order = self._working_order(orderid)
        order.rejection_reason = reason
        order.move_to(OrderStatus.CANCELLED, self.clock.now())
        self._finish(order)
        self._emit(order)
        return order.snapshot()

    def cancel_all(self) -> tuple[list[str], list[str]]:
        cancelled: list[str] = []
        failed: list[str] = []
        for orderid in list(self._working):
            try:
                self.cancel(orderid)
                cancelled.append(orderid)
            except InvalidOrderState:
                failed.append(orderid)
        return cancelled, failed

    def close_all(self, strategy: str = "") -> list[Order]:
        """Square off every open position with MARKET orders in its own product."""
        placed: list[Order] = []
        for pos in list(self.account.open_positions()):
            placed.extend(
                self._exit(pos.instrument, pos.product, pos.quantity, strategy or pos.strategy)
            )
        return placed

    def _exit(
        self, inst: Instrument, product: Product, quantity: int, strategy: str
    ) -> list[Order]:
        """MARKET orders that flatten `quantity` (signed), sliced at the freeze quantity the
        way brokers slice a large exit, so no slice is refused by the exchange."""
        action = Action.SELL if quantity > 0 else Action.BUY
        remaining = abs(quantity)
        slice_max = remaining
        if inst.freeze_qty:
            slice_max = max(inst.freeze_qty // inst.lotsize, 1) * inst.lotsize
        orders = []
        while remaining:
            qty = min(remaining, slice_max)
            orders.append(
                self.place(
                    OrderRequest(
                        symbol=inst.symbol,
                        exchange=inst.exchange,
                        action=action,
                        quantity=qty,
                        product=product,
                        strategy=strategy,
                    )
                )
            )
            remaining -= qty
        return orders

    def _working_order(self, orderid: str) -> WorkingOrder:
        order = self._orders.get(orderid)
        if order is None:
            raise NotFoundError(f"Order {orderid} not found")
        if order.status.is_terminal:
            raise InvalidOrderState(
                f"Order {orderid} is already {order.status.value}; it cannot be changed"
            )
        return order

    # -- checks -----------------------------------------------------------------------------
    def _check_session(self, inst: Instrument, request: OrderRequest, now: datetime) -> None:
        if not self.calendar.is_open(inst.exchange, now):
            raise MarketClosed(f"{inst.exchange} is closed now; orders are accepted in session")
        if request.product is not Product.MIS:
            return
        cutoff = self.calendar.squareoff_at(inst.exchange, now.astimezone(IST).date())
        if cutoff is None or now < cutoff:
            return
        position = self.account.position_quantity(inst, Product.MIS)
        reduces = position and (position > 0) != (request.action is Action.BUY)
        if not reduces or request.quantity > abs(position):
            local = cutoff.astimezone(IST).strftime("%H:%M")
            raise OrderRejected(
                f"MIS orders that open or add to a position are not accepted after the "
                f"{local} IST square-off on {inst.exchange}; use NRML/CNC or reduce only"
            )

    @staticmethod
    def _check_stop_side(
        action: Action, pricetype: PriceType, trigger: Decimal, ltp: Decimal
    ) -> None:
        """Exchanges refuse a stop whose trigger the market has already passed."""
        if not pricetype.needs_trigger:
            return
        if action is Action.BUY and trigger <= ltp:
            raise ValidationError(
                "trigger_price",
                f"a BUY stop's trigger ({trigger}) must be above the last price ({ltp})",
            )
        if action is Action.SELL and trigger >= ltp:
            raise ValidationError(
                "trigger_price",
                f"a SELL stop's trigger ({trigger}) must be below the last price ({ltp})",
            )

    def _check_deliverable(self, inst: Instrument, quantity: int) -> None:
        own = self.account.holding_quantity(inst) + max(
            self.account.position_quantity(inst, Product.CNC), 0
        )
        committed = sum(
            o.pending_quantity
            for o in self._working.values()
            if o.instrument is inst and o.product is Product.CNC and o.action is Action.SELL
        )
        if quantity > own - committed:
            raise OrderRejected(
                f"CNC SELL of {quantity} {inst.symbol}: only {own - committed} shares are "
                "available to sell from holdings and today's delivery buys"
            )

    @staticmethod
    def _margin_price(
        pricetype: PriceType, price: Decimal, trigger: Decimal, action: Action, tick: _Tick
    ) -> Decimal:
        if pricetype.needs_price:
            return price
        if pricetype is PriceType.SL_M:
            return trigger
        quote = tick.depth.quote
        best = quote.ask if action is Action.BUY else quote.bid
        return best if best > 0 else quote.ltp

    # -- matching ---------------------------------------------------------------------------
    def step(self, at: datetime | None = None) -> None:
        """Process the market at `at` (default: now): day roll, schedule, then each instrument
        with working orders against its tick."""
        now = at or self.clock.now()
        self._advance_day(now)
        self._run_schedule(now)
        open_now: dict[Exchange, bool] = {}
        for key, book in list(self._books.items()):
            if not book:
                continue
            exchange = key[0]
            if exchange not in open_now:
                open_now[exchange] = self.calendar.is_open(exchange, now)
            if open_now[exchange]:
                self._match_book(book, self.tick(book.orders()[0].instrument, now))

    def _match_book(self, book: OrderBook, tick: _Tick) -> None:
        """One tick for one instrument: fire stops, then market orders, then crossed limits."""
        liquidity = tick.liquidity
        for order in book.triggered(liquidity.ltp):
            order.move_to(OrderStatus.OPEN, tick.at)
            self._emit(order)
            self._match(order, tick, resting=False)
            self._file(order)
        for order in book.markets():
            self._match(order, tick, resting=False)
        for best, levels, sign in (
            (book.best_buy, liquidity.asks, 1),
            (book.best_sell, liquidity.bids, -1),
        ):
            # a resting buy is crossed when the best ask is at or below its limit (sign +1),
            # a resting sell when the best bid is at or above it (sign -1)
            while (resting := best()) is not None:
                level = next((lv for lv in levels if lv.quantity > 0), None)
                if level is None or level.price * sign > resting.price * sign:
                    break
                self._match(resting, tick, resting=True)
                if resting.status.is_working:
                    break  # the tick's liquidity is used up

    def _match(self, order: WorkingOrder, tick: _Tick, *, resting: bool) -> None:
        """Trade `order` against what is left of this tick (placement, modify or a tick)."""
        now = tick.at
        if order.status is OrderStatus.TRIGGER_PENDING:
            if not trigger_hit(order, tick.liquidity.ltp):
                return
            order.move_to(OrderStatus.OPEN, now)
            resting = False  # a triggered stop enters the book now, like a new order
            self._emit(order)
        for price, qty in take(order, tick.liquidity, resting=resting):
            self._fill(order, qty, price, now)
        if order.status.is_terminal:
            self._finish(order)
        elif order.filled_quantity:
            self._rereserve(order)

    def _book(self, instrument: Instrument) -> OrderBook:
        book = self._books.get(instrument.key)
        if book is None:
            book = self._books[instrument.key] = OrderBook()
        return book

    def _file(self, order: WorkingOrder) -> None:
        """Put a still-working order in its instrument's book."""
        if order.status.is_working:
            self._book(order.instrument).add(order)

    def _fill(self, order: WorkingOrder, quantity: int, price: Decimal, now: datetime) -> None:
        inst = order.instrument
        trade_id = order.record_fill(quantity, price, now)
        charges = self.account.apply_fill(
            inst,
            order.product,
            order.action,
            order.orderid,
            quantity,
            price,
            now.astimezone(IST).date(),
            self._underlying_price(inst),
            order.strategy,
        )
        trade = Trade(
            tradeid=trade_id,
            orderid=order.orderid,
            symbol=inst.symbol,
            exchange=inst.exchange,
            action=order.action,
            product=order.product,
            quantity=quantity,
            price=price,
            timestamp=now,
            strategy=order.strategy,
            charges=charges.total,
        )
        self._trades.append(trade)
        self._emit(order, trade)

    def _rereserve(self, order: WorkingOrder) -> None:
        tick = self.tick(order.instrument, order.updated_at)
        self.account.reserve(
            order.orderid,
            self.account.reservation_for(
                order.instrument,
                order.product,
                order.action,
                order.pending_quantity,
                self._margin_price(
                    order.effective_type, order.price, order.trigger_price, order.action, tick
                ),
                self._underlying_price(order.instrument),
            ),
        )

    def _finish(self, order: WorkingOrder) -> None:
        """An order left the market (filled, cancelled): drop it from the books, free margin."""
        self._working.pop(order.orderid, None)
        self._book(order.instrument).remove(order.orderid)
        self.account.release(order.orderid)

    # -- the day's schedule -----------------------------------------------------------------
    def _advance_day(self, now: datetime) -> None:
        today = now.astimezone(IST).date()
        if self._day == today:
            return
        if self._day is not None:
            self._end_of_day(self._day)
        self._day = today
        self.account.roll_to(today)
        self._orders = dict(self._working)  # the order book shows today's orders

    def _end_of_day(self, day: date) -> None:
        """Day orders expire at the close; expiring derivatives settle."""
        for orderid in list(self._working):
            self.cancel(orderid, "DAY order expired at the close")
        self._settle_expiries(day)

    def _run_schedule(self, now: datetime) -> None:
        today = now.astimezone(IST).date()
        busy = {key[0] for key, book in self._books.items() if book}
        for exchange in busy | {p.instrument.exchange for p in self.account.open_positions()}:
            if (today, exchange) in self._squared_off:
                continue
            cutoff = self.calendar.squareoff_at(exchange, today)
            if cutoff is not None and now >= cutoff:
                self._squared_off.add((today, exchange))
                self.square_off(exchange)

    def square_off(self, exchange: Exchange) -> list[Order]:
        """MIS square-off: cancel working MIS orders, close MIS positions at market."""
        for order in list(self._working.values()):
            if order.exchange is exchange and order.product is Product.MIS:
                self.cancel(order.orderid, "MIS order cancelled at square-off")
        exits: list[Order] = []
        for pos in list(self.account.open_positions()):
            if pos.instrument.exchange is exchange and pos.product is Product.MIS:
                exits.extend(self._exit(pos.instrument, Product.MIS, pos.quantity, pos.strategy))
        return exits

    def _settle_expiries(self, day: date) -> None:
        """Derivatives expiring on `day` settle at the close: futures at their last price,
        options at intrinsic value against the underlying's last price (cash-settled)."""
        if day in self._settled:
            return
        self._settled.add(day)
        for pos in list(self.account.open_positions()):
            inst = pos.instrument
            if inst.expiry != day:
                continue
            session = self.calendar.session(inst.exchange, day)
            at = session.close if session else self.clock.now()
            if inst.is_option:
                underlying = self.master.find(
                    inst.underlying_exchange or inst.exchange, inst.underlying
                )
                spot = self.market.depth(underlying, at).quote.ltp if underlying else ZERO
                intrinsic = max(
                    (spot - inst.strike) if inst.symbol.endswith("CE") else (inst.strike - spot),
                    ZERO,
                )
                if intrinsic > 0 and pos.quantity > 0:
                    assert self.account.note is not None
                    self.account.charge(
                        self.account.note.add_exercise(inst, pos.quantity, intrinsic)
                    )
                self.account.settle_at(pos, intrinsic)
            else:
                self.account.settle_at(pos, self.market.depth(inst, at).quote.ltp)

    # -- persistence (see persist.py) --------------------------------------------------------
    @property
    def day(self) -> date | None:
        return self._day

    @property
    def order_seq(self) -> int:
        return self._ids.seq

    @property
    def squared_off(self) -> set[tuple[date, Exchange]]:
        return set(self._squared_off)

    @property
    def settled(self) -> set[date]:
        return set(self._settled)

    def all_orders(self) -> list[WorkingOrder]:
        return list(self._orders.values())

    def restore(
        self,
        *,
        day: date | None,
        order_seq: int,
        orders: list[WorkingOrder],
        trades: list[Trade],
        squared_off: set[tuple[date, Exchange]],
        settled: set[date],
    ) -> None:
        """Put back a saved state (persist.load); working orders return to their books with
        their margin reserved again."""
        self._day = day
        self._ids.seq = order_seq
        self._orders = {o.orderid: o for o in orders}
        self._working = {o.orderid: o for o in orders if o.status.is_working}
        self._trades = list(trades)
        self._squared_off = set(squared_off)
        self._settled = set(settled)
        self._books.clear()
        for order in self._working.values():
            self._file(order)
            self._rereserve(order)

    # -- books ------------------------------------------------------------------------------
    def orders(self) -> list[Order]:
        return [o.snapshot() for o in self._orders.values()]

    def order(self, orderid: str) -> Order:
        found = self._orders.get(orderid)
        if found is None:
            raise NotFoundError(f"Order {orderid} not found")
        return found.snapshot()

    def trades(self) -> list[Trade]:
        day = self._day
        return [t for t in self._trades if t.timestamp.astimezone(IST).date() == day]

    def positions(self) -> list[Position]:
        return self.account.position_views(self.ltp)

    def holdings(self) -> list[Holding]:
        return self.account.holding_views(self.ltp)

    def funds(self) -> Funds:
        return self.account.funds(self.ltp)
