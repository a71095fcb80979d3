"""Saving and restoring a sandbox exchange, so paper trading survives a restart.

A snapshot is a JSON-safe dict of everything the sandbox knows: today's orders (working ones
go back into the books), today's fills, positions, holdings and the account's running totals.
The contract note is not stored: it is rebuilt by replaying today's fills, which gives the
same charges because the note is a pure function of its fills. Decimals travel as strings so
nothing is rounded on the way.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from openalgo_lab.brokers.sandbox.account import HoldingState, PositionState
from openalgo_lab.brokers.sandbox.charges import ContractNote
from openalgo_lab.brokers.sandbox.exchange import SandboxExchange
from openalgo_lab.brokers.sandbox.orders import WorkingOrder
from openalgo_lab.domain.enums import Action, Exchange, OrderStatus, PriceType, Product
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.models import Instrument, Trade

VERSION = 1
JSON = dict[str, Any]


def dump(ex: SandboxExchange) -> JSON:
    acct = ex.account
    return {
        "version": VERSION,
        "day": ex.day.isoformat() if ex.day else None,
        "order_seq": ex.order_seq,
        "squared_off": sorted([d.isoformat(), e.value] for d, e in ex.squared_off),
        "settled": sorted(d.isoformat() for d in ex.settled),
        "account": {
            "capital": str(acct.capital),
            "trading_day": acct.trading_day.isoformat() if acct.trading_day else None,
            "realized_total": str(acct.realized_total),
            "charges_total": str(acct.charges_total),
            "realized_today": str(acct.realized_today),
        },
        "positions": [_position(p) for p in acct.positions.values()],
        "holdings": [
            {
                "exchange": h.instrument.exchange.value,
                "symbol": h.instrument.symbol,
                "quantity": h.quantity,
                "cost": str(h.cost),
            }
            for h in acct.holdings.values()
        ],
        "orders": [_order(o) for o in ex.all_orders()],
        "trades": [_trade(t) for t in ex.trades()],
    }


def load(ex: SandboxExchange, data: JSON) -> None:
    """Restore a snapshot into a fresh exchange built on the same master contract."""
    if data.get("version") != VERSION:
        raise ValidationError(
            "snapshot", f"unsupported sandbox snapshot version {data.get('version')!r}"
        )
    acct = ex.account
    a = data["account"]
    acct.capital = Decimal(a["capital"])
    acct.trading_day = _date(a["trading_day"])
    acct.realized_total = Decimal(a["realized_total"])
    acct.charges_total = Decimal(a["charges_total"])
    acct.realized_today = Decimal(a["realized_today"])
    for p in data["positions"]:
        if not p["quantity"] and not _known(ex, p):
            continue  # a closed position in a contract that has since expired
        inst = _instrument(ex, p["exchange"], p["symbol"])
        product = Product(p["product"])
        acct.positions[(inst.exchange, inst.symbol, product)] = PositionState(
            inst,
            product,
            quantity=p["quantity"],
            open_cost=Decimal(p["open_cost"]),
            realized=Decimal(p["realized"]),
            buy_quantity=p["buy_quantity"],
            sell_quantity=p["sell_quantity"],
            buy_value=Decimal(p["buy_value"]),
            sell_value=Decimal(p["sell_value"]),
            margin=Decimal(p["margin"]),
            strategy=p.get("strategy", ""),
        )
    for h in data["holdings"]:
        inst = _instrument(ex, h["exchange"], h["symbol"])
        acct.holdings[inst.key] = HoldingState(inst, h["quantity"], Decimal(h["cost"]))
    # Orders and fills of a past day in contracts that have since expired are history only
    # (the day rolls over on the next step); working orders and open positions must resolve.
    trades = [_restore_trade(t) for t in data["trades"] if _known(ex, t)]
    if acct.trading_day is not None:
        acct.note = ContractNote(acct.trading_day, acct.rates)
        for t in trades:
            acct.note.add_fill(
                _instrument(ex, t.exchange.value, t.symbol),
                t.product,
                t.action,
                t.orderid,
                t.quantity,
                t.price,
            )
    orders = [
        _restore_order(ex, o)
        for o in data["orders"]
        if _known(ex, o) or OrderStatus(o["status"]).is_working
    ]
    ex.restore(
        day=_date(data["day"]),
        order_seq=int(data["order_seq"]),
        orders=orders,
        trades=trades,
        squared_off={(date.fromisoformat(d), Exchange(e)) for d, e in data["squared_off"]},
        settled={date.fromisoformat(d) for d in data["settled"]},
    )


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _known(ex: SandboxExchange, row: JSON) -> bool:
    return ex.master.find(Exchange(row["exchange"]), row["symbol"]) is not None


def _instrument(ex: SandboxExchange, exchange: str, symbol: str) -> Instrument:
    inst = ex.master.find(Exchange(exchange), symbol)
    if inst is None:
        raise ValidationError("snapshot", f"{symbol} on {exchange} is not in the master contract")
    return inst


def _position(p: PositionState) -> JSON:
    return {
        "exchange": p.instrument.exchange.value,
        "symbol": p.instrument.symbol,
        "product": p.product.value,
        "quantity": p.quantity,
        "open_cost": str(p.open_cost),
        "realized": str(p.realized),
        "buy_quantity": p.buy_quantity,
        "sell_quantity": p.sell_quantity,
        "buy_value": str(p.buy_value),
        "sell_value": str(p.sell_value),
        "margin": str(p.margin),
        "strategy": p.strategy,
    }


def _order(o: WorkingOrder) -> JSON:
    return {
        "orderid": o.orderid,
        "exchange": o.exchange.value,
        "symbol": o.symbol,
        "action": o.action.value,
        "quantity": o.quantity,
        "pricetype": o.pricetype.value,
        "product": o.product.value,
        "price": str(o.price),
        "trigger_price": str(o.trigger_price),
        "status": o.status.value,
        "placed_at": o.placed_at.isoformat(),
        "updated_at": o.updated_at.isoformat(),
        "strategy": o.strategy,
        "tag": o.tag,
        "disclosed_quantity": o.disclosed_quantity,
        "filled_quantity": o.filled_quantity,
        "filled_value": str(o.filled_value),
        "rejection_reason": o.rejection_reason,
        "fill_count": o.fill_count,
        "trade_ids": list(o.trade_ids),
    }


def _restore_order(ex: SandboxExchange, o: JSON) -> WorkingOrder:
    return WorkingOrder(
        orderid=o["orderid"],
        instrument=_instrument(ex, o["exchange"], o["symbol"]),
        action=Action(o["action"]),
        quantity=o["quantity"],
        pricetype=PriceType(o["pricetype"]),
        product=Product(o["product"]),
        price=Decimal(o["price"]),
        trigger_price=Decimal(o["trigger_price"]),
        status=OrderStatus(o["status"]),
        placed_at=datetime.fromisoformat(o["placed_at"]),
        updated_at=datetime.fromisoformat(o["updated_at"]),
        strategy=o["strategy"],
        tag=o["tag"],
        disclosed_quantity=o["disclosed_quantity"],
        filled_quantity=o["filled_quantity"],
        filled_value=Decimal(o["filled_value"]),
        rejection_reason=o["rejection_reason"],
        fill_count=o["fill_count"],
        trade_ids=list(o["trade_ids"]),
    )


def _trade(t: Trade) -> JSON:
    return {
        "tradeid": t.tradeid,
        "orderid": t.orderid,
        "exchange": t.exchange.value,
        "symbol": t.symbol,
        "action": t.action.value,
        "product": t.product.value,
        "quantity": t.quantity,
        "price": str(t.price),
        "timestamp": t.timestamp.isoformat(),
        "strategy": t.strategy,
        "charges": str(t.charges),
    }


def _restore_trade(t: JSON) -> Trade:
    return Trade(
        tradeid=t["tradeid"],
        orderid=t["orderid"],
        symbol=t["symbol"],
        exchange=Exchange(t["exchange"]),
        action=Action(t["action"]),
        product=Product(t["product"]),
        quantity=t["quantity"],
        price=Decimal(t["price"]),
        timestamp=datetime.fromisoformat(t["timestamp"]),
        strategy=t["strategy"],
        charges=Decimal(t["charges"]),
    )
