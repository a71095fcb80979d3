"""Per-strategy position books, built from the fills the engine sees.

Brokers net positions per symbol; traders judge strategies. Every fill carries the strategy
that placed its order, so the engine keeps a small book per (account, strategy, instrument,
product) to know each strategy's realised P&L today (for its loss limit) without a query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from openalgo_lab.domain.calendar import IST
from openalgo_lab.domain.models import Trade
from openalgo_lab.domain.money import ZERO

Key = tuple[str, str, str, str, str]  # account, strategy, exchange, symbol, product


@dataclass(slots=True)
class _Book:
    quantity: int = 0
    cost: Decimal = ZERO  # entry value of the open quantity


@dataclass
class StrategyBooks:
    day: date | None = None
    _books: dict[Key, _Book] = field(default_factory=dict)
    _realized: dict[tuple[str, str], Decimal] = field(default_factory=dict)

    def record(self, account: str, trade: Trade) -> None:
        day = trade.timestamp.astimezone(IST).date()
        if day != self.day:
            self.day = day
            self._realized.clear()
        key = (account, trade.strategy, trade.exchange.value, trade.symbol, trade.product.value)
        book = self._books.setdefault(key, _Book())
        signed = trade.action.sign * trade.quantity
        pnl = ZERO
        if book.quantity == 0 or (book.quantity > 0) == (signed > 0):
            book.quantity += signed
            book.cost += trade.price * trade.quantity
        else:
            closing = min(abs(signed), abs(book.quantity))
            released = book.cost * closing / abs(book.quantity)
            exit_value = trade.price * closing
            pnl = exit_value - released if book.quantity > 0 else released - exit_value
            book.cost -= released
            book.quantity += trade.action.sign * closing
            opening = trade.quantity - closing
            if opening:
                book.quantity = trade.action.sign * opening
                book.cost = trade.price * opening
        strat = (account, trade.strategy)
        self._realized[strat] = self._realized.get(strat, ZERO) + pnl - trade.charges

    def realized_today(self, account: str, strategy: str) -> Decimal:
        """Realised P&L net of charges for `strategy` today (0 if it has not traded)."""
        return self._realized.get((account, strategy), ZERO)
