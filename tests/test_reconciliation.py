"""Money reconciles to the paisa for any stream of orders (hypothesis).

Whatever a strategy does, these identities must hold exactly (Decimal, no tolerance):
* the sum of every fill's charges equals the contract note's total;
* once a position is flat, its realised P&L equals sell value minus buy value;
* cash equals capital + realised P&L - charges, and available cash is cash minus margin.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from openalgo_lab.domain import Action, OrderRequest, PriceType, Product
from openalgo_lab.domain.errors import OpenAlgoError
from tests.sandbox_support import NIFTY_CE, NIFTY_FUT, RELIANCE, SBIN, make_exchange, tick

D = Decimal
INSTRUMENTS = [RELIANCE, SBIN, NIFTY_FUT, NIFTY_CE]

step = st.tuples(
    st.sampled_from(INSTRUMENTS),
    st.sampled_from([Action.BUY, Action.SELL]),
    st.integers(min_value=1, max_value=8),  # lots
    st.sampled_from([PriceType.MARKET, PriceType.LIMIT]),
    st.integers(min_value=-40, max_value=40),  # limit offset in ticks
    st.integers(min_value=-60, max_value=60),  # market move in ticks before the order
    st.sampled_from([1, 3, 20, 200]),  # depth per level, in lots
)


@settings(max_examples=60, deadline=None)
@given(st.lists(step, min_size=1, max_size=40))
def test_money_identities_hold_for_any_order_stream(steps: list[tuple[object, ...]]) -> None:
    ex, market, clock = make_exchange()
    mid = {RELIANCE.key: D(1500), SBIN.key: D(800), NIFTY_FUT.key: D(26000), NIFTY_CE.key: D(120)}
    for inst, action, lots, pricetype, offset, move, depth in steps:  # type: ignore[misc]
        tick_size = inst.tick_size
        mid[inst.key] += tick_size * move
        mid[inst.key] = max(mid[inst.key], tick_size * 20)
        m = mid[inst.key]
        size = depth * inst.lotsize
        market.set(
            inst,
            str(m),
            [(str(m + tick_size * k), size) for k in range(1, 6)],
            [(str(m - tick_size * k), size) for k in range(1, 6)],
        )
        tick(clock, ex)
        product = Product.NRML if inst.is_derivative else Product.MIS
        price = m + tick_size * offset if pricetype is PriceType.LIMIT else D(0)
        with contextlib.suppress(OpenAlgoError):
            ex.place(
                OrderRequest(
                    inst.symbol,
                    inst.exchange,
                    action,
                    lots * inst.lotsize,
                    pricetype,
                    product,
                    price=price,
                )
            )
    # flatten everything on a deep book: every position must then reconcile exactly
    for inst in INSTRUMENTS:
        m = mid[inst.key]
        deep = 10_000 * inst.lotsize
        market.set(inst, str(m), [(str(m + inst.tick_size), deep)], [(str(m), deep)])
    tick(clock, ex)
    ex.cancel_all()
    ex.close_all()
    assert all(p.quantity == 0 for p in ex.positions())
    trades = ex.trades()
    account = ex.account
    assert account.note is not None
    assert sum((t.charges for t in trades), D(0)) == account.note.total.total
    assert account.charges_total == account.note.total.total
    for pos in account.positions.values():
        assert pos.realized == pos.sell_value - pos.buy_value
    realized = sum((p.realized for p in account.positions.values()), D(0))
    assert realized == account.realized_total
    assert account.cash == account.capital + realized - account.charges_total
    assert account.used_margin == 0
    assert account.available == account.cash
    # every fill books at a price on the instrument's tick grid
    for t in trades:
        inst = next(i for i in INSTRUMENTS if i.symbol == t.symbol)
        assert t.price % inst.tick_size == 0
