"""Account actions: order status, books, positions, holdings, funds (reference §2.2)."""

from __future__ import annotations

from openalgo_lab.domain.enums import Product
from openalgo_lab.domain.errors import NotFoundError
from openalgo_lab.engine import views
from openalgo_lab.engine.actions.registry import JSON, ActionContext, Payload, action


@action("orderstatus")
async def orderstatus(ctx: ActionContext, p: Payload) -> JSON:
    """The current state of one order."""
    orderid = p.text("orderid", max_length=64)
    try:
        order = await ctx.broker.order(orderid)
    except NotFoundError:
        raise NotFoundError(f"Order {orderid} not found") from None
    return {"data": views.order_row(order)}


@action("openposition")
async def openposition(ctx: ActionContext, p: Payload) -> JSON:
    """The signed net quantity held in one symbol and product (0 when flat)."""
    symbol = p.text("symbol").upper()
    exchange = p.exchange()
    product = p.enum(Product, "product")
    quantity = 0
    for pos in await ctx.broker.positions():
        if (pos.symbol, pos.exchange, pos.product) == (symbol, exchange, product):
            quantity = pos.quantity
    return {"quantity": str(quantity)}


@action("orderbook")
async def orderbook(ctx: ActionContext, p: Payload) -> JSON:
    """Today's orders with statistics."""
    orders = await ctx.broker.orders()
    return {
        "data": {
            "orders": [views.order_row(o) for o in orders],
            "statistics": views.order_statistics(orders),
        }
    }


@action("tradebook")
async def tradebook(ctx: ActionContext, p: Payload) -> JSON:
    """Today's fills."""
    return {"data": [views.trade_row(t) for t in await ctx.broker.trades()]}


@action("positionbook")
async def positionbook(ctx: ActionContext, p: Payload) -> JSON:
    """Net positions, closed ones included."""
    return {"data": [views.position_row(pos) for pos in await ctx.broker.positions()]}


@action("holdings")
async def holdings(ctx: ActionContext, p: Payload) -> JSON:
    """Delivery holdings with statistics."""
    rows = await ctx.broker.holdings()
    return {
        "data": {
            "holdings": [views.holding_row(h) for h in rows],
            "statistics": views.holdings_statistics(rows),
        }
    }


@action("funds")
async def funds(ctx: ActionContext, p: Payload) -> JSON:
    """Available cash, collateral, realised and unrealised M2M, margin used."""
    return {"data": views.funds_row(await ctx.broker.funds())}
