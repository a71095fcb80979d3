"""A full trading day on the sandbox, checked against hand-computed figures.

Wednesday 2026-11-25 on real exchange hours: intraday equity (a partly filled MARKET buy, a
resting LIMIT sell), index futures (SL-M entry, SL exit), index options (LIMIT entry, MARKET
exit walking two levels), a delivery buy, and an intraday short left open for the 15:15
square-off. Thursday: the delivery buy has settled into holdings and part of it is sold.

Every charge below is worked by hand from the published rates (indian-markets.md §2): the
RELIANCE, NIFTY futures and NIFTY options legs are the reference's worked examples A, C and B.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from openalgo_lab.domain import (
    Action,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    PriceType,
    Product,
)
from openalgo_lab.domain.calendar import MarketHours
from tests.sandbox_support import (
    NIFTY,
    NIFTY_CE,
    NIFTY_FUT,
    RELIANCE,
    SBIN,
    at_ist,
    make_exchange,
)

D = Decimal
DAY1, DAY2 = "2026-11-25", "2026-11-26"


def req(inst: object, action: Action, qty: int, **kw: object) -> OrderRequest:
    return OrderRequest(
        symbol=inst.symbol,  # type: ignore[attr-defined]
        exchange=inst.exchange,  # type: ignore[attr-defined]
        action=action,
        quantity=qty,
        strategy="fullday",
        **kw,  # type: ignore[arg-type]
    )


def test_a_full_day_reconciles_to_the_paisa() -> None:
    ex, market, clock = make_exchange(at_ist(DAY1, "09:15"), hours=MarketHours.EXCHANGE)
    capital = D(10_000_000)

    def at(day: str, hhmm: str) -> None:
        clock.set(at_ist(day, hhmm))
        ex.step()

    # 09:20 intraday buy of 200 RELIANCE at market: only 120 are offered on this tick
    market.set(RELIANCE, "1500", [("1500", 120)], [("1499.95", 500)])
    at(DAY1, "09:20")
    r1 = ex.place(req(RELIANCE, Action.BUY, 200, product=Product.MIS))
    assert (r1.status, r1.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 120)
    market.set(RELIANCE, "1500", [("1500", 500)], [("1499.95", 500)])
    at(DAY1, "09:21")
    assert ex.order(r1.orderid).status is OrderStatus.COMPLETE

    # 09:25 exit rests at 1510 and fills when the market trades through it at 11:00
    r2 = ex.place(
        req(
            RELIANCE,
            Action.SELL,
            200,
            product=Product.MIS,
            pricetype=PriceType.LIMIT,
            price=D("1510"),
        )
    )
    assert r2.status is OrderStatus.OPEN

    # NIFTY futures: SL-M entry above the market, triggered at 09:31
    market.set(NIFTY_FUT, "25990", [("25990.05", 650)], [("25990", 650)])
    at(DAY1, "09:30")
    f1 = ex.place(
        req(
            NIFTY_FUT,
            Action.BUY,
            65,
            product=Product.NRML,
            pricetype=PriceType.SL_M,
            trigger_price=D("26000"),
        )
    )
    assert f1.status is OrderStatus.TRIGGER_PENDING
    market.set(NIFTY_FUT, "26000", [("26000", 650)], [("25999.95", 650)])
    at(DAY1, "09:31")
    assert ex.order(f1.orderid).status is OrderStatus.COMPLETE

    # options: two lots bought with a marketable LIMIT
    market.set(NIFTY_CE, "120", [("120", 500)], [("119.95", 500)])
    at(DAY1, "10:00")
    o1 = ex.place(
        req(
            NIFTY_CE,
            Action.BUY,
            130,
            product=Product.NRML,
            pricetype=PriceType.LIMIT,
            price=D("120"),
        )
    )
    assert o1.status is OrderStatus.COMPLETE

    # delivery buy and an intraday short in SBIN
    market.set(SBIN, "800", [("800", 100)], [("800", 100)])
    at(DAY1, "10:30")
    ex.place(
        req(SBIN, Action.BUY, 10, product=Product.CNC, pricetype=PriceType.LIMIT, price=D("800"))
    )
    at(DAY1, "10:45")
    ex.place(req(SBIN, Action.SELL, 50, product=Product.MIS))

    market.set(RELIANCE, "1511", [("1511", 500)], [("1510.50", 300)])
    at(DAY1, "11:00")
    assert ex.order(r2.orderid).status is OrderStatus.COMPLETE
    assert ex.trades()[-1].price == D("1510")  # a resting limit fills at its own price

    # options exit at market walks two bid levels
    market.set(NIFTY_CE, "135", [("135.05", 500)], [("135", 100), ("134.95", 100)])
    at(DAY1, "13:00")
    ex.place(req(NIFTY_CE, Action.SELL, 130, product=Product.NRML))

    # futures exit with a stop-limit: placed under the market, fires as the price falls
    market.set(NIFTY_FUT, "26060", [("26060.05", 650)], [("26060", 650)])
    at(DAY1, "13:59")
    f2 = ex.place(
        req(
            NIFTY_FUT,
            Action.SELL,
            65,
            product=Product.NRML,
            pricetype=PriceType.SL,
            trigger_price=D("26055"),
            price=D("26050"),
        )
    )
    assert f2.status is OrderStatus.TRIGGER_PENDING
    market.set(NIFTY_FUT, "26055", [("26055.05", 650)], [("26050", 650)])
    at(DAY1, "14:00")
    assert ex.order(f2.orderid).status is OrderStatus.COMPLETE

    # 15:15: the open SBIN intraday short is squared off at market
    market.set(SBIN, "795", [("795", 100)], [("794.95", 100)])
    at(DAY1, "15:00")
    at(DAY1, "15:15")
    squareoff = ex.trades()[-1]
    assert (squareoff.symbol, squareoff.action, squareoff.quantity, squareoff.price) == (
        "SBIN",
        Action.BUY,
        50,
        D("795"),
    )
    with pytest.raises(OrderRejected, match="square-off"):
        ex.place(req(SBIN, Action.SELL, 1, product=Product.MIS))

    # -- hand-computed charges (₹), per segment of the contract note -------------------------
    # intraday equity: RELIANCE 200 @1500 / 1510 and SBIN 50 @800 / 795
    #   brokerage 20 + 20 + min(0.03% x 40,000, 20)=12 + min(0.03% x 39,750, 20)=11.93 = 63.93
    #   STT 0.025% of sells, to the rupee: 75.50 -> 76, 10.00 -> 10                       = 86
    #   transaction 0.00307% of turnover: 602,000 -> 18.48, 79,750 -> 2.45                 = 20.93
    #   SEBI 0.0001%: 0.60 + 0.08 = 0.68; stamp 0.003% of buys: 9.00 + 1.19 = 10.19
    #   GST 18% x (63.93 + 20.93 + 0.68) = 15.40                             total = 197.13
    # NIFTY futures (example C)                                              total = 1005.04
    # NIFTY options: buy 15,600; sell 13,500 + 4,048.50 = 17,548.50
    #   40 + STT 26.32 -> 26 + txn 11.78 + SEBI 0.03 + stamp 0.47 + GST 9.33   total = 87.61
    # delivery SBIN 10 @800: STT 8 + txn 0.25 + SEBI 0.01 + stamp 1.20 + GST 0.05  total = 9.51
    charges_day1 = D("197.13") + D("1005.04") + D("87.61") + D("9.51")
    assert sum((t.charges for t in ex.trades()), D(0)) == charges_day1 == D("1299.29")

    realized_day1 = D(2000) + D(250) + D(3250) + D("1948.50")
    funds = ex.funds()
    assert funds.m2mrealized == realized_day1 == D("7448.50")
    assert funds.m2munrealized == D(-50)  # 10 SBIN delivery bought at 800, now 795
    assert funds.utiliseddebits == D(8000)  # delivery is paid in full
    assert funds.availablecash == capital + realized_day1 - charges_day1 - D(8000)
    assert funds.availablecash == D("9998149.21")

    positions = {(p.symbol, p.product): p for p in ex.positions()}
    assert positions[("RELIANCE", Product.MIS)].quantity == 0
    assert positions[("RELIANCE", Product.MIS)].realized_pnl == D(2000)
    assert positions[("NIFTY01DEC2626000CE", Product.NRML)].realized_pnl == D("1948.50")
    assert positions[("SBIN", Product.CNC)].quantity == 10
    assert {o.status for o in ex.orders()} == {OrderStatus.COMPLETE}
    assert len(ex.orders()) == 9  # 8 placed + the square-off
    assert ex.holdings() == []

    # -- Thursday: T+1 settlement, then a part of the holding is sold ------------------------
    market.set(SBIN, "810", [("810.05", 100)], [("810", 100)])
    at(DAY2, "09:15")
    assert ex.orders() == [] and ex.trades() == []
    (holding,) = ex.holdings()
    assert (holding.symbol, holding.quantity, holding.average_price) == ("SBIN", 10, D(800))
    ex.place(req(SBIN, Action.SELL, 4, product=Product.CNC))
    (holding,) = ex.holdings()
    assert holding.quantity == 6
    # delivery sell 4 @810 = 3,240: STT 3.24 -> 3, txn 0.10, SEBI 0.00, GST 0.02 = 3.12
    assert ex.trades()[-1].charges == D("3.12")
    funds = ex.funds()
    assert funds.m2mrealized == D(40)
    assert funds.utiliseddebits == 0
    assert funds.availablecash == D("10001386.09")  # 1 cr + 7,488.50 - 1,302.41 - 4,800 held


def test_option_held_to_expiry_settles_at_intrinsic_value() -> None:
    ex, market, clock = make_exchange(at_ist("2026-12-01", "10:00"), hours=MarketHours.EXCHANGE)
    market.set(NIFTY_CE, "100", [("100", 500)], [("99.95", 500)])
    ex.place(req(NIFTY_CE, Action.BUY, 65, product=Product.NRML))
    market.set(NIFTY, "26080")
    clock.set(at_ist("2026-12-02", "09:15"))
    ex.step()
    # settled at intrinsic 26,080 - 26,000 = 80: loss (80 - 100) x 65 = -1,300
    # exercise STT 0.15% x 80 x 65 = 7.80 -> 8 (rounded to the rupee)
    assert ex.account.realized_total == D(-1300)
    buy_charges = D(20) + D("2.31") + D("0.01") + D("0.20") + D("4.02")
    # buy 6,500 premium: brokerage 20, txn 0.03553% -> 2.31, SEBI 0.01, stamp 0.195 -> 0.20,
    # GST 18% x (20 + 2.31 + 0.01) = 4.0176 -> 4.02
    assert ex.account.charges_total == buy_charges + D(8)
    assert all(p.quantity == 0 for p in ex.positions())


def test_expired_future_settles_at_its_last_price() -> None:
    ex, market, clock = make_exchange(at_ist("2026-12-29", "10:00"), hours=MarketHours.EXCHANGE)
    market.set(NIFTY_FUT, "26000", [("26000", 650)], [("25999.95", 650)])
    ex.place(req(NIFTY_FUT, Action.SELL, 65, product=Product.NRML))
    market.set(NIFTY_FUT, "26100", [("26100.05", 650)], [("26100", 650)])
    clock.set(at_ist("2026-12-30", "09:15"))
    ex.step()
    # sold at the bid 25,999.95, settled at the last price 26,100: (25,999.95 - 26,100) x 65
    assert ex.account.realized_total == D("-6503.25")
    assert all(p.quantity == 0 for p in ex.positions())
