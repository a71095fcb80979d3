"""A sandbox trading account: cash, positions, holdings, margin and charges.

Money is exact (`Decimal`). Realised P&L of a round trip is exactly sell value minus buy value:
partial closes release cost basis pro rata rounded to the paisa, and the fill that flattens a
position releases whatever cost is left, so rounding never leaks into totals.

Cash moves only through realised P&L, charges and settled holdings; margin is derived from
state (each position's requirement plus each working order's reservation), never carried as a
running total that could drift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from openalgo_lab.brokers.sandbox.charges import ChargeRates, Charges, ContractNote
from openalgo_lab.brokers.sandbox.margin import MarginRules, margin_for_order, margin_required
from openalgo_lab.domain.enums import Action, Exchange, Product
from openalgo_lab.domain.models import Funds, Holding, Instrument, Position
from openalgo_lab.domain.money import ZERO, round_paise

DEFAULT_CAPITAL = Decimal(10_000_000)  # ₹1 crore, OpenAlgo's sandbox default

PriceOf = Callable[[Instrument], Decimal]
PositionKey = tuple[Exchange, str, Product]


@dataclass(slots=True)
class PositionState:
    instrument: Instrument
    product: Product
    quantity: int = 0  # signed: > 0 long, < 0 short
    open_cost: Decimal = ZERO  # entry value of the open quantity (always >= 0)
    realized: Decimal = ZERO  # today's realised P&L on this position
    buy_quantity: int = 0
    sell_quantity: int = 0
    buy_value: Decimal = ZERO
    sell_value: Decimal = ZERO
    margin: Decimal = ZERO  # margin this position blocks now
    strategy: str = ""  # the strategy of the last order that opened or added to it

    @property
    def average_price(self) -> Decimal:
        return self.open_cost / abs(self.quantity) if self.quantity else ZERO

    def unrealized(self, ltp: Decimal) -> Decimal:
        if not self.quantity:
            return ZERO
        mark = ltp * abs(self.quantity)
        return mark - self.open_cost if self.quantity > 0 else self.open_cost - mark

    def apply(self, action: Action, quantity: int, price: Decimal) -> Decimal:
        """Net a fill into the position; returns the P&L it realises."""
        value = price * quantity
        if action is Action.BUY:
            self.buy_quantity += quantity
            self.buy_value += value
        else:
            self.sell_quantity += quantity
            self.sell_value += value
        signed = action.sign * quantity
        if self.quantity == 0 or (self.quantity > 0) == (signed > 0):
            self.quantity += signed
            self.open_cost += value
            return ZERO
        closing = min(quantity, abs(self.quantity))
        released = self._release_cost(closing)
        exit_value = price * closing
        pnl = exit_value - released if self.quantity > 0 else released - exit_value
        self.quantity += action.sign * closing
        opening = quantity - closing
        if opening:  # a reversal: the rest opens a new position at the fill price
            self.quantity += signed - action.sign * closing
            self.open_cost = price * opening
        self.realized += pnl
        return pnl

    def _release_cost(self, closing: int) -> Decimal:
        if closing == abs(self.quantity):
            released = self.open_cost
        else:
            released = round_paise(self.open_cost * closing / abs(self.quantity))
        self.open_cost -= released
        return released


@dataclass(slots=True)
class HoldingState:
    instrument: Instrument
    quantity: int = 0
    cost: Decimal = ZERO

    @property
    def average_price(self) -> Decimal:
        return self.cost / self.quantity if self.quantity else ZERO


@dataclass
class Account:
    """Funds, positions and holdings of one sandbox account."""

    capital: Decimal = DEFAULT_CAPITAL
    rates: ChargeRates | None = None
    margin_rules: MarginRules | None = None
    trading_day: date | None = None
    realized_total: Decimal = ZERO  # since the account was opened
    charges_total: Decimal = ZERO
    realized_today: Decimal = ZERO
    positions: dict[PositionKey, PositionState] = field(default_factory=dict)
    holdings: dict[tuple[Exchange, str], HoldingState] = field(default_factory=dict)
    order_reservations: dict[str, Decimal] = field(default_factory=dict)
    note: ContractNote | None = None
    reserved_total: Decimal = ZERO  # == sum(order_reservations.values()), kept exact on change

    # -- derived money ----------------------------------------------------------------------
    @property
    def holdings_cost(self) -> Decimal:
        return sum((h.cost for h in self.holdings.values()), ZERO)

    @property
    def cash(self) -> Decimal:
        return self.capital + self.realized_total - self.charges_total - self.holdings_cost

    @property
    def used_margin(self) -> Decimal:
        held = sum((p.margin for p in self.positions.values()), ZERO)
        return held + self.reserved_total

    @property
    def available(self) -> Decimal:
        return self.cash - self.used_margin

    # -- orders -----------------------------------------------------------------------------
    def position(self, instrument: Instrument, product: Product) -> PositionState:
        key = (instrument.exchange, instrument.symbol, product)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = PositionState(instrument, product)
        return pos

    def position_quantity(self, instrument: Instrument, product: Product) -> int:
        pos = self.positions.get((instrument.exchange, instrument.symbol, product))
        return pos.quantity if pos else 0

    def holding_quantity(self, instrument: Instrument) -> int:
        h = self.holdings.get((instrument.exchange, instrument.symbol))
        return h.quantity if h else 0

    def reservation_for(
        self,
        instrument: Instrument,
        product: Product,
        action: Action,
        quantity: int,
        price: Decimal,
        underlying_price: Decimal | None,
    ) -> Decimal:
        """Margin a new order needs, net of the position it would reduce."""
        if product is Product.CNC and action is Action.SELL:
            return ZERO
        return margin_for_order(
            instrument,
            product,
            action,
            quantity,
            price,
            position_quantity=self.position_quantity(instrument, product),
            underlying_price=underlying_price,
            rules=self.margin_rules,
        )

    def reserve(self, orderid: str, amount: Decimal) -> None:
        """Set (replace) the margin a working order holds back."""
        self.release(orderid)
        if amount > 0:
            self.order_reservations[orderid] = amount
            self.reserved_total += amount

    def release(self, orderid: str) -> None:
        self.reserved_total -= self.order_reservations.pop(orderid, ZERO)

    # -- fills ------------------------------------------------------------------------------
    def apply_fill(
        self,
        instrument: Instrument,
        product: Product,
        action: Action,
        orderid: str,
        quantity: int,
        price: Decimal,
        trade_day: date,
        underlying_price: Decimal | None,
        strategy: str = "",
    ) -> Charges:
        """Book one fill: position, realised P&L, charges, margin. Returns the fill's charges."""
        self.roll_to(trade_day)
        assert self.note is not None
        charges = self.note.add_fill(instrument, product, action, orderid, quantity, price)
        self.charges_total += charges.total
        if product is Product.CNC and action is Action.SELL:
            pnl = self._sell_delivery(instrument, quantity, price)
        else:
            pos = self.position(instrument, product)
            before = abs(pos.quantity)
            pnl = pos.apply(action, quantity, price)
            if abs(pos.quantity) > before or (pos.quantity and before == 0):
                pos.strategy = strategy
            self._remargin(pos, underlying_price)
        self.realized_total += pnl
        self.realized_today += pnl
        return charges

    def _sell_delivery(self, instrument: Instrument, quantity: int, price: Decimal) -> Decimal:
        """A CNC sell closes today's delivery buys first, then sells from holdings."""
        pos = self.position(instrument, Product.CNC)
        from_position = min(quantity, max(pos.quantity, 0))
        pnl = ZERO
        if from_position:
            pnl += pos.apply(Action.SELL, from_position, price)
            self._remargin(pos, None)
        rest = quantity - from_position
        if rest:
            holding = self.holdings[(instrument.exchange, instrument.symbol)]
            if rest == holding.quantity:
                released = holding.cost
            else:
                released = round_paise(holding.cost * rest / holding.quantity)
            holding.quantity -= rest
            holding.cost -= released
            if not holding.quantity:
                del self.holdings[(instrument.exchange, instrument.symbol)]
            sale = price * rest
            pos.sell_quantity += rest
            pos.sell_value += sale
            pos.realized += sale - released
            pnl += sale - released
        return pnl

    def _remargin(self, pos: PositionState, underlying_price: Decimal | None) -> None:
        if not pos.quantity:
            pos.margin = ZERO
            return
        action = Action.BUY if pos.quantity > 0 else Action.SELL
        pos.margin = margin_required(
            pos.instrument,
            pos.product,
            action,
            abs(pos.quantity),
            pos.average_price,
            underlying_price=underlying_price,
            rules=self.margin_rules,
        )

    def settle_at(self, pos: PositionState, price: Decimal) -> Decimal:
        """Close a position at a settlement price (expiry) without a market order."""
        if not pos.quantity:
            return ZERO
        action = Action.SELL if pos.quantity > 0 else Action.BUY
        pnl = pos.apply(action, abs(pos.quantity), price)
        pos.margin = ZERO
        self.realized_total += pnl
        self.realized_today += pnl
        return pnl

    def charge(self, charges: Charges) -> None:
        """Charges that come from no fill (STT on exercise)."""
        self.charges_total += charges.total

    # -- days -------------------------------------------------------------------------------
    def roll_to(self, day: date) -> None:
        """Start a new trading day: a new contract note, CNC buys settle into holdings (T+1),
        flat positions drop off, carried NRML positions keep their cost."""
        if self.trading_day == day:
            return
        if self.trading_day is not None:
            self._settle_delivery()
            self.positions = {k: p for k, p in self.positions.items() if p.quantity}
            for pos in self.positions.values():
                pos.realized = ZERO
                pos.buy_quantity = pos.sell_quantity = 0
                pos.buy_value = pos.sell_value = ZERO
        self.trading_day = day
        self.realized_today = ZERO
        self.note = ContractNote(day, self.rates)

    def _settle_delivery(self) -> None:
        for key, pos in list(self.positions.items()):
            if pos.product is not Product.CNC or pos.quantity <= 0:
                continue
            h = self.holdings.setdefault(key[:2], HoldingState(pos.instrument))
            h.quantity += pos.quantity
            h.cost += pos.open_cost
            del self.positions[key]

    # -- views ------------------------------------------------------------------------------
    def position_views(self, price_of: PriceOf) -> list[Position]:
        out = []
        for pos in self.positions.values():
            ltp = price_of(pos.instrument)
            out.append(
                Position(
                    symbol=pos.instrument.symbol,
                    exchange=pos.instrument.exchange,
                    product=pos.product,
                    quantity=pos.quantity,
                    average_price=pos.average_price,
                    ltp=ltp,
                    realized_pnl=pos.realized,
                    unrealized_pnl=pos.unrealized(ltp),
                    buy_quantity=pos.buy_quantity,
                    sell_quantity=pos.sell_quantity,
                    buy_value=pos.buy_value,
                    sell_value=pos.sell_value,
                )
            )
        return out

    def holding_views(self, price_of: PriceOf) -> list[Holding]:
        return [
            Holding(
                symbol=h.instrument.symbol,
                exchange=h.instrument.exchange,
                quantity=h.quantity,
                average_price=h.average_price,
                ltp=price_of(h.instrument),
            )
            for h in self.holdings.values()
        ]

    def funds(self, price_of: PriceOf) -> Funds:
        unrealized = sum(
            (p.unrealized(price_of(p.instrument)) for p in self.open_positions()), ZERO
        )
        return Funds(
            availablecash=round_paise(self.available),
            collateral=ZERO,
            m2mrealized=round_paise(self.realized_today),
            m2munrealized=round_paise(unrealized),
            utiliseddebits=round_paise(self.used_margin),
        )

    def open_positions(self) -> Iterable[PositionState]:
        return (p for p in self.positions.values() if p.quantity)
