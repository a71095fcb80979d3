"""Domain values in OpenAlgo's JSON shapes (the one place that knows the wire field names).

Money leaves as JSON numbers rounded to the paisa (OpenAlgo rounds books to 2 dp); times as
`YYYY-MM-DD HH:MM:SS` in IST like OpenAlgo's sandbox; order statuses in OpenAlgo's vocabulary
(`PARTIALLY_FILLED` shows as `open`, with `filled_quantity` telling the rest).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from openalgo_lab.domain.calendar import IST
from openalgo_lab.domain.enums import OrderStatus, PriceType
from openalgo_lab.domain.models import Funds, Holding, Order, Position, Trade
from openalgo_lab.domain.money import round_paise

JSON = dict[str, Any]


def money(value: Decimal) -> float:
    return float(round_paise(value))


def ist_text(at: datetime) -> str:
    return at.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")


def order_row(order: Order) -> JSON:
    return {
        "orderid": order.orderid,
        "symbol": order.symbol,
        "exchange": order.exchange.value,
        "action": order.action.value,
        "quantity": order.quantity,
        "price": 0.0 if order.pricetype is PriceType.MARKET else money(order.price),
        "trigger_price": money(order.trigger_price),
        "pricetype": order.pricetype.value,
        "product": order.product.value,
        "order_status": order.status.wire,
        "filled_quantity": order.filled_quantity,
        "pending_quantity": order.pending_quantity,
        "average_price": money(order.average_price),
        "rejection_reason": order.rejection_reason,
        "strategy": order.strategy,
        "timestamp": ist_text(order.placed_at),
    }


def order_statistics(orders: list[Order]) -> JSON:
    return {
        "total_buy_orders": sum(1 for o in orders if o.action.value == "BUY"),
        "total_sell_orders": sum(1 for o in orders if o.action.value == "SELL"),
        "total_completed_orders": sum(1 for o in orders if o.status is OrderStatus.COMPLETE),
        "total_open_orders": sum(1 for o in orders if o.status.is_working),
        "total_rejected_orders": sum(1 for o in orders if o.status is OrderStatus.REJECTED),
    }


def trade_row(trade: Trade) -> JSON:
    return {
        "orderid": trade.orderid,
        "tradeid": trade.tradeid,
        "symbol": trade.symbol,
        "exchange": trade.exchange.value,
        "action": trade.action.value,
        "product": trade.product.value,
        "quantity": trade.quantity,
        "average_price": money(trade.price),
        "trade_value": money(trade.value),
        "charges": money(trade.charges),
        "strategy": trade.strategy,
        "timestamp": ist_text(trade.timestamp),
    }


def position_row(pos: Position) -> JSON:
    return {
        "symbol": pos.symbol,
        "exchange": pos.exchange.value,
        "product": pos.product.value,
        "quantity": pos.quantity,
        "average_price": float(round(pos.average_price, 4)),
        "ltp": money(pos.ltp),
        "pnl": money(pos.pnl),
        "realized_pnl": money(pos.realized_pnl),
        "unrealized_pnl": money(pos.unrealized_pnl),
    }


def holding_row(h: Holding) -> JSON:
    pct = (h.pnl / h.invested * 100) if h.invested else Decimal(0)
    return {
        "symbol": h.symbol,
        "exchange": h.exchange.value,
        "product": h.product.value,
        "quantity": h.quantity,
        "average_price": float(round(h.average_price, 4)),
        "ltp": money(h.ltp),
        "pnl": money(h.pnl),
        "pnlpercent": money(pct),
    }


def holdings_statistics(holdings: list[Holding]) -> JSON:
    value = sum((h.value for h in holdings), Decimal(0))
    invested = sum((h.invested for h in holdings), Decimal(0))
    pnl = value - invested
    return {
        "totalholdingvalue": money(value),
        "totalinvvalue": money(invested),
        "totalprofitandloss": money(pnl),
        "totalpnlpercentage": money(pnl / invested * 100) if invested else 0.0,
    }


def funds_row(f: Funds) -> JSON:
    return {
        "availablecash": money(f.availablecash),
        "collateral": money(f.collateral),
        "m2mrealized": money(f.m2mrealized),
        "m2munrealized": money(f.m2munrealized),
        "utiliseddebits": money(f.utiliseddebits),
    }
