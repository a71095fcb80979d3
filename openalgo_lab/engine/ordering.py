"""The path of an order through the engine (DESIGN.md, "the path of an order").

validated `OrderRequest` → idempotency check → risk checks → journal "accepted" (durable
before any broker call) → the account's broker (sandbox in analyze mode, else live) →
journal "acknowledged" or "rejected".

A retried request with the same idempotency key returns the first answer instead of placing a
second order. If the broker call fails with an unknown outcome, the journal entry stays "in
flight" and the engine reconciles it with the broker's order book on the next start.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from openalgo_lab.domain.enums import Action, Exchange, Product
from openalgo_lab.domain.errors import BrokerError, OpenAlgoError, OrderRejected, ValidationError
from openalgo_lab.domain.models import OrderRequest
from openalgo_lab.domain.validation import check_order_against_instrument
from openalgo_lab.engine.accounts import TradingAccount
from openalgo_lab.engine.risk import RiskLimits, RiskState, check_order
from openalgo_lab.engine.timing import phase

if TYPE_CHECKING:
    from openalgo_lab.engine.engine import Engine
    from openalgo_lab.store.state_journal import JournalBegin


class RequestInProgress(OpenAlgoError):
    http_status = 409


@dataclass(frozen=True, slots=True)
class Placed:
    """The outcome of one placement: the order id, and whether it repeats an earlier answer."""

    orderid: str
    duplicate: bool = False
    response: Mapping[str, Any] = field(default_factory=dict)


class OrderRouter:
    def __init__(self, engine: Engine, limits: RiskLimits) -> None:
        self.engine = engine
        self.limits = limits
        self.killed: set[str] = set()
        # journal entry of each order, by the tag the order carries (its idempotency key):
        # lets the engine file an order's later states under its entry, off the order path
        self.entries_by_tag: dict[str, int] = {}
        # entries whose placement outcome the live broker could not tell (answer lost and
        # order book unreadable), by tag: left in flight, settled when the order shows up
        # in the broker's events or a readable order book (Engine._settle_loop)
        self.unsettled: dict[str, int] = {}
        self._symbol_locks: dict[tuple[str, Exchange, str, Product], asyncio.Lock] = {}

    def symbol_lock(self, account: str, request: OrderRequest) -> asyncio.Lock:
        """One lock per (account, symbol, product): smart orders read-then-act under it."""
        key = (account, request.exchange, request.symbol, request.product)
        lock = self._symbol_locks.get(key)
        if lock is None:
            lock = self._symbol_locks[key] = asyncio.Lock()
        return lock

    async def place(
        self,
        account: TradingAccount,
        request: OrderRequest,
        *,
        action: str,
        idempotency_key: str = "",
        raw: Mapping[str, Any] | None = None,
    ) -> Placed:
        journal = self.engine.journal
        key = idempotency_key or uuid.uuid4().hex
        entry_id = None
        if journal is not None:
            with phase("journal"):
                begun = journal.begin(
                    account=account.name,
                    action=action,
                    idempotency_key=key,
                    request=dict(raw) if raw is not None else _request_record(request),
                )
            if begun.duplicate:
                return self._repeat(begun)
            entry_id = begun.entry_id
            self.entries_by_tag[key[:40]] = entry_id
        try:
            with phase("risk"):
                self._check_instrument(account, request)
                await self._check_risk(account, request)
        except OpenAlgoError as err:
            self._reject(entry_id, err)
            raise
        try:
            with phase("broker"):
                order = await account.order_broker.place_order(_with_tag(request, key))
        except BrokerError:
            # The broker may have the order (the Broker protocol's meaning of a BrokerError
            # from place_order): the entry stays in flight and is settled by its tag, the
            # order is never re-sent.
            if entry_id is not None:
                self.unsettled[key[:40]] = entry_id
            raise
        except OpenAlgoError as err:
            self._reject(entry_id, err)
            raise
        if journal is not None and entry_id is not None:
            with phase("journal"):
                journal.acknowledge(
                    entry_id, orderid=order.orderid, response={"orderid": order.orderid}
                )
        return Placed(order.orderid)

    def _reject(self, entry_id: int | None, err: OpenAlgoError) -> None:
        journal = self.engine.journal
        if journal is not None and entry_id is not None:
            with phase("journal"):
                journal.reject(entry_id, reason=err.message, response=err.to_envelope())

    @staticmethod
    def _repeat(begun: JournalBegin) -> Placed:
        """A retry of a request the journal has seen: repeat its answer, place nothing."""
        if not begun.request_matches:
            raise ValidationError("idempotency_key", "was already used for a different request")
        previous = begun.previous_response or {}
        if begun.previous_status == "accepted":
            raise RequestInProgress(
                "A request with this idempotency key is still in progress; retry shortly"
            )
        if begun.previous_status == "rejected":
            raise OrderRejected(str(previous.get("message", "rejected earlier")))
        return Placed(str(previous.get("orderid", "")), True, previous)

    def _check_instrument(self, account: TradingAccount, request: OrderRequest) -> None:
        """Master-contract rules (symbol, ticks, lots, products) before risk and the broker,
        against the master of the broker that will take the order."""
        inst = account.order_master.find(request.exchange, request.symbol)
        if inst is None:
            raise ValidationError("symbol", f"{request.symbol} not found on {request.exchange}")
        check_order_against_instrument(request, inst)

    async def _check_risk(self, account: TradingAccount, request: OrderRequest) -> None:
        broker = account.order_broker
        price = request.price
        if price <= 0:
            price = request.trigger_price
        if price <= 0:
            quote = await broker.quote(request.exchange, request.symbol)
            price = quote.ask if request.action is Action.BUY and quote.ask > 0 else quote.ltp
        state = RiskState()
        if (
            self.limits.max_position_quantity is not None
            or self.limits.max_daily_loss is not None
            or self.limits.max_daily_loss_per_strategy
        ):
            state = await self._risk_state(account, request)
        check_order(self.limits, request, price, state, killed=account.name in self.killed)

    async def _risk_state(self, account: TradingAccount, request: OrderRequest) -> RiskState:
        broker = account.order_broker
        positions = await broker.positions()
        qty = next(
            (
                p.quantity
                for p in positions
                if p.symbol == request.symbol
                and p.exchange is request.exchange
                and p.product is request.product
            ),
            0,
        )
        funds = await broker.funds()
        charges_today = sum((t.charges for t in await broker.trades()), Decimal(0))
        day = funds.m2mrealized + funds.m2munrealized - charges_today
        strategy_pnl = self.engine.strategy_books.realized_today(account.name, request.strategy)
        return RiskState(qty, day, strategy_pnl)


def _with_tag(request: OrderRequest, key: str) -> OrderRequest:
    return request if request.tag else replace(request, tag=key[:40])


def _request_record(request: OrderRequest) -> dict[str, Any]:
    return {
        "symbol": request.symbol,
        "exchange": request.exchange.value,
        "action": request.action.value,
        "quantity": request.quantity,
        "pricetype": request.pricetype.value,
        "product": request.product.value,
        "price": str(request.price),
        "trigger_price": str(request.trigger_price),
        "strategy": request.strategy,
    }
