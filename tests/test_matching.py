"""The sandbox matching engine: depth walking, partial fills, stops, the state machine, and
the rule that a refused order changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from openalgo_lab.domain import (
    Action,
    InsufficientFunds,
    InvalidOrderState,
    NotFoundError,
    OrderModification,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    PriceType,
    Product,
    ValidationError,
)
from tests.sandbox_support import NIFTY_FUT, RELIANCE, SBIN, make_exchange, tick

D = Decimal


def order(symbol: str = "RELIANCE", **kw: object) -> OrderRequest:
    fields: dict[str, object] = {
        "symbol": symbol,
        "exchange": RELIANCE.exchange if symbol != NIFTY_FUT.symbol else NIFTY_FUT.exchange,
        "action": Action.BUY,
        "quantity": 10,
        "strategy": "t",
    }
    fields.update(kw)
    return OrderRequest(**fields)  # type: ignore[arg-type]


def state(exchange: object) -> tuple[object, ...]:
    ex = exchange
    return (ex.funds(), ex.orders(), ex.trades(), ex.positions(), ex.holdings())  # type: ignore[attr-defined]


def test_market_order_walks_the_depth() -> None:
    ex, market, _ = make_exchange()
    market.set(RELIANCE, "1500", [("1500.05", 50), ("1500.10", 30), ("1500.50", 100)], [])
    placed = ex.place(order(quantity=100))
    assert placed.status is OrderStatus.COMPLETE
    assert [(t.price, t.quantity) for t in ex.trades()] == [
        (D("1500.05"), 50),
        (D("1500.10"), 30),
        (D("1500.50"), 20),
    ]
    assert placed.average_price == (D("1500.05") * 50 + D("1500.10") * 30 + D("1500.50") * 20) / 100


def test_thin_book_fills_partially_then_on_later_ticks() -> None:
    ex, market, clock = make_exchange()
    market.set(RELIANCE, "1500", [("1500.05", 40)], [])
    placed = ex.place(order(quantity=100))
    assert placed.status is OrderStatus.PARTIALLY_FILLED
    assert placed.status.wire == "open"
    assert placed.filled_quantity == 40 and placed.pending_quantity == 60
    market.set(RELIANCE, "1501", [("1501.00", 25), ("1501.05", 500)], [])
    tick(clock, ex)
    final = ex.order(placed.orderid)
    assert final.status is OrderStatus.COMPLETE
    assert [(t.price, t.quantity) for t in ex.trades()] == [
        (D("1500.05"), 40),
        (D("1501.00"), 25),
        (D("1501.05"), 35),
    ]


def test_orders_on_one_tick_share_its_liquidity() -> None:
    ex, market, _ = make_exchange()
    market.set(RELIANCE, "1500", [("1500.05", 30)], [])
    first = ex.place(order(quantity=20))
    second = ex.place(order(quantity=20))
    assert first.filled_quantity == 20
    assert second.filled_quantity == 10


def test_marketable_limit_takes_levels_up_to_its_price_then_rests() -> None:
    ex, market, clock = make_exchange()
    market.set(RELIANCE, "1500", [("1500.05", 10), ("1500.10", 10), ("1500.20", 10)], [])
    placed = ex.place(order(quantity=30, pricetype=PriceType.LIMIT, price=D("1500.10")))
    assert placed.filled_quantity == 20
    # the market later trades through the resting limit: it fills at its own price
    market.set(RELIANCE, "1499", [("1499.00", 100)], [])
    tick(clock, ex)
    trades = ex.trades()
    assert (trades[-1].price, trades[-1].quantity) == (D("1500.10"), 10)
    assert ex.order(placed.orderid).status is OrderStatus.COMPLETE


def test_resting_limit_waits_until_crossed() -> None:
    ex, market, clock = make_exchange()
    placed = ex.place(
        order(action=Action.SELL, quantity=5, pricetype=PriceType.LIMIT, price=D("1510"))
    )
    assert placed.status is OrderStatus.OPEN
    market.set(RELIANCE, "1509", [("1509.05", 100)], [("1509.00", 100)])
    tick(clock, ex)
    assert ex.order(placed.orderid).status is OrderStatus.OPEN
    market.set(RELIANCE, "1512", [("1512.05", 100)], [("1512.00", 100)])
    tick(clock, ex)
    assert ex.order(placed.orderid).status is OrderStatus.COMPLETE
    assert ex.trades()[-1].price == D("1510")


def test_stop_loss_triggers_then_limits() -> None:
    ex, market, clock = make_exchange()
    placed = ex.place(order(pricetype=PriceType.SL, trigger_price=D("1505"), price=D("1506")))
    assert placed.status is OrderStatus.TRIGGER_PENDING
    market.set(RELIANCE, "1504", [("1504.05", 100)], [])
    tick(clock, ex)
    assert ex.order(placed.orderid).status is OrderStatus.TRIGGER_PENDING
    # triggers, but the book is above the limit: the order opens and waits
    market.set(RELIANCE, "1505", [("1506.50", 100)], [])
    tick(clock, ex)
    assert ex.order(placed.orderid).status is OrderStatus.OPEN
    market.set(RELIANCE, "1505.50", [("1505.95", 4), ("1506.00", 100)], [])
    tick(clock, ex)
    done = ex.order(placed.orderid)
    assert done.status is OrderStatus.COMPLETE
    assert [(t.price, t.quantity) for t in ex.trades()] == [(D("1506"), 10)]


def test_sl_m_fills_at_market_on_trigger() -> None:
    ex, market, clock = make_exchange()
    placed = ex.place(
        order(
            action=Action.SELL,
            pricetype=PriceType.SL_M,
            trigger_price=D("1490"),
            product=Product.MIS,
        )
    )
    market.set(RELIANCE, "1489", [], [("1488.90", 6), ("1488.50", 100)])
    tick(clock, ex)
    assert ex.order(placed.orderid).status is OrderStatus.COMPLETE
    assert [(t.price, t.quantity) for t in ex.trades()] == [(D("1488.90"), 6), (D("1488.50"), 4)]


@pytest.mark.parametrize(
    ("action", "trigger", "needle"),
    [(Action.BUY, "1499", "above the last price"), (Action.SELL, "1501", "below the last price")],
)
def test_stop_on_the_wrong_side_is_refused(action: Action, trigger: str, needle: str) -> None:
    ex, _, _ = make_exchange()
    before = state(ex)
    with pytest.raises(ValidationError, match=needle):
        ex.place(order(action=action, pricetype=PriceType.SL_M, trigger_price=D(trigger)))
    assert state(ex) == before


def test_insufficient_funds_changes_nothing() -> None:
    ex, _, _ = make_exchange(capital=D(100_000))
    ex.place(order(quantity=10, product=Product.CNC))
    before = state(ex)
    with pytest.raises(InsufficientFunds, match="Insufficient funds"):
        ex.place(order(quantity=1000, product=Product.CNC))
    assert state(ex) == before


def test_cnc_sell_needs_shares() -> None:
    ex, _, _ = make_exchange()
    before = state(ex)
    with pytest.raises(OrderRejected, match="only 0 shares"):
        ex.place(order(action=Action.SELL, product=Product.CNC))
    assert state(ex) == before


def test_state_machine_refuses_impossible_changes() -> None:
    ex, _, _ = make_exchange()
    done = ex.place(order())
    assert done.status is OrderStatus.COMPLETE
    with pytest.raises(InvalidOrderState, match="already complete"):
        ex.cancel(done.orderid)
    with pytest.raises(NotFoundError):
        ex.cancel("nope")
    resting = ex.place(order(pricetype=PriceType.LIMIT, price=D("1400")))
    ex.cancel(resting.orderid)
    with pytest.raises(InvalidOrderState, match="already cancelled"):
        ex.modify(resting.orderid, OrderModification(price=D("1401")))


def test_modify_and_cancel_release_margin() -> None:
    ex, _, _ = make_exchange()
    start = ex.funds().availablecash
    resting = ex.place(
        order(quantity=10, product=Product.CNC, pricetype=PriceType.LIMIT, price=D("1400"))
    )
    assert ex.funds().availablecash == start - D(14000)
    ex.modify(resting.orderid, OrderModification(quantity=20))
    assert ex.funds().availablecash == start - D(28000)
    ex.cancel(resting.orderid)
    assert ex.funds().availablecash == start


def test_modify_to_a_marketable_price_fills() -> None:
    ex, _market, _ = make_exchange()
    resting = ex.place(order(pricetype=PriceType.LIMIT, price=D("1400")))
    changed = ex.modify(resting.orderid, OrderModification(price=D("1500.05")))
    assert changed.status is OrderStatus.COMPLETE


def test_fno_lot_rules_apply_at_the_exchange() -> None:
    ex, _market, _ = make_exchange()
    with pytest.raises(ValidationError, match="lot size 65"):
        ex.place(order(NIFTY_FUT.symbol, quantity=50, product=Product.NRML))


def test_unknown_symbol() -> None:
    ex, _, _ = make_exchange()
    with pytest.raises(ValidationError, match="NOPE not found on NSE"):
        ex.place(order("NOPE"))


def test_cancel_all_and_close_all() -> None:
    ex, market, _ = make_exchange()
    ex.place(order(quantity=10))
    market.set(SBIN, "800", [("800.05", 100)], [("800", 100)])
    ex.place(order("SBIN", action=Action.SELL, quantity=5))
    ex.place(order(pricetype=PriceType.LIMIT, price=D("1400")))
    cancelled, failed = ex.cancel_all()
    assert len(cancelled) == 1 and failed == []
    exits = ex.close_all()
    assert {o.symbol for o in exits} == {"RELIANCE", "SBIN"}
    assert all(p.quantity == 0 for p in ex.positions())
